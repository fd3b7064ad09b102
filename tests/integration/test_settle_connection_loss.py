"""Braze's answer survives a lost database connection: recorded again, never sent again.

A worker that loses its Postgres connection after Braze accepted a request still holds its
leases, so it records the answer on a new connection instead of letting the objects be sent a
second time. The fault here is real: the settle transaction's own backend is terminated.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.repositories import attempts as attempt_repo
from tests.delivery_support import drain, make_due, make_worker, op_states
from tests.factories import SANDBOX_ENDPOINT, make_connection, make_operations, make_tenant

TRACK = f"{SANDBOX_ENDPOINT}/users/track"


def _kill_own_backend_first(times: int) -> Any:
    """Wrap record_attempts so its first `times` calls lose their connection mid-transaction."""
    original = attempt_repo.record_attempts
    calls = {"n": 0}

    async def record(session: AsyncSession, records: Any) -> None:
        calls["n"] += 1
        if calls["n"] <= times:
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        await original(session, records)

    return record, calls


@pytest.mark.parametrize("faults", [1, 3])
async def test_accepted_request_is_recorded_once_after_the_connection_dies(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    faults: int,
) -> None:
    conn = await make_connection(session, await make_tenant(session))
    ops = await make_operations(session, conn, 5, users=5)
    record, calls = _kill_own_backend_first(faults)
    monkeypatch.setattr(attempt_repo, "record_attempts", record)
    with respx.mock:
        route = respx.post(TRACK).respond(201, json={"message": "success"})
        async with httpx.AsyncClient() as http:
            worker = make_worker(sessionmaker, http)
            await drain(worker)
            # Anything scheduled for a retry would go out now.
            await make_due(session)
            await drain(worker)
        sent = route.call_count  # read before the mock's exit resets its call records
    # One request reached Braze; its answer was recorded on the (faults + 1)th connection.
    assert sent == 1
    assert calls["n"] == faults + 1
    assert [s.status for s in await op_states(session, ops)] == ["delivered"] * 5
    attempts = await session.scalar(text("SELECT count(*) FROM delivery_attempts"))
    assert attempts == 1
