"""Storing inbound events: event row, raw body and outbox operations in a few multi-row statements.

`store_events` is the ingest hot path. It runs inside the caller's transaction, so a batch of
requests (group commit) or a single request is stored with the same statements:
`INSERT … ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING` decides which events are
new; redeliveries get the id of the event stored first and add nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from braze_bridge.db.models import Operation as OperationRow
from braze_bridge.db.notify import OUTBOX_CHANNEL
from braze_bridge.domain.content import MAX_REWARDS_KEPT, ContentUpdate
from braze_bridge.domain.events import MAPPED_VERSION_KEY, NormalizedEvent
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import EventStatus, OperationStatus


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


def jsonb_text(value: Any) -> str:
    """`value` as JSON text Postgres accepts as jsonb.

    orjson writes the common case ~15x faster than `json.dumps(jsonb_safe(value))`. It refuses
    lone surrogates and non-JSON types (TypeError) and writes NUL as `\\u0000`, which jsonb
    refuses: those rare values take the cleaning walk instead.
    """
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(jsonb_safe(value))
    return text if "\\u0000" not in text else json.dumps(jsonb_safe(value))


def safe_dedupe_key(key: str) -> str:
    """Keys that would not survive storage unchanged are hashed instead (never merged)."""
    if len(key) <= 255 and clean_text(key) == key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


def _normalized_json(record: EventRecord) -> str | None:
    if record.normalized is None:
        return None
    document: dict[str, Any] = record.normalized.as_json()
    if record.mapped_version is not None:
        document[MAPPED_VERSION_KEY] = record.mapped_version
    return jsonb_text(document)


# A batch of webhooks is ONE statement: new events, their raw bodies, their operations, the
# Connected Content projection and the outbox wake-up, each step a data-modifying CTE fed by
# `unnest` of one array per column. One statement is atomic on its own, so the group committer
# needs no BEGIN/COMMIT round trips and asyncpg keeps the statement prepared whatever the batch
# size. Bodies, operations and content join `ins`: a redelivery (ON CONFLICT DO NOTHING) adds
# nothing. Content changes are folded per user in batch order (last share link/code wins,
# rewards through `braze_bridge_merge_rewards`, see migration 0002) and profiles are written in
# key order so concurrent batches lock them in the same order. The NOTIFY subquery runs once.
_WRITE_BATCH_SQL = """
WITH ins AS (
    INSERT INTO events (id, tenant_id, connection_id, dedupe_key, source_event_id, kind, status,
                        reason, user_key, normalized, received_at, occurred_at)
    SELECT id, tenant_id, connection_id, dedupe_key, source_event_id, kind, status,
           reason, user_key, normalized::jsonb, received_at, occurred_at
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                $12::timestamptz[])
         AS r(id, tenant_id, connection_id, dedupe_key, source_event_id, kind, status,
              reason, user_key, normalized, received_at, occurred_at)
    ON CONFLICT (connection_id, dedupe_key) DO NOTHING
    RETURNING id, connection_id, dedupe_key
),
bodies AS (
    INSERT INTO event_bodies (event_id, body, headers, content_type, received_at)
    SELECT r.event_id, r.body, r.headers::jsonb, r.content_type, r.received_at
    FROM unnest($13::uuid[], $14::bytea[], $15::text[], $16::text[], $17::timestamptz[])
         AS r(event_id, body, headers, content_type, received_at)
    JOIN ins ON ins.id = r.event_id
),
ops AS (
    INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key,
                            external_id, email, unknown_user, payload, status, attempts,
                            available_at)
    SELECT r.event_id, r.tenant_id, r.connection_id, r.position, r.kind, r.user_key,
           r.external_id, r.email, r.unknown_user, r.payload::jsonb, r.status, 0, r.available_at
    FROM unnest($18::uuid[], $19::uuid[], $20::uuid[], $21::smallint[], $22::text[],
                $23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::text[],
                $29::timestamptz[])
         AS r(event_id, tenant_id, connection_id, position, kind, user_key,
              external_id, email, unknown_user, payload, status, available_at)
    JOIN ins ON ins.id = r.event_id
    RETURNING connection_id
),
changes AS (
    SELECT c.connection_id, c.external_id,
           (array_agg(c.share_link ORDER BY c.ord DESC)
               FILTER (WHERE c.share_link IS NOT NULL))[1] AS share_link,
           (array_agg(c.share_code ORDER BY c.ord DESC)
               FILTER (WHERE c.share_code IS NOT NULL))[1] AS share_code,
           coalesce(jsonb_agg(c.reward::jsonb ORDER BY c.ord)
               FILTER (WHERE c.reward IS NOT NULL), '[]'::jsonb) AS news
    FROM unnest($30::int[], $31::uuid[], $32::uuid[], $33::text[], $34::text[], $35::text[],
                $36::text[])
         AS c(ord, event_id, connection_id, external_id, share_link, share_code, reward)
    JOIN ins ON ins.id = c.event_id
    GROUP BY c.connection_id, c.external_id
),
content AS (
    INSERT INTO content_profiles AS p (connection_id, external_id, share_link, share_code,
                                       rewards)
    SELECT connection_id, external_id, share_link, share_code,
           braze_bridge_merge_rewards('[]'::jsonb, news, $37)
    FROM changes
    ORDER BY connection_id, external_id
    ON CONFLICT (connection_id, external_id) DO UPDATE SET
        share_link = coalesce(excluded.share_link, p.share_link),
        share_code = coalesce(excluded.share_code, p.share_code),
        rewards = braze_bridge_merge_rewards(
            p.rewards,
            (SELECT ch.news FROM changes AS ch
             WHERE ch.connection_id = p.connection_id AND ch.external_id = p.external_id),
            $37
        ),
        updated_at = now()
),
woken AS (
    SELECT pg_notify($38, n.connection_id::text)
    FROM (SELECT DISTINCT connection_id FROM ops) AS n
)
SELECT id, connection_id, dedupe_key, (SELECT count(*) FROM woken) AS woken FROM ins
"""


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Row tuples → one list per column (the `unnest` parameters)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def _event_tuple(record: EventRecord) -> tuple[Any, ...]:
    normalized = _normalized_json(record)
    return (
        record.id,
        record.tenant_id,
        record.connection_id,
        record.dedupe_key,
        _optional_text(record.source_event_id, 255),
        _optional_text(record.kind, 64),
        record.status.value,
        _optional_text(record.reason, 2000),
        _optional_text(record.user_key, 1024),
        normalized,
        record.received_at,
        record.occurred_at,
    )


def _body_tuple(record: EventRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.body,
        jsonb_text(record.headers),
        _optional_text(record.content_type, 255),
        record.received_at,
    )


def _operation_tuples(record: EventRecord) -> list[tuple[Any, ...]]:
    return [
        (
            record.id,
            record.tenant_id,
            record.connection_id,
            position,
            operation.kind.value,
            clean_text(operation.user.key or "", 1024),
            _optional_text(operation.user.external_id, 1024),
            _optional_text(operation.user.email, 512),
            operation.user.unknown_user,
            jsonb_text(operation.payload),
            OperationStatus.PENDING.value,
            record.received_at,
        )
        for position, operation in enumerate(record.operations)
    ]


def _content_tuple(order: int, record: EventRecord) -> tuple[Any, ...] | None:
    change = record.content
    if change is None:
        return None
    reward = None if change.reward is None else jsonb_text(change.reward.as_json())
    return (
        order,
        record.id,
        record.connection_id,
        clean_text(change.external_id, 1024),
        _optional_text(change.share_link),
        _optional_text(change.share_code, 255),
        reward,
    )


async def store_events(
    driver: asyncpg.Connection, records: Sequence[EventRecord]
) -> list[StoreResult]:
    """Store a batch of webhooks in one statement; report duplicates. One result each.

    Within `records`, the first of several with one (connection, dedupe key) is the candidate;
    the others are duplicates of whatever that key ends up pointing at. Events are inserted in
    key order so two concurrent batches lock unique-index entries in the same order. Atomic on
    its own (autocommit) or inside a transaction the caller opened on `driver`.
    """
    candidates: dict[tuple[uuid.UUID, str], EventRecord] = {}
    for record in records:
        candidates.setdefault(record.identity, record)
    ordered = sorted(candidates.values(), key=lambda r: (str(r.connection_id), r.dedupe_key))

    inserted: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    if ordered:
        content = [
            row
            for order, record in enumerate(candidates.values())
            if (row := _content_tuple(order, record)) is not None
        ]
        rows = await driver.fetch(
            _WRITE_BATCH_SQL,
            *_columns([_event_tuple(r) for r in ordered], 12),
            *_columns([_body_tuple(r) for r in ordered], 5),
            *_columns([row for r in ordered for row in _operation_tuples(r)], 12),
            *_columns(content, 7),
            MAX_REWARDS_KEPT,
            OUTBOX_CHANNEL,
        )
        for row in rows:
            inserted[(row["connection_id"], row["dedupe_key"])] = row["id"]

    # A key taken by another transaction meanwhile: that transaction has committed by now
    # (ON CONFLICT waited for it), so a fresh statement finds its event.
    existing = await _existing_ids(
        driver, [r.identity for r in ordered if r.identity not in inserted]
    )
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


_EXISTING_IDS_SQL = """
SELECT e.id, e.connection_id, e.dedupe_key
FROM events AS e
JOIN unnest($1::uuid[], $2::text[]) AS k(connection_id, dedupe_key)
  ON e.connection_id = k.connection_id AND e.dedupe_key = k.dedupe_key
"""


async def _existing_ids(
    driver: asyncpg.Connection, identities: list[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    if not identities:
        return {}
    rows = await driver.fetch(_EXISTING_IDS_SQL, *_columns(identities, 2))
    return {(row["connection_id"], row["dedupe_key"]): row["id"] for row in rows}
