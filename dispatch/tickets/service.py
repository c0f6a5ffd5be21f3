"""The ticket (工单) lifecycle: a closed loop from intake to closing, measured on deadlines.

Terms owned here:
  受理 intake · 派单 dispatch · 签收 accept · 退回 return · 改派 re-dispatch · 审定 final ruling
  (the department may not return it again) · 延期 extension · 回复 reply · 回访 follow-up visit ·
  重办 reopen after an unsatisfied visit · 督办 supervision · 办结 close · 主办 lead department ·
  协办 co-handling department · 一次办结 resolved at first contact (answered on the call).

Statuses: ``pending_dispatch`` (at the dispatch desk) → ``dispatched`` (waiting for the
department to accept) → ``accepted`` (being handled) → ``replied`` → ``visited`` → ``closed``.
Every action is checked against the table ``ACTIONS``; anything else is refused with
``ticket.invalid_transition``. Two people acting on one ticket at once: the version column
lets exactly one of them win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, event, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dispatch.routing import service as routing_service
from dispatch.tickets import (
    deadlines,
    rollup,  # noqa: F401 - its before_flush hook keeps ticket_days in step
)
from dispatch.tickets.calendar import WorkingCalendar
from dispatch.tickets.models import (
    TICKET_ROW_LOCK,
    CalendarOverride,
    ExtensionRequest,
    FollowUp,
    Ticket,
    TicketAction,
    TicketDepartment,
)
from hotline.core import counters, privacy
from hotline.core.auth import Principal
from hotline.core.db import utcnow
from hotline.core.errors import AppError, Conflict, Forbidden, NotFound
from hotline.core.events import publish_after_commit
from hotline.core.jobs import enqueue_after_commit
from hotline.core.phones import normalise_phone
from hotline.core.settings import get_settings

CHANNELS = ("phone", "app", "web", "wechat", "open311", "110")
# Statuses in which a ticket is in a department's hands (ticket_departments.open).
INBOX_STATUSES = ("pending_dispatch", "dispatched", "accepted")
OPEN_STATUSES = ("pending_dispatch", "dispatched", "accepted", "replied", "visited")
STATUSES = (*OPEN_STATUSES, "closed")
SATISFACTION = ("satisfied", "basically_satisfied", "unsatisfied")
DUPLICATE_WINDOW = timedelta(days=7)
VISIT_BY_HOTLINE = "hotline"  # an agent's 回访 call; citizens' own ratings carry their channel
DESK = "DESK"
HOTLINE_ROLES = privacy.HOTLINE_ROLES


@dataclass(frozen=True)
class Action:
    statuses: tuple[str, ...]
    roles: tuple[str, ...]
    lead_department_only: bool = False
    # Statuses this very action leads to: taken again there without the version the actor
    # saw, it would silently undo what another actor has just done (two dispatchers: the
    # last one would win), so there it needs the version.
    repeats_in: tuple[str, ...] = ()


ACTIONS: dict[str, Action] = {
    "dispatch": Action(
        ("pending_dispatch", "dispatched"), ("dispatcher", "supervisor"), repeats_in=("dispatched",)
    ),
    "accept": Action(("dispatched",), ("department",), lead_department_only=True),
    "return": Action(("dispatched",), ("department",), lead_department_only=True),
    "request-extension": Action(("accepted",), ("department",), lead_department_only=True),
    "decide-extension": Action(("accepted",), ("dispatcher", "supervisor")),
    "reply": Action(("accepted",), ("department",), lead_department_only=True),
    "visit": Action(("replied",), ("agent", "supervisor")),
    "close": Action(("replied", "visited"), ("agent", "dispatcher", "supervisor")),
    "supervise": Action(OPEN_STATUSES, ("supervisor",)),
    "answer-directly": Action(("pending_dispatch", "dispatched"), ("agent", "supervisor")),
}


# -- calendar and policy -------------------------------------------------------------------------


def working_calendar(
    session: Session, routing: routing_service.Routing | None = None
) -> WorkingCalendar:
    """The Chinese calendar with the admins' overrides, read once per revision of the
    reference data: saving an override bumps that revision (see ``_overrides_changed``)."""
    routing = routing or routing_service.current_routing(session)
    calendar = routing.derived.get("working_calendar")
    if calendar is None:
        overrides = session.scalars(select(CalendarOverride)).all()
        calendar = routing.derived["working_calendar"] = WorkingCalendar(
            extra_holidays=[o.day for o in overrides if not o.working],
            extra_workdays=[o.day for o in overrides if o.working],
        )
    return calendar


@event.listens_for(CalendarOverride, "after_insert")
@event.listens_for(CalendarOverride, "after_update")
@event.listens_for(CalendarOverride, "after_delete")
def _overrides_changed(_mapper, connection, _override) -> None:
    # In the same transaction as the change: every process reads the calendar again once
    # it commits, and not before.
    counters.increment(connection, routing_service.REVISION_COUNTER)


_policy: tuple[object, deadlines.DeadlinePolicy] | None = None


def deadline_policy() -> deadlines.DeadlinePolicy:
    """The policy of the current settings, validated once per settings object."""
    global _policy
    settings = get_settings()
    cached = _policy
    if cached is None or cached[0] is not settings:
        cached = _policy = (
            settings,
            deadlines.DeadlinePolicy.model_validate(settings.deadline_policy),
        )
    return cached[1]


# -- numbers, visibility, events -------------------------------------------------------------------


def _next_number(session: Session, received_at: datetime) -> str:
    day = received_at.astimezone(get_settings().tz).strftime("%Y%m%d")
    name = f"ticket-number-{day}"
    engine = session.get_bind().engine
    if engine.dialect.name == "postgresql":
        # A statement committed on its own: the day's counter row is locked for that statement,
        # not for the rest of the intake (a rolled-back intake leaves a gap in the numbers).
        # Unflushed: under load the day's intakes queued behind each other's WAL flush; the
        # intake's own commit makes the number durable, before anyone can see the ticket.
        value = counters.increment_committed(engine, name, flushed=False)
    else:
        value = counters.increment(session, name)  # SQLite: one writer at a time anyway
    return f"ZH{day}{value:06d}"


mask_phone = privacy.mask_phone  # the name the open311 module and older callers know


def _department_codes(ticket: Ticket) -> list[str]:
    return sorted({d.department_code for d in ticket.departments} | {ticket.lead_department})


def can_see(principal: Principal, ticket: Ticket) -> bool:
    if principal.roles & HOTLINE_ROLES:
        return True
    return bool(principal.departments.intersection(_department_codes(ticket)))


def publish_change(session: Session, ticket: Ticket, event_type: str, **extra: Any) -> None:
    data = {
        "number": ticket.number,
        "status": ticket.status,
        "lead_department": ticket.lead_department,
        "version": ticket.version,
        "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
        "urgent": ticket.urgent,
        **extra,
    }
    for code in _department_codes(ticket):
        publish_after_commit(session, f"tickets.dept.{code}", event_type, data)
    # For the console of whoever took the request ("my recent tickets"), which follows only
    # its own tickets rather than every change in the city.
    publish_after_commit(session, f"tickets.by.{ticket.created_by}", event_type, data)


def _record(
    session: Session,
    ticket: Ticket,
    action: str,
    actor: str,
    from_status: str | None,
    *,
    department: str | None = None,
    **detail: Any,
) -> None:
    """Append to the trail; ``department`` is the lead department when the action was taken
    (a return is on the books of the department that returned it, not of the desk)."""
    session.add(
        TicketAction(
            ticket_id=ticket.id,
            action=action,
            actor=actor,
            from_status=from_status,
            to_status=ticket.status,
            department_code=department or ticket.lead_department,
            detail=detail,
        )
    )


# -- deadlines and reminders -------------------------------------------------------------------


def _set_due(
    ticket: Ticket, due_at: datetime | None, start: datetime | None = None, *, open_: bool = True
) -> None:
    """Start the clock the ticket now runs against (``start`` → ``due_at``), or stop it."""
    ticket.due_at = due_at
    ticket.due_soon_at = deadlines.due_soon_at(start, due_at) if due_at and start else None
    # A new clock forgets the red mark of the old one (an approved extension, an acceptance).
    ticket.overdue = False
    for row in ticket.departments:
        row.due_at = due_at
        row.due_soon_at = ticket.due_soon_at
        row.open = open_


def _schedule(
    session: Session,
    ticket: Ticket,
    which: str,
    start: datetime,
    deadline: datetime,
    *,
    now: datetime | None = None,
) -> None:
    """Reminders at 80 % and one hour before, and the overdue check at the deadline.

    Reminders already in the past are not sent; a deadline already passed is checked at once.

    Job ids carry the deadline, so a moved deadline schedules new jobs and the old ones find
    the ticket no longer running against their deadline and do nothing.
    """
    stamp = deadline.isoformat()
    now = now or utcnow()
    for label, moment in deadlines.reminder_times(start, deadline):
        if moment <= now:
            continue
        enqueue_after_commit(
            session,
            "dispatch.tickets.jobs.remind",
            ticket.id,
            which,
            stamp,
            label,
            job_id=f"sla-reminder:{ticket.id}:{which}:{label}:{stamp}",
            at=moment,
        )
    enqueue_after_commit(
        session,
        "dispatch.tickets.jobs.deadline_passed",
        ticket.id,
        which,
        stamp,
        job_id=f"sla-deadline:{ticket.id}:{which}:{stamp}",
        at=max(deadline, now),
    )


def _dispatch_to(
    session: Session,
    ticket: Ticket,
    department: str,
    co: list[str],
    now: datetime,
    *,
    clock_from: datetime | None = None,
) -> None:
    """Hand the ticket to ``department``; its accept clock runs from ``clock_from`` (the time of
    receipt at intake, so a request entered late is not given extra time) or from now."""
    leaving = set(_department_codes(ticket)) - {department, *co} if ticket.departments else set()
    if leaving:
        for code in sorted(leaving):
            publish_after_commit(
                session,
                f"tickets.dept.{code}",
                "ticket.left",
                {"number": ticket.number, "lead_department": department},
            )
    start = _assign(session, ticket, department, co, now, clock_from=clock_from)
    if start is not None:
        session.flush()
        _schedule(session, ticket, "accept", start, ticket.accept_deadline, now=now)


def _assign(
    session: Session,
    ticket: Ticket,
    department: str,
    co: list[str],
    now: datetime,
    *,
    clock_from: datetime | None = None,
    routing: routing_service.Routing | None = None,
) -> datetime | None:
    """Make ``department`` the lead and start its accept clock; returns when that clock
    started (``None`` at the desk, where no clock runs). Schedules nothing: that needs the id."""
    ticket.lead_department = department
    ticket.departments = [TicketDepartment(department_code=department, role="lead")] + [
        TicketDepartment(department_code=c, role="co") for c in sorted(set(co) - {department})
    ]
    if department == DESK:
        ticket.status = "pending_dispatch"
        ticket.accept_deadline = None
        _set_due(ticket, None)
        return None
    start = clock_from or now
    ticket.status = "dispatched"
    ticket.dispatched_at = now
    ticket.accept_deadline = deadlines.accept_deadline(
        deadline_policy(), working_calendar(session, routing), ticket.kind, ticket.urgent, start
    )
    _set_due(ticket, ticket.accept_deadline, start)
    return start


# -- creating --------------------------------------------------------------------------------------


def create(
    session: Session,
    *,
    actor: str,
    channel: str,
    content: str,
    address: str = "",
    caller_name: str = "",
    caller_phone: str = "",
    matter_code: str | None = None,
    urgent: bool | None = None,
    major: bool = False,
    multi_area: bool = False,
    received_at: datetime | None = None,
    co_departments: list[str] | None = None,
    call_id: str | None = None,
) -> tuple[Ticket, list[str]]:
    """Create, route and dispatch a ticket in the caller's transaction.

    Returns the ticket and the numbers of likely duplicates (same caller, matter and town
    within 7 days). A ticket routed to the dispatch desk waits there for a dispatcher.
    """
    if channel not in CHANNELS:
        raise AppError("ticket.bad_channel", f"channel must be one of {list(CHANNELS)}")
    if not content.strip():
        raise AppError("ticket.empty_content", "a ticket needs the citizen's request text")
    now = utcnow()
    received_at = received_at or now
    if received_at.tzinfo is None:
        raise AppError("ticket.naive_time", "received_at needs a time zone offset")
    ahead = timedelta(minutes=get_settings().received_at_max_ahead_minutes)
    if received_at > now + ahead:
        raise AppError(
            "ticket.future",
            f"received_at lies in the future (more than {ahead} ahead of the server's clock)",
        )
    routing = routing_service.current_routing(session)
    decision = routing_service.decide(
        session,
        text=content,
        address=address,
        matter_code=matter_code,
        received_at=received_at,
        major=major,
        multi_area=multi_area,
        routing=routing,
        suggest=False,
    )
    _check_departments(routing, co_departments or [])
    matter = routing.ruleset.matter(decision["matter"]["code"])
    location = decision["location"]
    department = decision["department"]["code"]
    ticket = Ticket(
        number=_next_number(session, received_at),
        channel=channel,
        caller_name=caller_name,
        caller_phone=normalise_phone(caller_phone),
        content=content,
        address=address,
        town_code=(location["town"] or {}).get("code"),
        area_code=(location["area"] or {}).get("code"),
        matter_code=matter.code,
        kind=matter.kind,
        urgent=matter.urgent if urgent is None else urgent,
        major=major,
        rule_version=decision["rule_version"],
        routing={k: decision[k] for k in ("department", "location", "explanation", "level")},
        received_at=received_at,
        created_by=actor,
        call_id=call_id,
        ruled_departments=[],
    )
    # Built whole before its first flush: one INSERT per table, no UPDATE of a fresh row.
    start = _assign(
        session,
        ticket,
        department,
        co_departments or [],
        now,
        clock_from=received_at,
        routing=routing,
    )
    session.add(ticket)
    if matter_code:
        routing_service.record_choice(session, text=content, matter_code=matter.code)
    session.flush()
    if start is not None:
        _schedule(session, ticket, "accept", start, ticket.accept_deadline, now=now)
    _record(
        session,
        ticket,
        "create",
        actor,
        None,
        channel=channel,
        department=ticket.lead_department,
        rule_version=ticket.rule_version,
    )
    publish_change(session, ticket, "ticket.created")
    # Hot spots (热点) are found as tickets arrive, in the intake's transaction; imported
    # here because the hot-spot service builds on this one.
    from dispatch.hotspots import service as hotspot_service

    hotspot_service.observe(session, ticket)
    return ticket, find_duplicates(session, ticket)


def check_override_day(day: date) -> None:
    """Refuse a calendar override for a day no deadline will ever be counted over: every
    override is loaded into each process's working calendar, so their range is bounded."""
    settings = get_settings()
    first = date(settings.calendar_first_year, 1, 1)
    last = date(utcnow().astimezone(settings.tz).year + settings.calendar_years_ahead, 12, 31)
    if not first <= day <= last:
        raise AppError(
            "calendar.day_out_of_range",
            f"calendar overrides are taken for days from {first} to {last} "
            "(HOTLINE_CALENDAR_FIRST_YEAR, HOTLINE_CALENDAR_YEARS_AHEAD)",
            first=first.isoformat(),
            last=last.isoformat(),
        )


