"""baseline: every table, index, check and delete trigger of braze-bridge 0.1

Revision ID: 0001_baseline
Revises: (none)
Create Date: 2026-12-03 13:00:00

One revision for the whole schema (the history before 0.1 was squashed into it). Tables,
indexes and CHECKs are the ORM models' (`braze_bridge.db.models`): `operations` has the
generated column `unsettled` and `fillfactor = 50`, so a claim is a HOT update. The statement
triggers that stand in for ON DELETE CASCADE on the hot tables are declared once, in
`braze_bridge.db.ddl`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from braze_bridge.db import ddl

revision: str = "0001_baseline"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attempt_operations",
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("operation_id", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("attempt_id", "operation_id", name=op.f("pk_attempt_operations")),
    )
    op.create_index(
        op.f("ix_attempt_operations_operation_id"),
        "attempt_operations",
        ["operation_id"],
        unique=False,
    )
    op.create_table(
        "content_rewards",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=1024), nullable=False),
        sa.Column("reward_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("face_value", sa.Float(), nullable=True),
        sa.Column("face_value_type", sa.String(length=255), nullable=True),
        sa.Column("coupon_code", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.PrimaryKeyConstraint(
            "connection_id", "external_id", "reward_id", name=op.f("pk_content_rewards")
        ),
    )
    op.create_table(
        "event_bodies",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_bodies")),
    )
    op.create_index(
        op.f("ix_event_bodies_received_at"), "event_bodies", ["received_at"], unique=False
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "attributes",
                "events",
                "purchases",
                name="object_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("user_key", sa.String(length=1024), nullable=False),
        sa.Column("external_id", sa.String(length=1024), nullable=True),
        sa.Column("email", sa.String(length=512), nullable=True),
        sa.Column(
            "unknown_user", sa.String(length=8), server_default=sa.text("'alias'"), nullable=False
        ),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "in_flight",
                "delivered",
                "failed",
                "dead",
                "skipped",
                name="operation_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "available_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_object", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "unsettled",
            sa.Boolean(),
            sa.Computed("status IN ('pending', 'in_flight')", persisted=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
        sa.UniqueConstraint("event_id", "position", name="uq_operations_event_position"),
        postgresql_with={"fillfactor": 50},
    )
    op.create_index(
        "ix_operations_connection_pending",
        "operations",
        ["connection_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("unsettled"),
    )
    op.create_index(
        "ix_operations_due",
        "operations",
        ["available_at", "id"],
        unique=False,
        postgresql_where=sa.text("unsettled"),
    )
    op.create_index(
        "ix_operations_user_unsettled",
        "operations",
        ["connection_id", "user_key", "id"],
        unique=False,
        postgresql_where=sa.text("unsettled"),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("refill_per_second", sa.Float(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_buckets")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("is_bootstrap", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_tokens_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_tenant_id"), "api_tokens", ["tenant_id"], unique=False)
    op.create_table(
        "connections",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "extole",
                "antavo",
                name="source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "paused",
                "auth_error",
                name="connection_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("braze_rest_endpoint", sa.String(length=255), nullable=False),
        sa.Column("braze_api_key_enc", sa.Text(), nullable=False),
        sa.Column("braze_api_key_last4", sa.String(length=4), nullable=False),
        sa.Column("braze_app_id", sa.String(length=255), nullable=True),
        sa.Column(
            "webhook_auth_mode",
            sa.Enum(
                "hmac_sha256",
                "bearer",
                "basic",
                "jwt_hs256",
                name="webhook_auth_mode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("webhook_username", sa.String(length=200), nullable=True),
        sa.Column("webhook_secret_enc", sa.Text(), nullable=False),
        sa.Column("previous_webhook_secret_enc", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_token_enc", sa.Text(), nullable=True),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("track_rate_limit", sa.Integer(), nullable=True),
        sa.Column("track_rate_window_seconds", sa.Integer(), nullable=True),
        sa.Column("export_rate_limit", sa.Integer(), nullable=True),
        sa.Column("export_rate_window_seconds", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_limited_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
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
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "track_object_cap",
            sa.String(length=16),
            server_default=sa.text("'combined_75'"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "track_object_cap IN ('combined_75', 'combined_50', 'per_array_75')",
            name=op.f("ck_connections_track_object_cap_known"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    op.create_index(
        "ix_connections_tenant_live",
        "connections",
        ["tenant_id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "replay_jobs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("filters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                name="replay_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("requeued", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("skipped", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_event_id", sa.UUID(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("done >= 0", name=op.f("ck_replay_jobs_done_not_negative")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_replay_jobs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_jobs")),
    )
    op.create_index(
        "ix_replay_jobs_open",
        "replay_jobs",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_table(
        "connection_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("actor_token_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connection_audit_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_connection_audit_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_audit")),
    )
    op.create_index(
        op.f("ix_connection_audit_connection_id"),
        "connection_audit",
        ["connection_id"],
        unique=False,
    )
    op.create_table(
        "content_profiles",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=1024), nullable=False),
        sa.Column("share_link", sa.Text(), nullable=True),
        sa.Column("share_code", sa.String(length=255), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_content_profiles_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "external_id", name=op.f("pk_content_profiles")),
    )
    op.create_table(
        "data_point_savings",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("saved", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_data_point_savings_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "slot", name=op.f("pk_data_point_savings")),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("request_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_delivery_attempts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(
        "ix_delivery_attempts_connection",
        "delivery_attempts",
        ["connection_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_delivery_attempts_started_at"), "delivery_attempts", ["started_at"], unique=False
    )
    op.create_table(
        "events",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("source_event_id", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "queued",
                "delivered",
                "partially_delivered",
                "filtered",
                "rejected",
                "dead",
                name="event_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("user_key", sa.String(length=1024), nullable=True),
        sa.Column("normalized", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_events_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("connection_id", "dedupe_key", name="uq_events_connection_dedupe"),
    )
    op.create_index("ix_events_connection_id", "events", ["connection_id", "id"], unique=False)
    op.create_index(
        "ix_events_connection_status", "events", ["connection_id", "status", "id"], unique=False
    )
    op.create_index("ix_events_received_at", "events", ["received_at"], unique=False)
    op.create_index("ix_events_tenant_id", "events", ["tenant_id", "id"], unique=False)
    op.create_index(
        "ix_events_tenant_status", "events", ["tenant_id", "status", "id"], unique=False
    )
    op.create_index("ix_events_user_key", "events", ["user_key", "id"], unique=False)
    op.create_table(
        "identities",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=512), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "found",
                "not_found",
                name="identity_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=1024), nullable=True),
        sa.Column("braze_id", sa.String(length=64), nullable=True),
        sa.Column(
            "resolved_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_identities_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "email", name=op.f("pk_identities")),
    )
    op.create_table(
        "user_values",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("user_key", sa.String(length=1024), nullable=False),
        sa.Column("attribute", sa.String(length=255), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "sent_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("accepted_operation_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_user_values_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "connection_id", "user_key", "attribute", name=op.f("pk_user_values")
        ),
    )
    op.create_table(
        "user_values_pending",
        sa.Column("operation_id", sa.BigInteger(), nullable=False),
        sa.Column("attribute", sa.String(length=255), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("user_key", sa.String(length=1024), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_user_values_pending_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_user_values_pending_operation_id_operations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("operation_id", "attribute", name=op.f("pk_user_values_pending")),
    )
    op.create_index(
        "ix_user_values_pending_user",
        "user_values_pending",
        ["connection_id", "user_key", "attribute", "operation_id"],
        unique=False,
    )
    for statement in ddl.create_statements():
        op.execute(statement)


def downgrade() -> None:
    for statement in ddl.drop_statements():
        op.execute(statement)
    op.drop_index("ix_user_values_pending_user", table_name="user_values_pending")
    op.drop_table("user_values_pending")
    op.drop_table("user_values")
    op.drop_table("identities")
    op.drop_index("ix_events_user_key", table_name="events")
    op.drop_index("ix_events_tenant_status", table_name="events")
    op.drop_index("ix_events_tenant_id", table_name="events")
    op.drop_index("ix_events_received_at", table_name="events")
    op.drop_index("ix_events_connection_status", table_name="events")
    op.drop_index("ix_events_connection_id", table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_delivery_attempts_started_at"), table_name="delivery_attempts")
    op.drop_index("ix_delivery_attempts_connection", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_table("data_point_savings")
    op.drop_table("content_profiles")
    op.drop_index(op.f("ix_connection_audit_connection_id"), table_name="connection_audit")
    op.drop_table("connection_audit")
    op.drop_index(
        "ix_replay_jobs_open",
        table_name="replay_jobs",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_table("replay_jobs")
    op.drop_index(
        "ix_connections_tenant_live",
        table_name="connections",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_table("connections")
    op.drop_index(op.f("ix_api_tokens_tenant_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("tenants")
    op.drop_table("rate_buckets")
    op.drop_index(
        "ix_operations_user_unsettled",
        table_name="operations",
        postgresql_where=sa.text("unsettled"),
    )
    op.drop_index(
        "ix_operations_due", table_name="operations", postgresql_where=sa.text("unsettled")
    )
    op.drop_index(
        "ix_operations_connection_pending",
        table_name="operations",
        postgresql_where=sa.text("unsettled"),
    )
    op.drop_table("operations")
    op.drop_index(op.f("ix_event_bodies_received_at"), table_name="event_bodies")
    op.drop_table("event_bodies")
    op.drop_table("content_rewards")
    op.drop_index(op.f("ix_attempt_operations_operation_id"), table_name="attempt_operations")
    op.drop_table("attempt_operations")
