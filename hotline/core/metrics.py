"""Prometheus metrics shared by every part of the system (exposed at ``/metrics``)."""

from __future__ import annotations

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
