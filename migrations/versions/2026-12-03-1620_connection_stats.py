"""Hourly stats rollup: one row per connection and closed UTC hour

Revision ID: 0005_connection_stats
Revises: 0004_forget_audit
Create Date: 2026-12-03 16:40:00

`GET /v1/connections/{id}/stats` counts an hour from the event and attempt logs once, after it
has closed, and keeps the figures here; later reads take them from this table and count only
the open hours live. Nothing writes to it on the ingest or delivery paths. Dropping it loses
nothing that cannot be counted again while the logs are within retention.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_connection_stats"
down_revision: str | None = "0004_forget_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "received",
    "delivered",
    "failed",
    "dead",
    "answers_2xx",
    "answers_4xx",
    "answers_429",
    "answers_5xx",
    "answers_network",
)


def upgrade() -> None:
    op.create_table(
        "connection_stats_hourly",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connection_stats_hourly_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "hour", name=op.f("pk_connection_stats_hourly")),
    )


def downgrade() -> None:
    op.drop_table("connection_stats_hourly")
