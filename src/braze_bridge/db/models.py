"""Tables of the whole contract. ORM for admin CRUD and cold reads; hot statements are named
SQL in db/sql/ run through db/driver.py (see that module for the rule)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Enum,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from braze_bridge.db.base import Base, enum_values
from braze_bridge.domain.ids import uuid7
from braze_bridge.domain.statuses import (
    AlertCondition,
    AlertKind,
    AlertStatus,
    ConnectionState,
    EventStatus,
    IdentityStatus,
    ObjectKind,
    OperationStatus,
    ReplayStatus,
    Source,
    WebhookAuthMode,
)

# Percent of each `operations` page filled by inserts; the rest takes claimed row versions.
OPERATIONS_FILLFACTOR = 50


def text_enum(enum: type[StrEnum], name: str) -> Enum:
    """Text column with a CHECK listing the contract's words (no Postgres ENUM type to migrate)."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=enum_values,
        validate_strings=True,
    )


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ApiToken(Base):
    """Admin bearer tokens, stored as SHA-256 of the random value. No tenant = operator."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    is_bootstrap: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Connection(Base):
    """A partner → Braze pipe. Secrets are ciphertexts (security/secrets.py)."""

    __tablename__ = "connections"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[Source] = mapped_column(text_enum(Source, "source"))
    state: Mapped[ConnectionState] = mapped_column(
        text_enum(ConnectionState, "connection_state"), default=ConnectionState.ACTIVE
    )
    braze_rest_endpoint: Mapped[str] = mapped_column(String(255))
    braze_api_key_enc: Mapped[str] = mapped_column(Text)
    braze_api_key_last4: Mapped[str] = mapped_column(String(4))
    braze_app_id: Mapped[str | None] = mapped_column(String(255))
    webhook_auth_mode: Mapped[WebhookAuthMode] = mapped_column(
        text_enum(WebhookAuthMode, "webhook_auth_mode")
    )
    webhook_username: Mapped[str | None] = mapped_column(String(200))
    webhook_secret_enc: Mapped[str] = mapped_column(Text)
    previous_webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    content_token_enc: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Per-workspace budgets (requests per window); None → Braze's documented defaults.
    track_rate_limit: Mapped[int | None] = mapped_column(Integer)
    track_rate_window_seconds: Mapped[int | None] = mapped_column(Integer)
    export_rate_limit: Mapped[int | None] = mapped_column(Integer)
    export_rate_window_seconds: Mapped[int | None] = mapped_column(Integer)
    # Objects per /users/track request: combined_75 | combined_50 | per_array_75.
    track_object_cap: Mapped[str] = mapped_column(
        String(16), default="combined_75", server_default=text("'combined_75'")
    )
    # Flush budget: a half-full request waits at most this long for more objects (0 = at once).
    max_batch_wait_ms: Mapped[int] = mapped_column(Integer, default=500, server_default=text("500"))
    # The failure of the latest failed attempt, until an attempt succeeds (ops/health.py).
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    # Objects of this connection that went `dead`, ever (alerts compare it with what they told).
    dead_objects: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    rate_limited_until: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "ix_connections_tenant_live", "tenant_id", postgresql_where=text("deleted_at IS NULL")
        ),
        CheckConstraint(
            "track_object_cap IN ('combined_75', 'combined_50', 'per_array_75')",
            name="track_object_cap_known",
        ),
        CheckConstraint("max_batch_wait_ms BETWEEN 0 AND 60000", name="max_batch_wait_ms_range"),
    )


class ConnectionAudit(Base):
    """Who changed which fields of a connection, and when (never the values of secrets)."""

    __tablename__ = "connection_audit"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    actor_token_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    action: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column(JSONB, default=list)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    # `forget`: how many rows of each kind were removed or redacted (counts only, no person).
    counts: Mapped[dict[str, int] | None] = mapped_column(JSONB)


class Event(Base):
    """One inbound webhook: dedupe key, normalized form and status. Raw bytes live apart."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    # No key on the tenant (a check per ingested row): a deleted tenant's events go with its
    # connections.
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE")
    )
    dedupe_key: Mapped[str] = mapped_column(String(255))
    source_event_id: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[EventStatus] = mapped_column(text_enum(EventStatus, "event_status"))
    reason: Mapped[str | None] = mapped_column(Text)
    user_key: Mapped[str | None] = mapped_column(String(1024))
    normalized: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    occurred_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("connection_id", "dedupe_key", name="uq_events_connection_dedupe"),
        Index("ix_events_tenant_id", "tenant_id", "id"),
        Index("ix_events_connection_id", "connection_id", "id"),
        Index("ix_events_connection_status", "connection_id", "status", "id"),
        Index("ix_events_received_at", "received_at"),
        # Event log filters without a connection (ops/event_log.py): a tenant's dead or
        # rejected events, and "what happened to this user" across connections. A user within
        # one connection uses it too (a key's events are few; the connection is checked on the
        # row): a (connection_id, user_key, id) index cost every roll-up and ingest an entry.
        Index("ix_events_tenant_status", "tenant_id", "status", "id"),
        # text_pattern_ops: equality as before, and `user_prefix=` ranges in any collation.
        Index(
            "ix_events_user_key", "user_key", "id", postgresql_ops={"user_key": "text_pattern_ops"}
        ),
        # `user=<email>` for a user that has an external id too (its user_key is `id:…`).
        Index(
            "ix_events_user_email",
            literal_column("lower(normalized #>> '{user,email}')").label("user_email"),
            "id",
            postgresql_ops={"user_email": "text_pattern_ops"},
            postgresql_where=text("(normalized #>> '{user,email}') IS NOT NULL"),
        ),
    )


