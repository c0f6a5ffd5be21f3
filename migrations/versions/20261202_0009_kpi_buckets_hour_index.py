"""hotline: index kpi_buckets by hour for answer rates over all queues

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kpi_buckets", schema=None) as batch_op:
        batch_op.create_index("ix_kpi_buckets_hour", ["hour"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kpi_buckets", schema=None) as batch_op:
        batch_op.drop_index("ix_kpi_buckets_hour")
