"""Storing inbound events: event row, raw body and outbox operations in a few multi-row statements.

`store_events` is the ingest hot path. It runs inside the caller's transaction, so a batch of
requests (group commit) or a single request is stored with the same statements:
`INSERT … ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING` decides which events are
new; redeliveries get the id of the event stored first and add nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
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
from braze_bridge.domain.events import MAPPED_VERSION_KEY, MAPPING_NOTES_KEY, NormalizedEvent
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import EventStatus


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
    # What the mapping left out or changed (kept beside the normalized event).
    notes: list[str] = field(default_factory=list)

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


def _clip(value: str | None, limit: int | None = None) -> str | None:
    """Cut to the column's size. Row strings are not cleaned one by one: `jsonb_text` cleans
    the whole document when any string in it needs it (NUL, lone surrogates)."""
    return value if value is None or limit is None else value[:limit]


def jsonb_safe(value: Any) -> Any:
    """The same cleaning for every string (keys too) inside a JSON value bound for JSONB.

    Every path that writes text or JSON uses it (or `clean_text`): ingest through
    `jsonb_text`, replay's re-map in repositories/replay.py."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): jsonb_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonb_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # as orjson writes it: Postgres JSON has no NaN or infinity
    return value


def _uuid_like(value: Any) -> str:
    # asyncpg returns its own UUID subclass, which orjson only serializes through `default`.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonb_text(value: Any) -> str:
    """`value` as JSON text Postgres accepts (as jsonb, or typed columns via jsonb_to_recordset).

    orjson writes the common case ~15x faster than `json.dumps(jsonb_safe(value))`, UUIDs and
    datetimes included. It refuses lone surrogates (TypeError) and writes NUL as `\\u0000`,
    which Postgres refuses: those rare values take the cleaning walk first. Numbers beyond
    double range are written as null (Postgres has no infinity in JSON).
    """
    try:
        text = orjson.dumps(value, default=_uuid_like).decode()
    except TypeError:
        pass
    else:
        if "\\u0000" not in text:
            return text
    cleaned = jsonb_safe(value)
    try:
        return orjson.dumps(cleaned, default=_uuid_like).decode()
    except TypeError:  # an integer beyond 64 bits: the standard library writes those
        return json.dumps(cleaned, default=str)


def safe_dedupe_key(key: str) -> str:
    """Keys that would not survive storage unchanged are hashed instead (never merged)."""
    if len(key) <= 255 and clean_text(key) == key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