class EventBody(Base):
    """Raw bytes and headers as received; purged after the retention period.

    No foreign key: ingest inserts a body joined to the event it inserts in the same
    statement; deleting events deletes their bodies through a statement trigger (db/ddl.py).
    """

    __tablename__ = "event_bodies"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    content_type: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class OutboxOperation(Base):
    """The outbox: one Braze object, its user, status, lease and retry schedule.

    A claim (pending → in_flight, lease set) must be a HOT update: no index key or index
    predicate names `status`, `lease_owner` or `lease_expires_at`. The partial indexes select
    the unsettled set with the generated column `unsettled` instead, which stays true through
    a claim; a settle turns it false and takes the row out of them. The fillfactor leaves room
    on each page for the claimed versions of the rows a batch claim takes together
    (consecutive rows), so they stay on their page.
    """

    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Looked up through uq_operations_event_position (event_id first). No foreign keys:
    # ingest inserts operations joined to the events it inserts, with their tenant and
    # connection; deleting events deletes their operations (statement trigger, db/ddl.py).
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    connection_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    position: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[ObjectKind] = mapped_column(text_enum(ObjectKind, "object_kind"))
    user_key: Mapped[str] = mapped_column(String(1024))
    external_id: Mapped[str | None] = mapped_column(String(1024))
    email: Mapped[str | None] = mapped_column(String(512))
    unknown_user: Mapped[str] = mapped_column(
        String(8), default="alias", server_default=text("'alias'")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[OperationStatus] = mapped_column(
        text_enum(OperationStatus, "operation_status"), default=OperationStatus.PENDING
    )
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    available_at: Mapped[datetime] = mapped_column(server_default=func.now())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    settled_at: Mapped[datetime | None]
    sent_object: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Pending or in_flight. Claims change the status between those two only, so this column
    # (what the partial indexes below are on) stays put and the claim stays HOT.
    unsettled: Mapped[bool] = mapped_column(
        Boolean, Computed("status IN ('pending', 'in_flight')", persisted=True)
    )

    __table_args__ = (
        # The claimable set (and leased rows, skipped by the claim): stays small however
        # large history grows.
        Index(
            "ix_operations_due",
            "available_at",
            "id",
            postgresql_where=text("unsettled"),
        ),
        Index(
            "ix_operations_user_unsettled",
            "connection_id",
            "user_key",
            "id",
            postgresql_where=text("unsettled"),
        ),
        # Queue depth and oldest object per connection (health, /metrics).
        Index(
            "ix_operations_connection_pending",
            "connection_id",
            "created_at",
            postgresql_where=text("unsettled"),
        ),
        UniqueConstraint("event_id", "position", name="uq_operations_event_position"),
        {"postgresql_with": {"fillfactor": OPERATIONS_FILLFACTOR}},
    )


class DeliveryAttempt(Base):
    """One HTTP call to Braze: what we sent, what came back, how long it took."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE")
    )
    endpoint: Mapped[str] = mapped_column(String(64))
    worker_id: Mapped[str | None] = mapped_column(String(128))
    request_body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    __table_args__ = (Index("ix_delivery_attempts_connection", "connection_id", "id"),)


class AttemptOperation(Base):
    """Which objects an attempt carried, and what became of each.

    No foreign keys: a round writes one row per object, and two per-row key checks cost more
    than the insert itself. The rows are written in the statement that creates their attempt,
    for operations the worker holds; deleting an attempt or an operation deletes its rows
    through statement-level triggers (db/ddl.py), as ON DELETE CASCADE did.
    """

    __tablename__ = "attempt_operations"

    attempt_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    operation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    outcome: Mapped[str | None] = mapped_column(String(64))


class CachedIdentity(Base):
    """Per-connection cache of what Braze said about an email (found profile or not)."""

    __tablename__ = "identities"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(512), primary_key=True)
    status: Mapped[IdentityStatus] = mapped_column(text_enum(IdentityStatus, "identity_status"))
    external_id: Mapped[str | None] = mapped_column(String(1024))
    braze_id: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    # What braze-bridge itself created for this email (`alias`: an alias-only profile, `email`:
    # objects sent with the email identifier) and the identify that followed; these marks
    # outlive `expires_at`, which only ages the export/ids answer (docs/delivery.md, "Identity").
    created_as: Mapped[str | None] = mapped_column(String(16))
    identified_external_id: Mapped[str | None] = mapped_column(String(1024))
    identified_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("created_as IN ('alias', 'email')", name="created_as_known"),)


class UserValue(Base):
    """Last value Braze accepted per user and attribute (Antavo `changed_only`)."""

    __tablename__ = "user_values"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    user_key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    attribute: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    sent_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The operation whose acceptance recorded `value` (no foreign key: outbox rows get purged).
    accepted_operation_id: Mapped[int | None] = mapped_column(BigInteger)


class PendingUserValue(Base):
    """A value enqueued for Braze but not yet settled, one row per operation and attribute.

    `changed_only` compares against the newest pending value (else the accepted one); settling
    promotes the row into `user_values` (accepted) or deletes it (failed). See docs/antavo.md.
    """

    __tablename__ = "user_values_pending"

    operation_id: Mapped[int] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    attribute: Mapped[str] = mapped_column(String(255), primary_key=True)
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE")
    )
    user_key: Mapped[str] = mapped_column(String(1024))
    value: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index(
            "ix_user_values_pending_user",
            "connection_id",
            "user_key",
            "attribute",
            "operation_id",
        ),
    )


class DataPointSavings(Base):
    """Attribute writes `changed_only` left out, per connection, spread over slots.

    Slots (by user) keep concurrent ingest transactions from queueing on one counter row.
    """

    __tablename__ = "data_point_savings"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    saved: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ContentProfile(Base):
    """Connected Content projection: latest share link and code per user (rewards apart)."""

    __tablename__ = "content_profiles"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    share_link: Mapped[str | None] = mapped_column(Text)
    share_code: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ContentReward(Base):
    """One reward of a user's Connected Content projection, at its newest known state.

    One small row per reward, so a reward webhook costs an insert or a
    one-row upsert however long the user's history. `seq` (taken again at each state change)
    orders rewards of equal time by when they last changed. No foreign key: deleting a
    connection deletes its rewards through a statement trigger (db/ddl.py).
    """

    __tablename__ = "content_rewards"

    connection_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    reward_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    face_value: Mapped[float | None] = mapped_column(Float)
    face_value_type: Mapped[str | None] = mapped_column(String(255))
    coupon_code: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    seq: Mapped[int] = mapped_column(BigInteger, Identity())


class RateBucket(Base):
    """Token bucket per Braze workspace and endpoint, shared by every worker."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    capacity: Mapped[float] = mapped_column(Float)
    refill_per_second: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    blocked_until: Mapped[datetime | None]


class ReplayJob(Base):
    """Bulk replay by filter, run in the background with progress."""

    __tablename__ = "replay_jobs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE")
    )
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[ReplayStatus] = mapped_column(
        text_enum(ReplayStatus, "replay_status"), default=ReplayStatus.QUEUED
    )
    total: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    requeued: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Events that could not be replayed (e.g. re-map needed but the raw body was purged).
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Keyset position: a job resumed after a restart continues after this event.
    last_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("done >= 0", name="done_not_negative"),
        Index(
            "ix_replay_jobs_open",
            "created_at",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )


