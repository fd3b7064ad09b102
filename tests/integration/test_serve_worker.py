"""`serve` runs an in-process worker (delivery, replay jobs, retention) that wakes on NOTIFY;
the API-only app runs none of it."""

from __future__ import annotations

import asyncio

import httpx
import respx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.app import Runtime, create_app
from braze_bridge.db.notify import OUTBOX_CHANNEL
from braze_bridge.delivery.worker import DeliveryWorker
from tests.factories import SANDBOX_ENDPOINT, make_connection, make_operations, make_tenant


async def status_of(session: AsyncSession, op_id: int) -> str:
    value = await session.scalar(
        text("SELECT status FROM operations WHERE id = :id"), {"id": op_id}
    )
    await session.commit()
    return str(value)


# The tasks a worker runs (delivery/worker.py, runtime.worker_side_tasks).
WORKER_TASKS = {
    "delivery-worker",
    "lane-0",
    "lease-renewer",
    "listener",
    "replay-runner",
    "retention",
    "alerts",
}


def background_tasks() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks()}


async def wait_listening(app: FastAPI) -> None:
    worker = app.state.context.worker
    assert isinstance(worker, DeliveryWorker)
    await asyncio.wait_for(worker.listening.wait(), timeout=10)


async def test_serve_delivers_what_ingest_notifies(session: AsyncSession, runtime: Runtime) -> None:
    conn = await make_connection(session, await make_tenant(session))
    with respx.mock:
        track = respx.post(f"{SANDBOX_ENDPOINT}/users/track").respond(
            201, json={"message": "success"}
        )
        app = create_app(runtime, run_worker=True)
        async with LifespanManager(app):
            await wait_listening(app)
            running = background_tasks()
            (op,) = await make_operations(session, conn, 1)
            await session.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": OUTBOX_CHANNEL, "p": str(conn.id)}
            )
            await session.commit()
            for _ in range(200):
                if await status_of(session, op.id) == "delivered":
                    break
                await asyncio.sleep(0.02)
        assert await status_of(session, op.id) == "delivered"
        assert track.call_count == 1
    assert running >= WORKER_TASKS


async def test_the_api_alone_never_delivers(session: AsyncSession, runtime: Runtime) -> None:
    """No worker task runs in an API-only process (the serve test sees them all), so a
    notified operation stays pending, unleased and unsent."""
    conn = await make_connection(session, await make_tenant(session))
    (op,) = await make_operations(session, conn, 1)
    with respx.mock:
        track = respx.post(f"{SANDBOX_ENDPOINT}/users/track").respond(201)
        app = create_app(runtime)
        async with LifespanManager(app):
            await session.execute(
                text("SELECT pg_notify(:c, :p)"), {"c": OUTBOX_CHANNEL, "p": str(conn.id)}
            )
            await session.commit()
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as c:
                assert (await c.get("/healthz")).status_code == 200
            running = background_tasks()
            assert app.state.context.worker is None
        sent = track.call_count  # read before the mock's exit resets its call records
    assert running.isdisjoint(WORKER_TASKS)
    assert sent == 0
    assert await status_of(session, op.id) == "pending"
    lease = await session.scalar(
        text("SELECT lease_owner FROM operations WHERE id = :id"), {"id": op.id}
    )
    assert lease is None
