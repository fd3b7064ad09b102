"""Every HTTP call to Braze and the objects it carried (`delivery_attempts`, `attempt_operations`).

Named SQL in `db/sql/attempts.sql`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.domain.statuses import RETRY_OUTCOMES

# Response bodies are kept for diagnosis, not archived: Braze's answers are small, an HTML
# error page from a proxy is not.
MAX_RESPONSE_CHARS = 8192


@dataclass(frozen=True, slots=True)
class AttemptWrite:
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


def _truncate(body: str | None) -> str | None:
    if body is None or len(body) <= MAX_RESPONSE_CHARS:
        return body
    return body[:MAX_RESPONSE_CHARS] + f"… [{len(body) - MAX_RESPONSE_CHARS} more characters]"


async def record_attempts(session: AsyncSession, attempts: Sequence[AttemptWrite]) -> None:
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
    await driver.execute(
        session,
        "record_attempts",
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
    rows = await driver.fetch(
        session, "first_retry_times", list(operation_ids), sorted(RETRY_OUTCOMES)
    )
    return {row[0]: row[1] for row in rows}
