"""hotline: spread each queue-hour bucket over shard rows, so concurrent intakes do not queue

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 16:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kpi_buckets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shard", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.drop_constraint("pk_kpi_buckets", type_="primary")
        batch_op.create_primary_key("pk_kpi_buckets", ["queue", "hour", "shard"])


def downgrade() -> None:
    # Shards fold back into one row per queue and hour before the column goes.
    fields = (
        "offered", "answered", "answered_within", "abandoned", "short_abandoned",
        "wait_sum", "talk_sum", "talk_count",
    )  # fmt: skip
    sums = ", ".join(f"SUM({f})" for f in fields)
    op.execute(
        f"INSERT INTO kpi_buckets (queue, hour, shard, {', '.join(fields)}) "
        f"SELECT queue, hour, -1, {sums} FROM kpi_buckets GROUP BY queue, hour"
    )
    op.execute("DELETE FROM kpi_buckets WHERE shard <> -1")
    with op.batch_alter_table("kpi_buckets", schema=None) as batch_op:
        batch_op.drop_constraint("pk_kpi_buckets", type_="primary")
        batch_op.create_primary_key("pk_kpi_buckets", ["queue", "hour"])
        batch_op.drop_column("shard")