def check_client_received_at(received_at: datetime | None) -> None:
    """Refuse a ``received_at`` sent by a client outside the window of plausible receipt.

    Ticket numbers, deadlines and reports all follow it: a client could otherwise file a
    ticket in 1900 (ZH19000101000001), already overdue and out of every report's range.
    Imports and tests that load history call ``create`` directly, without this check."""
    if received_at is None:
        return
    if received_at.tzinfo is None:
        raise AppError("ticket.naive_time", "received_at needs a time zone offset")
    settings = get_settings()
    oldest = utcnow() - timedelta(days=settings.received_at_max_age_days)
    if received_at < oldest:
        raise AppError(
            "ticket.received_too_old",
            f"received_at may lie at most {settings.received_at_max_age_days} days back "
            "(HOTLINE_RECEIVED_AT_MAX_AGE_DAYS); older requests are not taken as tickets",
            oldest=oldest.isoformat(),
        )


def _check_departments(routing: routing_service.Routing, codes: list[str]) -> None:
    for code in codes:
        if code not in routing.ruleset.department_by_code:
            raise AppError("ticket.unknown_department", f"unknown department {code!r}")
        if code == DESK:
            raise AppError("ticket.bad_department", "the desk cannot co-handle a ticket")


# Built once (the duplicate check runs on every intake); ix_tickets_duplicates serves it.
_DUPLICATES = (
    select(Ticket.number)
    .where(
        Ticket.caller_phone == bindparam("phone"),
        Ticket.matter_code == bindparam("matter"),
        Ticket.town_code == bindparam("town"),
        Ticket.received_at >= bindparam("since"),
        Ticket.received_at <= bindparam("until"),
        Ticket.id != bindparam("id"),
    )
    .order_by(Ticket.received_at.desc())
    .limit(10)
)


