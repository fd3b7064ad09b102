"""A worker process SIGKILLed mid-batch: another worker finishes the job after the lease expires.

What this proves: every operation ends `delivered`, and the sandbox received every object at
least once. An object reaches Braze twice only if it was in a request the killed worker had
already sent but not yet settled (Braze cannot deduplicate, so that window cannot be closed);
the test checks that every duplicate belongs to that in-flight set and nothing else.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import TEST_SECRET_KEY
from tests.factories import make_connection, make_operations, make_tenant
from tests.support.processes import cli_env, running_sandbox, start_cli

pytestmark = pytest.mark.slow

COUNT = 1500


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    with running_sandbox(latency_ms=300) as url:
        yield url


def start_worker(database_url: str) -> subprocess.Popen[bytes]:
    env = cli_env(
        BRAZE_BRIDGE_DATABASE_URL=database_url,
        BRAZE_BRIDGE_SECRET_KEY=TEST_SECRET_KEY,
        BRAZE_BRIDGE_WORKER_LEASE_SECONDS="5",
        BRAZE_BRIDGE_WORKER_POLL_SECONDS="0.5",
    )
    return start_cli(["worker"], env)


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(text("SELECT status, count(*) FROM operations GROUP BY status"))
    return {row[0]: row[1] for row in rows}


async def wait_for(session: AsyncSession, done: object, timeout: float = 90) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = await counts(session)
        await session.commit()
        if done(now):  # type: ignore[operator]
            return now
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out; operations by status: {await counts(session)}")


async def test_sigkill_mid_batch_then_a_new_worker_delivers_everything(
    session: AsyncSession, database_url: str, sandbox_url: str
) -> None:
    conn = await make_connection(session, await make_tenant(session), endpoint=sandbox_url)
    ops = await make_operations(session, conn, COUNT, users=COUNT)
    marker_of = {op.id: op.payload["properties"]["n"] for op in ops}

    first = start_worker(database_url)
    try:
        await wait_for(
            session, lambda c: c.get("delivered", 0) >= 150 and c.get("in_flight", 0) > 0
        )
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
    finally:
        if first.poll() is None:
            first.kill()
    in_flight = {
        row[0]
        for row in await session.execute(
            text("SELECT id FROM operations WHERE status = 'in_flight'")
        )
    }
    await session.commit()
    assert in_flight, "the kill should land while a batch is in flight"

    second = start_worker(database_url)
    try:
        final = await wait_for(session, lambda c: c.get("delivered", 0) == COUNT)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 30) == 0
    assert final == {"delivered": COUNT}

    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{sandbox_url}/_sandbox/received", params={"limit": 0})
    received = answer.json()
    seen = Counter(
        event["properties"]["n"]
        for request in received["requests"]
        if request["endpoint"] == "/users/track" and request["status"] == 201
        for event in request["body"]["events"]
    )
    assert set(seen) == set(marker_of.values())
    twice = {n for n, times in seen.items() if times > 1}
    assert twice <= {marker_of[op_id] for op_id in in_flight}
    assert max(seen.values()) <= 2
