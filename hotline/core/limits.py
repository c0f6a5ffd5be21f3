"""Limits on what clients may send: body sizes, and rate limits for public routes.

The request body size limit: a body too big for its route is refused before it is read.

Without it an unauthenticated 200 MB JSON body was read whole (and parsed) before the 401,
raising the API process from 0.3 to 1.1 GB. The limit runs outside every middleware that
reads bodies (RejectNulCharacters buffers them whole): a declared Content-Length above the
limit is refused without reading a byte of the body, and a chunked body is counted as it
arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.core.errors import AppError, error_body

TOO_LARGE_CODE = "request.too_large"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes its limit.

    An HTTPException, so that FastAPI re-raises it as it is when a route reads the body
    itself (instead of turning it into a 400 "error parsing the body")."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _message(limit))
        self.limit = limit


def _message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, the limit of this route"


class LimitRequestBodySize:
    """ASGI middleware: refuse bodies above ``default_limit`` bytes (or the route's own limit
    in ``limits_by_path``, for the few routes that take bigger bodies) with 413."""

    def __init__(
        self, app: ASGIApp, *, default_limit: int, limits_by_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits_by_path = limits_by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits_by_path.get(scope["path"], self.default_limit)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        response_started = False

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if response_started:
                raise
            await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(error_body(TOO_LARGE_CODE, _message(limit), limit=limit)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: the connection cannot serve another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- rate limits -----------------------------------------------------------------------------------


class RateLimited(AppError):
    """Too many requests of one kind: 429 ``request.rate_limited`` with ``Retry-After``.

    ``scope`` (phone, address, global, …) tells the client which limit it met, so a page can
    say whether waiting or trying another way helps."""

    status_code = 429

    def __init__(self, message: str, *, scope: str, retry_after: int) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(RATE_LIMITED_CODE, message, scope=scope, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}
        self.retry_after = retry_after


class LimiterUnavailable(AppError):
    """The limits cannot be counted (Redis is down): a public route refuses rather than runs
    without them, since unlimited SMS codes or submissions cost money and flood the desk."""

    status_code = 503

    def __init__(self) -> None:
        super().__init__("request.limiter_unavailable", "temporarily unavailable; try again soon")
        self.headers = {"Retry-After": "5"}


RATE_LIMITED_CODE = "request.rate_limited"


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` events per ``window_seconds`` for one ``scope`` and key."""

    scope: str
    limit: int
    window_seconds: int
    message: str = "too many requests; try again later"


def hit(client: redis.Redis, name: str, key: str, *limits: RateLimit) -> None:
    """Count one event against each limit (fixed windows that start with their first event);
    raise ``RateLimited`` for the first limit passed.

    Every limit is counted even when an earlier one refuses, so that someone hammering a
    limit they already passed never gets a fresh window in the next one. A limit with
    ``limit <= 0`` is off. Raises ``LimiterUnavailable`` when Redis does not answer."""
    active = [lim for lim in limits if lim.limit > 0]
    if not active:
        return
    keys = [f"limit:{name}:{lim.scope}:{key if lim.scope != 'global' else '*'}" for lim in active]
    try:
        pipe = client.pipeline()
        for redis_key, lim in zip(keys, active, strict=True):
            pipe.set(redis_key, 0, ex=lim.window_seconds, nx=True)
            pipe.incr(redis_key)
        counts = pipe.execute()[1::2]
        for redis_key, lim, count in zip(keys, active, counts, strict=True):
            if int(count) > lim.limit:
                ttl = client.ttl(redis_key)
                retry = int(ttl) if ttl and ttl > 0 else lim.window_seconds
                raise RateLimited(lim.message, scope=lim.scope, retry_after=retry)
    except (redis.RedisError, OSError) as exc:
        raise LimiterUnavailable() from exc
