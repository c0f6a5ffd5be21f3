"""hotline: index call_offers by outcome and offer time, for the calls waiting now

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_offers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_call_offers_outcome_offered_at", ["outcome", "offered_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("call_offers", schema=None) as batch_op:
        batch_op.drop_index("ix_call_offers_outcome_offered_at")
