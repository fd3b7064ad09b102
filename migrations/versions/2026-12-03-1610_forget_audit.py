"""Forget a person: the connection audit records how many rows of each kind were removed

Revision ID: 0004_forget_audit
Revises: 0003_identity_modes
Create Date: 2026-12-03 16:10:00

`connection_audit.counts` (nullable JSONB) holds the counts of a `forget` entry
(docs/privacy.md); other entries leave it null. Adding a nullable column without a default
rewrites nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_forget_audit"
down_revision: str | None = "0003_identity_modes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "connection_audit",
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("connection_audit", "counts")
