"""Prometheus metrics shared by every part of the system (exposed at ``/metrics``)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "hotline_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "hotline_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
EVENTS_PUBLISHED = Counter("hotline_events_published_total", "Events published over Redis")
JOBS_ENQUEUED = Counter("hotline_jobs_enqueued_total", "Jobs handed from the outbox to rq")


class MeasureRequests:
    """ASGI middleware: each HTTP request's latency and status, by route template.

    A plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: that one runs every
    request through a task group and memory streams, which under load cost the event loop
    more than several of the routes themselves.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the application raises before answering

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router leaves the matched route in the scope; its template keeps the label
            # set bounded (never the raw path, which holds ticket numbers).
            path = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(scope["method"], path).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
