"""The websocket gateway: live events to consoles, walls and inboxes (Zulip's protocol).

A client connects to ``/ws?token=…&last_id=N&topics=a,b.``. Frames are JSON: ``hello`` (with
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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from hotline.core.auth import AuthError, Principal, websocket_principal
from hotline.core.db import transaction
from hotline.core.errors import AppError
from hotline.core.events import events_after, last_event_id, topic_matches
from hotline.core.outbox import EVENTS_CHANNEL
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


@dataclass(eq=False)
class Client:
    principal: Principal
    patterns: list[str]
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE_SIZE))
    dropped: bool = False

    def wants(self, topic: str) -> bool:
        return any(topic_matches(topic, p) for p in self.patterns)


class Gateway:
    """Fans events out from Redis (and the event log, for gaps) to this process's clients."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.last_id = 0
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.last_id = await run_in_threadpool(_last_id)
        self._task = asyncio.create_task(self._run(), name="ws-gateway")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            # Bounded: a Redis connection half-closed under us must not hang the shutdown.
            await asyncio.wait({self._task}, timeout=3)

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
            await pubsub.subscribe(EVENTS_CHANNEL)
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
                for missed in await run_in_threadpool(_events_after, self.last_id, None):
                    if missed["id"] >= event["id"]:
                        break
                    self._fan_out(missed)
            self._fan_out(event)

    async def catch_up(self) -> None:
        async with self._lock:
            for missed in await run_in_threadpool(_events_after, self.last_id, None):
                self._fan_out(missed)

    def _fan_out(self, event: dict[str, Any]) -> None:
        self.last_id = max(self.last_id, event["id"])
        # Encoded once for every client: with hundreds of consoles, encoding per socket was
        # most of the gateway's CPU.
        outgoing = Outgoing(event["id"], encode(frame(event)))
        for client in list(self.clients):
            if client.dropped or not client.wants(event["topic"]):
                continue
            try:
                client.queue.put_nowait(outgoing)
            except asyncio.QueueFull:
                client.dropped = True  # the sender notices, says resync and closes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A frame ready for the wire, with the event id the pump checks against the replay."""

    id: int
    text: str


_PONG = Outgoing(0, "")
_GONE = Outgoing(0, "")


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


def _events_after(after: int, patterns: list[str] | None, limit: int = MAX_REPLAY + 1):
    with transaction() as session:
        return events_after(session, after, topics=patterns, limit=limit)


def _authenticate(token: str | None) -> Principal:
    with transaction() as session:
        return websocket_principal(session, token)


@router.websocket("/ws")
async def events_socket(websocket: WebSocket) -> None:
    token = websocket.query_params.get("token")
    try:
        principal = await run_in_threadpool(_authenticate, token)
    except AuthError as exc:
        await websocket.close(code=CLOSE_UNAUTHORISED, reason=exc.code)
        return
    except AppError as exc:
        await websocket.close(code=CLOSE_FORBIDDEN, reason=exc.code)
        return
    await websocket.accept()
    gateway: Gateway = websocket.app.state.gateway
    requested = websocket.query_params.get("topics")
    patterns = narrow(
        visible_topic_prefixes(principal), requested.split(",") if requested else None
    )
    client = Client(principal, patterns)
    raw_last = websocket.query_params.get("last_id")
    # Register before replaying, so nothing published meanwhile falls between the two.
    gateway.clients.add(client)
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
                    await websocket.send_json(frame(event))
                    replayed_up_to = event["id"]
        await _pump(websocket, gateway, client, replayed_up_to)
    except WebSocketDisconnect:
        pass
    finally:
        gateway.clients.discard(client)


async def _pump(
    websocket: WebSocket, gateway: Gateway, client: Client, replayed_up_to: int
) -> None:
    receiver = asyncio.create_task(_receive(websocket, client))
    try:
        while not receiver.done():
            if client.dropped:
                await websocket.send_json({"type": "resync", "reason": "too_slow"})
                await websocket.close(code=CLOSE_RESYNC)
                return
            try:
                outgoing = await asyncio.wait_for(client.queue.get(), timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                await websocket.send_json({"type": "heartbeat", "last_id": gateway.last_id})
                continue
            if outgoing is _GONE:
                return
            if outgoing is _PONG:
                await websocket.send_json({"type": "pong", "last_id": gateway.last_id})
                continue
            if outgoing.id <= replayed_up_to:
                continue  # already sent by the replay
            await websocket.send_text(outgoing.text)
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
