"""Delivery lanes: a per-connection batch budget (`max_batch_wait_ms`)

Revision ID: 0008_delivery_lanes
Revises: 0007_alerts
Create Date: 2026-12-03 16:20:00

A request goes to Braze once it is full or once its oldest object has waited this many
milliseconds (docs/delivery.md, "Batching"); 0 sends at once. Existing connections get the
default, 500.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_delivery_lanes"
down_revision: str | None = "0007_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "connections",
        sa.Column("max_batch_wait_ms", sa.Integer(), server_default=sa.text("500"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_connections_max_batch_wait_ms_range"),
        "connections",
        "max_batch_wait_ms BETWEEN 0 AND 60000",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_connections_max_batch_wait_ms_range"), "connections", type_="check")
    op.drop_column("connections", "max_batch_wait_ms")