class ConnectionStatsHour(Base):
    """One closed UTC hour of a connection's traffic, counted once (ops/stats.py).

    Written when a stats read first needs an hour that ended more than the grace period ago;
    the current hour is always counted live. No trigger on the ingest or settle paths.
    """

    __tablename__ = "connection_stats_hourly"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    dead: Mapped[int] = mapped_column(Integer)
    answers_2xx: Mapped[int] = mapped_column(Integer)
    answers_4xx: Mapped[int] = mapped_column(Integer)
    answers_429: Mapped[int] = mapped_column(Integer)
    answers_5xx: Mapped[int] = mapped_column(Integer)
    answers_network: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AlertWebhook(Base):
    """A connection's alert webhook, its signing secret (ciphertext) and what it last told."""

    __tablename__ = "alert_webhooks"

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    secret_enc: Mapped[str] = mapped_column(Text)
    secret_created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The condition the last alert announced; an alert is due when health says otherwise.
    condition: Mapped[AlertCondition] = mapped_column(
        text_enum(AlertCondition, "alert_condition"), default=AlertCondition.OK
    )
    condition_since: Mapped[datetime] = mapped_column(server_default=func.now())
    # `connections.dead_objects` as of the last dead alert (or of when the webhook was set).
    dead_told: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Alert(Base):
    """One alert to send (or sent) to a connection's alert webhook."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE")
    )
    kind: Mapped[AlertKind] = mapped_column(text_enum(AlertKind, "alert_kind"))
    condition: Mapped[AlertCondition] = mapped_column(text_enum(AlertCondition, "alert_condition"))
    previous_condition: Mapped[AlertCondition | None] = mapped_column(
        text_enum(AlertCondition, "alert_previous_condition")
    )
    # The Slack-compatible JSON body, as sent on every attempt.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[AlertStatus] = mapped_column(
        text_enum(AlertStatus, "alert_status"), default=AlertStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_alerts_connection", "connection_id", "id"),
        Index(
            "ix_alerts_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )
