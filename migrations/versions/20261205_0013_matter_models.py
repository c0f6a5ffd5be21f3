"""routing: versions of the trained matter classifier (智能导办), one active, kept for rollback

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hotline.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matter_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", hotline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trained_on", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matter_models")),
    )
    with op.batch_alter_table("matter_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matter_models_active"), ["active"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("matter_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matter_models_active"))
    op.drop_table("matter_models")
