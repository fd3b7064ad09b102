"""Storing inbound events: event row, raw body and outbox operations in a few multi-row statements.

`store_events` is the ingest hot path. It runs inside the caller's transaction, so a batch of
requests (group commit) or a single request is stored with the same statements:
`INSERT … ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING` decides which events are
new; redeliveries get the id of the event stored first and add nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from braze_bridge.db.models import Event, EventBody
from braze_bridge.db.models import Operation as OperationRow
from braze_bridge.db.notify import OUTBOX_CHANNEL
from braze_bridge.domain.content import ContentUpdate
from braze_bridge.domain.events import MAPPED_VERSION_KEY, NormalizedEvent
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import EventStatus, OperationStatus

_INSERT_EVENTS = (
    insert(Event)
    .on_conflict_do_nothing(index_elements=[Event.connection_id, Event.dedupe_key])
    .returning(Event.id, Event.connection_id, Event.dedupe_key)
)


@dataclass(slots=True)
class EventRecord:
    """Everything one accepted webhook writes. `id` is chosen up front (UUIDv7)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    dedupe_key: str
    status: EventStatus
    received_at: datetime
    body: bytes
    headers: dict[str, str]
    content_type: str | None
    source_event_id: str | None = None
    kind: str | None = None
    reason: str | None = None
    user_key: str | None = None
    normalized: NormalizedEvent | None = None
    occurred_at: datetime | None = None
    operations: list[Operation] = field(default_factory=list)
    content: ContentUpdate | None = None
    # The connection's settings version this event was mapped with (replay re-maps when it moved).
    mapped_version: int | None = None

    @property
    def identity(self) -> tuple[uuid.UUID, str]:
        return (self.connection_id, self.dedupe_key)


@dataclass(frozen=True, slots=True)
class StoreResult:
    event_id: uuid.UUID
    duplicate: bool


def clean_text(value: str, limit: int | None = None) -> str:
    """Postgres text cannot hold NUL or lone surrogates (JSON `\\ud800` parses to one)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value if limit is None else value[:limit]


def _optional_text(value: str | None, limit: int | None = None) -> str | None:
    return None if value is None else clean_text(value, limit)


def jsonb_safe(value: Any) -> Any:
    """The same cleaning for every string (keys too) inside a JSON value bound for JSONB."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): jsonb_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonb_safe(v) for v in value]
    return value


def safe_dedupe_key(key: str) -> str:
    """Keys that would not survive storage unchanged are hashed instead (never merged)."""
    if len(key) <= 255 and clean_text(key) == key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


def _normalized_json(record: EventRecord) -> dict[str, Any] | None:
    if record.normalized is None:
        return None
    document: dict[str, Any] = jsonb_safe(record.normalized.as_json())
    if record.mapped_version is not None:
        document[MAPPED_VERSION_KEY] = record.mapped_version
    return document


def _event_row(record: EventRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "tenant_id": record.tenant_id,
        "connection_id": record.connection_id,
        "dedupe_key": record.dedupe_key,
        "source_event_id": _optional_text(record.source_event_id, 255),
        "kind": _optional_text(record.kind, 64),
        "status": record.status.value,
        "reason": _optional_text(record.reason, 2000),
        "user_key": _optional_text(record.user_key, 1024),
        "normalized": _normalized_json(record),
        "received_at": record.received_at,
        "occurred_at": record.occurred_at,
    }


def _body_row(record: EventRecord) -> dict[str, Any]:
    return {
        "event_id": record.id,
        "body": record.body,
        "headers": jsonb_safe(record.headers),
        "content_type": _optional_text(record.content_type, 255),
        "received_at": record.received_at,
    }


def _operation_rows(record: EventRecord) -> list[dict[str, Any]]:
    rows = []
    for position, operation in enumerate(record.operations):
        user = operation.user
        rows.append(
            {
                "event_id": record.id,
                "tenant_id": record.tenant_id,
                "connection_id": record.connection_id,
                "position": position,
                "kind": operation.kind.value,
                "user_key": clean_text(user.key or "", 1024),
                "external_id": _optional_text(user.external_id, 1024),
                "email": _optional_text(user.email, 512),
                "unknown_user": user.unknown_user,
                "payload": jsonb_safe(operation.payload),
                "status": OperationStatus.PENDING.value,
                "available_at": record.received_at,
            }
        )
    return rows


async def store_events(conn: AsyncConnection, records: Sequence[EventRecord]) -> list[StoreResult]:
    """Insert new events with their bodies and operations; report duplicates. One result each.

    Within `records`, the first of several with one (connection, dedupe key) is the candidate;
    the others are duplicates of whatever that key ends up pointing at. Rows are inserted in key
    order so two concurrent batches lock unique-index entries in the same order.
    """
    candidates: dict[tuple[uuid.UUID, str], EventRecord] = {}
    for record in records:
        candidates.setdefault(record.identity, record)
    ordered = sorted(candidates.values(), key=lambda r: (str(r.connection_id), r.dedupe_key))

    inserted: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    if ordered:
        # executemany of one fixed statement: SQLAlchemy compiles it once and caches it, then
        # packs the rows into multi-row INSERTs ("insertmanyvalues"); a statement built with
        # .values([...]) would be compiled anew for every batch size.
        rows = await conn.execute(_INSERT_EVENTS, [_event_row(r) for r in ordered])
        for row in rows:
            inserted[(row.connection_id, row.dedupe_key)] = row.id

    new_records = [r for r in ordered if inserted.get(r.identity) == r.id]
    existing = await _existing_ids(
        conn, [r.identity for r in ordered if r.identity not in inserted]
    )

    if new_records:
        await conn.execute(insert(EventBody), [_body_row(r) for r in new_records])
        operation_rows = [row for r in new_records for row in _operation_rows(r)]
        if operation_rows:
            await conn.execute(insert(OperationRow), operation_rows)

    results = []
    for record in records:
        first = candidates[record.identity]
        if record is first and record.identity in inserted:
            results.append(StoreResult(inserted[record.identity], duplicate=False))
        else:
            original = inserted.get(record.identity) or existing[record.identity]
            results.append(StoreResult(original, duplicate=True))
    return results


async def attribute_operations(
    conn: AsyncConnection, event_id: uuid.UUID
) -> list[tuple[int, dict[str, Any]]]:
    """`(operation id, payload)` of an event's attribute objects, in mapping order."""
    rows = await conn.execute(
        select(OperationRow.id, OperationRow.payload)
        .where(OperationRow.event_id == event_id, OperationRow.kind == "attributes")
        .order_by(OperationRow.position)
    )
    return [(row.id, dict(row.payload)) for row in rows]


async def _existing_ids(
    conn: AsyncConnection, identities: list[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    if not identities:
        return {}
    rows = await conn.execute(
        select(Event.id, Event.connection_id, Event.dedupe_key).where(
            tuple_(Event.connection_id, Event.dedupe_key).in_(identities)
        )
    )
    return {(row.connection_id, row.dedupe_key): row.id for row in rows}


async def notify_outbox(conn: AsyncConnection, connection_ids: Iterable[uuid.UUID]) -> None:
    """Wake delivery workers (delivered on COMMIT, dropped on rollback): one per connection."""
    for connection_id in sorted({str(c) for c in connection_ids}):
        await conn.execute(select(func.pg_notify(OUTBOX_CHANNEL, connection_id)))
