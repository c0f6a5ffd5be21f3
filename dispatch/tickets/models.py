"""Tables of the ticket lifecycle: tickets, the departments on them, their trail and extensions.

Department codes and matter codes are kept as plain strings with foreign keys to the routing
tables, and the routing decision is copied into the ticket as taken (``routing``), so that a
later change of the rules never rewrites the history of a ticket.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.core.db import Base, UTCDateTime, utcnow

BigIntId = BigInteger().with_variant(Integer(), "sqlite")


# What the oversight reports (dispatch.oversight) read of a ticket besides its receipt.
REPORTED = (
    "id",
    "lead_department",
    "area_code",
    "matter_code",
    "status",
    "accepted_on_time",
    "finished_on_time",
    "reopen_count",
    "due_at",
    "visits_satisfied",
    "visits_basically_satisfied",
    "visits_unsatisfied",
)


# How a ticket's row is locked for a change (an action, a deadline job): FOR NO KEY UPDATE on
# PostgreSQL. A plain FOR UPDATE would also hold back every insert that only references the
# ticket (a hot spot's member, a trail entry): a new ticket joining an incident would wait for
# a department's action on an older one, and could deadlock with it over the daily roll-up.
TICKET_ROW_LOCK = {"key_share": True}


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    caller_name: Mapped[str] = mapped_column(String(64), default="")
    caller_phone: Mapped[str] = mapped_column(String(32), default="", index=True)
    content: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(500), default="")
    town_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    area_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    matter_code: Mapped[str] = mapped_column(ForeignKey("matters.code"))
    kind: Mapped[str] = mapped_column(String(8))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    rule_version: Mapped[str] = mapped_column(String(32))
    routing: Mapped[dict[str, Any]] = mapped_column(JSON)
    lead_department: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    status: Mapped[str] = mapped_column(String(24))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accept_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finish_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The deadline the ticket is running against now (accept or finish); None once answered.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # 80 % of the running clock: from then on the ticket shows as due soon (yellow).
    due_soon_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accepted_on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    finished_on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    satisfaction: Mapped[str | None] = mapped_column(String(24), nullable=True)
    resolved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # Who made the last 回访: "hotline" (an agent's call) or a citizen channel ("app"), so
    # oversight counts citizens' own ratings apart from the agents' visits.
    visit_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    first_contact_resolution: Mapped[bool] = mapped_column(Boolean, default=False)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # How the follow-up visits (follow_ups) judged the handling, counted here as well: the
    # oversight reports read a month of tickets in one pass instead of joining every visit.
    visits_satisfied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visits_basically_satisfied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visits_unsatisfied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    supervise_count: Mapped[int] = mapped_column(Integer, default=0)
    # Departments that may no longer return this ticket: the dispatcher's final ruling (审定).
    ruled_departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    departments: Mapped[list[TicketDepartment]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", back_populates="ticket"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_tickets_duplicates", "caller_phone", "matter_code", "received_at"),
        # On PostgreSQL the columns the oversight reports count ride along in the index, so
        # a month (or a year, for the trends) is read from it alone, not from the wide rows.
        Index("ix_tickets_received_at", "received_at", postgresql_include=list(REPORTED)),
        # Open tickets by deadline; what the oversight reports count as overdue rides along.
        Index(
            "ix_tickets_status_due_at",
            "status",
            "due_at",
            postgresql_include=["received_at", "lead_department", "area_code"],
        ),
        Index("ix_tickets_parent_id", "parent_id"),
    )


class TicketDepartment(Base):
    """A department on a ticket: the lead (主办) or a co-handler (协办).

    ``due_at`` and ``open`` repeat the ticket's so that a department's inbox is one index scan
    even with millions of tickets.
    """

    __tablename__ = "ticket_departments"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))  # lead | co
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    due_soon_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    ticket: Mapped[Ticket] = relationship(back_populates="departments")

    __table_args__ = (
        Index("ix_ticket_departments_inbox", "department_code", "open", "due_at", "ticket_id"),
    )


class TicketAction(Base):
    """The append-only trail: every action on a ticket, with its actor and time."""

    __tablename__ = "ticket_actions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    department_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_ticket_actions_ticket_id", "ticket_id", "id"),
        # Reports count one kind of action (returns) over a period's tickets: the few rows of
        # that action, not every ticket's whole trail.
        Index(
            "ix_ticket_actions_action",
            "action",
            "ticket_id",
            postgresql_include=["department_code"],
        ),
    )


class FollowUp(Base):
    """One follow-up visit (回访) and the citizen's verdict on the handling.

    ``source`` says who asked: ``hotline`` (an agent's call back, the ``visit`` action) or
    another channel with its own rating (a citizens' portal); satisfaction figures are counted
    per source and summed, so a new source is a new value here, not a new table.
    ``department_code`` is the lead department whose handling was judged, as it was then.
    """

    __tablename__ = "follow_ups"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    department_code: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16), default="hotline")
    # satisfied | basically_satisfied | unsatisfied
    satisfaction: Mapped[str] = mapped_column(String(24))
    resolved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_follow_ups_ticket_id", "ticket_id"),)


class ExtensionRequest(Base):
    """A department's request for more time (延期), and the decision on it."""

    __tablename__ = "extension_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    department_code: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    working_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|approved|rejected
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_extension_requests_ticket_id", "ticket_id"),)


class CalendarOverride(Base):
    """A day an admin declared a holiday or a working day, over the Chinese calendar."""

    __tablename__ = "calendar_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64))
