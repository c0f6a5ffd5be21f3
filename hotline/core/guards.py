"""Request guards that hold for every route, before any route sees the request."""

from __future__ import annotations

import json
import re

from hotline.core.errors import error_body

# In JSON a NUL can only arrive escaped (a raw 0x00 byte is not valid JSON); an even number
# of backslashes before the escape are escaped backslashes, an odd number escape it.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class RejectNulCharacters:
    """Refuse a request carrying U+0000 in its path, query or body with 422.

    PostgreSQL cannot store a NUL in a text column, so such a request used to be a 500 on
    PostgreSQL and stored as it came on SQLite. No field of the hotline has a use for it; it
    is refused alike on both backends, once, here, instead of in every model: escaped in
    JSON, as ``%00`` or a raw byte in urlencoded forms, raw in multipart text fields (not in
    uploaded files, which are binary). Runs inside the body size limit, which bounds what it
    buffers.

    ``bodies_checked_by_route``: paths whose routes refuse NUL themselves, item by item (a
    batch of call events must not be lost for one bad event).
    """

    def __init__(self, app, *, bodies_checked_by_route: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.bodies_checked_by_route = bodies_checked_by_route

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            await _refuse(send, "path")
            return
        if b"%00" in scope.get("query_string", b""):
            await _refuse(send, "query")
            return
        if scope["method"] not in _BODY_METHODS or scope["path"] in self.bodies_checked_by_route:
            await self.app(scope, receive, send)
            return
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if _body_has_nul(body, _content_type(scope)):
            await _refuse(send, "body")
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _content_type(scope) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value
    return b""


_BOUNDARY = re.compile(rb'(?i:boundary)="?([^";]+)"?')
_FILE_PART = re.compile(rb"content-disposition:[^\r\n]*filename", re.IGNORECASE)


def _body_has_nul(body: bytes, content_type: bytes) -> bool:
    media_type = content_type.lower()
    if media_type.startswith(b"application/x-www-form-urlencoded"):
        # Browsers send %00, raw clients may send the byte itself: both decode to U+0000.
        return b"%00" in body or b"\x00" in body
    if media_type.startswith(b"multipart/form-data"):
        return _multipart_text_has_nul(body, content_type)
    return bool(_ESCAPED_NUL.search(body))


def _multipart_text_has_nul(body: bytes, content_type: bytes) -> bool:
    """NUL in a text field of a multipart form; uploaded files are binary and may hold it.

    A malformed body is left to the form parser, which refuses it on its own."""
    if b"\x00" not in body:
        return False
    match = _BOUNDARY.search(content_type)
    if not match:
        return True  # unparseable as multipart: the NUL cannot be told apart from text
    for part in body.split(b"--" + match.group(1)):
        headers, _, content = part.partition(b"\r\n\r\n")
        if b"\x00" in content and not _FILE_PART.search(headers):
            return True
    return False


async def _refuse(send, where: str) -> None:
    message = "NUL characters (U+0000) are not allowed"
    body = json.dumps(
        error_body(
            "validation_error",
            f"invalid request: {where}: {message}",
            problems=[{"field": where, "message": message}],
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
