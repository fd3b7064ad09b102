"""The outbox's SQL: claim due operations, settle or release them, roll events up.

Hot path, so each use case is one explicit statement (`unnest` of typed arrays standing in for
`UPDATE ... FROM (VALUES ...)` so the statement text never changes with the batch size and
asyncpg keeps it prepared). Claim, settle and roll-up run on the session's asyncpg connection
directly (see `_driver`): SQLAlchemy's per-row result handling was a large share of a round.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.repositories._driver import driver_connection
from braze_bridge.domain.statuses import SUPERSEDED_REASON, ConnectionState, OperationStatus


@dataclass(frozen=True, slots=True)
class ClaimedOperation:
    """An operation this worker now holds under lease. `payload_json` is Postgres' jsonb text."""

    id: int
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    kind: str
    user_key: str
    external_id: str | None
    email: str | None
    unknown_user: str
    payload_json: str
    attempts: int


# One statement: pick per-user heads with SKIP LOCKED, add each head's run of following due
# operations of the same user, lease them all.
#
# * Per-user order: a head is an operation with no earlier unsettled operation of the same
#   (connection, user). That check reads committed state, so two concurrent claimers can never
#   both take operations of one user: whoever locks the head owns the user's whole run, and the
#   run is only ever taken together with its head.
# * Followers: the head's next `run_cap` unsettled operations, cut at the first one that is not
#   due (a retry scheduled later) or still leased, so nothing jumps the queue.
# * Held connections (paused, auth_error, rate limited after a 429) are skipped here, so their
#   work stays `pending` untouched.
# * The final UPDATE takes its ids as one array (an InitPlan evaluated once), so a fresh table
#   without statistics cannot talk the planner into re-running the CTEs per row.
# * An expired lease (a killed worker) needs no recovery: an `in_flight` row whose lease has
#   run out is claimable like a pending one, and the new lease owner is the only one whose
#   settle still applies.
# * The UPDATE changes no indexed column (see models.Operation), so it is a HOT update: the
#   unsettled-set indexes are partial on the generated column `unsettled`, which a claim
#   (pending → in_flight) leaves true.
CLAIM_SQL = """
WITH heads AS (
    SELECT o.id, o.connection_id, o.user_key
    FROM operations o
    JOIN connections c ON c.id = o.connection_id
    WHERE o.unsettled AND o.available_at <= now()
      AND (o.status = 'pending' OR o.lease_expires_at < now())
      AND c.state = 'active' AND c.deleted_at IS NULL
      AND (c.rate_limited_until IS NULL OR c.rate_limited_until <= now())
      AND NOT EXISTS (
          SELECT 1 FROM operations e
          WHERE e.connection_id = o.connection_id AND e.user_key = o.user_key
            AND e.unsettled AND e.id < o.id
      )
    ORDER BY o.available_at, o.id
    LIMIT $1
    FOR UPDATE OF o SKIP LOCKED
),
followers AS MATERIALIZED (
    SELECT f.id
    FROM heads h
    CROSS JOIN LATERAL (
        SELECT n.id,
               bool_and((n.status = 'pending' OR n.lease_expires_at < now())
                        AND n.available_at <= now())
                   OVER (ORDER BY n.id) AS in_run
        FROM operations n
        WHERE n.connection_id = h.connection_id AND n.user_key = h.user_key
          AND n.unsettled AND n.id > h.id
        ORDER BY n.id
        LIMIT $2
    ) f
    WHERE f.in_run
)
UPDATE operations o
SET status = 'in_flight', lease_owner = $3,
    lease_expires_at = now() + make_interval(secs => $4::float8)
WHERE o.id = ANY(ARRAY(SELECT id FROM heads UNION ALL SELECT id FROM followers))
  AND (o.status = 'pending' OR o.lease_expires_at < now())
RETURNING o.id, o.event_id, o.tenant_id, o.connection_id, o.kind, o.user_key, o.external_id,
          o.email, o.unknown_user, o.payload::text AS payload_json, o.attempts
"""


async def claim_due_operations(
    session: AsyncSession,
    *,
    owner: str,
    limit: int,
    lease_seconds: float,
    run_cap: int = 16,
) -> list[ClaimedOperation]:
    """Lease up to `limit` per-user heads (plus their runs) and return them in id order."""
    driver = await driver_connection(session)
    rows = await driver.fetch(CLAIM_SQL, limit, run_cap, owner, float(lease_seconds))
    claimed = [ClaimedOperation(*row) for row in rows]
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


