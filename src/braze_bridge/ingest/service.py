"""accept_webhook(): verify, parse, dedupe, normalize, map, store and enqueue — then acknowledge.

The checks run in this order (docs/contract.md section 5; docs/extole.md explains why):
404 unknown connection → 413 too large (by header, then while reading; the route does both) →
401 auth over the raw bytes → 415 not JSON → 400 invalid JSON → store. Storing is one
transaction holding the event, its raw body, its operations, the Connected Content projection and
the outbox NOTIFY; the caller answers only after that transaction committed.

The path is source-agnostic: the partner comes from `PARTNERS[connection.source]`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from braze_bridge.db.jsonb import safe_dedupe_key
from braze_bridge.db.repositories import ingest_batch, user_values
from braze_bridge.db.repositories.connections import LiveConnection, live_connections
from braze_bridge.db.repositories.ingest_batch import IngestRecord, StoreResult
from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.domain.ids import uuid7
from braze_bridge.domain.json_body import parse_json_body
from braze_bridge.domain.mapping import Partner
from braze_bridge.domain.statuses import EventStatus
from braze_bridge.errors import NotFound, Unauthorized, UnsupportedMediaType
from braze_bridge.ingest.event_store import EventStore
from braze_bridge.ingest.lookup import ConnectionLookup
from braze_bridge.logging import get_logger
from braze_bridge.partners import PARTNERS
from braze_bridge.partners.evaluate import (
    Evaluation,
    InvalidSettings,
    evaluate_body,
    parse_settings,
)
from braze_bridge.security.headers import stored_headers
from braze_bridge.security.secrets import SecretBox
from braze_bridge.security.webhook_auth import (
    WebhookCredentials,
    secrets_valid_at,
    verify_webhook,
)

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookAck:
    status: Literal["accepted", "duplicate"]
    event_id: uuid.UUID
    # What became of the event (queued, filtered, rejected, or duplicate); for metrics and logs.
    outcome: str
    normalized: NormalizedEvent | None = None


@lru_cache(maxsize=1024)
def _uuid(raw: str) -> uuid.UUID:
    """Webhooks name a few connections over and over; only valid ids are kept (short strings)."""
    return uuid.UUID(raw)


def parse_connection_id(raw: str) -> uuid.UUID:
    try:
        return _uuid(raw)
    except ValueError:
        raise NotFound("unknown connection", details={"connection_id": raw[:100]}) from None


async def find_connection(
    engine: AsyncEngine, connection_id: uuid.UUID, lookup: ConnectionLookup | None = None
) -> LiveConnection:
    """The live connection or 404 (never created, or deleted)."""
    if lookup is not None:
        connection = await lookup.get(connection_id)
    else:
        async with AsyncSession(engine) as session:
            found = await live_connections(session, [connection_id])
        connection = found.get(connection_id)
    if connection is None:
        raise NotFound("unknown connection", details={"connection_id": str(connection_id)})
    return connection


@lru_cache(maxsize=4096)
def _decrypt(box: SecretBox, ciphertext: str) -> str:
    """A ciphertext always opens to the same secret under one box (its keys are fixed), so the
    Fernet check (~0.1 ms) runs once per stored secret, not once per webhook. A rotated secret
    is a new ciphertext, read from the connection row on the next request."""
    return box.decrypt(ciphertext)


def webhook_credentials(
    connection: LiveConnection, box: SecretBox, now: datetime
) -> WebhookCredentials:
    previous = (
        _decrypt(box, connection.previous_webhook_secret_enc)
        if connection.previous_webhook_secret_enc
        and connection.previous_secret_expires_at is not None
        and now < connection.previous_secret_expires_at
        else None
    )
    return WebhookCredentials(
        mode=connection.webhook_auth_mode,
        secrets=secrets_valid_at(
            _decrypt(box, connection.webhook_secret_enc),
            previous,
            connection.previous_secret_expires_at,
            now,
        ),
        username=connection.webhook_username,
    )


def is_json_content_type(content_type: str | None) -> bool:
    """`application/json` or any `…/…+json`, parameters (charset) ignored."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return bool(kind) and (media == "application/json" or subtype.endswith("+json"))


def dedupe_key_for(evaluation: Evaluation, body: bytes) -> str:
    """docs/contract.md section 5: the partner's key (event id, reward id + state), else the body's hash."""
    if evaluation.normalized is not None and evaluation.normalized.dedupe_key:
        return safe_dedupe_key(evaluation.normalized.dedupe_key)
    return "sha256:" + hashlib.sha256(body).hexdigest()


