"""Prometheus metrics shared by every part of the system (exposed at ``/metrics``)."""

from __future__ import annotations

import gc
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
REDIS_RECONCILIATIONS = Counter(
    "hotline_redis_reconciliations_total",
    "Times this process asked again for every scheduled job after seeing a new Redis server",
)


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


GC_PAUSE = Histogram(
    "hotline_gc_pause_seconds",
    "Python garbage-collector pauses (every thread of the process stops)",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
)


def watch_gc() -> None:
    """Time each collection: a full one stops the whole process, requests and sockets alike,
    and shows as a latency spike nothing else explains."""
    if getattr(watch_gc, "installed", False):
        return
    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - started.pop())

    gc.callbacks.append(on_gc)
    watch_gc.installed = True
