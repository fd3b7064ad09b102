"""Storing inbound events: event row, raw body and outbox operations in one statement.

`store_events` is the ingest hot path (the statement is `ingest_batch` in `db/sql/ingest.sql`).
It runs inside the caller's transaction, so a batch of requests (group commit) or a single
request is stored with the same statement: `INSERT … ON CONFLICT (connection_id, dedupe_key)
DO NOTHING RETURNING` decides which events are new; redeliveries get the id of the event stored
first and add nothing.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.db.jsonb import clean_text, jsonb_text
from braze_bridge.db.models import OutboxOperation
from braze_bridge.db.notify import EVENTS_CHANNEL, OUTBOX_CHANNEL
from braze_bridge.domain.content import MAX_REWARDS_KEPT, ContentUpdate
from braze_bridge.domain.events import MAPPED_VERSION_KEY, MAPPING_NOTES_KEY, NormalizedEvent
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import EventStatus, ObjectKind


@dataclass(slots=True)
class IngestRecord:
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
    # What the mapping left out or changed (kept beside the normalized event).
    notes: list[str] = field(default_factory=list)

    @property
    def identity(self) -> tuple[uuid.UUID, str]:
        return (self.connection_id, self.dedupe_key)


@dataclass(frozen=True, slots=True)
class StoreResult:
    event_id: uuid.UUID
    duplicate: bool


# For a connection that runs `ingest_batch` over and over (the group committer's). The
# statement is prepared once, and a generic plan costed with the table sizes of that moment
# (on a new install `content_rewards` is empty) scans whole tables on every batch until
# autovacuum's next ANALYZE. Every step is meant to go through a key or ctid. Planning every
# execution (`plan_cache_mode = force_custom_plan`) costs more than it saves on a statement
# this size, and an ANALYZE of the empty tables after migrating makes the plans worse; both
# were compared with `bench/ingest_sql.py --compare`.
BATCH_SESSION_SETTINGS = {"enable_seqscan": "off"}


def _clip(value: str | None, limit: int | None = None) -> str | None:
    """Cut to the column's size. Row strings are not cleaned one by one: `jsonb_text` cleans
    the whole document when any string in it needs it (NUL, lone surrogates)."""
    return value if value is None or limit is None else value[:limit]


def _event_row(n: int, record: IngestRecord) -> dict[str, Any]:
    normalized: dict[str, Any] | None = None
    if record.normalized is not None:
        normalized = record.normalized.as_json()
        if record.mapped_version is not None:
            normalized[MAPPED_VERSION_KEY] = record.mapped_version
        if record.notes:
            normalized[MAPPING_NOTES_KEY] = record.notes
    return {
        "n": n,
        "id": record.id,
        "tenant_id": record.tenant_id,
        "connection_id": record.connection_id,
        "dedupe_key": record.dedupe_key,
        "source_event_id": _clip(record.source_event_id, 255),
        "kind": _clip(record.kind, 64),
        "status": record.status.value,
        "reason": _clip(record.reason, 2000),
        "user_key": _clip(record.user_key, 1024),
        "normalized": normalized,
        "received_at": record.received_at,
        "occurred_at": record.occurred_at,
        "headers": record.headers,
        "content_type": _clip(record.content_type, 255),
    }


def _operation_rows(record: IngestRecord, first: int) -> list[dict[str, Any]]:
    return [
        {
            "n": first + position,
            "event_id": record.id,
            "position": position,
            "kind": operation.kind.value,
            "user_key": (operation.user.key or "")[:1024],
            "external_id": _clip(operation.user.external_id, 1024),
            "email": _clip(operation.user.email, 512),
            "unknown_user": operation.user.unknown_user,
            "payload": operation.payload,
        }
        for position, operation in enumerate(record.operations)
    ]


def _content_row(n: int, record: IngestRecord) -> dict[str, Any] | None:
    change = record.content
    if change is None:
        return None
    reward = change.reward
    return {
        "n": n,
        "event_id": record.id,
        "connection_id": record.connection_id,
        "external_id": change.external_id[:1024],
        "share_link": change.share_link,
        "share_code": _clip(change.share_code, 255),
        **(
            {}
            if reward is None
            else {
                "reward_id": reward.reward_id[:255],
                "state": reward.state[:32],
                "face_value": reward.face_value,
                "face_value_type": _clip(reward.face_value_type, 255),
                "coupon_code": reward.coupon_code,
                "reward_at": reward.updated_at,
            }
        ),
    }


def _reward_key(record: IngestRecord) -> tuple[uuid.UUID, str, str] | None:
    change = record.content
    if change is None or change.reward is None:
        return None
    return (
        record.connection_id,
        # as the stored key will be, once jsonb_text has cleaned the document
        clean_text(change.external_id[:1024]),
        clean_text(change.reward.reward_id[:255]),
    )


def _reward_safe_chunks(records: list[IngestRecord]) -> list[list[IngestRecord]]:
    """`records` in order, cut before any that changes a reward an earlier one in its chunk
    changes (one upsert statement cannot update a row twice). Almost always one chunk."""
    chunks: list[list[IngestRecord]] = [[]]
    seen: set[tuple[uuid.UUID, str, str]] = set()
    for record in records:
        key = _reward_key(record)
        if key is not None:
            if key in seen:
                chunks.append([])
                seen = set()
            seen.add(key)
        chunks[-1].append(record)
    return chunks


async def _write_batch(
    conn: asyncpg.Connection, records: list[IngestRecord]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """One statement for `records` (distinct keys); the ids of the events it inserted."""
    ordered = sorted(records, key=lambda r: (str(r.connection_id), r.dedupe_key))
    operations: list[dict[str, Any]] = []
    for record in ordered:
        operations += _operation_rows(record, len(operations))
    content = [
        row for n, record in enumerate(records) if (row := _content_row(n, record)) is not None
    ]
    rows = await driver.fetch_on_driver(
        conn,
        "ingest_batch",
        jsonb_text([_event_row(n, r) for n, r in enumerate(ordered, start=1)]),
        [r.body for r in ordered],
        jsonb_text(operations),
        jsonb_text(content),
        MAX_REWARDS_KEPT,
        OUTBOX_CHANNEL,
        EVENTS_CHANNEL,
    )
    return {(row["connection_id"], row["dedupe_key"]): row["id"] for row in rows}


async def store_events(session: AsyncSession, records: Sequence[IngestRecord]) -> list[StoreResult]:
    """Store a batch of webhooks inside the session's transaction; report duplicates."""
    return await store_events_on_driver(await driver.session_driver(session), records)


