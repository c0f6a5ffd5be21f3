// What every signed-in page shares: who is logged in, the header and its navigation, the
// screen-reader announcer, and the live connection started in the right order.

import { api, clearToken, getToken, goToLogin, mayOpen, PAGES } from "./api.js";
import { $, h, replaceChildren } from "./dom.js";
import { HotlineSocket } from "./socket.js";

/**
 * Check the log-in and the role, draw the header. Resolves to the user ({username, roles,
 * departments}) or null when the user may not open this page (a message is shown instead).
 */
export async function startPage(pagePath) {
  if (!getToken()) {
    goToLogin();
    return null;
  }
  const me = await api("/api/v1/auth/me");
  drawHeader(me, pagePath);
  const page = PAGES.find((p) => p.path === pagePath);
  if (page && !mayOpen(page, me.roles)) {
    const main = $("main");
    replaceChildren(main,
      h("h1", {}, "无权访问"),
      h("p", {}, `账号 ${me.username} 没有打开“${page.label}”的权限。`),
      h("p", {}, h("a", { href: "/login" }, "换一个账号登录")));
    return null;
  }
  return me;
}

function drawHeader(me, pagePath) {
  const header = $("#app-header");
  const links = PAGES.filter((p) => mayOpen(p, me.roles)).map((p) =>
    h("li", {}, h("a", { href: p.path, "aria-current": p.path === pagePath ? "page" : null },
      p.label)));
  const status = h("span", { id: "live-status", class: "live-status", role: "status" }, "");
  replaceChildren(header,
    h("div", { class: "brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "12345"),
      h("span", {}, "珠海12345热线")),
    h("nav", { "aria-label": "页面导航" }, h("ul", {}, links)),
    h("div", { class: "user" },
      status,
      h("span", { class: "user-name" }, `${me.username}`),
      h("button", {
        type: "button", class: "button-quiet",
        on: { click: () => { clearToken(); sessionStorage.clear(); location.assign("/login"); } },
      }, "退出")));
}

/**
 * Say something to screen readers (politely, or assertively for what cannot wait). Messages
 * are added as lines to a log, so several in quick succession are all read.
 */
export function announce(text, { assertive = false } = {}) {
  const region = $(assertive ? "#announcer-assertive" : "#announcer");
  if (!region) return;
  region.append(h("p", {}, text));
  while (region.childElementCount > 5) region.firstElementChild.remove();
}

function showLiveStatus(state) {
  const el = $("#live-status");
  if (!el) return;
  const labels = { connecting: "连接中…", online: "实时", offline: "已断开，正在重连…" };
  el.textContent = labels[state] || "";
  el.dataset.state = state;
}

/**
 * Prepare the live connection BEFORE loading the page's snapshot, so that nothing published
 * between the snapshot and the connection is lost: the starting id is read first (the one
 * kept from earlier in this tab, or the newest now), and the gateway replays everything
 * after it. Call .start() on the result once the snapshot is drawn. `topics` narrows what the
 * page receives to what it shows (the gateway never grants more than the role may see).
 */
export async function prepareLive(me, page, { onEvent, onResync, topics }) {
  const storageKey = `hotline.lastEventId.${page}.${me.username}`;
  let lastId = HotlineSocket.storedLastId(storageKey);
  if (lastId === null) {
    const newest = await api("/api/v1/events", { query: { after: Number.MAX_SAFE_INTEGER, limit: 1 } });
    lastId = newest.last_id;
  }
  const socket = new HotlineSocket({
    token: getToken(),
    topics,
    storageKey,
    lastId,
    onEvent,
    onResync,
    onStatus: showLiveStatus,
    onAuthFailure: () => goToLogin(),
  });
  // A hook for tests and for debugging from the console: close(), disconnect(), reconnect().
  window.__hotlineSocket = socket;
  return socket;
}

/** Tell tests and scripts that the page has drawn its data and listens for input. */
export function markReady() {
  document.body.dataset.ready = "true";
}

/** Show an error (or clear it) in a page's role=alert element. */
export function showError(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

/**
 * A visible confirmation (or failure) of what the user just did, in the page's notice box,
 * read to screen readers as well. `action`: an optional {label, run} button in it, e.g. to
 * follow the ticket to the tab it moved to. It stays until the next notice or its close button.
 */
export function notify(el, text, { kind = "success", action = null } = {}) {
  const close = h("button", {
    type: "button", class: "button-quiet button-small notice-close",
    on: { click: () => { el.hidden = true; } },
  }, "知道了");
  const follow = action
    ? h("button", {
      type: "button", class: "button-small",
      on: { click: () => { el.hidden = true; action.run(); } },
    }, action.label)
    : null;
  replaceChildren(el,
    h("span", { class: "notice-icon", "aria-hidden": "true" }, kind === "error" ? "✖" : "✔"),
    h("span", { class: "notice-text" }, text), follow, close);
  el.className = `notice notice-${kind}`;
  el.dataset.kind = kind;
  el.hidden = false;
  announce(text, { assertive: kind === "error" });
}
