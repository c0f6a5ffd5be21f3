"""How many HTTP requests one API process works on at once.

Sync endpoints run in AnyIO's thread pool (40 threads). FastAPI validates a sync endpoint's
response in that pool too, and only then runs the session dependency's exit, which commits.
When every thread is taken by requests waiting on a row lock, the request that holds the
lock cannot get a thread to finish its response, so it never commits and never releases the
lock: the process deadlocks (fastapi/fastapi#12066, #3205). Seen here under a typhoon-peak
load: every call-event request queued behind the hour's KPI bucket row.

Admitting fewer requests than there are threads keeps threads free for the ones that hold
locks; the rest wait, in order, on the event loop, where waiting costs nothing. The limit is
also below half the connection pool, since one request may hold two connections (a ticket
number is taken in a transaction of its own).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_CONCURRENT_REQUESTS = 16


class RequestConcurrencyLimit:
    """ASGI middleware: at most ``limit`` HTTP requests inside the application at a time.

    Websockets and static files are not counted: they hold no transaction.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_CONCURRENT_REQUESTS) -> None:
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:  # created in the serving loop, not at import
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._semaphore:
            await self.app(scope, receive, send)
