"""HTTP routes of the shared core: log-in, health, metrics and the event catch-up API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from rq import Worker
from sqlalchemy import text

from hotline.core import outbox, privacy
from hotline.core.auth import (
    AuthError,
    Principal,
    SessionDep,
    change_password,
    create_access_token,
    current_principal,
    log_in,
)
from hotline.core.errors import AppError
from hotline.core.events import events_after, last_event_id
from hotline.core.redis import EmbeddedRedisNotAnswering, get_redis
from hotline.core.settings import get_settings
from hotline.core.topics import narrow, visible_topic_prefixes

router = APIRouter()


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    username: str
    roles: list[str]
    departments: list[str]


@router.post(
    "/api/v1/auth/token",
    response_model=Token,
    tags=["auth"],
    responses={
        401: {"description": "`auth.bad_credentials`"},
        429: {"description": "`auth.throttled`: too many failures; see Retry-After"},
    },
)
def login(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """OAuth2 password flow: form fields ``username`` and ``password``. After
    ``HOTLINE_LOGIN_MAX_FAILURES`` failures for one user name (or
    ``HOTLINE_LOGIN_MAX_FAILURES_PER_ADDRESS`` from one address) within
    ``HOTLINE_LOGIN_FAILURE_WINDOW_MINUTES``, log-ins are refused with 429 for the rest of it."""
    # Behind a reverse proxy this is the client's address only if uvicorn trusts the proxy
    # (--forwarded-allow-ips); otherwise every user would share the proxy's limit.
    address = request.client.host if request.client else "unknown"
    user = log_in(session, form.username, form.password, address=address)
    return Token(access_token=create_access_token(user.username, version=user.token_version))


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


@router.post(
    "/api/v1/auth/password",
    response_model=Token,
    tags=["auth"],
    responses={
        401: {"description": "no valid token"},
        403: {"description": "`auth.bad_credentials`: the current password is wrong"},
        429: {"description": "`auth.throttled`: too many wrong passwords; see Retry-After"},
    },
)
def change_own_password(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    body: PasswordChange,
) -> Token:
    """Change the caller's own password. Every token of the caller, this one included, stops
    working and its open sockets close; the answer carries a fresh token."""
    address = request.client.host if request.client else "unknown"
    # Checked like a log-in, throttle included: a stolen token must not be a free password
    # oracle.
    try:
        log_in(session, principal.username, body.current_password, address=address)
    except AuthError as exc:
        # 403, not 401: the caller's token is fine, a client must not drop it and re-log in.
        raise AppError(exc.code, "the current password is wrong", status_code=403) from exc
    user = change_password(
        session,
        username=principal.username,
        new_password=body.new_password,
        actor=principal.username,
    )
    return Token(access_token=create_access_token(user.username, version=user.token_version))


@router.get("/api/v1/auth/me", response_model=Me, tags=["auth"])
def me(principal: Annotated[Principal, Depends(current_principal)]) -> Me:
    return Me(
        username=principal.username,
        roles=sorted(principal.roles),
        departments=sorted(principal.departments),
    )


@router.get("/healthz", tags=["operations"])
def healthz(session: SessionDep, response: Response) -> dict:
    """200 when the database and Redis answer. Otherwise 503 with ``status: "degraded"``, the
    parts that do not answer in ``degraded`` and what that means in ``message``."""
    state: dict = {"status": "ok", "degraded": []}
    try:
        session.execute(text("SELECT 1"))
        state["database"] = {"ok": True, "pending_outbox": outbox.pending_count(session)}
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" to an operator
        state["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        client = get_redis()
        client.ping()
        workers = _living_workers(client)
        state["redis"] = {"ok": True}
        state["workers"] = {
            "count": len(workers),
            "names": sorted(w.name for w in workers)[:20],
        }
    except EmbeddedRedisNotAnswering as exc:
        # Stopped, swapping or stuck: never replaced by a second server (that would split the
        # system in two), so the operator has to know which process to look at.
        state["redis"] = {"ok": False, "state": "not answering", "error": str(exc)[:300]}
        state["workers"] = {"count": None}
    except (redis.RedisError, OSError, RuntimeError) as exc:
        state["redis"] = {
            "ok": False,
            "state": "unreachable",
            "error": f"{type(exc).__name__}: {exc}"[:300],
        }
        state["workers"] = {"count": None}
    degraded = [part for part in ("database", "redis") if not state[part]["ok"]]
    if degraded:
        state["status"] = "degraded"
        state["degraded"] = degraded
        meaning = {
            "database": "The database does not answer: requests fail with 503 until it is back.",
            "redis": "Redis does not answer: tickets are still taken, their jobs and live "
            "events wait in the outbox (pending_outbox) and leave when Redis is back.",
        }
        state["message"] = " ".join(meaning[part] for part in degraded)
        response.status_code = 503
    elif not state["workers"]["count"]:
        state["status"] = "no_workers"  # jobs queue up but nothing runs them: worth a look
    return state


def _living_workers(client: redis.Redis) -> list[Worker]:
    """Registered workers that sent a heartbeat lately. rq keeps a killed worker's
    registration until its key expires; its heartbeats stop at once."""
    settings = get_settings()
    window = timedelta(
        seconds=settings.worker_heartbeat_seconds + settings.worker_heartbeat_grace_seconds
    )
    oldest = datetime.now(UTC) - window
    return [
        w
        for w in Worker.all(connection=client)
        if w.last_heartbeat is not None and w.last_heartbeat >= oldest
    ]


@router.get("/metrics", tags=["operations"], include_in_schema=False)
def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/events", tags=["events"])
def list_events(
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    # Event ids are 64-bit: a larger number cannot be compared in SQL, it can only be wrong.
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="the last event id the client saw")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    topics: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="comma-separated topic patterns, as on the websocket; default: all "
            "the caller may see",
        ),
    ] = None,
) -> dict:
    """Everything after ``after`` that the caller may see (and asked for), oldest first, and
    the newest id. A department user gets each event's data with callers' personal data masked."""
    patterns = narrow(visible_topic_prefixes(principal), topics.split(",") if topics else None)
    events = events_after(session, after, topics=patterns, limit=limit)
    if not privacy.sees_personal_data(principal):
        events = [privacy.mask_event(event) for event in events]
    return {"events": events, "last_id": last_event_id(session)}
