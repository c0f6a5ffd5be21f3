"""knowledgebase: the caller's question on error reports, and searches that found nothing

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-05 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hotline.core.db import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kb_flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("question", sa.String(length=500), nullable=True))
    op.create_table(
        "kb_search_gaps",
        sa.Column("query", sa.String(length=100), nullable=False),
        sa.Column("searches", sa.Integer(), nullable=False),
        sa.Column("first_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("query", name=op.f("pk_kb_search_gaps")),
    )
    with op.batch_alter_table("kb_search_gaps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_search_gaps_last_at"), ["last_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kb_search_gaps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_search_gaps_last_at"))
    op.drop_table("kb_search_gaps")
    with op.batch_alter_table("kb_flags", schema=None) as batch_op:
        batch_op.drop_column("question")