# A batch of webhooks is ONE statement: new events, their raw bodies, their operations, the
# Connected Content projection and the outbox wake-up, each step a data-modifying CTE. One
# statement is atomic on its own, so the group committer needs no BEGIN/COMMIT round trips.
# Rows travel as JSON documents (`jsonb_to_recordset`), raw bodies as one bytea array: asyncpg
# encodes array parameters element by element with several ABC isinstance checks each (~37 µs
# of this process's CPU per webhook), orjson writes the whole batch in a few microseconds.
# As jsonb, each document is parsed once; `json` parsed the jsonb columns' text a second time
# (Postgres CPU per webhook 145-169 → 131-145 µs, bench/ingest_sql.py).
# Bodies, operations and content join `ins`: a redelivery (ON CONFLICT DO NOTHING) adds
# nothing. Events and operations are inserted in the order given (`n`), events in key order so
# concurrent batches lock unique-index entries alike.
#
# Connected Content (domain/content.py): share links and codes are folded per user in batch
# order (the last one wins). A reward is one row; its upsert applies the merge rules (the
# newest state wins, equal times included; a state without a coupon keeps the known code
# unless CANCELED/REVOKED) and takes a new `seq` when it changes, drawn in batch order (a
# volatile select list is computed after its ORDER BY) while rows are written in key order.
# A batch holds at most one change per reward (`_reward_safe_chunks`): one statement cannot
# update a row twice. `trim` deletes a user's rewards beyond the newest $5 as this statement
# found them, never one this batch changes (two CTEs must not touch one row), and only the row
# version it saw (`ctid`): a concurrent batch that just made that reward newer keeps it.
# The NOTIFY subquery runs once.
_WRITE_BATCH_SQL = """
WITH rows AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
        n bigint, id uuid, tenant_id uuid, connection_id uuid, dedupe_key text,
        source_event_id text, kind text, status text, reason text, user_key text,
        normalized jsonb, received_at timestamptz, occurred_at timestamptz,
        headers jsonb, content_type text)
),
ins AS (
    INSERT INTO events (id, tenant_id, connection_id, dedupe_key, source_event_id, kind, status,
                        reason, user_key, normalized, received_at, occurred_at)
    SELECT id, tenant_id, connection_id, dedupe_key, source_event_id, kind, status,
           reason, user_key, normalized, received_at, occurred_at
    FROM rows
    ORDER BY n
    ON CONFLICT (connection_id, dedupe_key) DO NOTHING
    RETURNING id, tenant_id, connection_id, dedupe_key, received_at
),
bodies AS (
    INSERT INTO event_bodies (event_id, body, headers, content_type, received_at)
    SELECT r.id, b.body, r.headers, r.content_type, r.received_at
    FROM rows AS r
    JOIN unnest($2::bytea[]) WITH ORDINALITY AS b(body, n) ON b.n = r.n
    JOIN ins ON ins.id = r.id
),
ops AS (
    INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key,
                            external_id, email, unknown_user, payload, status, attempts,
                            available_at)
    SELECT o.event_id, ins.tenant_id, ins.connection_id, o.position, o.kind, o.user_key,
           o.external_id, o.email, o.unknown_user, o.payload, 'pending', 0, ins.received_at
    FROM jsonb_to_recordset($3::jsonb) AS o(
        n bigint, event_id uuid, position smallint, kind text, user_key text,
        external_id text, email text, unknown_user text, payload jsonb)
    JOIN ins ON ins.id = o.event_id
    ORDER BY o.n
    RETURNING connection_id
),
content AS (
    SELECT c.* FROM jsonb_to_recordset($4::jsonb) AS c(
        n bigint, event_id uuid, connection_id uuid, external_id text, share_link text,
        share_code text, reward_id text, state text, face_value double precision,
        face_value_type text, coupon_code text, reward_at timestamptz)
    JOIN ins ON ins.id = c.event_id
),
profiles AS (
    INSERT INTO content_profiles AS p (connection_id, external_id, share_link, share_code)
    SELECT connection_id, external_id,
           (array_agg(share_link ORDER BY n DESC) FILTER (WHERE share_link IS NOT NULL))[1],
           (array_agg(share_code ORDER BY n DESC) FILTER (WHERE share_code IS NOT NULL))[1]
    FROM content
    WHERE share_link IS NOT NULL OR share_code IS NOT NULL
    GROUP BY connection_id, external_id
    ORDER BY connection_id, external_id
    ON CONFLICT (connection_id, external_id) DO UPDATE SET
        share_link = coalesce(excluded.share_link, p.share_link),
        share_code = coalesce(excluded.share_code, p.share_code),
        updated_at = now()
),
rewards AS (
    INSERT INTO content_rewards AS r (connection_id, external_id, reward_id, state,
                                      face_value, face_value_type, coupon_code, updated_at,
                                      seq)
    SELECT * FROM (
        SELECT connection_id, external_id, reward_id, state, face_value, face_value_type,
               coupon_code, reward_at, nextval('content_rewards_seq_seq')
        FROM content
        WHERE reward_id IS NOT NULL
        ORDER BY n
    ) AS numbered
    ORDER BY connection_id, external_id, reward_id
    ON CONFLICT (connection_id, external_id, reward_id) DO UPDATE SET
        state = excluded.state,
        face_value = excluded.face_value,
        face_value_type = excluded.face_value_type,
        coupon_code = CASE
            WHEN excluded.coupon_code IS NULL AND excluded.state NOT IN ('CANCELED', 'REVOKED')
            THEN r.coupon_code ELSE excluded.coupon_code END,
        updated_at = excluded.updated_at,
        seq = excluded.seq
    WHERE excluded.updated_at >= r.updated_at
),
trim AS (
    DELETE FROM content_rewards
    WHERE ctid = ANY(ARRAY(
        SELECT old.ctid
        FROM (SELECT DISTINCT connection_id, external_id FROM content
              WHERE reward_id IS NOT NULL) AS u
        CROSS JOIN LATERAL (
            SELECT x.ctid, x.reward_id
            FROM content_rewards AS x
            WHERE x.connection_id = u.connection_id AND x.external_id = u.external_id
            ORDER BY x.updated_at DESC, x.seq
            OFFSET $5
        ) AS old
        WHERE NOT EXISTS (
            SELECT 1 FROM content AS c
            WHERE c.connection_id = u.connection_id AND c.external_id = u.external_id
              AND c.reward_id = old.reward_id)
    ))
),
woken AS (
    SELECT pg_notify($6, n.connection_id::text)
    FROM (SELECT DISTINCT connection_id FROM ops) AS n
)
SELECT id, connection_id, dedupe_key, (SELECT count(*) FROM woken) AS woken FROM ins
"""


