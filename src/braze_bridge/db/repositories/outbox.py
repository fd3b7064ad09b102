"""The outbox: claim due operations, settle or release them, roll events up.

Hot path: each use case is one named statement in `db/sql/outbox.sql`, run through
`db.driver` on the session's connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.db.notify import EVENTS_CHANNEL
from braze_bridge.domain.statuses import SUPERSEDED_REASON, ObjectKind, OperationStatus


@dataclass(frozen=True, slots=True)
class ClaimedOperation:
    """An operation this worker now holds under lease. `payload_json` is Postgres' jsonb text."""

    id: int
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    kind: ObjectKind
    user_key: str
    external_id: str | None
    email: str | None
    unknown_user: str
    payload_json: str
    attempts: int


_KINDS = {kind.value: kind for kind in ObjectKind}  # the enum by its stored word


async def claim_due_operations(
    session: AsyncSession,
    *,
    owner: str,
    limit: int,
    lease_seconds: float,
    run_cap: int = 16,
    lane_objects: int = 600,
    lanes: int = 4,
) -> list[ClaimedOperation]:
    """Lease whole requests from up to `lanes` due connections (each at most `limit` per-user
    heads plus their runs, `lane_objects` objects) and return them in id order.

    A connection is due when its oldest object waited its `max_batch_wait_ms` or it holds a
    full request (db/sql/outbox.sql, claim_due_operations)."""
    await driver.execute(session, "claim_plan_mode")
    rows = await driver.fetch(
        session,
        "claim_due_operations",
        limit,
        run_cap,
        owner,
        float(lease_seconds),
        lane_objects,
        lanes,
    )
    claimed = [
        ClaimedOperation(row[0], row[1], row[2], row[3], _KINDS[row[4]], *row[5:]) for row in rows
    ]
    claimed.sort(key=lambda op: op.id)
    return claimed


@dataclass(frozen=True, slots=True)
class SettleRow:
    """New state of one leased operation.

    `status` pending = back in the queue at `available_at` (a retry when `bump` is 1, a release
    that burns no attempt when 0); any other status settles it.
    """

    id: int
    status: OperationStatus
    reason: str | None = None
    sent_object: str | None = None
    available_at: datetime | None = None
    bump: int = 0


@dataclass(frozen=True, slots=True)
class Settled:
    """What a settle statement changed: events touched, and each operation's new status."""

    event_ids: set[uuid.UUID]
    statuses: dict[int, str]
    # Seconds from receipt (operation insert) to now, for operations settled as delivered.
    delivered_ages: list[float]

    def ids_with(self, *statuses: str) -> list[int]:
        return [op_id for op_id, status in self.statuses.items() if status in statuses]


async def settle_operations(
    session: AsyncSession, *, owner: str, rows: Sequence[SettleRow]
) -> Settled:
    """Apply `rows` to operations this worker still leases.

    Rows whose lease was lost (expired and taken by another worker) are left alone: the new
    owner decides their fate.
    """
    if not rows:
        return Settled(set(), {}, [])
    returned = await driver.fetch(
        session,
        "settle_operations",
        [r.id for r in rows],
        [r.status.value for r in rows],
        [r.reason for r in rows],
        [r.sent_object for r in rows],
        [r.available_at for r in rows],
        [r.bump for r in rows],
        owner,
    )
    delivered = OperationStatus.DELIVERED.value
    return Settled(
        {row[0] for row in returned},
        {row[1]: row[2] for row in returned},
        [row[3] for row in returned if row[2] == delivered],
    )


async def roll_up_events(session: AsyncSession, event_ids: set[uuid.UUID]) -> None:
    """Give each event whose operations are all settled its final status."""
    if event_ids:
        await driver.execute(
            session, "roll_up_events", list(event_ids), SUPERSEDED_REASON + "%", EVENTS_CHANNEL
        )


async def release_all_leases(session: AsyncSession, *, owner: str) -> int:
    """Hand everything `owner` still holds back to the queue now (graceful shutdown)."""
    return await driver.execute(session, "release_all_leases", owner)


async def renew_leases(
    session: AsyncSession, *, owner: str, ids: Sequence[int], lease_seconds: float
) -> int:
    """Extend the leases on `ids` (the work this worker is actually busy with)."""
    return await driver.execute(session, "renew_leases", owner, list(ids), float(lease_seconds))


async def seconds_until_next_due(session: AsyncSession) -> float | None:
    """How long until a scheduled retry falls due or a 429 wait ends (None: nothing scheduled).

    Work that is due but blocked (per-user order, held connections) wakes us through local
    settles, NOTIFY or the poll cap instead.
    """
    value = await driver.fetchval(session, "seconds_until_next_due")
    return None if value is None else float(value)


async def cancel_operations(session: AsyncSession, ids: Sequence[int], *, reason: str) -> int:
    """Cancel the unsettled objects among `ids` (`skipped`, `reason`) and roll their events up.

    The one way work leaves the queue without being sent (a forgotten person's objects); a
    change to where unsent work waits changes this function too. Returns how many it cancelled.
    """
    if not ids:
        return 0
    rows = await driver.fetch(session, "cancel_operations", list(ids), reason)
    await roll_up_events(session, {row[0] for row in rows})
    return len(rows)
