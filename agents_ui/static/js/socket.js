// The live connection to the websocket gateway (/ws), Zulip-style.
//
// The client keeps the id of the last event it handled (in sessionStorage, so a reload of the
// page resumes too) and reconnects with ?last_id=N: the gateway replays what was missed. When
// the gateway says "resync" (too far behind, or too slow), the page reloads its snapshot.
// Reconnects back off exponentially with jitter; pings keep the line honest, and a line that
// stays silent too long is treated as dead.

const PING_EVERY_MS = 20000;
const SILENCE_LIMIT_MS = 50000; // the gateway sends a heartbeat every 15 s when idle
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 15000;
const CLOSE_UNAUTHORISED = 4401;
const CLOSE_FORBIDDEN = 4403;
// The token travels as a subprotocol (the Sec-WebSocket-Protocol header), never in the URL,
// which access logs and proxies record; the gateway answers with SUBPROTOCOL.
const SUBPROTOCOL = "hotline.v1";

export class HotlineSocket {
  /**
   * token: the access token; topics: the topic patterns wanted (all visible ones if none);
   * storageKey: where the last event id is kept;
   * lastId: the id to start from (events after it are replayed);
   * onEvent(frame), onResync(reason), onStatus(state) with state one of
   * "connecting" | "online" | "offline"; onAuthFailure(code).
   */
  constructor({ token, topics, storageKey, lastId, onEvent, onResync, onStatus, onAuthFailure }) {
    this.token = token;
    this.topics = topics || [];
    this.storageKey = storageKey;
    this.lastId = lastId ?? null;
    this.onEvent = onEvent || (() => {});
    this.onResync = onResync || (() => {});
    this.onStatus = onStatus || (() => {});
    this.onAuthFailure = onAuthFailure || (() => {});
    this.socket = null;
    this.attempt = 0;
    this.connects = 0; // how many times a hello was received (tests watch reconnects)
    this.received = 0;
    this.gatewayLastId = null;
    this.stopped = false;
    this.held = false;
    this.url = null;
    this._reconnectTimer = null;
    this._pingTimer = null;
    this._lastMessageAt = 0;
    this._onOnline = () => this._reconnectSoon(0);
    window.addEventListener("online", this._onOnline);
  }

  static storedLastId(storageKey) {
    const raw = sessionStorage.getItem(storageKey);
    return raw && /^\d+$/.test(raw) ? Number(raw) : null;
  }

  start() {
    this.stopped = false;
    this.held = false;
    this._connect();
    return this;
  }

  /** Drop the current connection as a network failure would; it reconnects by itself. */
  close() {
    if (this.socket) this.socket.close();
  }

  /** Drop the connection and stay offline until reconnect() (tests; a "pause" control). */
  disconnect() {
    this.held = true;
    clearTimeout(this._reconnectTimer);
    if (this.socket) this.socket.close();
  }

  reconnect() {
    this.held = false;
    this._reconnectSoon(0);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this._reconnectTimer);
    clearInterval(this._pingTimer);
    window.removeEventListener("online", this._onOnline);
    if (this.socket) this.socket.close();
  }

  get isOpen() {
    return Boolean(this.socket && this.socket.readyState === WebSocket.OPEN);
  }

  _remember(id) {
    this.lastId = id;
    if (this.storageKey) sessionStorage.setItem(this.storageKey, String(id));
  }

  _connect() {
    clearTimeout(this._reconnectTimer);
    if (this.stopped || this.held) return;
    const url = new URL("/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (this.lastId !== null) url.searchParams.set("last_id", String(this.lastId));
    if (this.topics.length) url.searchParams.set("topics", this.topics.join(","));
    this.url = url.pathname + "?last_id=" + (this.lastId ?? "");
    this.onStatus("connecting");
    let socket;
    try {
      socket = new WebSocket(url, [SUBPROTOCOL, `bearer.${this.token}`]);
    } catch (error) {
      this._reconnectSoon();
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (message) => this._receive(socket, message));
    socket.addEventListener("close", (event) => this._closed(socket, event));
  }

  _receive(socket, message) {
    if (socket !== this.socket) return;
    this._lastMessageAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    switch (frame.type) {
      case "hello":
        this.attempt = 0;
        this.connects += 1;
        this.gatewayLastId = frame.last_id;
        if (this.lastId === null) this._remember(frame.last_id);
        this._startPinging(socket);
        this.onStatus("online");
        break;
      case "event":
        if (this.lastId !== null && frame.id <= this.lastId) return; // seen before the drop
        this._remember(frame.id);
        this.received += 1;
        try {
          this.onEvent(frame);
        } catch (error) {
          console.error("event handler failed", error);
        }
        break;
      case "heartbeat":
      case "pong":
        // Only the newest id the gateway knows: not proof that we have seen everything up
        // to it (an event may still be on its way to us), so it is not remembered as ours.
        this.gatewayLastId = frame.last_id;
        break;
      case "resync":
        if (this.gatewayLastId !== null) {
          this._remember(Math.max(this.lastId ?? 0, this.gatewayLastId));
        }
        this.onResync(frame.reason);
        break;
      default:
        break;
    }
  }

  _startPinging(socket) {
    clearInterval(this._pingTimer);
    this._pingTimer = setInterval(() => {
      if (socket !== this.socket || socket.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this._lastMessageAt > SILENCE_LIMIT_MS) {
        socket.close(); // a half-open line: start again
        return;
      }
      socket.send("ping");
    }, PING_EVERY_MS);
  }

  _closed(socket, event) {
    if (socket !== this.socket) return;
    clearInterval(this._pingTimer);
    this.socket = null;
    if (event.code === CLOSE_UNAUTHORISED || event.code === CLOSE_FORBIDDEN) {
      this.stopped = true;
      this.onStatus("offline");
      this.onAuthFailure(event.code);
      return;
    }
    this.onStatus("offline");
    if (!this.stopped && !this.held) this._reconnectSoon();
  }

  _reconnectSoon(delay) {
    if (this.stopped || this.held) return;
    clearTimeout(this._reconnectTimer);
    if (delay === undefined) {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
      delay = base * (0.75 + Math.random() * 0.5);
      this.attempt += 1;
    }
    if (this.socket) return; // still open (an "online" event while connected)
    this._reconnectTimer = setTimeout(() => this._connect(), delay);
  }
}
