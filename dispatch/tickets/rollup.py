"""The tickets counted per day (日汇总 daily roll-up), kept in step with every change.

The oversight reports (dispatch.oversight) compare departments over months; read from the
tickets themselves, a year's trend is a million rows. ``ticket_days`` holds, per local day of
receipt (``HOTLINE_TIMEZONE``), department and area, the counts those reports take from the
ticket rows, the returns and the approved extensions, so a year is a few hundred thousand
small rows at most, summed; ``follow_up_days`` does the same for the visits of each source.
What depends on the moment of asking (overdue now) is not here.

It is written in the same transaction as the change it follows: a ``before_flush`` hook
compares each changed ticket (return, extension request) with its row still in the database
and adds the difference. Rows written around the ORM (bulk inserts of generated histories, a
migration) are followed by ``rebuild``, which counts everything again.

A row counts for:
  tickets           its lead department: received, accepted (on time), finished (on time),
                    reopened, and its visits' verdicts; a ticket under a parent (merged or a
                    linked duplicate) only its visits' verdicts
  returns           the department that returned it, once however often (``returned``)
  extensions        the department granted more time, once however often (``extended``)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Index, Integer, String, delete, event, func, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from dispatch.tickets.models import ExtensionRequest, FollowUp, Ticket, TicketAction
from hotline.core.db import Base
from hotline.core.settings import get_settings

NO_AREA = ""  # the key of tickets no place was found for (a key cannot be NULL)
TICKET_FIGURES = (
    "received",
    "accepted",
    "accepted_on_time",
    "finished",
    "finished_on_time",
    "reopened",
    "visits_satisfied",
    "visits_basically_satisfied",
    "visits_unsatisfied",
)
FIGURES = (*TICKET_FIGURES, "returned", "extended")
# What a ticket's contribution is computed from: a change to any of these moves it.
_READ = (
    "received_at",
    "parent_id",
    "lead_department",
    "area_code",
    "accepted_on_time",
    "finished_on_time",
    "reopen_count",
    "visits_satisfied",
    "visits_basically_satisfied",
    "visits_unsatisfied",
)


class TicketDay(Base):
    __tablename__ = "ticket_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    department_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    received: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accepted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accepted_on_time: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    finished: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    finished_on_time: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reopened: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visits_satisfied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visits_basically_satisfied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visits_unsatisfied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    returned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    extended: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class FollowUpDay(Base):
    """The follow-up visits (回访) per day of the tickets' receipt, the department judged,
    area, who asked (``follow_ups.source``) and the verdict."""

    __tablename__ = "follow_up_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    department_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    satisfaction: Mapped[str] = mapped_column(String(24), primary_key=True)
    visits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        # One source's visits over a year (the trends of a chosen source), from the index.
        Index(
            "ix_follow_up_days_source",
            "source",
            "day",
            postgresql_include=["department_code", "area_code", "satisfaction", "visits"],
        ),
    )


Key = tuple[date, str, str]
VisitKey = tuple[date, str, str, str, str]
_VISIT_KEY = ("day", "department_code", "area_code", "source", "satisfaction")


def local_day(moment: datetime) -> date:
    return moment.astimezone(get_settings().tz).date()


def _key(received_at: datetime, department: str, area: str | None) -> Key:
    return (local_day(received_at), department, area or NO_AREA)


def _ticket_counts(values: Any) -> dict[str, int]:
    visits = {
        "visits_satisfied": values.visits_satisfied or 0,
        "visits_basically_satisfied": values.visits_basically_satisfied or 0,
        "visits_unsatisfied": values.visits_unsatisfied or 0,
    }
    if values.parent_id is not None:
        # Merged under another ticket (并单) or linked to it as a duplicate: one piece of work
        # for the department, counted on the parent; its own caller's verdicts still count.
        return {**dict.fromkeys(TICKET_FIGURES, 0), **visits}
    accepted, finished = values.accepted_on_time, values.finished_on_time
    return {
        "received": 1,
        "accepted": int(accepted is not None),
        "accepted_on_time": int(accepted is True),
        "finished": int(finished is not None),
        "finished_on_time": int(finished is True),
        "reopened": int((values.reopen_count or 0) > 0),
        "visits_satisfied": values.visits_satisfied or 0,
        "visits_basically_satisfied": values.visits_basically_satisfied or 0,
        "visits_unsatisfied": values.visits_unsatisfied or 0,
    }


class _Deltas:
    def __init__(self) -> None:
        self.by_key: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
        self.visits: dict[VisitKey, int] = defaultdict(int)

    def add(self, key: Key, counts: dict[str, int], sign: int) -> None:
        row = self.by_key[key]
        for name, n in counts.items():
            row[name] += sign * n


def _changed(obj: Any, names: tuple[str, ...]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _stored_ticket(session: Session, ticket_id: int) -> Any:
    """The ticket's row as the database still has it (before this flush writes it)."""
    columns = [getattr(Ticket, name) for name in _READ]
    return session.execute(select(*columns).where(Ticket.id == ticket_id)).one_or_none()


