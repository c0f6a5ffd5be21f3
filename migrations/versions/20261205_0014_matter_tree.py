"""routing: the matter catalogue becomes a tree (category -> subcategory -> matter)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows get "" and are placed in the tree by the next `hotline seed`.
    with op.batch_alter_table("matters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("subcategory", sa.String(length=64), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("matters", schema=None) as batch_op:
        batch_op.drop_column("subcategory")
