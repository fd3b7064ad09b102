"""Every HTTP call to Braze and the objects it carried (`delivery_attempts`, `attempt_operations`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.repositories._driver import driver_connection
from braze_bridge.domain.statuses import RETRY_OUTCOMES

# Response bodies are kept for diagnosis, not archived: Braze's answers are small, an HTML
# error page from a proxy is not.
MAX_RESPONSE_CHARS = 8192


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One HTTP attempt. `request_json` is the exact body sent (already serialized)."""

    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    endpoint: str
    worker_id: str
    request_json: str | None
    status_code: int | None
    response_body: str | None
    response_headers: dict[str, str] | None
    error: str | None
    duration_ms: float
    started_at: datetime
    # (operation id, outcome) for every object the request carried.
    operations: Sequence[tuple[int, str]]


# All attempts of a round in one statement: ids are drawn from the identity sequence first, so
# each attempt's operations can name their attempt by its position in the input arrays.
RECORD_SQL = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[],
                         $7::text[], $8::text[], $9::text[], $10::float8[], $11::timestamptz[])
        WITH ORDINALITY AS t(tenant_id, connection_id, endpoint, worker_id, request_body,
                             status_code, response_body, response_headers, error, duration_ms,
                             started_at, n)
),
ids AS MATERIALIZED (
    SELECT n, nextval(pg_get_serial_sequence('delivery_attempts', 'id')) AS id FROM input
),
attempt AS (
    INSERT INTO delivery_attempts (id, tenant_id, connection_id, endpoint, worker_id,
                                   request_body, status_code, response_body, response_headers,
                                   error, duration_ms, started_at)
    SELECT ids.id, i.tenant_id, i.connection_id, i.endpoint, i.worker_id, i.request_body::jsonb,
           i.status_code, i.response_body, i.response_headers::jsonb, i.error, i.duration_ms,
           i.started_at
    FROM input i JOIN ids USING (n)
)
INSERT INTO attempt_operations (attempt_id, operation_id, outcome)
SELECT ids.id, u.operation_id, u.outcome
FROM unnest($12::bigint[], $13::text[], $14::bigint[]) AS u(operation_id, outcome, n)
JOIN ids USING (n)
"""


def _truncate(body: str | None) -> str | None:
    if body is None or len(body) <= MAX_RESPONSE_CHARS:
        return body
    return body[:MAX_RESPONSE_CHARS] + f"… [{len(body) - MAX_RESPONSE_CHARS} more characters]"


async def record_attempts(session: AsyncSession, attempts: Sequence[AttemptRecord]) -> None:
    """Store `attempts` (and the objects each carried) in one statement."""
    if not attempts:
        return
    operation_ids: list[int] = []
    outcomes: list[str] = []
    positions: list[int] = []
    for position, attempt in enumerate(attempts, start=1):
        for op_id, outcome in attempt.operations:
            operation_ids.append(op_id)
            outcomes.append(outcome)
            positions.append(position)
    driver = await driver_connection(session)
    await driver.execute(
        RECORD_SQL,
        [a.tenant_id for a in attempts],
        [a.connection_id for a in attempts],
        [a.endpoint for a in attempts],
        [a.worker_id for a in attempts],
        [a.request_json for a in attempts],
        [a.status_code for a in attempts],
        [_truncate(a.response_body) for a in attempts],
        [None if a.response_headers is None else json.dumps(a.response_headers) for a in attempts],
        [a.error for a in attempts],
        [float(a.duration_ms) for a in attempts],
        [a.started_at for a in attempts],
        operation_ids,
        outcomes,
        positions,
    )


async def first_retry_times(
    session: AsyncSession, operation_ids: Sequence[int]
) -> dict[int, datetime]:
    """When each operation first failed in a retryable way (its retry-horizon clock start).

    Time spent queued, paused or held for an auth error is not counted: the clock starts at
    the first 5xx / timeout / 429, not at creation.
    """
    if not operation_ids:
        return {}
    result = await session.execute(
        text(
            """
SELECT ao.operation_id, min(a.started_at)
FROM attempt_operations ao JOIN delivery_attempts a ON a.id = ao.attempt_id
WHERE ao.operation_id = ANY(CAST(:ids AS bigint[]))
  AND ao.outcome = ANY(CAST(:outcomes AS text[]))
GROUP BY ao.operation_id
"""
        ),
        {"ids": list(operation_ids), "outcomes": sorted(RETRY_OUTCOMES)},
    )
    return {row[0]: row[1] for row in result.all()}