def find_duplicates(session: Session, ticket: Ticket) -> list[str]:
    if not (ticket.caller_phone and ticket.town_code):
        return []
    return list(
        session.scalars(
            _DUPLICATES,
            {
                "phone": ticket.caller_phone,
                "matter": ticket.matter_code,
                "town": ticket.town_code,
                "since": ticket.received_at - DUPLICATE_WINDOW,
                "until": ticket.received_at + DUPLICATE_WINDOW,
                "id": ticket.id,
            },
        )
    )


# -- reading ---------------------------------------------------------------------------------------


def caller_history(session: Session, phone: str, limit: int = 20) -> list[dict[str, Any]]:
    """A caller's tickets for the agent's screen: open ones first, then the latest."""
    return caller_histories(session, [phone], limit=limit).get(phone, [])


def caller_histories(
    session: Session, phones: Iterable[str], limit: int = 20
) -> dict[str, list[dict[str, Any]]]:
    """``caller_history`` of several callers in one query (a batch of answered calls), keyed
    by the numbers as given; each is looked up in its canonical spelling."""
    canonical = {p: normalise_phone(p) for p in phones if p}
    wanted = sorted({c for c in canonical.values() if c})
    found: dict[str, list[dict[str, Any]]] = {c: [] for c in wanted}
    if not wanted:
        return {p: [] for p in canonical}
    ranked = (
        select(
            Ticket.id,
            func.row_number()
            .over(
                partition_by=Ticket.caller_phone,
                order_by=(Ticket.status.in_(OPEN_STATUSES).desc(), Ticket.received_at.desc()),
            )
            .label("rank"),
        )
        .where(Ticket.caller_phone.in_(wanted))
        .subquery()
    )
    tickets = session.scalars(
        select(Ticket)
        .join(ranked, ranked.c.id == Ticket.id)
        .where(ranked.c.rank <= limit)
        .order_by(Ticket.caller_phone, ranked.c.rank)
    )
    for t in tickets:
        found[t.caller_phone].append(
            {
                "number": t.number,
                "status": t.status,
                "open": t.status in OPEN_STATUSES,
                "matter_code": t.matter_code,
                "content": t.content[:200],
                "lead_department": t.lead_department,
                "received_at": t.received_at.isoformat(),
                "reply": t.reply,
            }
        )
    return {given: found.get(canonical_form, []) for given, canonical_form in canonical.items()}


