"""The composition root of the web application: every domain's routes on one FastAPI app."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from agents_ui.gateway import Gateway
from agents_ui.gateway import router as gateway_router
from agents_ui.pages import mount_static
from agents_ui.pages import router as pages_router
from dispatch.open311.router import router as open311_router
from dispatch.routing import suggest as routing_suggest
from dispatch.routing.router import router as routing_router
from dispatch.tickets.router import router as tickets_router
from hotline.calls.ivr_router import router as ivr_router
from hotline.calls.police_router import router as police_router
from hotline.calls.router import router as calls_router
from hotline.core.concurrency import RequestConcurrencyLimit
from hotline.core.errors import install_error_handlers
from hotline.core.guards import RejectNulCharacters
from hotline.core.limits import LimitRequestBodySize
from hotline.core.metrics import MeasureRequests, watch_gc
from hotline.core.outbox import RelayThread
from hotline.core.router import router as core_router
from hotline.core.settings import get_settings
from hotline.kpi.router import router as kpi_router
from knowledgebase import search as kb_search
from knowledgebase.router import router as kb_router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    watch_gc()
    relay = RelayThread()
    relay.start()
    # One gateway per app: its asyncio primitives belong to the loop that serves the app.
    app.state.gateway = Gateway()
    await app.state.gateway.start()
    # Both jieba dictionaries take a second or two each to build: at start-up, not in the
    # first ticket or search after a deploy (and built before the freeze below).
    await run_in_threadpool(_warm_up)
    # What start-up made (modules, routes, models, tables) lives as long as the process. Out
    # of the collector's sight, a full collection takes microseconds instead of the ~100 ms
    # (270 ms under the typhoon-peak load) during which every request and socket stood still.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await app.state.gateway.stop()
        relay.stop()


def _warm_up() -> None:
    routing_suggest.warm_up()
    kb_search.tokenizer()


def create_app() -> FastAPI:
    app = FastAPI(
        title="12345 热线 hotline & ticket dispatch",
        version="0.1.0",
        description="Citizen hotline intake, routing by 属地管理、分级负责, tickets, KPI.",
        lifespan=_lifespan,
    )
    install_error_handlers(app)
    # Call events refuse NUL one by one (CallEventIn), keeping the rest of their batch.
    app.add_middleware(
        RejectNulCharacters, bodies_checked_by_route=frozenset({"/api/v1/calls/events"})
    )
    app.include_router(core_router)
    app.include_router(routing_router)
    app.include_router(tickets_router)
    app.include_router(calls_router)
    app.include_router(kpi_router)
    app.include_router(gateway_router)
    app.include_router(open311_router)
    app.include_router(kb_router)
    app.include_router(ivr_router)
    app.include_router(police_router)

    app.add_middleware(RequestConcurrencyLimit)

    # Outside everything that reads a body (RejectNulCharacters buffers it whole) and outside
    # the concurrency limit, so that an oversized body neither is read nor takes a slot.
    settings = get_settings()
    app.add_middleware(
        LimitRequestBodySize,
        default_limit=settings.max_body_bytes,
        limits_by_path={"/api/v1/calls/events": settings.max_call_events_body_bytes},
    )

    # Added after the limit, so it runs outside it: latency includes the wait to be admitted.
    app.add_middleware(MeasureRequests)

    # The browser pages last: their "/" and "/static" must not shadow an API route.
    app.include_router(pages_router)
    mount_static(app)

    return app
