"""Every HTTP call to Braze and the objects it carried (`delivery_attempts`, `attempt_operations`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Outcomes (attempt_operations.outcome) that start or continue an object's retry clock.
RETRY_OUTCOMES = ("retry", "rate_limited", "lookup_failed", "dead")

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


RECORD_SQL = text(
    """
WITH attempt AS (
    INSERT INTO delivery_attempts (tenant_id, connection_id, endpoint, worker_id, request_body,
                                   status_code, response_body, response_headers, error,
                                   duration_ms, started_at)
    VALUES (:tenant_id, :connection_id, :endpoint, :worker_id, CAST(:request_body AS jsonb),
            :status_code, :response_body, CAST(:response_headers AS jsonb), :error,
            :duration_ms, :started_at)
    RETURNING id
)
INSERT INTO attempt_operations (attempt_id, operation_id, outcome)
SELECT attempt.id, u.operation_id, u.outcome
FROM attempt, unnest(CAST(:operation_ids AS bigint[]), CAST(:outcomes AS text[]))
     AS u(operation_id, outcome)
"""
)


def _truncate(body: str | None) -> str | None:
    if body is None or len(body) <= MAX_RESPONSE_CHARS:
        return body
    return body[:MAX_RESPONSE_CHARS] + f"… [{len(body) - MAX_RESPONSE_CHARS} more characters]"


async def record_attempts(session: AsyncSession, attempts: Sequence[AttemptRecord]) -> None:
    for attempt in attempts:
        await session.execute(
            RECORD_SQL,
            {
                "tenant_id": attempt.tenant_id,
                "connection_id": attempt.connection_id,
                "endpoint": attempt.endpoint,
                "worker_id": attempt.worker_id,
                "request_body": attempt.request_json,
                "status_code": attempt.status_code,
                "response_body": _truncate(attempt.response_body),
                "response_headers": (
                    None
                    if attempt.response_headers is None
                    else json.dumps(attempt.response_headers)
                ),
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
                "started_at": attempt.started_at,
                "operation_ids": [op_id for op_id, _ in attempt.operations],
                "outcomes": [outcome for _, outcome in attempt.operations],
            },
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
        {"ids": list(operation_ids), "outcomes": list(RETRY_OUTCOMES)},
    )
    return {row[0]: row[1] for row in result.all()}
