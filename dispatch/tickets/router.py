"""HTTP routes of tickets: intake, the lifecycle actions, the department inbox and reports."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.tickets import service
from dispatch.tickets.calendar import statutory_holidays
from dispatch.tickets.models import CalendarOverride, Ticket
from hotline.core import privacy
from hotline.core.auth import Principal, SessionDep, current_principal, require_roles
from hotline.core.errors import AppError, NotFound
from hotline.core.models import AuditEntry
from hotline.core.moments import Day, Moment

router = APIRouter(prefix="/api/v1", tags=["tickets"])

Caller = Annotated[Principal, Depends(current_principal)]
Intake = Annotated[Principal, Depends(require_roles("agent", "dispatcher", "supervisor"))]


class TicketCreate(BaseModel):
    channel: Literal["phone", "app", "web", "wechat", "open311", "110"] = "phone"
    content: str = Field(min_length=1, max_length=5000)
    address: str = Field("", max_length=500)
    caller_name: str = Field("", max_length=64)
    caller_phone: str = Field("", max_length=32, pattern=r"^[0-9+\-]*$")
    matter_code: str | None = Field(None, max_length=16, description="omit to use the best guess")
    urgent: bool | None = Field(None, description="default: the matter's own urgency")
    major: bool = False
    multi_area: bool = False
    received_at: Moment | None = None
    co_departments: list[str] = Field(default_factory=list, max_length=10)
    call_id: str | None = Field(None, max_length=64)


class ActionRead(BaseModel):
    action: str
    actor: str
    at: datetime
    from_status: str | None
    to_status: str | None
    department_code: str | None
    detail: dict[str, Any]


class TicketRead(BaseModel):
    number: str
    channel: str
    status: str
    caller_name: str
    caller_phone: str
    content: str
    address: str
    town_code: str | None
    area_code: str | None
    matter_code: str
    kind: str
    urgent: bool
    major: bool
    rule_version: str
    routing: dict[str, Any]
    lead_department: str
    co_departments: list[str]
    received_at: datetime
    accept_deadline: datetime | None
    finish_deadline: datetime | None
    due_at: datetime | None
    deadline_status: str | None
    overdue: bool
    reply: str | None
    satisfaction: str | None
    visit_source: str | None = None
    first_contact_resolution: bool
    return_count: int
    reopen_count: int
    supervise_count: int
    parent: str | None
    call_id: str | None
    version: int


class TicketDetail(TicketRead):
    trail: list[ActionRead]
    children: list[str] = Field(description="tickets merged or linked under this one")


class TicketCreated(TicketRead):
    possible_duplicates: list[str]


def _local(moment: datetime | None) -> datetime | None:
    """Deadlines are shown in the hotline's own time zone, with their offset."""
    from hotline.core.settings import get_settings

    return moment.astimezone(get_settings().tz) if moment else None


def present(session: Session, principal: Principal, ticket: Ticket) -> dict[str, Any]:
    """The ticket as ``principal`` may see it: department users get the caller's personal data
    masked in every field, free text included (``hotline.core.privacy``)."""
    return _masked(principal, ticket, _view(session, ticket))


def _masked(principal: Principal, ticket: Ticket, view: dict[str, Any]) -> dict[str, Any]:
    return privacy.for_principal(
        principal, view, privacy.known_caller(ticket.caller_phone, ticket.caller_name)
    )


def _view(session: Session, ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "channel": ticket.channel,
        "status": ticket.status,
        "caller_name": ticket.caller_name,
        "caller_phone": ticket.caller_phone,
        "content": ticket.content,
        "address": ticket.address,
        "town_code": ticket.town_code,
        "area_code": ticket.area_code,
        "matter_code": ticket.matter_code,
        "kind": ticket.kind,
        "urgent": ticket.urgent,
        "major": ticket.major,
        "rule_version": ticket.rule_version,
        "routing": ticket.routing,
        "lead_department": ticket.lead_department,
        "co_departments": sorted(d.department_code for d in ticket.departments if d.role == "co"),
        "received_at": _local(ticket.received_at),
        "accept_deadline": _local(ticket.accept_deadline),
        "finish_deadline": _local(ticket.finish_deadline),
        "due_at": _local(ticket.due_at),
        "deadline_status": service.deadline_status(ticket),
        "overdue": ticket.overdue,
        "reply": ticket.reply,
        "satisfaction": ticket.satisfaction,
        "visit_source": ticket.visit_source,
        "first_contact_resolution": ticket.first_contact_resolution,
        "return_count": ticket.return_count,
        "reopen_count": ticket.reopen_count,
        "supervise_count": ticket.supervise_count,
        "parent": service.parent_number(session, ticket),
        "call_id": ticket.call_id,
        "version": ticket.version,
    }


