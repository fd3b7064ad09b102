"""Connections choose Braze's /users/track object cap instead of a legacy boolean

Revision ID: 0008_track_object_caps
Revises: 0007_content_rewards_rows
Create Date: 2026-12-03 12:00:00

`legacy_track_limits` (75 per array when true, 75 combined otherwise) becomes
`track_object_cap`: `combined_75` (Braze's default), `combined_50` (accounts on the Monthly
Active Users CY 24-25 plan) or `per_array_75` (older accounts). Stored values carry over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_track_object_caps"
down_revision: str | None = "0007_content_rewards_rows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "connections",
        sa.Column(
            "track_object_cap",
            sa.String(length=16),
            server_default=sa.text("'combined_75'"),
            nullable=False,
        ),
    )
    op.execute("UPDATE connections SET track_object_cap = 'per_array_75' WHERE legacy_track_limits")
    op.create_check_constraint(
        op.f("ck_connections_track_object_cap_known"),
        "connections",
        "track_object_cap IN ('combined_75', 'combined_50', 'per_array_75')",
    )
    op.drop_column("connections", "legacy_track_limits")


def downgrade() -> None:
    op.add_column(
        "connections",
        sa.Column(
            "legacy_track_limits", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    # combined_50 has no legacy spelling: it falls back to Braze's 75 combined.
    op.execute(
        "UPDATE connections SET legacy_track_limits = true WHERE track_object_cap = 'per_array_75'"
    )
    op.drop_constraint(op.f("ck_connections_track_object_cap_known"), "connections", type_="check")
    op.drop_column("connections", "track_object_cap")
