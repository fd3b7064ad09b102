"""Helpers for delivery tests: a worker wired to a test httpx client, and outbox readers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import Operation
from braze_bridge.delivery.retry import RetryPolicy
from braze_bridge.delivery.worker import DeliveryWorker, WorkerOptions
from braze_bridge.logging import configure_logging
from braze_bridge.sandbox.app import SandboxConfig, create_sandbox_app
from tests.factories import BOX, SANDBOX_ENDPOINT


def sandbox_client(config: SandboxConfig | None = None) -> tuple[httpx.AsyncClient, Any]:
    """An httpx client whose requests to the Braze endpoint land in an in-process sandbox."""
    app = create_sandbox_app(config or SandboxConfig(seed=1))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SANDBOX_ENDPOINT)
    return client, app.state.sandbox


def make_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    *,
    clock: Callable[[], datetime] | None = None,
    horizon_seconds: float = 86_400,
    worker_id: str = "test-worker",
    **options: Any,
) -> DeliveryWorker:
    # Quiet workers; tests/support/state.py puts the previous configuration back afterwards.
    configure_logging("warning")
    values: dict[str, Any] = {"lanes": 1, "linger_ms": 0, "poll_seconds": 0.05}
    values.update(options)
    return DeliveryWorker(
        sessionmaker,
        http,
        BOX,
        options=WorkerOptions(retry=RetryPolicy(horizon_seconds=horizon_seconds), **values),
        worker_id=worker_id,
        clock=clock or (lambda: datetime.now(UTC)),
        jitter=lambda: 0.5,
    )


async def drain(worker: DeliveryWorker, rounds: int = 100) -> int:
    """Claim and deliver until nothing is claimable now; returns how many were claimed."""
    total = 0
    for _ in range(rounds):
        claimed = await worker.claim_and_deliver_once()
        if not claimed:
            return total
        total += claimed
    raise AssertionError("outbox did not drain")


@dataclass
class OpState:
    status: str
    reason: str | None
    attempts: int
    available_at: datetime
    sent_object: dict[str, Any] | None


async def op_states(session: AsyncSession, ops: Sequence[Operation]) -> list[OpState]:
    ids = [op.id for op in ops]
    rows = (
        await session.execute(
            select(
                Operation.id,
                Operation.status,
                Operation.reason,
                Operation.attempts,
                Operation.available_at,
                Operation.sent_object,
            ).where(Operation.id.in_(ids))
        )
    ).all()
    by_id = {row[0]: OpState(str(row[1]), row[2], row[3], row[4], row[5]) for row in rows}
    return [by_id[op_id] for op_id in ids]


async def make_due(session: AsyncSession) -> None:
    """Pretend every scheduled retry and 429 wait is over (instead of sleeping)."""
    await session.execute(
        text("UPDATE operations SET available_at = now() WHERE status = 'pending'")
    )
    await session.execute(text("UPDATE connections SET rate_limited_until = NULL"))
    await session.execute(text("UPDATE rate_buckets SET blocked_until = NULL"))
    await session.commit()