def overdue_by_department(session: Session) -> list[dict[str, Any]]:
    """Open tickets past their running deadline, per lead department (for the wall)."""
    rows = session.execute(
        select(Ticket.lead_department, func.count())
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.due_at < utcnow())
        .group_by(Ticket.lead_department)
        .order_by(func.count().desc(), Ticket.lead_department)
    ).all()
    return [{"department": code, "overdue": n} for code, n in rows]


def numbers_for_call(session: Session, call_id: str) -> list[str]:
    """Tickets (or direct answers) a call produced."""
    return list(
        session.scalars(select(Ticket.number).where(Ticket.call_id == call_id).order_by(Ticket.id))
    )


def get(session: Session, principal: Principal, number: str, *, for_update: bool = False) -> Ticket:
    """The ticket, if the caller may see it; a department never learns others' tickets exist."""
    query = select(Ticket).where(Ticket.number == number)
    if for_update:
        # The second of two simultaneous actors waits here, then sees the first one's result.
        query = query.with_for_update(**TICKET_ROW_LOCK)
    ticket = session.scalar(query)
    if ticket is None or not can_see(principal, ticket):
        raise NotFound("ticket.not_found", f"no ticket {number}")
    return ticket


def trail(session: Session, ticket: Ticket) -> list[TicketAction]:
    return list(
        session.scalars(
            select(TicketAction)
            .where(TicketAction.ticket_id == ticket.id)
            .order_by(TicketAction.id)
        )
    )


def deadline_status(ticket: Ticket, now: datetime | None = None) -> str | None:
    """ok / due_soon (yellow) / overdue (red) against the deadline running now."""
    if ticket.due_at is None:
        return None
    start = ticket.accepted_at if ticket.status == "accepted" else ticket.dispatched_at
    return str(deadlines.classify(now or utcnow(), start or ticket.received_at, ticket.due_at))


def search(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    due: str | None = None,
    department: str | None = None,
    role: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Ticket]:
    """A department's tickets, or any tickets for hotline roles.

    ``status``: one status or several separated by commas (``replied,visited``). Without a
    status a department gets its inbox (tickets in its hands, soonest deadline first); with
    ``role`` (``lead`` 主办 or ``co`` 协办) it gets every ticket it has that role on.
    Tickets no longer running a deadline come newest first. ``q``: a ticket number or words
    of the content or address; a department's search sees only what it is shown (personal
    data masked), so it cannot probe for a caller's phone or name.
    """
    now = utcnow()
    statuses = [part for part in (status or "").split(",") if part]
    if not (principal.roles & HOTLINE_ROLES):
        codes = sorted(principal.departments)
        if department:
            if department not in principal.departments:
                return []
            codes = [department]
        rows = select(TicketDepartment).where(TicketDepartment.department_code.in_(codes))
        if role:
            rows = rows.where(TicketDepartment.role == role)
        # ``open`` mirrors the status (in a department's hands or not), so a status filter
        # stays within one half of the inbox index instead of the department's whole history.
        in_hands = {s in INBOX_STATUSES for s in statuses}
        open_only = in_hands == {True} or (not statuses and not role)
        if open_only or in_hands == {False}:
            rows = rows.where(TicketDepartment.open.is_(open_only))
        rows = _due_filter(rows, due, TicketDepartment, now)
        if len(codes) == 1:
            # One department: its index on (department, open, due_at) serves order and limit.
            ordered = rows.with_only_columns(
                TicketDepartment.ticket_id, TicketDepartment.due_at.label("due")
            )
        else:
            # A ticket on several of the caller's departments is listed once.
            ordered = rows.with_only_columns(
                TicketDepartment.ticket_id, func.min(TicketDepartment.due_at).label("due")
            ).group_by(TicketDepartment.ticket_id)
        page = ordered.subquery()
        query = select(Ticket).join(page, page.c.ticket_id == Ticket.id)
        # NULLS LAST and the row's own ticket_id are the order of the index
        # (department_code, open, due_at, ticket_id): the first page is read, not sorted.
        # Answered tickets have no deadline: the newest first is what one looks for.
        newest_first = page.c.ticket_id.desc() if not open_only else page.c.ticket_id
        query = query.order_by(page.c.due.asc().nulls_last(), newest_first)
    else:
        query = select(Ticket)
        if department:
            query = query.where(Ticket.lead_department == department)
        if role == "co" or (role == "lead" and department):
            co = select(TicketDepartment.ticket_id).where(TicketDepartment.role == role)
            if department:
                co = co.where(TicketDepartment.department_code == department)
            query = query.where(Ticket.id.in_(co))
        query = _due_filter(query, due, Ticket, now)
        query = query.order_by(Ticket.due_at.is_(None), Ticket.due_at, Ticket.id)
    if len(statuses) == 1:
        query = query.where(Ticket.status == statuses[0])
    elif statuses:
        query = query.where(Ticket.status.in_(statuses))
    text = (q or "").strip()
    if not text:
        return list(session.scalars(query.offset(offset).limit(limit)))
    matches = [
        Ticket.number.contains(text.upper(), autoescape=True),
        Ticket.content.contains(text, autoescape=True),
        Ticket.address.contains(text, autoescape=True),
    ]
    if principal.roles & HOTLINE_ROLES:
        digits = normalise_phone(text)
        if len(digits) >= 4 and digits.lstrip("+").isdigit():
            matches.append(Ticket.caller_phone.contains(digits, autoescape=True))
        matches.append(Ticket.caller_name == text)
        query = query.where(or_(*matches))
        return list(session.scalars(query.offset(offset).limit(limit)))
    # A department: the database narrows, the masked text decides (a phone number in the
    # content must not be findable by someone who is shown only 138****9999). Pages are
    # counted after that check, reading on until a page is full.
    query = query.where(or_(*matches))
    found: list[Ticket] = []
    skipped = 0
    batch = max(limit, 50)
    start = 0
    while len(found) < limit:
        chunk = list(session.scalars(query.offset(start).limit(batch)))
        for ticket in chunk:
            if not _department_sees(ticket, text):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(ticket)
            if len(found) == limit:
                break
        if len(chunk) < batch:
            break
        start += batch
    return found


def _department_sees(ticket: Ticket, text: str) -> bool:
    if text.upper() in ticket.number:
        return True
    known = privacy.known_caller(ticket.caller_phone, ticket.caller_name)
    return any(
        text in privacy.mask_text(field, known) for field in (ticket.content, ticket.address)
    )


def _due_filter(query, due: str | None, table, now: datetime):
    """overdue: past the running deadline (red); soon: past 80 % of its time (yellow)."""
    if due == "overdue":
        return query.where(table.due_at < now)
    if due == "soon":
        return query.where(table.due_soon_at <= now, table.due_at >= now)
    return query


# -- acting ----------------------------------------------------------------------------------------


def _check(principal: Principal, ticket: Ticket, action: str, expected_version: int | None):
    rule = ACTIONS[action]
    if not principal.has_any(*rule.roles, "admin"):
        raise Forbidden("auth.forbidden", f"{action} needs one of the roles {list(rule.roles)}")
    if (
        rule.lead_department_only
        and "admin" not in principal.roles
        and ticket.lead_department not in principal.departments
    ):
        raise Forbidden("ticket.not_lead", f"only the lead department may {action} this ticket")
    if expected_version is not None and expected_version != ticket.version:
        raise Conflict(
            "ticket.version_conflict",
            f"the ticket changed (version {ticket.version}, you saw {expected_version}); reload",
        )
    # A merged child (并单) has left the inboxes; a linked duplicate has not.
    merged = ticket.parent_id is not None and not any(d.open for d in ticket.departments)
    if merged and "department" in rule.roles and ticket.status in INBOX_STATUSES:
        raise Conflict(
            "ticket.merged",
            "this ticket is merged under another (并单): act on its parent ticket",
        )
    if ticket.status not in rule.statuses:
        raise Conflict(
            "ticket.invalid_transition",
            f"cannot {action} a ticket that is {ticket.status}",
            status=ticket.status,
        )
    if expected_version is None and ticket.status in rule.repeats_in:
        raise Conflict(
            "ticket.version_required",
            f"the ticket is already {ticket.status}, perhaps by someone else just now: send the "
            f"version you saw to {action} it again",
            status=ticket.status,
            version=ticket.version,
        )


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(
            "ticket.version_conflict", "someone else changed this ticket at the same time; reload"
        ) from exc


def act(
    session: Session,
    principal: Principal,
    number: str,
    action: str,
    body: dict[str, Any],
) -> Ticket:
    """Apply one lifecycle action; refusals are 403 (role), 404 (unseen) or 409 (state)."""
    if action not in ACTIONS:
        raise Conflict("ticket.invalid_transition", f"unknown action {action!r}")
    # Optimistic: both of two simultaneous actors may read the same version; the version
    # column makes the second UPDATE match no row, which surfaces as StaleDataError → 409.
    try:
        ticket = get(session, principal, number)
        _check(principal, ticket, action, body.get("version"))
    except StaleDataError as exc:
        raise Conflict(
            "ticket.version_conflict", "someone else changed this ticket at the same time; reload"
        ) from exc
    if action == "visit":
        body = {**body, "source": VISIT_BY_HOTLINE}
    return _perform(session, principal, ticket, action, body, actor=principal.username)


def _perform(
    session: Session,
    principal: Principal | None,
    ticket: Ticket,
    action: str,
    body: dict[str, Any],
    *,
    actor: str,
) -> Ticket:
    """Apply a checked action: the handler, the trail, the events, linked duplicates."""
    try:
        before, department = ticket.status, ticket.lead_department
        now = utcnow()
        # Every action touches the row, so the version check guards actions that only add
        # rows elsewhere (an extension request) as much as status changes.
        ticket.updated_at = now
        with session.no_autoflush:
            detail = _HANDLERS[action](session, principal, ticket, body, now) or {}
        session.flush()
        _record(session, ticket, action, actor, before, department=department, **detail)
        publish_change(session, ticket, f"ticket.{action.replace('-', '_')}")
        _follow_parent(session, ticket, action, actor, now)
        session.flush()
    except StaleDataError as exc:
        raise Conflict(
            "ticket.version_conflict", "someone else changed this ticket at the same time; reload"
        ) from exc
    return ticket


def visit_by_citizen(
    session: Session, *, ticket: Ticket, satisfaction: str, resolved: bool, source: str
) -> Ticket:
    """The citizen's own 回访 (from the app): the same action as an agent's visit, with the
    same effect (unsatisfied reopens the ticket as 重办 with a new deadline), recorded with
    ``source`` in the ticket (``visit_source``) and its trail, and the actor ``citizen:SOURCE``.
    The caller has established that this citizen owns the ticket."""
    if source not in CHANNELS or source == VISIT_BY_HOTLINE:
        raise AppError("ticket.bad_channel", f"unknown visit source {source!r}")
    rule = ACTIONS["visit"]
    if ticket.status not in rule.statuses:
        raise Conflict(
            "ticket.invalid_transition",
            f"cannot visit a ticket that is {ticket.status}",
            status=ticket.status,
        )
    body = {"satisfaction": satisfaction, "resolved": resolved, "source": source}
    return _perform(session, None, ticket, "visit", body, actor=f"citizen:{source}")


