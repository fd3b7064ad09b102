"""Deletes reach every row that belongs to what was deleted, with or without foreign keys.

Ingest's hot tables carry no per-row key checks (migrations 0006, 0007): statement triggers do
what ON DELETE CASCADE did. Another tenant's rows are never touched.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
