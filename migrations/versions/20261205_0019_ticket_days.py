"""ticket_days, follow_up_days: the tickets and visits counted per day, department and area
for the oversight reports;
the open tickets' deadline index carries what "overdue now" counts

Revision ID: 0019
Revises: 0016h
Create Date: 2026-12-05 12:00:00.000000

The roll-up is filled from the tickets already there (``dispatch.tickets.rollup.rebuild``);
from then on every ticket change keeps it in step, in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0019"
down_revision: str | None = "0016h"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = (
    "received",
    "accepted",
    "accepted_on_time",
    "finished",
    "finished_on_time",
    "reopened",
    "visits_satisfied",
    "visits_basically_satisfied",
    "visits_unsatisfied",
    "returned",
    "extended",
)


def upgrade() -> None:
    op.create_table(
        "ticket_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("area_code", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in FIGURES),
        sa.PrimaryKeyConstraint("day", "department_code", "area_code", name=op.f("pk_ticket_days")),
    )
    op.create_table(
        "follow_up_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("area_code", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("satisfaction", sa.String(length=24), nullable=False),
        sa.Column("visits", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "department_code",
            "area_code",
            "source",
            "satisfaction",
            name=op.f("pk_follow_up_days"),
        ),
    )
    op.create_index(
        "ix_follow_up_days_source",
        "follow_up_days",
        ["source", "day"],
        unique=False,
        postgresql_include=["department_code", "area_code", "satisfaction", "visits"],
    )
    op.drop_index("ix_tickets_status_due_at", table_name="tickets")
    op.create_index(
        "ix_tickets_status_due_at",
        "tickets",
        ["status", "due_at"],
        unique=False,
        postgresql_include=["received_at", "lead_department", "area_code"],
    )
    # The application's own count, so that the migration and the hook never disagree.
    from dispatch.tickets import rollup

    rollup.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_tickets_status_due_at", table_name="tickets")
    op.create_index("ix_tickets_status_due_at", "tickets", ["status", "due_at"], unique=False)
    op.drop_index("ix_follow_up_days_source", table_name="follow_up_days")
    op.drop_table("follow_up_days")
    op.drop_table("ticket_days")
