"""Status words of the public contract (docs/contract.md), defined once."""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    EXTOLE = "extole"
    ANTAVO = "antavo"


class EventStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    DELIVERED = "delivered"
    PARTIALLY_DELIVERED = "partially_delivered"
    FILTERED = "filtered"
    REJECTED = "rejected"
    DEAD = "dead"


class OperationStatus(StrEnum):
    """Status of one Braze object an event produced."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"


class ObjectKind(StrEnum):
    """Which `/users/track` array an object goes in (Braze's `input_array` words)."""

    ATTRIBUTES = "attributes"
    EVENTS = "events"
    PURCHASES = "purchases"


class ConnectionState(StrEnum):
    """Stored state; health adds `ok`, `rate_limited` and `degraded` on top."""

    ACTIVE = "active"
    PAUSED = "paused"
    AUTH_ERROR = "auth_error"


class HealthStatus(StrEnum):
    OK = "ok"
    PAUSED = "paused"
    AUTH_ERROR = "auth_error"
    RATE_LIMITED = "rate_limited"
    DEGRADED = "degraded"


class AlertKind(StrEnum):
    """Why an alert webhook was called (docs/ops.md, "Alerts")."""

    AUTH_ERROR = "auth_error"
    DEGRADED = "degraded"
    DEAD = "dead"
    RECOVERED = "recovered"


class AlertCondition(StrEnum):
    """The health an alert webhook last announced: `rate_limited` counts as `degraded`, a
    paused connection keeps what it had."""

    OK = "ok"
    DEGRADED = "degraded"
    AUTH_ERROR = "auth_error"


class AlertStatus(StrEnum):
    """Delivery of one alert: `pending` (to send or to retry), `sent`, `failed` (gave up)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class WebhookAuthMode(StrEnum):
    HMAC_SHA256 = "hmac_sha256"
    BEARER = "bearer"
    BASIC = "basic"
    JWT_HS256 = "jwt_hs256"


class IdentityStatus(StrEnum):
    """What `/users/export/ids` said about an email."""

    FOUND = "found"
    NOT_FOUND = "not_found"


class AttemptOutcome(StrEnum):
    """What one HTTP attempt meant for one object it carried (`attempts[].objects[].outcome`).

    The retry horizon counts from an object's first attempt whose outcome is in `RETRY_OUTCOMES`.
    """

    DELIVERED = "delivered"
    FAILED = "failed"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    HELD = "held"
    LOOKUP_FAILED = "lookup_failed"
    DEAD = "dead"
    # Refused together with other objects and resent in a smaller request (no verdict yet).
    BISECT = "bisect"
    FOUND = "found"
    NOT_FOUND = "not_found"
    # `/users/identify` accepted for this object's user before its /users/track object.
    IDENTIFIED = "identified"


RETRY_OUTCOMES = frozenset(
    {
        AttemptOutcome.RETRY,
        AttemptOutcome.RATE_LIMITED,
        AttemptOutcome.LOOKUP_FAILED,
        AttemptOutcome.DEAD,
    }
)


class ReplayStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# Reason of an object a replay re-mapped away; it no longer counts towards its event's status.
SUPERSEDED_REASON = "superseded by re-map"