SETTLE_SQL = """
UPDATE operations o
SET status = v.status,
    reason = v.reason,
    sent_object = COALESCE(v.sent::jsonb, o.sent_object),
    attempts = o.attempts + v.bump,
    available_at = COALESCE(v.available_at, o.available_at),
    lease_owner = NULL,
    lease_expires_at = NULL,
    settled_at = CASE WHEN v.status IN ('delivered', 'failed', 'dead', 'skipped')
                      THEN now() END
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[])
     AS v(id, status, reason, sent, available_at, bump)
WHERE o.id = v.id AND o.status = 'in_flight' AND o.lease_owner = $7
RETURNING o.event_id, o.id, o.status, extract(epoch FROM now() - o.created_at)::float8
"""


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
    driver = await driver_connection(session)
    returned = await driver.fetch(
        SETTLE_SQL,
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


# Event roll-up once every operation of the event is settled:
#   all delivered                           → delivered
#   some delivered, the rest not            → partially_delivered
#   none delivered, any dead                → dead (retries ran out: replayable)
#   none delivered, every one skipped       → filtered (unknown users, `unknown_user: skip`)
#   none delivered, Braze refused the rest  → rejected (Braze said the objects are invalid;
#                                             a replay after fixing the mapping can deliver)
ROLL_UP_SQL = """
WITH tally AS (
    SELECT o.event_id,
           count(*) FILTER (WHERE o.status IN ('pending', 'in_flight')) AS open,
           count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
           count(*) FILTER (WHERE o.status = 'dead') AS dead,
           count(*) FILTER (WHERE o.status = 'skipped') AS skipped,
           count(*) AS total,
           min(o.reason) FILTER (WHERE o.status IN ('failed', 'dead', 'skipped')) AS why
    FROM operations o
    WHERE o.event_id = ANY($1::uuid[])
      -- objects a replay re-mapped away no longer count towards the event's outcome
      AND NOT (o.status = 'skipped' AND coalesce(o.reason, '') LIKE $2)
    GROUP BY o.event_id
)
UPDATE events e
SET status = CASE
        WHEN t.delivered = t.total THEN 'delivered'
        WHEN t.delivered > 0 THEN 'partially_delivered'
        WHEN t.dead > 0 THEN 'dead'
        WHEN t.skipped = t.total THEN 'filtered'
        ELSE 'rejected' END,
    reason = CASE
        WHEN t.delivered = t.total THEN NULL
        WHEN t.delivered > 0 THEN
            format('%s of %s objects not delivered: %s', t.total - t.delivered, t.total, t.why)
        ELSE t.why END,
    settled_at = now()
FROM tally t
WHERE e.id = t.event_id AND t.open = 0
"""


async def roll_up_events(session: AsyncSession, event_ids: set[uuid.UUID]) -> None:
    """Give each event whose operations are all settled its final status."""
    if event_ids:
        driver = await driver_connection(session)
        await driver.execute(ROLL_UP_SQL, list(event_ids), SUPERSEDED_REASON + "%")


# No index names the lease (claims stay HOT), so this walks the unsettled set once; it runs
# once per worker life, at a graceful stop.
RELEASE_OWNER_SQL = text(
    """
UPDATE operations SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
WHERE unsettled AND status = 'in_flight' AND lease_owner = :owner
"""
)


async def release_all_leases(session: AsyncSession, *, owner: str) -> int:
    """Hand everything `owner` still holds back to the queue now (graceful shutdown)."""
    result = await session.execute(RELEASE_OWNER_SQL, {"owner": owner})
    return int(getattr(result, "rowcount", 0) or 0)


RENEW_SQL = text(
    """
UPDATE operations SET lease_expires_at = now() + make_interval(secs => :lease_seconds)
WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'in_flight' AND lease_owner = :owner
"""
)


async def renew_leases(
    session: AsyncSession, *, owner: str, ids: Sequence[int], lease_seconds: float
) -> int:
    """Extend the leases on `ids` (the work this worker is actually busy with)."""
    result = await session.execute(
        RENEW_SQL, {"owner": owner, "ids": list(ids), "lease_seconds": lease_seconds}
    )
    return int(getattr(result, "rowcount", 0) or 0)


NEXT_DUE_SQL = text(
    """
SELECT EXTRACT(EPOCH FROM (LEAST(
    (SELECT min(available_at) FROM operations
     WHERE unsettled AND status = 'pending' AND available_at > now()),
    (SELECT min(rate_limited_until) FROM connections WHERE rate_limited_until > now())
) - now()))
"""
)


async def seconds_until_next_due(session: AsyncSession) -> float | None:
    """How long until a scheduled retry falls due or a 429 wait ends (None: nothing scheduled).

    Work that is due but blocked (per-user order, held connections) wakes us through local
    settles, NOTIFY or the poll cap instead.
    """
    value = await session.scalar(NEXT_DUE_SQL)
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class DeliveryConnection:
    """What the worker needs to call Braze for one connection."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    state: str
    rest_endpoint: str
    api_key_enc: str
    track_rate_limit: int | None
    track_rate_window_seconds: int | None
    export_rate_limit: int | None
    export_rate_window_seconds: int | None
    track_object_cap: str
    version: int
    # The partner; only Antavo connections record sent values (`changed_only`).
    source: str = ""


async def load_delivery_connections(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, DeliveryConnection]:
    result = await session.execute(
        text(
            """
SELECT id, tenant_id, state, braze_rest_endpoint, braze_api_key_enc, track_rate_limit,
       track_rate_window_seconds, export_rate_limit, export_rate_window_seconds,
       track_object_cap, version, source
FROM connections WHERE id = ANY(CAST(:ids AS uuid[]))
"""
        ),
        {"ids": list(ids)},
    )
    return {row[0]: DeliveryConnection(*row) for row in result.all()}


async def hold_connection_for_auth(
    session: AsyncSession, connection_id: uuid.UUID, message: str
) -> None:
    """401/403/404 from Braze: stop claiming this connection until its settings are fixed."""
    await session.execute(
        text(
            """
UPDATE connections
SET state = :auth_error, last_error = :message, last_error_at = now()
WHERE id = :id AND state = :active
"""
        ),
        {
            "id": connection_id,
            "message": message,
            "auth_error": ConnectionState.AUTH_ERROR.value,
            "active": ConnectionState.ACTIVE.value,
        },
    )


async def hold_connection_until(
    session: AsyncSession, connection_id: uuid.UUID, until: datetime, message: str
) -> None:
    """429 from Braze: the whole connection waits (never shortens an existing wait)."""
    await session.execute(
        text(
            """
UPDATE connections
SET rate_limited_until = GREATEST(COALESCE(rate_limited_until, :until), :until),
    last_error = :message, last_error_at = now()
WHERE id = :id
"""
        ),
        {"id": connection_id, "until": until, "message": message},
    )