def received_by_channel(session: Session, since: datetime) -> dict[str, int]:
    """Tickets received since ``since``, per channel (phone, app, …): the wall shows how much
    of the demand the citizens' own channels take off the phones (分流)."""
    rows = session.execute(
        select(Ticket.channel, func.count())
        .where(Ticket.received_at >= since)
        .group_by(Ticket.channel)
    ).all()
    return {channel: count for channel, count in rows}


def _do_dispatch(session, principal, ticket: Ticket, body, now) -> dict:
    department = body.get("department")
    if not department:
        raise AppError("ticket.department_required", "say which department to dispatch to")
    routing = routing_service.current_routing(session)
    if department not in routing.ruleset.department_by_code:
        raise AppError("ticket.unknown_department", f"unknown department {department!r}")
    _check_departments(routing, body.get("co_departments", []))
    if department == DESK:
        raise AppError("ticket.bad_department", "dispatch to a department, not to the desk")
    if body.get("final_ruling"):
        ticket.ruled_departments = sorted({*ticket.ruled_departments, department})
    previous = ticket.lead_department
    corrected = _correct_matter(session, routing, ticket, body.get("matter_code"))
    _dispatch_to(session, ticket, department, body.get("co_departments", []), now)
    return {
        "from": previous,
        "to": department,
        "final_ruling": bool(body.get("final_ruling")),
        "note": body.get("note"),
        **corrected,
    }


def _correct_matter(
    session: Session, routing: routing_service.Routing, ticket: Ticket, matter_code: str | None
) -> dict[str, str]:
    """A dispatcher's correction of the matter (also after a department's return): the ticket
    takes it, and the matter suggester learns it as the final matter of the ticket's text."""
    if not matter_code or matter_code == ticket.matter_code:
        return {}
    if matter_code not in routing.ruleset.matter_by_code:
        raise AppError("ticket.unknown_matter", f"unknown matter code {matter_code!r}")
    matter = routing.ruleset.matter(matter_code)
    previous = ticket.matter_code
    ticket.matter_code = matter.code
    ticket.kind = matter.kind
    routing_service.record_choice(session, text=ticket.content, matter_code=matter.code)
    return {"matter_from": previous, "matter_to": matter.code}


def _do_accept(session, principal, ticket: Ticket, body, now) -> dict:
    ticket.status = "accepted"
    ticket.accepted_at = now
    ticket.accepted_on_time = ticket.accept_deadline is None or now <= ticket.accept_deadline
    ticket.finish_deadline = deadlines.finish_deadline(
        deadline_policy(), working_calendar(session), ticket.kind, ticket.urgent, now
    )
    _set_due(ticket, ticket.finish_deadline, now)
    _schedule(session, ticket, "finish", now, ticket.finish_deadline, now=now)
    return {"finish_deadline": ticket.finish_deadline.isoformat()}


def _do_return(session, principal, ticket: Ticket, body, now) -> dict:
    reason = (body.get("reason") or "").strip()
    if not reason:
        raise AppError("ticket.reason_required", "a return needs a reason")
    if ticket.lead_department in ticket.ruled_departments:
        raise Conflict(
            "ticket.final_ruling",
            "the dispatcher ruled this ticket is yours (审定); it cannot be returned again",
        )
    department = ticket.lead_department
    ticket.return_count += 1
    publish_change(session, ticket, "ticket.returned_away")  # the department's inbox drops it
    _dispatch_to(session, ticket, DESK, [], now)
    return {"reason": reason, "returned_by": department}


def _do_request_extension(session, principal, ticket: Ticket, body, now) -> dict:
    if ticket.finish_deadline and now > ticket.finish_deadline:
        raise Conflict(
            "ticket.deadline_passed", "an extension must be asked for before the deadline"
        )
    pending = session.scalar(
        select(ExtensionRequest).where(
            ExtensionRequest.ticket_id == ticket.id, ExtensionRequest.status == "pending"
        )
    )
    if pending is not None:
        raise Conflict("ticket.extension_pending", "an extension request is already waiting")
    reason = (body.get("reason") or "").strip()
    if not reason:
        raise AppError("ticket.reason_required", "an extension needs a reason")
    working_days, hours = body.get("working_days"), body.get("hours")
    if ticket.urgent:
        if not hours or hours < 1:
            raise AppError("ticket.bad_extension", "urgent tickets are extended in hours")
        working_days = None
    elif not working_days or working_days < 1:
        raise AppError("ticket.bad_extension", "give the extension in working days (≥ 1)")
    session.add(
        ExtensionRequest(
            ticket_id=ticket.id,
            department_code=ticket.lead_department,
            requested_by=principal.username,
            working_days=working_days,
            hours=hours if ticket.urgent else None,
            reason=reason,
        )
    )
    return {"working_days": working_days, "hours": hours, "reason": reason}


def _do_decide_extension(session, principal, ticket: Ticket, body, now) -> dict:
    request = session.scalar(
        select(ExtensionRequest).where(
            ExtensionRequest.ticket_id == ticket.id, ExtensionRequest.status == "pending"
        )
    )
    if request is None:
        raise Conflict("ticket.invalid_transition", "no extension request is waiting")
    approve = body.get("approve")
    if not isinstance(approve, bool):
        raise AppError("ticket.decision_required", "say approve: true or false")
    request.status = "approved" if approve else "rejected"
    request.decided_by, request.decided_at = principal.username, now
    request.comment = body.get("comment")
    detail: dict[str, Any] = {"approved": approve, "comment": request.comment}
    if approve and ticket.finish_deadline is not None:
        ticket.finish_deadline = deadlines.extend(
            ticket.finish_deadline,
            working_days=request.working_days,
            hours=request.hours,
            calendar=working_calendar(session),
        )
        _set_due(ticket, ticket.finish_deadline, ticket.accepted_at or now)
        _schedule(session, ticket, "finish", now, ticket.finish_deadline, now=now)
        detail["finish_deadline"] = ticket.finish_deadline.isoformat()
    return detail


