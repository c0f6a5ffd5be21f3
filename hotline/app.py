"""The composition root of the web application: every domain's routes on one FastAPI app."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from agents_ui.gateway import Gateway
from agents_ui.gateway import router as gateway_router
from agents_ui.pages import mount_static
from agents_ui.pages import router as pages_router
from agents_ui.portal import router as portal_pages_router
from dispatch.hotspots import service as hotspot_service
from dispatch.hotspots.router import router as hotspots_router
from dispatch.open311.router import router as open311_router
from dispatch.oversight.router import router as oversight_router
from dispatch.portal import router as portal_api
from dispatch.replay_router import router as routing_draft_router
from dispatch.routing import service as routing_service
from dispatch.routing import suggest as routing_suggest
from dispatch.routing import training as routing_training
from dispatch.routing.router import router as routing_router
from dispatch.tickets import jobs as ticket_jobs
from dispatch.tickets.router import router as tickets_router
from hotline.calls import service as calls_service
from hotline.calls.ivr_router import router as ivr_router
from hotline.calls.police_router import router as police_router
from hotline.calls.router import router as calls_router
from hotline.core import admin_router, reconcile
from hotline.core.concurrency import RequestConcurrencyLimit
from hotline.core.db import transaction
from hotline.core.errors import install_error_handlers
from hotline.core.guards import RejectNulCharacters
from hotline.core.limits import LimitRequestBodySize
from hotline.core.metrics import MeasureRequests, watch_gc
from hotline.core.outbox import RelayThread
from hotline.core.router import router as core_router
from hotline.core.settings import get_settings
from hotline.kpi.router import router as kpi_router
from knowledgebase import jobs as kb_jobs
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
    _check_kpi_basis()
    _warm_hotspots()


def _warm_hotspots() -> None:
    """The hot-spot detector's text model and baselines, built before the first intake."""
    try:
        with transaction() as session:
            hotspot_service.warm_up(session)
    except Exception:  # the first intake builds them then; start-up must not fail on it
        logging.getLogger(__name__).exception("warming the hot-spot detector failed")


def _check_kpi_basis() -> None:
    """Recount the answer-rate sums now if a threshold setting changed since they were
    counted, rather than in the first wall request after a deploy."""
    try:
        with transaction() as session:
            calls_service.ensure_bucket_basis(session)
    except Exception:  # the first read or intake checks again; start-up must not fail on it
        logging.getLogger(__name__).exception("checking the answer-rate sums' settings failed")


# The API documentation's assets come from the fastapi-offline package: FastAPI's own /docs
# and /redoc load Swagger UI, ReDoc and fonts from a CDN, and government intranets have no
# internet. ReDoc still names a logo on its CDN; the policy keeps the browser from asking.
_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_DOCS_ASSETS_URL = "/static-offline-docs"
_DOCS_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline'",  # both pages start from an inline script
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "worker-src 'self' blob:",  # ReDoc's search
            "connect-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ]
    )
}


def _add_offline_docs(app: FastAPI) -> None:
    app.mount(_DOCS_ASSETS_URL, StaticFiles(directory=_DOCS_ASSETS), name="offline-docs")
    favicon = f"{_DOCS_ASSETS_URL}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            swagger_js_url=f"{_DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=favicon,
        )
        page.headers.update(_DOCS_HEADERS)
        return page

    @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{_DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )
        page.headers.update(_DOCS_HEADERS)
        return page


def register_reschedulers() -> None:
    """What each domain asks again of Redis after it lost its data (hotline.core.reconcile):
    automatically when a process sees a new Redis, or by hand with `hotline jobs reschedule`."""
    reconcile.register_rescheduler("tickets", ticket_jobs.reschedule_running)
    reconcile.register_rescheduler("articles", kb_jobs.reschedule_review_reminders)
    reconcile.register_rescheduler("matter_model_training", _schedule_nightly_training)


def _schedule_nightly_training(session) -> int:
    routing_training.schedule_nightly(session)
    return 1


def create_app() -> FastAPI:
    register_reschedulers()
    # Users belong to the core, departments to dispatch: the core asks through this hook.
    admin_router.set_department_check(routing_service.unknown_departments)
    app = FastAPI(
        title="12345 热线 hotline & ticket dispatch",
        version="0.1.0",
        description="Citizen hotline intake, routing by 属地管理、分级负责, tickets, KPI.",
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _add_offline_docs(app)
    install_error_handlers(app)
    # Call events refuse NUL one by one (CallEventIn), keeping the rest of their batch.
    app.add_middleware(
        RejectNulCharacters, bodies_checked_by_route=frozenset({"/api/v1/calls/events"})
    )
    app.include_router(core_router)
    app.include_router(admin_router.router)
    app.include_router(routing_draft_router)
    app.include_router(routing_router)
    app.include_router(tickets_router)
    app.include_router(oversight_router)
    app.include_router(hotspots_router)
    app.include_router(calls_router)
    app.include_router(kpi_router)
    app.include_router(gateway_router)
    app.include_router(open311_router)
    app.include_router(kb_router)
    app.include_router(ivr_router)
    app.include_router(police_router)
    app.include_router(portal_api.router)

    app.add_middleware(RequestConcurrencyLimit)

    # Outside everything that reads a body (RejectNulCharacters buffers it whole) and outside
    # the concurrency limit, so that an oversized body neither is read nor takes a slot.
    settings = get_settings()
    app.add_middleware(
        LimitRequestBodySize,
        default_limit=settings.max_body_bytes,
        limits_by_path={
            "/api/v1/calls/events": settings.max_call_events_body_bytes,
            # the multipart envelope around the file adds well under 64 KiB
            "/api/v1/kb/import": settings.kb_import_max_bytes + 65536,
            # The citizens' photos: up to HOTLINE_PORTAL_MAX_PHOTOS of
            # HOTLINE_PORTAL_MAX_PHOTO_BYTES each.
            "/api/v1/portal/requests": portal_api.submission_body_limit(),
        },
    )

    # Added after the limit, so it runs outside it: latency includes the wait to be admitted.
    app.add_middleware(MeasureRequests)

    # The browser pages last: their "/" and "/static" must not shadow an API route.
    app.include_router(pages_router)
    app.include_router(portal_pages_router)
    mount_static(app)

    return app
