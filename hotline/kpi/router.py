"""HTTP routes of the KPI wall: the answer rate for any window, the calls behind it, the rolling
windows, the wall's snapshot and the staffing plan."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.moments import Day, Moment
from hotline.core.settings import get_settings
from hotline.kpi import service

router = APIRouter(prefix="/api/v1/kpi", tags=["kpi"])

Viewer = Annotated[Principal, Depends(require_roles("supervisor", "agent", "dispatcher"))]
Queue = Annotated[str | None, Query(max_length=32)]


@router.get("/answer-rate")
def answer_rate(
    session: SessionDep,
    _user: Viewer,
    start: Moment,
    end: Moment,
    queue: Queue = None,
    by: Annotated[Literal["answering_queue", "first_queue"], Query()] = "answering_queue",
) -> dict[str, Any]:
    """{offered, answered, answered_within_threshold, abandoned, rate, threshold_seconds, by,
    …} over [start, end), per queue or overall; ``by`` places a request that overflowed or was
    moved while waiting in the queue that answered it or in the one the caller first entered."""
    return {**service.answer_rate(session, start, end, queue, by=by), "by": by}


@router.get("/answer-rate/calls")
def answer_rate_calls(
    session: SessionDep,
    _user: Viewer,
    start: Moment,
    end: Moment,
    queue: Queue = None,
    category: Annotated[
        Literal[
            "answered_within",
            "answered_late",
            "abandoned",
            "short_abandon",
            "unanswered",
            "waiting",
            "lost",
        ]
        | None,
        Query(),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """The requests behind the figures, each with how it counted."""
    return service.calls_behind(
        session, start, end, queue, category=category, limit=limit, offset=offset
    )


@router.get("/rolling")
def rolling(session: SessionDep, _user: Viewer, queue: Queue = None) -> dict[str, Any]:
    """Last 15 minutes, last hour, today and this quarter."""
    return service.rolling(session, queue)


@router.get("/wall")
def wall(session: SessionDep, _user: Viewer) -> dict[str, Any]:
    """Everything the supervisors' wall shows, in one snapshot."""
    return service.wall(session)


@router.get("/staffing")
def staffing(
    session: SessionDep,
    _user: Viewer,
    day: Day | None = None,
    queue: Queue = None,
) -> list[dict[str, Any]]:
    """Per half hour: agents needed for the target (Erlang C and A) beside agents on duty."""
    tz = get_settings().tz
    day = day or datetime.now(tz).date()
    return service.staffing_plan(session, datetime.combine(day, time.min, tzinfo=tz), queue)