def _keyed_departments(session: Session, ticket_id: int) -> tuple[set[str], set[str]]:
    """The departments that returned the ticket, and those granted more time on it."""
    returned = session.scalars(
        select(TicketAction.department_code)
        .where(TicketAction.ticket_id == ticket_id, TicketAction.action == "return")
        .distinct()
    )
    extended = session.scalars(
        select(ExtensionRequest.department_code)
        .where(ExtensionRequest.ticket_id == ticket_id, ExtensionRequest.status == "approved")
        .distinct()
    )
    return {d for d in returned if d}, {d for d in extended if d}


def _visits_of(session: Session, ticket_id: int) -> list[tuple[str, str, str, int]]:
    """The ticket's follow-ups as (department, source, verdict, how many)."""
    query = (
        select(FollowUp.department_code, FollowUp.source, FollowUp.satisfaction, func.count())
        .where(FollowUp.ticket_id == ticket_id)
        .group_by(FollowUp.department_code, FollowUp.source, FollowUp.satisfaction)
    )
    return [tuple(row) for row in session.execute(query)]


def _follow_ticket(session: Session, ticket: Ticket, deltas: _Deltas, deleted: bool) -> None:
    stored = ticket not in session.new and ticket.id is not None
    if stored and not deleted and not _changed(ticket, _READ):
        return
    old = _stored_ticket(session, ticket.id) if stored else None
    if old is not None:
        old_key = _key(old.received_at, old.lead_department, old.area_code)
        deltas.add(old_key, _ticket_counts(old), -1)
    if not deleted:
        deltas.add(
            _key(ticket.received_at, ticket.lead_department, ticket.area_code),
            _ticket_counts(ticket),
            +1,
        )
    moved = old is not None and (
        deleted
        or local_day(old.received_at) != local_day(ticket.received_at)
        or (old.area_code or NO_AREA) != (ticket.area_code or NO_AREA)
    )
    if moved:  # its returns and extensions are counted on its day and area too
        returned, extended = _keyed_departments(session, ticket.id)
        for figure, departments in (("returned", returned), ("extended", extended)):
            for department in departments:
                deltas.add(_key(old.received_at, department, old.area_code), {figure: 1}, -1)
                if not deleted:
                    new_key = _key(ticket.received_at, department, ticket.area_code)
                    deltas.add(new_key, {figure: 1}, +1)
        for department, source, verdict, n in _visits_of(session, ticket.id):
            key = _key(old.received_at, department, old.area_code)
            deltas.visits[(*key, source, verdict)] -= n
            if not deleted:
                key = _key(ticket.received_at, department, ticket.area_code)
                deltas.visits[(*key, source, verdict)] += n


def _ticket_of(session: Session, ticket_id: int | None) -> Ticket | None:
    return session.get(Ticket, ticket_id) if ticket_id is not None else None


def _follow_return(
    session: Session, action: TicketAction, deltas: _Deltas, seen: set[tuple[int, str]]
) -> None:
    ticket = _ticket_of(session, action.ticket_id)
    if ticket is None or not action.department_code:
        return
    pair = (ticket.id, action.department_code)
    if pair in seen:
        return
    seen.add(pair)
    before = session.scalar(
        select(func.count())
        .select_from(TicketAction)
        .where(
            TicketAction.ticket_id == ticket.id,
            TicketAction.action == "return",
            TicketAction.department_code == action.department_code,
        )
    )
    if not before:
        key = _key(ticket.received_at, action.department_code, ticket.area_code)
        deltas.add(key, {"returned": 1}, +1)


def _follow_extension(
    session: Session, request: ExtensionRequest, deltas: _Deltas, seen: set[tuple[int, str]]
) -> None:
    if request not in session.new and not _changed(request, ("status",)):
        return
    was = None
    if request.id is not None and request not in session.new:
        was = session.scalar(
            select(ExtensionRequest.status).where(ExtensionRequest.id == request.id)
        )
    if (was == "approved") == (request.status == "approved"):
        return
    ticket = _ticket_of(session, request.ticket_id)
    if ticket is None:
        return
    pair = (ticket.id, request.department_code)
    others = session.scalar(
        select(func.count())
        .select_from(ExtensionRequest)
        .where(
            ExtensionRequest.ticket_id == ticket.id,
            ExtensionRequest.department_code == request.department_code,
            ExtensionRequest.status == "approved",
            ExtensionRequest.id != (request.id if request.id is not None else -1),
        )
    )
    if others or (request.status == "approved" and pair in seen):
        return
    seen.add(pair)
    key = _key(ticket.received_at, request.department_code, ticket.area_code)
    deltas.add(key, {"extended": 1}, +1 if request.status == "approved" else -1)


