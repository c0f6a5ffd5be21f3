"""The request body size limit: a body too big for its route is refused before it is read.

Without it an unauthenticated 200 MB JSON body was read whole (and parsed) before the 401,
raising the API process from 0.3 to 1.1 GB. The limit runs outside every middleware that
reads bodies (RejectNulCharacters buffers them whole): a declared Content-Length above the
limit is refused without reading a byte of the body, and a chunked body is counted as it
arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.core.errors import error_body

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
