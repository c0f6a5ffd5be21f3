"""hot spots: surges and incidents the detector found, and their tickets

Revision ID: 0016h
Revises: 0018
Create Date: 2026-12-05 11:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hotline.core.db import UTCDateTime

revision: str = "0016h"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hotspots",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("matter_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=12), nullable=True),
        sa.Column("area_code", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("first_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=True),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("parent_ticket_id", BigIntId, nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["parent_ticket_id"], ["tickets.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hotspots_first_at", "hotspots", ["first_at"])
    op.create_index("ix_hotspots_status_last_at", "hotspots", ["status", "last_at"])
    op.create_table(
        "hotspot_tickets",
        sa.Column("hotspot_id", BigIntId, nullable=False),
        sa.Column("ticket_id", BigIntId, nullable=False),
        sa.ForeignKeyConstraint(["hotspot_id"], ["hotspots.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hotspot_id", "ticket_id"),
    )
    op.create_index("ix_hotspot_tickets_ticket_id", "hotspot_tickets", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_hotspot_tickets_ticket_id", table_name="hotspot_tickets")
    op.drop_table("hotspot_tickets")
    op.drop_index("ix_hotspots_status_last_at", table_name="hotspots")
    op.drop_index("ix_hotspots_first_at", table_name="hotspots")
    op.drop_table("hotspots")
