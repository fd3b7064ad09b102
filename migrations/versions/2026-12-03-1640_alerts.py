"""Connection health that tells the truth, and alert webhooks

Revision ID: 0007_alerts
Revises: 0006_event_user_search
Create Date: 2026-12-03 16:30:00

`connections.last_error` now means "the latest attempt failed" until a success clears it
(docs/ops.md, "Connection health"): errors of active connections older than 15 minutes, which
health ignored until now, are cleared so that they do not read as `degraded` after the upgrade.
`connections.dead_objects`: objects that went dead, ever. `alert_webhooks`
holds a connection's alert webhook, its signing secret (ciphertext) and the condition it last
announced; `alerts` holds each alert with its delivery state (docs/ops.md, "Alerts").
Downgrade drops them (alert history is lost).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_alerts"
down_revision: str | None = "0006_event_user_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_webhooks",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column(
            "secret_created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "condition",
            sa.Enum(
                "ok",
                "degraded",
                "auth_error",
                name="alert_condition",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "condition_since",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("dead_told", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_alert_webhooks_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alert_webhooks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_alert_webhooks")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "auth_error",
                "degraded",
                "dead",
                "recovered",
                name="alert_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "condition",
            sa.Enum(
                "ok",
                "degraded",
                "auth_error",
                name="alert_condition",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "previous_condition",
            sa.Enum(
                "ok",
                "degraded",
                "auth_error",
                name="alert_previous_condition",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                name="alert_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_alerts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alerts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_connection", "alerts", ["connection_id", "id"], unique=False)
    op.create_index(
        "ix_alerts_due",
        "alerts",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.add_column(
        "connections",
        sa.Column("dead_objects", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )

    op.execute(
        "UPDATE connections SET last_error = NULL, last_error_at = NULL "
        "WHERE state = 'active' AND last_error_at < now() - interval '15 minutes'"
    )


def downgrade() -> None:
    op.drop_column("connections", "dead_objects")
    op.drop_index(
        "ix_alerts_due", table_name="alerts", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_index("ix_alerts_connection", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_webhooks")