# For a connection that runs `_WRITE_BATCH_SQL` over and over (the group committer's). The
# statement is prepared once, and Postgres soon settles on a generic plan costed with the table
# sizes of that moment: on a new install `content_rewards` is empty then, and the plan scanned
# the whole table for `trim` on every batch from then on (one shape of it took 30 ms a batch at
# 3,000 rows) until autovacuum's next ANALYZE. Every step is meant to go through a key or ctid.
BATCH_SESSION_SETTINGS = {"enable_seqscan": "off"}


def _event_row(n: int, record: EventRecord) -> dict[str, Any]:
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


def _operation_rows(record: EventRecord, first: int) -> list[dict[str, Any]]:
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


def _content_row(n: int, record: EventRecord) -> dict[str, Any] | None:
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


def _reward_key(record: EventRecord) -> tuple[uuid.UUID, str, str] | None:
    change = record.content
    if change is None or change.reward is None:
        return None
    return (
        record.connection_id,
        # as the stored key will be, once jsonb_text has cleaned the document
        clean_text(change.external_id[:1024]),
        clean_text(change.reward.reward_id[:255]),
    )


def _reward_safe_chunks(records: list[EventRecord]) -> list[list[EventRecord]]:
    """`records` in order, cut before any that changes a reward an earlier one in its chunk
    changes (one upsert statement cannot update a row twice). Almost always one chunk."""
    chunks: list[list[EventRecord]] = [[]]
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
    driver: asyncpg.Connection, records: list[EventRecord]
) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """One statement for `records` (distinct keys); the ids of the events it inserted."""
    ordered = sorted(records, key=lambda r: (str(r.connection_id), r.dedupe_key))
    operations: list[dict[str, Any]] = []
    for record in ordered:
        operations += _operation_rows(record, len(operations))
    content = [
        row for n, record in enumerate(records) if (row := _content_row(n, record)) is not None
    ]
    rows = await driver.fetch(
        _WRITE_BATCH_SQL,
        jsonb_text([_event_row(n, r) for n, r in enumerate(ordered, start=1)]),
        [r.body for r in ordered],
        jsonb_text(operations),
        jsonb_text(content),
        MAX_REWARDS_KEPT,
        OUTBOX_CHANNEL,
    )
    return {(row["connection_id"], row["dedupe_key"]): row["id"] for row in rows}


async def store_events(
    driver: asyncpg.Connection, records: Sequence[EventRecord]
) -> list[StoreResult]:
    """Store a batch of webhooks atomically; report duplicates. One result each.

    One statement, or (when the batch changes one reward twice) a transaction of several.

    Within `records`, the first of several with one (connection, dedupe key) is the candidate;
    the others are duplicates of whatever that key ends up pointing at. Events are inserted in
    key order so two concurrent batches lock unique-index entries in the same order. Atomic on
    its own (autocommit) or inside a transaction the caller opened on `driver`.
    """
    candidates: dict[tuple[uuid.UUID, str], EventRecord] = {}
    for record in records:
        candidates.setdefault(record.identity, record)

    inserted: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    chunks = [chunk for chunk in _reward_safe_chunks(list(candidates.values())) if chunk]
    several = len(chunks) > 1 and not driver.is_in_transaction()
    async with driver.transaction() if several else contextlib.nullcontext():  # all or nothing
        for chunk in chunks:
            inserted.update(await _write_batch(driver, chunk))

    # A key taken by another transaction meanwhile: that transaction has committed by now
    # (ON CONFLICT waited for it), so a fresh statement finds its event.
    existing = await _existing_ids(driver, [key for key in candidates if key not in inserted])
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
    rows = await driver.fetch(
        _EXISTING_IDS_SQL, [c for c, _ in identities], [key for _, key in identities]
    )
    return {(row["connection_id"], row["dedupe_key"]): row["id"] for row in rows}
