"""HTTP routes of call intake: CTI events, queues, agents and the caller's history."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header
from pydantic import BaseModel, Field
from sqlalchemy import select

from dispatch.tickets import service as ticket_service
from hotline.calls import service
from hotline.calls.models import AgentStatus, CallEvent, CallOffer
from hotline.core.auth import Principal, SessionDep, require_roles
from hotline.core.errors import AppError, NotFound
from hotline.core.models import AuditEntry
from hotline.core.settings import get_settings
from hotline.kpi import service as kpi_service

router = APIRouter(prefix="/api/v1", tags=["calls"])

HotlineStaff = Annotated[Principal, Depends(require_roles("agent", "dispatcher", "supervisor"))]
Supervisor = Annotated[Principal, Depends(require_roles("supervisor"))]


class CtiAuthError(AppError):
    status_code = 401


async def require_cti(x_cti_token: Annotated[str | None, Header()] = None) -> None:
    """Telephony systems authenticate with the shared X-CTI-Token header (async: no thread
    is needed to compare two strings, and the telephony system calls at every event)."""
    expected = get_settings().cti_token.get_secret_value()
    if not x_cti_token or not hmac.compare_digest(x_cti_token, expected):
        raise CtiAuthError("calls.bad_cti_token", "missing or wrong X-CTI-Token header")


# Inlined, not a $ref: no route takes CallEventIn as a typed body, so FastAPI never adds it to
# the schema's components and a reference would dangle (clients could not generate requests).
_CALL_EVENT_SCHEMA = service.CallEventIn.model_json_schema()


class IngestReport(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[dict[str, Any]]


@router.post(
    "/calls/events",
    response_model=IngestReport,
    dependencies=[Depends(require_cti)],
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _CALL_EVENT_SCHEMA,
                            {"type": "array", "items": _CALL_EVENT_SCHEMA, "maxItems": 5000},
                        ]
                    }
                }
            }
        }
    },
)
def post_call_events(session: SessionDep, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """One event or a list. Repeats (same event_id) are ignored; a bad event is reported in
    its own result and never stops the good ones."""
    events = payload if isinstance(payload, list) else [payload]
    if len(events) > 5000:
        raise AppError("calls.batch_too_large", "send at most 5,000 events per request")
    result = service.ingest(session, [e if isinstance(e, dict) else {"_": e} for e in events])
    if result.accepted and kpi_service.alert_check_due():
        kpi_service.evaluate_alert(session)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "results": result.results,
    }


@router.get("/calls/queues")
def get_queues(session: SessionDep, _user: HotlineStaff) -> list[dict[str, Any]]:
    """Live queue state: calls waiting, each one's wait, the longest wait."""
    return service.queue_state(session)


class CallDetail(BaseModel):
    call_id: str
    events: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    tickets: list[str]


@router.get("/calls/{call_id}", response_model=CallDetail)
def get_call(call_id: str, session: SessionDep, _user: HotlineStaff) -> dict[str, Any]:
    events = session.scalars(
        select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.at)
    ).all()
    if not events:
        raise NotFound("calls.not_found", f"no call {call_id}")
    offers = session.scalars(
        select(CallOffer).where(CallOffer.call_id == call_id).order_by(CallOffer.seq)
    ).all()
    return {
        "call_id": call_id,
        "events": [
            {
                "event_id": e.event_id,
                "type": e.type,
                "at": e.at,
                "queue": e.queue,
                "agent": e.agent,
                **e.data,
            }
            for e in events
        ],
        "requests": [
            {
                "seq": o.seq,
                "queue": o.queue,
                "offered_at": o.offered_at,
                "outcome": o.outcome,
                "wait_seconds": o.wait_seconds,
                "agent": o.agent,
            }
            for o in offers
        ],
        "tickets": ticket_service.numbers_for_call(session, call_id),
    }


@router.get("/callers/{phone}/history")
def caller_history(phone: str, session: SessionDep, _user: HotlineStaff) -> list[dict[str, Any]]:
    """The caller's tickets, open ones first: what the console shows when a call is answered."""
    return ticket_service.caller_history(session, phone)


class AgentRead(BaseModel):
    username: str
    state: str
    since: datetime
    skills: list[str]
    current_call_id: str | None


class StateChange(BaseModel):
    state: Literal["logged_out", "ready", "on_call", "after_call_work", "break"]


@router.get("/agents", response_model=list[AgentRead])
def list_agents(session: SessionDep, _user: HotlineStaff) -> list:
    return service.agents(session)


@router.put("/agents/me/state", response_model=AgentRead)
def put_my_state(
    body: StateChange,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles("agent"))],
) -> Any:
    """The agent's own state switcher (ready, break, after-call work, logged out)."""
    return service.set_state(session, principal.username, body.state)


@router.put("/agents/{username}/state", response_model=AgentRead)
def put_agent_state(
    username: str,
    body: StateChange,
    session: SessionDep,
    _cti: Annotated[None, Depends(require_cti)] = None,
) -> Any:
    """The telephony system reports an agent's state (X-CTI-Token); 404 for an unknown agent."""
    service.require_known_agent(session, username)
    return service.set_state(session, username, body.state)


class Skills(BaseModel):
    skills: list[str] = Field(max_length=20)


@router.put("/agents/{username}/skills", response_model=AgentRead)
def put_agent_skills(username: str, body: Skills, session: SessionDep, sup: Supervisor) -> Any:
    """Which queues an agent answers (e.g. general and social_security); audited. 404 for an
    unknown agent."""
    service.require_known_agent(session, username)
    current = session.get(AgentStatus, username)
    before = list(current.skills) if current is not None else None
    status = service.set_skills(session, username, body.skills)
    session.add(
        AuditEntry(
            actor=sup.username,
            action="calls.agent_skills_saved",
            entity="agent",
            entity_id=username,
            detail={"before": before, "after": status.skills},
        )
    )
    session.flush()
    return status
