"""Deletes reach every row that belongs to what was deleted, with or without foreign keys.

Ingest's hot tables carry no per-row key checks: the statement triggers of
`braze_bridge.db.ddl` do what ON DELETE CASCADE did. Another tenant's rows are never touched.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import ddl
from braze_bridge.domain.statuses import OperationStatus
from tests.factories import make_connection, make_tenant
from tests.ops_factories import make_event

COUNTS = text(
    """
SELECT (SELECT count(*) FROM events WHERE tenant_id = :tenant),
       (SELECT count(*) FROM event_bodies b JOIN events e ON e.id = b.event_id
        WHERE e.tenant_id = :tenant),
       (SELECT count(*) FROM operations WHERE tenant_id = :tenant)
"""
)


async def counts(session: AsyncSession, tenant: uuid.UUID) -> tuple[int, ...]:
    row = (await session.execute(COUNTS, {"tenant": tenant})).one()
    return tuple(row)


async def orphans(session: AsyncSession) -> tuple[int, ...]:
    row = (
        await session.execute(
            text(
                """
SELECT (SELECT count(*) FROM event_bodies b
        WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = b.event_id)),
       (SELECT count(*) FROM operations o
        WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = o.event_id))
"""
            )
        )
    ).one()
    return tuple(row)


# The parent table each key column names.
PARENT_OF = {
    "event_id": "events",
    "operation_id": "operations",
    "attempt_id": "delivery_attempts",
    "connection_id": "connections",
}

KEY_COLUMNS = text(
    """
SELECT c.relname, a.attname
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT a.attisdropped
  AND a.attname = ANY(CAST(:columns AS text[]))
"""
)
CASCADING_KEYS = text(
    """
SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
WHERE c.contype = 'f' AND c.confdeltype = 'c' AND cardinality(c.conkey) = 1
"""
)
# Triggers fired by DELETE (tgtype bit 3) and the source of the function each runs.
DELETE_TRIGGERS = text(
    """
SELECT t.tgrelid::regclass::text, p.prosrc
FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal AND t.tgtype & 8 = 8
"""
)


async def delete_paths(session: AsyncSession) -> set[tuple[str, str, str]]:
    """(child table, column, parent table): deleting a parent row deletes the child rows."""
    paths = {tuple(row) for row in (await session.execute(CASCADING_KEYS)).all()}
    for parent, source in (await session.execute(DELETE_TRIGGERS)).all():
        for child, column in re.findall(
            r"DELETE FROM (\w+) WHERE (\w+) IN \(SELECT id FROM gone\)", source
        ):
            paths.add((child, column, parent))
    return paths


async def test_every_table_naming_an_event_operation_or_connection_has_a_delete_path(
    session: AsyncSession,
) -> None:
    """A child table added without a cascading key or a trigger in db/ddl.py keeps orphans."""
    paths = await delete_paths(session)
    held = (await session.execute(KEY_COLUMNS, {"columns": list(PARENT_OF)})).all()
    assert {"event_bodies", "operations", "attempt_operations", "content_rewards"} <= {
        table for table, _ in held
    }
    missing = []
    for table, column in held:
        parent = PARENT_OF[column]
        direct = (table, column, parent) in paths
        # Reached through another parent whose own rows go with this one: `operations` rows go
        # with their event, and events with their connection.
        through = any(child == table and (via, column, parent) in paths for child, _, via in paths)
        if not (direct or through):
            missing.append(f"{table}.{column}")
    assert missing == []


async def test_the_database_runs_exactly_the_delete_triggers_declared_in_ddl(
    session: AsyncSession,
) -> None:
    """Alembic's model comparison cannot see triggers: the migrations and db/ddl.py agree here."""
    rows = await session.execute(
        text(
            "SELECT t.tgname, t.tgrelid::regclass::text, p.proname, p.prosrc FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal"
        )
    )
    found = {(name, table, function): source.strip() for name, table, function, source in rows}
    declared = {
        (t.name, t.parent, t.function): t.create_function().split("$$")[1].strip()
        for t in ddl.DELETE_TRIGGERS
    }
    assert found == declared


async def test_deleting_an_event_deletes_its_body_and_objects_only(session: AsyncSession) -> None:
    tenant = await make_tenant(session)
    conn = await make_connection(session, tenant)
    doomed = await make_event(
        session, conn, operations=[OperationStatus.PENDING, OperationStatus.DELIVERED]
    )
    await make_event(session, conn, operations=[OperationStatus.PENDING])

    await session.execute(text("DELETE FROM events WHERE id = :id"), {"id": doomed.id})
    await session.commit()

    assert await counts(session, tenant.id) == (1, 1, 1)
    assert await orphans(session) == (0, 0)


async def test_deleting_a_tenant_deletes_its_events_bodies_and_objects(
    session: AsyncSession,
) -> None:
    gone, kept = await make_tenant(session), await make_tenant(session)
    for tenant in (gone, kept):
        for _ in range(2):
            conn = await make_connection(session, tenant)
            await make_event(session, conn, operations=[OperationStatus.PENDING] * 2)

    await session.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": gone.id})
    await session.commit()

    assert await counts(session, gone.id) == (0, 0, 0)
    assert await counts(session, kept.id) == (2, 2, 4)
    assert await orphans(session) == (0, 0)