def _follow_visit(session: Session, visit: FollowUp, deltas: _Deltas) -> None:
    ticket = _ticket_of(session, visit.ticket_id)
    if ticket is not None:
        key = _key(ticket.received_at, visit.department_code, ticket.area_code)
        deltas.visits[(*key, visit.source, visit.satisfaction)] += 1


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    deltas = _Deltas()
    returns_seen: set[tuple[int, str]] = set()
    extensions_seen: set[tuple[int, str]] = set()
    with session.no_autoflush:
        for obj in list(session.new) + list(session.dirty):
            if isinstance(obj, Ticket):
                _follow_ticket(session, obj, deltas, deleted=False)
        for obj in list(session.deleted):
            if isinstance(obj, Ticket):
                _follow_ticket(session, obj, deltas, deleted=True)
        for obj in list(session.new):
            if isinstance(obj, TicketAction) and obj.action == "return":
                _follow_return(session, obj, deltas, returns_seen)
            elif isinstance(obj, FollowUp):
                _follow_visit(session, obj, deltas)
        for obj in list(session.new) + list(session.dirty):
            if isinstance(obj, ExtensionRequest):
                _follow_extension(session, obj, deltas, extensions_seen)
    _apply(session, deltas.by_key)
    _apply_visits(session, deltas.visits)


def _insert(connection: Any) -> Any:
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert


def _apply_visits(session: Session, visits: dict[VisitKey, int]) -> None:
    connection = session.connection()
    table = FollowUpDay.__table__
    for key, n in sorted(visits.items()):
        if not n:
            continue
        values = dict(zip(_VISIT_KEY, key, strict=True))
        statement = _insert(connection)(table).values(**values, visits=n)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=list(_VISIT_KEY),
                set_={"visits": table.c.visits + statement.excluded.visits},
            )
        )


def _apply(session: Session, by_key: dict[Key, dict[str, int]]) -> None:
    """Add the differences, in key order (two transactions never wait on each other's rows
    in opposite orders within a flush)."""
    rows = [
        {"day": k[0], "department_code": k[1], "area_code": k[2], **counts}
        for k, counts in sorted(by_key.items())
        if any(counts.values())
    ]
    if not rows:
        return
    connection = session.connection()
    table = TicketDay.__table__
    for row in rows:
        statement = _insert(connection)(table).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=["day", "department_code", "area_code"],
            set_={name: table.c[name] + statement.excluded[name] for name in FIGURES},
        )
        connection.execute(statement)


def rebuild(session: Session) -> int:
    """Count everything again from the tickets, returns and extensions (after rows were
    written around the ORM, or a change of HOTLINE_TIMEZONE); returns the rows written."""
    by_key: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    places: dict[int, tuple[datetime, str | None]] = {}
    columns = [Ticket.id, *(getattr(Ticket, name) for name in _READ)]
    for row in session.execute(select(*columns).execution_options(yield_per=20_000)):
        places[row.id] = (row.received_at, row.area_code)
        counts = by_key[_key(row.received_at, row.lead_department, row.area_code)]
        for name, n in _ticket_counts(row).items():
            counts[name] += n
    for figure, query in (
        (
            "returned",
            select(TicketAction.ticket_id, TicketAction.department_code)
            .where(TicketAction.action == "return", TicketAction.department_code.is_not(None))
            .distinct(),
        ),
        (
            "extended",
            select(ExtensionRequest.ticket_id, ExtensionRequest.department_code)
            .where(ExtensionRequest.status == "approved")
            .distinct(),
        ),
    ):
        for ticket_id, department in session.execute(query):
            if ticket_id in places:
                received_at, area = places[ticket_id]
                by_key[_key(received_at, department, area)][figure] += 1
    visits: dict[VisitKey, int] = defaultdict(int)
    query = select(
        FollowUp.ticket_id, FollowUp.department_code, FollowUp.source, FollowUp.satisfaction
    ).execution_options(yield_per=20_000)
    for ticket_id, department, source, verdict in session.execute(query):
        if ticket_id in places:
            received_at, area = places[ticket_id]
            visits[(*_key(received_at, department, area), source, verdict)] += 1
    session.execute(delete(FollowUpDay))
    visit_rows = [
        {**dict(zip(_VISIT_KEY, key, strict=True)), "visits": n}
        for key, n in sorted(visits.items())
    ]
    for start in range(0, len(visit_rows), 10_000):
        session.execute(insert(FollowUpDay), visit_rows[start : start + 10_000])
    session.execute(delete(TicketDay))
    rows = [
        {"day": k[0], "department_code": k[1], "area_code": k[2], **counts}
        for k, counts in sorted(by_key.items())
    ]
    for start in range(0, len(rows), 10_000):
        session.execute(insert(TicketDay), rows[start : start + 10_000])
    return len(rows)