def _do_reply(session, principal, ticket: Ticket, body, now) -> dict:
    text = (body.get("reply") or "").strip()
    if not text:
        raise AppError("ticket.reply_required", "a reply needs the result of the handling")
    for request in session.scalars(
        select(ExtensionRequest).where(
            ExtensionRequest.ticket_id == ticket.id, ExtensionRequest.status == "pending"
        )
    ):
        request.status = "withdrawn"  # the work is done: nothing left to extend
    ticket.status = "replied"
    ticket.reply = text
    ticket.replied_at = now
    ticket.finished_on_time = ticket.finish_deadline is None or now <= ticket.finish_deadline
    _set_due(ticket, None, open_=False)
    return {"reply": text}


def _do_visit(session, principal, ticket: Ticket, body, now) -> dict:
    satisfaction = body.get("satisfaction")
    if satisfaction not in SATISFACTION:
        raise AppError("ticket.bad_satisfaction", f"satisfaction must be one of {SATISFACTION}")
    resolved = bool(body.get("resolved", satisfaction != "unsatisfied"))
    ticket.satisfaction, ticket.resolved = satisfaction, resolved
    ticket.visit_source = body.get("source", VISIT_BY_HOTLINE)
    record_follow_up(
        session,
        ticket=ticket,
        satisfaction=satisfaction,
        resolved=resolved,
        source=ticket.visit_source,
        # no principal: the citizen rated it in the app (visit_by_citizen)
        actor=principal.username if principal else f"citizen:{ticket.visit_source}",
        at=now,
    )
    if satisfaction == "unsatisfied":
        ticket.status = "accepted"  # 重办: back to the same department, with a new deadline
        ticket.reopen_count += 1
        ticket.accepted_at = now
        ticket.finish_deadline = deadlines.finish_deadline(
            deadline_policy(), working_calendar(session), ticket.kind, ticket.urgent, now
        )
        ticket.finished_on_time = None
        _set_due(ticket, ticket.finish_deadline, now)
        _schedule(session, ticket, "finish", now, ticket.finish_deadline, now=now)
    else:
        ticket.status = "visited"
    return {
        "satisfaction": satisfaction,
        "resolved": resolved,
        "note": body.get("note"),
        "source": ticket.visit_source,
    }


def record_follow_up(
    session: Session,
    *,
    ticket: Ticket,
    satisfaction: str,
    source: str,
    actor: str,
    resolved: bool | None = None,
    at: datetime | None = None,
) -> FollowUp:
    """Record a citizen's verdict on the handling (回访) from ``source`` (``hotline``: an
    agent's call back; another channel, e.g. a portal, its own name) for the lead department,
    and count it on the ticket for the oversight reports. Changes no status: the hotline's
    visit action decides on reopening (重办) itself."""
    if satisfaction not in SATISFACTION:
        raise AppError("ticket.bad_satisfaction", f"satisfaction must be one of {SATISFACTION}")
    follow_up = FollowUp(
        ticket_id=ticket.id,
        department_code=ticket.lead_department,
        source=source,
        satisfaction=satisfaction,
        resolved=resolved,
        actor=actor,
        at=at or utcnow(),
    )
    session.add(follow_up)
    column = f"visits_{satisfaction}"
    setattr(ticket, column, (getattr(ticket, column) or 0) + 1)
    return follow_up


def _do_close(session, principal, ticket: Ticket, body, now) -> dict:
    ticket.status = "closed"
    ticket.closed_at = now
    _set_due(ticket, None, open_=False)
    return {"note": body.get("note")}


def _do_supervise(session, principal, ticket: Ticket, body, now) -> dict:
    note = (body.get("note") or "").strip()
    if not note:
        raise AppError("ticket.note_required", "supervision needs a note for the department")
    ticket.supervise_count += 1
    return {"note": note}


def _do_answer_directly(session, principal, ticket: Ticket, body, now) -> dict:
    answer = (body.get("answer") or "").strip()
    if not answer:
        raise AppError("ticket.answer_required", "say what the caller was told")
    ticket.status = "closed"
    ticket.reply = answer
    ticket.replied_at = ticket.closed_at = now
    ticket.first_contact_resolution = True
    ticket.resolved = True
    _set_due(ticket, None, open_=False)
    return {"answer": answer, "article": body.get("article_key")}


_HANDLERS = {
    "dispatch": _do_dispatch,
    "accept": _do_accept,
    "return": _do_return,
    "request-extension": _do_request_extension,
    "decide-extension": _do_decide_extension,
    "reply": _do_reply,
    "visit": _do_visit,
    "close": _do_close,
    "supervise": _do_supervise,
    "answer-directly": _do_answer_directly,
}


# -- duplicates ------------------------------------------------------------------------------------


_FOLLOWED = {"reply", "close", "answer-directly"}


def _follow_parent(session: Session, parent: Ticket, action: str, actor: str, now) -> None:
    """Linked duplicates follow their parent's reply and closing."""
    if action not in _FOLLOWED:
        return
    children = session.scalars(
        select(Ticket).where(Ticket.parent_id == parent.id, Ticket.status.in_(OPEN_STATUSES))
    ).all()
    for child in children:
        before = child.status
        child.status = parent.status
        child.reply = parent.reply
        child.replied_at = parent.replied_at
        child.closed_at = parent.closed_at
        _set_due(child, None, open_=False)
        _record(session, child, "follow_parent", actor, before, parent=parent.number)
        publish_change(session, child, "ticket.follow_parent", parent=parent.number)


def merge_into(session: Session, principal: Principal, child: Ticket, parent: Ticket) -> None:
    """并单: ``child`` goes under ``parent``. It leaves its departments' inboxes (its clock
    stops; the parent's runs) and later follows the parent's reply and closing."""
    before = child.status
    child.parent_id = parent.id
    child.updated_at = utcnow()
    _set_due(child, None, open_=False)
    _record(session, child, "merge", principal.username, before, parent=parent.number)
    _flush(session)
    publish_change(session, child, "ticket.merged", parent=parent.number)


def unmerge_from(session: Session, principal: Principal, child: Ticket) -> None:
    """Undo ``merge_into``: the child, if still in a department's hands, is back in its inbox
    against the deadline it had (an accept deadline already passed shows as overdue)."""
    parent = parent_number(session, child)
    before = child.status
    child.parent_id = None
    child.updated_at = utcnow()
    if child.status in INBOX_STATUSES:
        running = {"dispatched": child.accept_deadline, "accepted": child.finish_deadline}
        start = child.accepted_at if child.status == "accepted" else child.dispatched_at
        _set_due(child, running.get(child.status), start)
    _record(session, child, "unmerge", principal.username, before, parent=parent)
    _flush(session)
    publish_change(session, child, "ticket.unmerged", parent=parent)


