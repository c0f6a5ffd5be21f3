"""tickets: follow-up visits (回访) as records with their source, counted on the ticket; an
index for reports

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-05 11:00:00.000000

Visits so far live only in the trail (ticket_actions, action "visit"): they are copied into
follow_ups, so the oversight figures count every visit, not only a ticket's latest verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hotline.core.db

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REPORTED = [
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
]


def upgrade() -> None:
    follow_ups = op.create_table(
        "follow_ups",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("ticket_id", BigIntId, nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("satisfaction", sa.String(length=24), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", hotline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_follow_ups_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
    )
    op.create_index("ix_follow_ups_ticket_id", "follow_ups", ["ticket_id"], unique=False)
    op.create_index(
        "ix_ticket_actions_action",
        "ticket_actions",
        ["action", "ticket_id"],
        unique=False,
        postgresql_include=["department_code"],
    )
    for verdict in ("satisfied", "basically_satisfied", "unsatisfied"):
        with op.batch_alter_table("tickets", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(f"visits_{verdict}", sa.Integer(), server_default="0", nullable=False)
            )
    _copy_visits_from_the_trail(follow_ups)
    # The same index on PostgreSQL carries what the reports count (an index-only scan).
    op.drop_index("ix_tickets_received_at", table_name="tickets")
    op.create_index(
        "ix_tickets_received_at",
        "tickets",
        ["received_at"],
        unique=False,
        postgresql_include=list(REPORTED),
    )
    for verdict in ("satisfied", "basically_satisfied", "unsatisfied"):
        op.execute(
            f"UPDATE tickets SET visits_{verdict} = (SELECT count(*) FROM follow_ups "
            f"WHERE follow_ups.ticket_id = tickets.id AND follow_ups.satisfaction = '{verdict}') "
            f"WHERE EXISTS (SELECT 1 FROM follow_ups WHERE follow_ups.ticket_id = tickets.id)"
        )


def _copy_visits_from_the_trail(follow_ups: sa.Table) -> None:
    actions = sa.table(
        "ticket_actions",
        sa.column("ticket_id", BigIntId),
        sa.column("actor", sa.String()),
        sa.column("at", hotline.core.db.UTCDateTime(timezone=True)),
        sa.column("department_code", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("action", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            actions.c.ticket_id,
            actions.c.actor,
            actions.c.at,
            actions.c.department_code,
            actions.c.detail,
        ).where(actions.c.action == "visit")
    )
    batch = []
    for row in rows:
        detail = row.detail or {}
        if detail.get("satisfaction") not in ("satisfied", "basically_satisfied", "unsatisfied"):
            continue
        batch.append(
            {
                "ticket_id": row.ticket_id,
                "department_code": row.department_code or "",
                "source": "hotline",
                "satisfaction": detail["satisfaction"],
                "resolved": detail.get("resolved"),
                "actor": row.actor,
                "at": row.at,
            }
        )
    if batch:
        op.bulk_insert(follow_ups, batch)


def downgrade() -> None:
    op.drop_index("ix_tickets_received_at", table_name="tickets")
    op.create_index("ix_tickets_received_at", "tickets", ["received_at"], unique=False)
    for verdict in ("satisfied", "basically_satisfied", "unsatisfied"):
        # Not batch mode: on SQLite it would copy the table and drop the old one, and the drop
        # would cascade to every ticket's trail, departments and visits. SQLite (3.35+) drops
        # a column in place.
        op.execute(f"ALTER TABLE tickets DROP COLUMN visits_{verdict}")
    op.drop_index("ix_ticket_actions_action", table_name="ticket_actions")
    op.drop_index("ix_follow_ups_ticket_id", table_name="follow_ups")
    op.drop_table("follow_ups")