async def accept_webhook(
    *,
    engine: AsyncEngine,
    store: EventStore,
    box: SecretBox,
    connection: LiveConnection,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime | None = None,
) -> WebhookAck:
    """Authenticate, parse, evaluate and durably store one webhook (body already size-checked).

    `headers` must have lower-case keys. Returns after the COMMIT holding the event.
    """
    received_at = now or datetime.now(UTC)
    credentials = webhook_credentials(connection, box, received_at)
    verdict = verify_webhook(credentials, headers, body)
    if not verdict.ok:
        raise Unauthorized(verdict.reason)
    content_type = headers.get("content-type")
    if not is_json_content_type(content_type):
        raise UnsupportedMediaType(
            "webhook bodies must be JSON (Content-Type: application/json)",
            details={"content_type": content_type},
        )
    parsed = parse_json_body(body)
    kept_headers = stored_headers(headers, credentials.secrets)

    partner = PARTNERS.get(connection.source)
    if partner is not None and tracks_user_values(partner, connection.settings):
        result, evaluation = await store_with_user_values(
            engine, partner, connection, parsed, body, kept_headers, received_at
        )
    else:
        evaluation = evaluate_body(
            partner,
            connection.settings,
            parsed,
            received_at=received_at,
            app_id=connection.braze_app_id,
        )
        result = await store.store(
            event_record(connection, evaluation, body, kept_headers, received_at)
        )
    if result.duplicate:
        log.debug(
            "ingest.duplicate", connection_id=str(connection.id), event_id=str(result.event_id)
        )
        return WebhookAck("duplicate", result.event_id, "duplicate", evaluation.normalized)
    log.debug(
        "ingest.accepted",
        connection_id=str(connection.id),
        event_id=str(result.event_id),
        status=evaluation.status.value,
    )
    return WebhookAck("accepted", result.event_id, evaluation.status.value, evaluation.normalized)


def tracks_user_values(partner: Partner, settings: Mapping[str, Any]) -> bool:
    """True when the mapping compares against stored per-user values (Antavo `changed_only`)."""
    try:
        parsed = parse_settings(partner, settings)
    except InvalidSettings:
        return False  # evaluate_body records the invalid settings as the event's reason
    return partner.tracks_user_values(parsed)


async def store_with_user_values(
    engine: AsyncEngine,
    partner: Partner,
    connection: LiveConnection,
    parsed: Any,
    body: bytes,
    headers: Mapping[str, str],
    received_at: datetime,
) -> tuple[StoreResult, Evaluation]:
    """One transaction of its own: lock the member, compare with what Braze has or will have,
    store, remember what was enqueued. Two webhooks for one member go one after the other."""
    try:
        normalized: NormalizedEvent | None = partner.normalize(parsed, received_at=received_at)
    except Exception:  # evaluate_body normalizes again and records why
        normalized = None
    user_key = normalized.user.ref().key if normalized is not None else None
    async with AsyncSession(engine) as session, session.begin():
        known: Mapping[str, Any] = {}
        if user_key is not None:
            known = await user_values.load_known_values(session, connection.id, user_key)
        evaluation = evaluate_body(
            partner,
            connection.settings,
            parsed,
            received_at=received_at,
            app_id=connection.braze_app_id,
            known_values=known,
            normalized=normalized,
        )
        record = event_record(connection, evaluation, body, headers, received_at)
        [result] = await ingest_batch.store_events(session, [record])
        if not result.duplicate and user_key is not None:
            enqueued = await ingest_batch.attribute_operations(session, result.event_id)
            await user_values.record_enqueued(
                session,
                connection.id,
                user_key,
                enqueued,
                data_points_saved=evaluation.data_points_saved,
            )
    return result, evaluation


def event_reason(evaluation: Evaluation) -> str | None:
    """A queued event's reason is what the mapping left out (its notes), as preview shows it and
    a replay's re-map stores it; the roll-up rewrites it once the objects settle."""
    if evaluation.status == EventStatus.QUEUED and evaluation.reason is None:
        return "; ".join(evaluation.notes) or None
    return evaluation.reason


def event_record(
    connection: LiveConnection,
    evaluation: Evaluation,
    body: bytes,
    headers: Mapping[str, str],
    received_at: datetime,
) -> IngestRecord:
    user = evaluation.user
    return IngestRecord(
        id=uuid7(),
        tenant_id=connection.tenant_id,
        connection_id=connection.id,
        dedupe_key=dedupe_key_for(evaluation, body),
        status=evaluation.status,
        received_at=received_at,
        body=body,
        headers=dict(headers),
        content_type=headers.get("content-type"),
        source_event_id=evaluation.normalized.source_event_id if evaluation.normalized else None,
        kind=evaluation.normalized.log_kind() if evaluation.normalized else None,
        reason=event_reason(evaluation),
        user_key=user.key if user else None,
        normalized=evaluation.normalized,
        occurred_at=evaluation.normalized.occurred_at if evaluation.normalized else None,
        operations=evaluation.operations,
        content=evaluation.content,
        mapped_version=connection.version,
        notes=evaluation.notes,
    )
