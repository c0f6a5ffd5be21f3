"""The websocket gateway: live events to consoles, walls and inboxes (Zulip's protocol).

A client connects to ``/ws?last_id=N&topics=a,b.`` offering the subprotocols ``hotline.v1`` and
``bearer.<access token>`` (the gateway answers ``hotline.v1``): the token travels in the
``Sec-WebSocket-Protocol`` header, never in the URL, so no access log or proxy log records it.
Old clients may still send ``?token=…``; the log filter of ``hotline serve`` blanks it out
(``hotline.core.redaction``). Frames are JSON: ``hello`` (with
the topics granted), ``event`` (see ``frame``), ``heartbeat``, ``pong`` and ``resync``. It
receives what it missed since ``N`` from the event log, then live events, each with its
increasing ``id``; if it missed too much it is told to ``resync`` (reload a fresh snapshot).
Topics are the ones it asks for, limited by role and department (``hotline.core.topics``).

One Redis pub/sub subscription per API process feeds every client of that process, so events
reach clients on every process. The subscriber watches the ids: a gap (a message lost while
Redis was away, say) is filled from the event log before anything newer is forwarded.
Each client has a bounded queue; one that falls too far behind is dropped with a ``resync``
marker rather than slowing the others down. Heartbeats keep proxies from closing idle sockets
and tell the client the newest id.

Sessions end while connected: an ``auth.sessions`` event (a password, role or department change,
a disabled account) makes the gateway re-check its connected users at once, and it re-checks
them every REVALIDATE_SECONDS anyway (one query for all of them); a socket whose token is no
longer valid is closed with 4401 and the reason ``auth.token_revoked``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from hotline.core import privacy
from hotline.core.auth import (
    SESSIONS_TOPIC,
    AuthError,
    Principal,
    valid_token_versions,
    websocket_principal,
)
from hotline.core.db import transaction
from hotline.core.errors import AppError
from hotline.core.events import all_events_after, events_after, last_event_id
from hotline.core.outbox import events_channel
from hotline.core.redis import redis_url
from hotline.core.topics import narrow, visible_topic_prefixes

log = logging.getLogger(__name__)

router = APIRouter()

HEARTBEAT_SECONDS = 15.0
CLIENT_QUEUE_SIZE = 1000
# A reconnecting client further behind than this reloads a snapshot instead of a replay.
MAX_REPLAY = 2000
CLOSE_RESYNC = 4000
CLOSE_UNAUTHORISED = 4401
CLOSE_FORBIDDEN = 4403
# The fallback re-check of connected users' tokens, should a revocation event be missed.
REVALIDATE_SECONDS = 5.0
REVOKED = "auth.token_revoked"
SUBPROTOCOL = "hotline.v1"
BEARER_PREFIX = "bearer."


@dataclass(eq=False)
class Client:
    principal: Principal
    patterns: list[str]
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_SIZE))
    dropped: bool = False
    revoked: str | None = None  # why the session ended; the pump closes the socket
    last_sent: float = field(default_factory=time.monotonic)


def patterns_matching(topic: str) -> list[str]:
    """Every pattern that matches ``topic``: the topic itself and each branch above it
    (``calls.agents.a1`` is matched by ``calls.``, ``calls.agents.`` and itself)."""
    branches = [topic[: i + 1] for i, char in enumerate(topic) if char == "."]
    return [*branches, topic]


class Gateway:
    """Fans events out from Redis (and the event log, for gaps) to this process's clients.

    Clients are indexed by the patterns they asked for, so an event costs a lookup per branch
    of its topic, not a test against every connected client (with 500 consoles, the test on
    each was most of the gateway's CPU).
    """

    def __init__(self) -> None:
        self._by_pattern: dict[str, set[Client]] = {}
        # Every client, those granted no pattern included (they are in no index entry).
        self._clients: set[Client] = set()
        self._recheck = asyncio.Event()
        self.last_id = 0
        self._tasks: list[asyncio.Task] = []
        self._lock = asyncio.Lock()

    @property
    def clients(self) -> set[Client]:
        return set(self._clients)

    def add(self, client: Client) -> None:
        self._clients.add(client)
        for pattern in client.patterns:
            self._by_pattern.setdefault(pattern, set()).add(client)

    def remove(self, client: Client) -> None:
        self._clients.discard(client)
        for pattern in client.patterns:
            clients = self._by_pattern.get(pattern)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self._by_pattern[pattern]

    async def start(self) -> None:
        self.last_id = await run_in_threadpool(_last_id)
        self._tasks = [
            asyncio.create_task(self._run(), name="ws-gateway"),
            asyncio.create_task(self._heartbeats(), name="ws-heartbeats"),
            asyncio.create_task(self._revalidate_loop(), name="ws-revalidate"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a Redis connection half-closed under us must not hang the shutdown.
            await asyncio.wait(set(self._tasks), timeout=3)

    async def _heartbeats(self) -> None:
        """Every socket quiet for HEARTBEAT_SECONDS gets a heartbeat (with the newest id)."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS / 3)
            quiet_since = time.monotonic() - HEARTBEAT_SECONDS
            for client in self.clients:
                if client.last_sent <= quiet_since:
                    client.last_sent = time.monotonic()  # one queued at a time
                    with contextlib.suppress(asyncio.QueueFull):
                        client.queue.put_nowait(_HEARTBEAT)

    async def _revalidate_loop(self) -> None:
        """Re-check connected users' tokens when a revocation is announced, and periodically."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recheck.wait(), REVALIDATE_SECONDS)
            self._recheck.clear()
            try:
                await self.revalidate()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database away: the next round retries
                log.warning("could not re-check the connected users' tokens: %s", exc)

    async def revalidate(self) -> None:
        """Close (4401) every socket whose user was disabled or whose token version is old."""
        clients = [c for c in self._clients if c.revoked is None]
        if not clients:
            return
        valid = await run_in_threadpool(
            _valid_token_versions, {c.principal.user_id for c in clients}
        )
        for client in clients:
            if valid.get(client.principal.user_id) != client.principal.token_version:
                client.revoked = REVOKED
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.put_nowait(_WAKE)  # the pump sees ``revoked`` and closes

    async def _run(self) -> None:
        while True:
            try:
                await self._subscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: poll the log, then retry
                log.warning("event subscription lost (%s); catching up from the log", exc)
                # The database may be away too (a restart): that must not end this loop, or
                # this process would forward no event again until it is restarted.
                with contextlib.suppress(Exception):
                    await self.catch_up()
                await asyncio.sleep(1.0)

    async def _subscribe(self) -> None:
        client = aioredis.from_url(await run_in_threadpool(redis_url))
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(await run_in_threadpool(events_channel))
            # Whatever was published while we were not subscribed comes from the log.
            await self.catch_up()
            while True:
                message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                if message is None:
                    await self.catch_up()  # cheap when nothing is missing; heals silent gaps
                    continue
                event = json.loads(message["data"])
                await self.deliver(event)
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(pubsub.aclose(), timeout=1)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(client.aclose(), timeout=1)

    async def deliver(self, event: dict[str, Any]) -> None:
        async with self._lock:
            if event["id"] <= self.last_id:
                return
            if event["id"] > self.last_id + 1:
                for missed in await run_in_threadpool(_all_events_after, self.last_id):
                    if missed["id"] >= event["id"]:
                        break
                    self._fan_out(missed)
            self._fan_out(event)

    async def catch_up(self) -> None:
        async with self._lock:
            for missed in await run_in_threadpool(_all_events_after, self.last_id):
                self._fan_out(missed)

    def _fan_out(self, event: dict[str, Any]) -> None:
        self.last_id = max(self.last_id, event["id"])
        if event["topic"] == SESSIONS_TOPIC:
            self._recheck.set()
        # Encoded once for every client (twice at most, see Outgoing): with hundreds of
        # consoles, encoding per socket was most of the gateway's CPU.
        outgoing = Outgoing(event["id"], event)
        targets: set[Client] = set()
        for pattern in patterns_matching(event["topic"]):
            targets.update(self._by_pattern.get(pattern, ()))
        for client in targets:
            if client.dropped:
                continue
            try:
                client.queue.put_nowait(outgoing)
            except asyncio.QueueFull:
                client.dropped = True  # the sender notices, says resync and closes


class Outgoing:
    """An event for the wire, with the id the pump checks against the replay. Encoded lazily,
    at most twice however many sockets get it: as it is (``text``) and with callers' personal
    data masked for department users (``masked_text``)."""

    __slots__ = ("id", "event", "_text", "_masked_text")

    def __init__(self, id: int, event: dict[str, Any] | None = None) -> None:
        self.id = id
        self.event = event
        self._text: str | None = None
        self._masked_text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = encode(frame(self.event or {}))
        return self._text

    @property
    def masked_text(self) -> str:
        if self._masked_text is None:
            self._masked_text = encode(frame(privacy.mask_event(self.event or {})))
        return self._masked_text


def frame_text(outgoing: Outgoing, principal: Principal) -> str:
    """What ``principal`` is sent for an event: the masked frame unless it is hotline staff."""
    return outgoing.text if privacy.sees_personal_data(principal) else outgoing.masked_text


_PONG = Outgoing(0)
_GONE = Outgoing(0)
_HEARTBEAT = Outgoing(0)
_WAKE = Outgoing(0)


def encode(message: dict[str, Any]) -> str:
    # The same encoding as Starlette's send_json, so clients see identical frames.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def frame(event: dict[str, Any]) -> dict[str, Any]:
    """An event on the wire: ``{"type": "event", "id", "topic", "event", "data", "at"}``."""
    return {
        "type": "event",
        "id": event["id"],
        "topic": event["topic"],
        "event": event["type"],
        "data": event["data"],
        "at": event["at"],
    }


def _last_id() -> int:
    with transaction() as session:
        return last_event_id(session)


def _all_events_after(after: int, limit: int = MAX_REPLAY + 1):
    # The gateway's own catch-up: every topic, filtered per client by _fan_out.
    with transaction() as session:
        return all_events_after(session, after, limit=limit)


def _events_after(after: int, patterns: list[str], limit: int = MAX_REPLAY + 1):
    # A client's replay: only its patterns, and nothing at all when it was granted none.
    with transaction() as session:
        return events_after(session, after, topics=patterns, limit=limit)


def _valid_token_versions(user_ids: set[int]) -> dict[int, int]:
    with transaction() as session:
        return valid_token_versions(session, user_ids)


def _authenticate(token: str | None) -> Principal:
    with transaction() as session:
        return websocket_principal(session, token)


def offered_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The client's token and the subprotocol to answer: ``bearer.<token>`` among the offered
    subprotocols, else (old clients) the ``token`` query parameter."""
    offered = websocket.scope.get("subprotocols") or []
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in offered else None
    for protocol in offered:
        if protocol.startswith(BEARER_PREFIX):
            return protocol[len(BEARER_PREFIX) :], subprotocol
    return websocket.query_params.get("token"), subprotocol


@router.websocket("/ws")
async def events_socket(websocket: WebSocket) -> None:
    token, subprotocol = offered_token(websocket)
    try:
        principal = await run_in_threadpool(_authenticate, token)
    except AuthError as exc:
        await websocket.close(code=CLOSE_UNAUTHORISED, reason=exc.code)
        return
    except AppError as exc:
        await websocket.close(code=CLOSE_FORBIDDEN, reason=exc.code)
        return
    # A browser drops a connection whose answer names no subprotocol when it offered some.
    await websocket.accept(subprotocol=subprotocol)
    gateway: Gateway = websocket.app.state.gateway
    requested = websocket.query_params.get("topics")
    patterns = narrow(
        visible_topic_prefixes(principal), requested.split(",") if requested else None
    )
    client = Client(principal, patterns)
    raw_last = websocket.query_params.get("last_id")
    # Register before replaying, so nothing published meanwhile falls between the two.
    gateway.add(client)
    try:
        await websocket.send_json(
            {
                "type": "hello",
                "user": principal.username,
                "roles": sorted(principal.roles),
                "topics": patterns,
                "last_id": gateway.last_id,
            }
        )
        replayed_up_to = 0
        if raw_last is not None and raw_last.isdigit():
            missed = await run_in_threadpool(_events_after, int(raw_last), client.patterns)
            if len(missed) > MAX_REPLAY:
                await websocket.send_json({"type": "resync", "reason": "too_far_behind"})
            else:
                for event in missed:
                    await websocket.send_text(frame_text(Outgoing(event["id"], event), principal))
                    replayed_up_to = event["id"]
        await _pump(websocket, gateway, client, replayed_up_to)
    except WebSocketDisconnect:
        pass
    finally:
        gateway.remove(client)


async def _pump(
    websocket: WebSocket, gateway: Gateway, client: Client, replayed_up_to: int
) -> None:
    receiver = asyncio.create_task(_receive(websocket, client))
    try:
        while not receiver.done():
            if client.revoked:
                await websocket.close(code=CLOSE_UNAUTHORISED, reason=client.revoked)
                return
            if client.dropped:
                await websocket.send_json({"type": "resync", "reason": "too_slow"})
                await websocket.close(code=CLOSE_RESYNC)
                return
            # No timeout per frame (a timer and a task each, for every frame to every
            # socket): the gateway queues a heartbeat to the sockets that were quiet.
            outgoing = await client.queue.get()
            if outgoing is _GONE:
                return
            if outgoing is _WAKE:
                continue
            if outgoing is _PONG or outgoing is _HEARTBEAT:
                kind = "pong" if outgoing is _PONG else "heartbeat"
                await websocket.send_json({"type": kind, "last_id": gateway.last_id})
            elif outgoing.id > replayed_up_to:  # else already sent by the replay
                await websocket.send_text(frame_text(outgoing, client.principal))
            client.last_sent = time.monotonic()
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _receive(websocket: WebSocket, client: Client) -> None:
    """Queue an answer to the client's pings (only the pump writes to the socket); a closed
    socket ends the session."""
    try:
        while True:
            message = await websocket.receive_text()
            if message == "ping":
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.put_nowait(_PONG)
    finally:
        # Wake the pump now: a client that left must not stay registered (and keep a server
        # that is shutting down waiting) until the next heartbeat, 15 s later.
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait(_GONE)