def link(session: Session, principal: Principal, number: str, parent_number: str) -> Ticket:
    if not principal.roles & HOTLINE_ROLES:
        raise Forbidden("auth.forbidden", "only hotline staff link duplicates")
    ticket = get(session, principal, number)
    parent = get(session, principal, parent_number)
    if parent.id == ticket.id or parent.parent_id is not None:
        raise Conflict(
            "ticket.bad_link", "link to an original ticket, not to itself or a duplicate"
        )
    if session.scalar(select(func.count()).where(Ticket.parent_id == ticket.id)):
        raise Conflict("ticket.bad_link", "this ticket has duplicates of its own; link those")
    before = ticket.status
    ticket.parent_id = parent.id
    _record(session, ticket, "link", principal.username, before, parent=parent.number)
    _flush(session)
    return ticket


def unlink(session: Session, principal: Principal, number: str) -> Ticket:
    if not principal.roles & HOTLINE_ROLES:
        raise Forbidden("auth.forbidden", "only hotline staff unlink duplicates")
    ticket = get(session, principal, number)
    if ticket.parent_id is None:
        raise Conflict("ticket.bad_link", "this ticket is not linked")
    ticket.parent_id = None
    _record(session, ticket, "unlink", principal.username, ticket.status)
    _flush(session)
    return ticket


def children_numbers(session: Session, ticket: Ticket) -> list[str]:
    return list(
        session.scalars(
            select(Ticket.number).where(Ticket.parent_id == ticket.id).order_by(Ticket.id)
        )
    )


def parent_number(session: Session, ticket: Ticket) -> str | None:
    if ticket.parent_id is None:
        return None
    return session.scalar(select(Ticket.number).where(Ticket.id == ticket.parent_id))


# -- reports ---------------------------------------------------------------------------------------


REPORT_GROUPS = {
    "department": Ticket.lead_department,
    "matter": Ticket.matter_code,
    "area": Ticket.area_code,
}


def report(
    session: Session,
    principal: Principal,
    *,
    by: str,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """Per department, matter or area: received, on-time acceptance and finishing, returns,
    satisfaction over the tickets received in [start, end), and open and overdue right now."""
    if by not in REPORT_GROUPS:
        raise AppError("report.bad_group", f"by must be one of {list(REPORT_GROUPS)}")
    tz = get_settings().tz
    start = start if start.tzinfo else start.replace(tzinfo=tz)
    end = end if end.tzinfo else end.replace(tzinfo=tz)
    if end <= start:
        raise AppError("report.bad_range", "end must be after start")
    key = REPORT_GROUPS[by]
    now = utcnow()
    satisfied = Ticket.satisfaction.in_(("satisfied", "basically_satisfied"))
    query = (
        select(
            key.label("key"),
            func.count().label("received"),
            func.count().filter(Ticket.accepted_on_time.is_(True)).label("accepted_on_time"),
            func.count().filter(Ticket.accepted_at.is_not(None)).label("accepted"),
            func.count().filter(Ticket.finished_on_time.is_(True)).label("finished_on_time"),
            func.count().filter(Ticket.replied_at.is_not(None)).label("finished"),
            func.count().filter(satisfied).label("satisfied"),
            func.count().filter(Ticket.satisfaction.is_not(None)).label("visited"),
            # The last 回访 made by the citizen in the app, not by an agent's call.
            func.count().filter(Ticket.visit_source == "app").label("visited_in_app"),
            func.count().filter(Ticket.status.in_(OPEN_STATUSES)).label("open_now"),
            func.count()
            .filter(and_(Ticket.status.in_(OPEN_STATUSES), Ticket.due_at < now))
            .label("overdue_now"),
        )
        .where(Ticket.received_at >= start, Ticket.received_at < end)
        .group_by(key)
        .order_by(key)
    )
    if not principal.roles & HOTLINE_ROLES:
        query = query.where(
            or_(
                Ticket.lead_department.in_(sorted(principal.departments)),
                Ticket.id.in_(
                    select(TicketDepartment.ticket_id).where(
                        TicketDepartment.department_code.in_(sorted(principal.departments))
                    )
                ),
            )
        )
    returns = _returns(session, principal, by, start, end)
    rows = []
    seen = set()
    for r in session.execute(query):
        seen.add(r.key)
        rows.append(
            {
                "key": r.key,
                "received": r.received,
                "accepted_on_time": r.accepted_on_time,
                "finished_on_time": r.finished_on_time,
                "returns": returns.get(r.key, 0),
                "satisfaction_rate": round(r.satisfied / r.visited, 4) if r.visited else None,
                "visited": r.visited,
                "visited_in_app": r.visited_in_app,
                "open_now": r.open_now,
                "overdue_now": r.overdue_now,
            }
        )
    # A department that returned tickets but leads none of the window's tickets still shows.
    for key in sorted(set(returns) - seen, key=str):
        rows.append(
            {
                "key": key,
                "received": 0,
                "accepted_on_time": 0,
                "finished_on_time": 0,
                "returns": returns[key],
                "satisfaction_rate": None,
                "visited": 0,
                "visited_in_app": 0,
                "open_now": 0,
                "overdue_now": 0,
            }
        )
    return rows


def _returns(
    session: Session, principal: Principal, by: str, start: datetime, end: datetime
) -> dict[Any, int]:
    """Returns (退回) of the window's tickets, counted for the department that returned them."""
    key = TicketAction.department_code if by == "department" else REPORT_GROUPS[by]
    query = (
        select(key, func.count())
        .select_from(TicketAction)
        .join(Ticket, Ticket.id == TicketAction.ticket_id)
        .where(
            TicketAction.action == "return",
            Ticket.received_at >= start,
            Ticket.received_at < end,
        )
        .group_by(key)
    )
    if not principal.roles & HOTLINE_ROLES:
        query = query.where(TicketAction.department_code.in_(sorted(principal.departments)))
    return {k: n for k, n in session.execute(query)}
