"""Every row braze-bridge holds about one person in one connection, found and removed or
redacted (docs/privacy.md). Runs inside the caller's transaction; statements in
`db/sql/forget.sql`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.db.repositories import outbox
from braze_bridge.domain.privacy import FORGOTTEN_REASON, Person

# Links are followed this many times (email → external id → another email ...) at most.
MAX_LINK_ROUNDS = 5


def _arrays(person: Person) -> tuple[list[str], list[str], list[str]]:
    return person.user_keys, sorted(person.external_ids), sorted(person.emails)


async def linked_person(session: AsyncSession, connection_id: uuid.UUID, person: Person) -> Person:
    """`person` with every identifier stored alongside one of theirs in this connection."""
    for _ in range(MAX_LINK_ROUNDS):
        rows = await driver.fetch(
            session, "forget_linked_identifiers", connection_id, *_arrays(person)
        )
        linked = person.with_links(
            [row["external_id"] for row in rows if row["external_id"]],
            [row["email"] for row in rows if row["email"]],
        )
        if linked == person:
            break
        person = linked
    return person


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _scrub_json_text(person: Person, text: str | None) -> str | None:
    if text is None:
        return None
    return _dump(person.scrub_json(orjson.loads(text)))


def _scrub_free_text(person: Person, text: str | None) -> str | None:
    """A text that may be JSON (a Braze answer): scrubbed as JSON when it parses."""
    if text is None:
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return person.scrub_text(text)
    return _dump(person.scrub_json(parsed))


async def erase_person(
    session: AsyncSession, connection_id: uuid.UUID, tenant_id: uuid.UUID, person: Person
) -> dict[str, int]:
    """Cancel, delete and redact everything of `person` (already linked) in the connection.

    Returns how many rows of each kind changed; the caller commits.
    """
    keys, external_ids, emails = _arrays(person)
    patterns = person.body_patterns
    counts: dict[str, int] = {}

    ops = await driver.fetch(
        session, "forget_person_operations", connection_id, keys, external_ids, emails
    )
    op_ids = [row["id"] for row in ops]
    counts["objects_cancelled"] = await outbox.cancel_operations(
        session, op_ids, reason=FORGOTTEN_REASON
    )
    event_rows = await driver.fetch(
        session,
        "forget_person_events",
        connection_id,
        keys,
        list({row["event_id"] for row in ops}),
        patterns,
    )
    event_ids = [row["id"] for row in event_rows]

    counts["raw_bodies_deleted"] = await driver.execute(
        session, "forget_delete_bodies", connection_id, event_ids, patterns
    )
    counts["events_redacted"] = await driver.execute(
        session, "forget_redact_events", connection_id, event_ids
    )
    counts["objects_redacted"] = await driver.execute(
        session, "forget_redact_operations", connection_id, op_ids
    )
    counts["other_events_redacted"] = await _scrub_events(session, connection_id, person)
    counts["other_objects_redacted"] = await _scrub_operations(session, connection_id, person)
    counts["attempts_redacted"] = await _scrub_attempts(session, connection_id, person, op_ids)
    counts["identities_deleted"] = await driver.execute(
        session, "forget_delete_identities", connection_id, external_ids, emails
    )
    pending = await driver.execute(
        session, "forget_delete_pending_values", connection_id, keys, op_ids
    )
    values = await driver.execute(session, "forget_delete_values", connection_id, keys)
    counts["recorded_values_deleted"] = pending + values
    rewards = await driver.execute(
        session, "forget_delete_content_rewards", connection_id, external_ids
    )
    profiles = await driver.execute(
        session, "forget_delete_content_profiles", connection_id, external_ids
    )
    counts["content_rows_deleted"] = rewards + profiles
    counts["replay_jobs_redacted"] = await _scrub_replay_jobs(
        session, connection_id, tenant_id, person
    )
    return counts


def _changed(
    rows: list[Any], columns: tuple[str, ...], scrubbed: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """(id, *new values) of the rows a scrub changed; a candidate the SQL filter let through
    (an email inside a longer address) stays as it is."""
    return [
        (row["id"], *new)
        for row, new in zip(rows, scrubbed, strict=True)
        if any(_differs(row[c], value) for c, value in zip(columns, new, strict=True))
    ]


def _differs(stored: str | None, new: str | None) -> bool:
    if stored is None or new is None:
        return stored is not new
    try:
        return bool(orjson.loads(stored) != orjson.loads(new))
    except orjson.JSONDecodeError:
        return stored != new


async def _apply(session: AsyncSession, statement: str, changed: list[tuple[Any, ...]]) -> int:
    if changed:
        await driver.execute(
            session, statement, *(list(column) for column in zip(*changed, strict=True))
        )
    return len(changed)


async def _scrub_events(session: AsyncSession, connection_id: uuid.UUID, person: Person) -> int:
    rows = await driver.fetch(session, "forget_mentioning_events", connection_id, person.needles)
    columns = ("normalized_json", "reason")
    scrubbed = [
        (_scrub_json_text(person, row["normalized_json"]), _scrub_free_text(person, row["reason"]))
        for row in rows
    ]
    return await _apply(session, "forget_set_event_text", _changed(rows, columns, scrubbed))


async def _scrub_operations(session: AsyncSession, connection_id: uuid.UUID, person: Person) -> int:
    rows = await driver.fetch(
        session, "forget_mentioning_operations", connection_id, person.needles
    )
    columns = ("payload_json", "sent_json", "reason")
    scrubbed = [
        (
            _scrub_json_text(person, row["payload_json"]),
            _scrub_json_text(person, row["sent_json"]),
            _scrub_free_text(person, row["reason"]),
        )
        for row in rows
    ]
    return await _apply(session, "forget_set_operation_text", _changed(rows, columns, scrubbed))


async def _scrub_attempts(
    session: AsyncSession, connection_id: uuid.UUID, person: Person, op_ids: list[int]
) -> int:
    """Attempts keep status, timing and the other users' objects; the person's objects are
    taken out of the request and answer, any other mention replaced."""
    rows = await driver.fetch(
        session, "forget_mentioning_attempts", connection_id, op_ids, person.needles
    )
    columns = ("request_json", "response_body", "headers_json", "error")
    scrubbed = [
        (
            _scrub_json_text(person, row["request_json"]),
            _scrub_free_text(person, row["response_body"]),
            _scrub_json_text(person, row["headers_json"]),
            _scrub_free_text(person, row["error"]),
        )
        for row in rows
    ]
    return await _apply(session, "forget_set_attempt_text", _changed(rows, columns, scrubbed))


async def _scrub_replay_jobs(
    session: AsyncSession, connection_id: uuid.UUID, tenant_id: uuid.UUID, person: Person
) -> int:
    rows = await driver.fetch(
        session, "forget_mentioning_replay_jobs", tenant_id, person.needles, str(connection_id)
    )
    scrubbed = [(_scrub_json_text(person, row["filters_json"]),) for row in rows]
    return await _apply(
        session, "forget_set_replay_filters", _changed(rows, ("filters_json",), scrubbed)
    )
