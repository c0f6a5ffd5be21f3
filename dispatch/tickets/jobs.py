"""Deadline jobs: reminders to the department and the overdue mark, run by rq at their time.

Each job re-reads the ticket in its own transaction and does nothing unless the ticket is still
running against the deadline it was scheduled for: an accepted, extended or closed ticket makes
its old jobs harmless, and a job run twice leaves one trace. Each job locks the ticket's row
first: two runs at the same time (rq retrying a job whose worker seemed dead while it was only
slow) then take turns, and the second sees the first one's trace.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatch.tickets import deadlines
from dispatch.tickets.models import TICKET_ROW_LOCK, Ticket, TicketAction
from dispatch.tickets.service import _schedule, publish_change
from hotline.core.db import transaction
from hotline.core.events import publish_after_commit

_RUNNING = {"accept": ("dispatched", "accept_deadline"), "finish": ("accepted", "finish_deadline")}


def _still_running(ticket: Ticket | None, which: str, deadline_iso: str) -> bool:
    if ticket is None:
        return False
    status, column = _RUNNING[which]
    deadline = getattr(ticket, column)
    # A ticket merged under a parent (并单) has no running clock (due_at None): the parent's
    # deadline is the one the department is held to.
    return (
        ticket.status == status
        and ticket.due_at is not None
        and deadline is not None
        and (deadline == datetime.fromisoformat(deadline_iso))
    )


def _already(session, ticket: Ticket, action: str, which: str, deadline_iso: str, label=None):
    for row in session.scalars(
        select(TicketAction).where(
            TicketAction.ticket_id == ticket.id, TicketAction.action == action
        )
    ):
        if (
            row.detail.get("which") == which
            and row.detail.get("deadline") == deadline_iso
            and (label is None or row.detail.get("label") == label)
        ):
            return True
    return False


def remind(ticket_id: int, which: str, deadline_iso: str, label: str) -> str:
    """Remind the department that a deadline approaches (at 80 % of the time, one hour left)."""
    with transaction() as session:
        ticket = session.get(Ticket, ticket_id, with_for_update=TICKET_ROW_LOCK)
        if not _still_running(ticket, which, deadline_iso):
            return "not running"
        if _already(session, ticket, "reminder", which, deadline_iso, label):
            return "already reminded"
        session.add(
            TicketAction(
                ticket_id=ticket.id,
                action="reminder",
                actor="system",
                from_status=ticket.status,
                to_status=ticket.status,
                department_code=ticket.lead_department,
                detail={"which": which, "label": label, "deadline": deadline_iso},
            )
        )
        publish_change(session, ticket, "ticket.reminder", which=which, label=label)
        return "reminded"


def deadline_passed(ticket_id: int, which: str, deadline_iso: str) -> str:
    """Mark the ticket overdue and tell the supervisors, if the deadline passed unmet."""
    with transaction() as session:
        ticket = session.get(Ticket, ticket_id, with_for_update=TICKET_ROW_LOCK)
        if not _still_running(ticket, which, deadline_iso):
            return "not running"
        if _already(session, ticket, "overdue", which, deadline_iso):
            return "already marked"
        ticket.overdue = True
        if which == "accept":
            ticket.accepted_on_time = False
        session.add(
            TicketAction(
                ticket_id=ticket.id,
                action="overdue",
                actor="system",
                from_status=ticket.status,
                to_status=ticket.status,
                department_code=ticket.lead_department,
                detail={"which": which, "deadline": deadline_iso},
            )
        )
        publish_change(session, ticket, "ticket.overdue", which=which)
        publish_after_commit(
            session,
            "kpi.alerts",
            "ticket.overdue",
            {"number": ticket.number, "department": ticket.lead_department, "which": which},
        )
        return "marked overdue"


def reschedule_running(session: Session) -> int:
    """Ask again for the reminders and the deadline check of every ticket running against a
    deadline; returns how many tickets. For after Redis lost its data: once the outbox handed
    a scheduled job to rq, Redis alone held it.

    Job ids are the ones the service gave, so a job Redis still holds is not asked for twice;
    reminders whose time has passed are left out and a passed deadline is checked at once,
    as when the clock started.
    """
    count = 0
    for which, (status, column) in _RUNNING.items():
        tickets = session.scalars(
            select(Ticket).where(Ticket.status == status, getattr(Ticket, column).is_not(None))
        )
        for ticket in tickets:
            # In the hotline's time zone, as the service gave it: the job ids carry it.
            deadline = getattr(ticket, column).astimezone(deadlines.HOTLINE_TZ)
            # The clock's start is not stored, its 80 % point is: start = D - (D - 80 %) / 20 %.
            start = ticket.received_at
            if ticket.due_soon_at is not None:
                start = deadline - (deadline - ticket.due_soon_at) * 100 / (
                    100 - deadlines.DUE_SOON_PERCENT
                )
            _schedule(session, ticket, which, start, deadline)
            count += 1
    return count