async def store_events_on_driver(
    conn: asyncpg.Connection, records: Sequence[IngestRecord]
) -> list[StoreResult]:
    """Store a batch of webhooks atomically; report duplicates. One result each.

    One statement, or (when the batch changes one reward twice) a transaction of several.

    Within `records`, the first of several with one (connection, dedupe key) is the candidate;
    the others are duplicates of whatever that key ends up pointing at. Events are inserted in
    key order so two concurrent batches lock unique-index entries in the same order. Atomic on
    its own (autocommit) or inside a transaction the caller opened on `conn`.
    """
    candidates: dict[tuple[uuid.UUID, str], IngestRecord] = {}
    for record in records:
        candidates.setdefault(record.identity, record)

    inserted: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    chunks = [chunk for chunk in _reward_safe_chunks(list(candidates.values())) if chunk]
    several = len(chunks) > 1 and not conn.is_in_transaction()
    async with conn.transaction() if several else contextlib.nullcontext():  # all or nothing
        for chunk in chunks:
            inserted.update(await _write_batch(conn, chunk))

    # A key taken by another transaction meanwhile: that transaction has committed by now
    # (ON CONFLICT waited for it), so a fresh statement finds its event.
    existing = await _existing_ids(conn, [key for key in candidates if key not in inserted])
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
    session: AsyncSession, event_id: uuid.UUID
) -> list[tuple[int, dict[str, Any]]]:
    """`(operation id, payload)` of an event's attribute objects, in mapping order."""
    rows = await session.execute(
        select(OutboxOperation.id, OutboxOperation.payload)
        .where(OutboxOperation.event_id == event_id, OutboxOperation.kind == ObjectKind.ATTRIBUTES)
        .order_by(OutboxOperation.position)
    )
    return [(row.id, dict(row.payload)) for row in rows]


async def _existing_ids(
    conn: asyncpg.Connection, identities: list[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    if not identities:
        return {}
    rows = await driver.fetch_on_driver(
        conn, "existing_event_ids", [c for c, _ in identities], [key for _, key in identities]
    )
    return {(row["connection_id"], row["dedupe_key"]): row["id"] for row in rows}
