"""The per-tenant cap on in-flight /users/track requests within a worker process."""

from __future__ import annotations

import asyncio
import uuid

from braze_bridge.delivery.lanes import TenantSlots


async def test_a_tenant_over_its_cap_waits_while_another_tenant_goes_at_once() -> None:
    slots = TenantSlots(2)
    a, b = uuid.uuid4(), uuid.uuid4()
    release = asyncio.Event()
    entered: list[str] = []

    async def request(tenant: uuid.UUID, name: str) -> None:
        async with slots.hold(tenant):
            entered.append(name)
            await release.wait()

    tasks = [asyncio.create_task(request(a, f"a{i}")) for i in range(3)]
    tasks.append(asyncio.create_task(request(b, "b0")))
    for _ in range(5):  # let every task reach the semaphore
        await asyncio.sleep(0)
    assert sorted(entered) == ["a0", "a1", "b0"]  # a2 waits: tenant A has 2 in flight
    assert slots.in_flight(a) == 2
    assert slots.in_flight(b) == 1
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(entered) == ["a0", "a1", "a2", "b0"]
    assert slots.in_flight(a) == 0  # idle tenants are forgotten


async def test_zero_means_no_cap() -> None:
    slots = TenantSlots(0)
    tenant = uuid.uuid4()
    async with slots.hold(tenant), slots.hold(tenant), slots.hold(tenant):
        assert slots.in_flight(tenant) == 0