@router.post("/tickets", response_model=TicketCreated, status_code=201)
def create_ticket(body: TicketCreate, session: SessionDep, principal: Intake) -> dict:
    """Create, route and dispatch a ticket in one transaction (DESK tickets wait there).
    ``received_at``: at most HOTLINE_RECEIVED_AT_MAX_AGE_DAYS back and
    HOTLINE_RECEIVED_AT_MAX_AHEAD_MINUTES ahead (``ticket.received_too_old``,
    ``ticket.future``)."""
    service.check_client_received_at(body.received_at)
    ticket, duplicates = service.create(session, actor=principal.username, **body.model_dump())
    return {**present(session, principal, ticket), "possible_duplicates": duplicates}


@router.get("/tickets", response_model=list[TicketRead])
def list_tickets(
    session: SessionDep,
    principal: Caller,
    status: Annotated[
        str | None,
        Query(max_length=80, description="a status, or several separated by commas"),
    ] = None,
    due: Annotated[Literal["soon", "overdue"] | None, Query()] = None,
    department: Annotated[str | None, Query(max_length=32)] = None,
    role: Annotated[
        Literal["lead", "co"] | None, Query(description="lead (主办) or co-handling (协办)")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="a ticket number or words of the text")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[dict]:
    """For a department: its inbox (open tickets, soonest deadline first), or with ``status``
    or ``role`` its other tickets (answered ones newest first). For hotline roles: every
    ticket, with the same filters. ``q`` searches numbers, content and addresses (for a
    department, as masked)."""
    unknown = sorted({s for s in (status or "").split(",") if s} - set(service.STATUSES))
    if unknown:
        raise AppError("ticket.unknown_status", f"unknown status {', '.join(unknown)}")
    tickets = service.search(
        session,
        principal,
        status=status,
        due=due,
        department=department,
        role=role,
        q=q,
        limit=limit,
        offset=offset,
    )
    return [present(session, principal, t) for t in tickets]


@router.get("/tickets/{number}", response_model=TicketDetail)
def get_ticket(number: str, session: SessionDep, principal: Caller) -> dict:
    ticket = service.get(session, principal, number)
    detail = {
        **_view(session, ticket),
        "children": service.children_numbers(session, ticket),
        "trail": [
            ActionRead.model_validate(a, from_attributes=True).model_dump()
            for a in service.trail(session, ticket)
        ],
    }
    return _masked(principal, ticket, detail)


class LinkBody(BaseModel):
    parent: str = Field(max_length=24)


@router.post("/tickets/{number}/link", response_model=TicketRead, include_in_schema=True)
def link_duplicate(number: str, body: LinkBody, session: SessionDep, principal: Caller) -> dict:
    """Mark a ticket as a duplicate of ``parent``; it then follows the parent's reply and close."""
    return present(session, principal, service.link(session, principal, number, body.parent))


@router.post("/tickets/{number}/unlink", response_model=TicketRead)
def unlink_duplicate(number: str, session: SessionDep, principal: Caller) -> dict:
    return present(session, principal, service.unlink(session, principal, number))


class ActionBody(BaseModel):
    """Fields used by the different actions; each action reads the ones it needs."""

    version: int | None = Field(None, description="the version you saw; refused if it changed")
    department: str | None = Field(None, max_length=32, description="dispatch: lead department")
    co_departments: list[str] = Field(default_factory=list, max_length=10)
    final_ruling: bool = Field(False, description="dispatch: 审定, it may not be returned again")
    matter_code: str | None = Field(
        None, max_length=16, description="dispatch: correct the matter (the suggester learns it)"
    )
    reason: str | None = Field(None, max_length=2000, description="return, request-extension")
    working_days: int | None = Field(None, ge=1, le=60, description="request-extension")
    hours: int | None = Field(None, ge=1, le=240, description="request-extension, urgent")
    approve: bool | None = Field(None, description="decide-extension")
    comment: str | None = Field(None, max_length=2000)
    reply: str | None = Field(None, max_length=5000, description="reply: the handling result")
    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"] | None = None
    resolved: bool | None = None
    note: str | None = Field(None, max_length=2000)
    answer: str | None = Field(None, max_length=5000, description="answer-directly")
    article_key: str | None = Field(None, max_length=64)


@router.post("/tickets/{number}/{action}", response_model=TicketRead)
def act_on_ticket(
    number: str,
    action: str,
    session: SessionDep,
    principal: Caller,
    body: Annotated[ActionBody | None, Body()] = None,
) -> dict:
    """One lifecycle action. Roles: dispatch (dispatcher), accept/return/request-extension/reply
    (the lead department), decide-extension (dispatcher, supervisor), visit and close (agent,
    supervisor), supervise (supervisor), answer-directly (agent). Anything else: 409."""
    payload = (body or ActionBody()).model_dump(exclude_none=True)
    ticket = service.act(session, principal, number, action, payload)
    return present(session, principal, ticket)


@router.get("/reports/tickets")
def ticket_report(
    session: SessionDep,
    principal: Caller,
    start: Moment,
    end: Moment,
    by: Literal["department", "matter", "area"] = "department",
) -> list[dict]:
    """Received, accepted and finished on time, returns, satisfaction, open and overdue now."""
    return service.report(session, principal, by=by, start=start, end=end)


class DayRead(BaseModel):
    day: date
    working: bool
    source: Literal["override", "library", "statutory", "weekday"] = Field(
        description="override: an administrator's; library: the announced arrangement; "
        "statutory: a public holiday computed for a year not yet announced; weekday: "
        "no holiday known, Monday-Friday work"
    )
    name: str = Field(description="the holiday's name (春节 …), empty on an ordinary day")


class YearRead(BaseModel):
    year: int
    announced: bool = Field(
        description="whether the State Council's arrangement for the year is in the calendar"
    )
    warning: str = Field(description="what is missing for the year, empty when nothing is")
    statutory_holidays: list[DayRead]
    overrides: list[DayRead]


@router.get("/calendar/years/{year}", tags=["calendar"])
def get_calendar_year(
    year: Annotated[int, Path(ge=2000, le=2100)],
    session: SessionDep,
    _: Annotated[Principal, Depends(require_roles("supervisor", "dispatcher"))],
) -> YearRead:
    """A year's public holidays and overrides, and whether its arrangement is announced: an
    administrator sees here what the coming year still lacks (the make-up workdays, 调休)."""
    calendar = service.working_calendar(session)
    announced = year in calendar.covered_years
    overrides = session.scalars(
        select(CalendarOverride.day)
        .where(CalendarOverride.day.between(date(year, 1, 1), date(year, 12, 31)))
        .order_by(CalendarOverride.day)
    ).all()
    return YearRead(
        year=year,
        announced=announced,
        warning=""
        if announced
        else f"{year}年放假安排尚未公布：法定节假日按规则推算，调休上班日需在公布后录入",
        statutory_holidays=[
            DayRead(**asdict(calendar.status(day))) for day in sorted(statutory_holidays(year))
        ],
        overrides=[DayRead(**asdict(calendar.status(day))) for day in overrides],
    )


class MonthDayRead(DayRead):
    note: str = Field("", description="the administrator's note on an override")


@router.get("/calendar/months/{year}/{month}", tags=["calendar"])
def get_calendar_month(
    year: Annotated[int, Path(ge=2000, le=2100)],
    month: Annotated[int, Path(ge=1, le=12)],
    session: SessionDep,
    _: Annotated[Principal, Depends(current_principal)],
) -> list[MonthDayRead]:
    """Every day of a month, worked or not and why, with the notes of the overrides (for the
    administrators' calendar)."""
    calendar = service.working_calendar(session)
    first = date(year, month, 1)
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    notes = dict(
        session.execute(
            select(CalendarOverride.day, CalendarOverride.note).where(
                CalendarOverride.day.between(first, last)
            )
        ).all()
    )
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [
        MonthDayRead(**asdict(calendar.status(day)), note=notes.get(day, "") or "") for day in days
    ]


@router.get("/calendar/{day}", tags=["calendar"])
def get_calendar_day(
    day: Day, session: SessionDep, _: Annotated[Principal, Depends(current_principal)]
) -> DayRead:
    """Whether a day is a working day for deadlines, and why (any year, also past the
    announced ones)."""
    return DayRead(**asdict(service.working_calendar(session).status(day)))


class OverrideWrite(BaseModel):
    working: bool = Field(description="true: a working day; false: a holiday")
    note: str = Field("", max_length=200)


@router.put("/calendar/{day}", tags=["calendar"])
def put_calendar_override(
    day: Day,
    body: OverrideWrite,
    session: SessionDep,
    admin: Annotated[Principal, Depends(require_roles("admin"))],
) -> dict:
    """Declare a holiday or a working day over the Chinese calendar (e.g. a typhoon day off).
    Days from HOTLINE_CALENDAR_FIRST_YEAR to HOTLINE_CALENDAR_YEARS_AHEAD years after this
    one (``calendar.day_out_of_range``)."""
    service.check_override_day(day)
    override = session.get(CalendarOverride, day) or CalendarOverride(day=day)
    override.working, override.note, override.created_by = body.working, body.note, admin.username
    session.add(override)
    session.add(
        AuditEntry(
            actor=admin.username,
            action="calendar.override_saved",
            entity="calendar",
            entity_id=day.isoformat(),
            detail={"working": body.working, "note": body.note},
        )
    )
    session.flush()
    return {"day": day.isoformat(), "working": override.working, "note": override.note}


@router.delete("/calendar/{day}", tags=["calendar"])
def delete_calendar_override(
    day: Day,
    session: SessionDep,
    admin: Annotated[Principal, Depends(require_roles("admin"))],
) -> DayRead:
    """Remove an administrator's override: the day is again as the Chinese calendar has it
    (``calendar.no_override`` 404 when there is none). Deadlines already given stay."""
    override = session.get(CalendarOverride, day)
    if override is None:
        raise NotFound("calendar.no_override", f"no override for {day.isoformat()}")
    session.delete(override)
    session.add(
        AuditEntry(
            actor=admin.username,
            action="calendar.override_removed",
            entity="calendar",
            entity_id=day.isoformat(),
            detail={"working": override.working, "note": override.note},
        )
    )
    session.flush()
    return DayRead(**asdict(service.working_calendar(session).status(day)))
