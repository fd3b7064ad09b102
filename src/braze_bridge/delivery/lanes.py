"""Per-tenant cap on in-flight /users/track requests, within one worker process.

Claims already rotate across connections (db/sql/outbox.sql, claim_due_operations); this cap
keeps one tenant's backlog from taking every HTTP slot of the process, so another tenant's
request still finds one free. It counts requests being sent (from the permit to Braze's
answer); a request over the cap waits for one of its tenant's to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator


class TenantSlots:
    """At most `per_tenant` requests of one tenant in flight at once (0 = no cap)."""

    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self._slots: dict[uuid.UUID, asyncio.Semaphore] = {}
        self._users: dict[uuid.UUID, int] = {}

    def in_flight(self, tenant_id: uuid.UUID) -> int:
        slots = self._slots.get(tenant_id)
        return 0 if slots is None else self.per_tenant - slots._value

    @contextlib.asynccontextmanager
    async def hold(self, tenant_id: uuid.UUID) -> AsyncIterator[None]:
        if self.per_tenant <= 0:
            yield
            return
        slots = self._slots.get(tenant_id)
        if slots is None:
            slots = self._slots[tenant_id] = asyncio.Semaphore(self.per_tenant)
        # Counted so an idle tenant's semaphore is dropped: the map stays as small as the
        # set of tenants with requests in flight.
        self._users[tenant_id] = self._users.get(tenant_id, 0) + 1
        try:
            async with slots:
                yield
        finally:
            left = self._users[tenant_id] - 1
            if left:
                self._users[tenant_id] = left
            else:
                del self._users[tenant_id]
                del self._slots[tenant_id]
