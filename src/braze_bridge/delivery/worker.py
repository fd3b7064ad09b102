"""The delivery worker: lanes that claim due operations and deliver them, plus side tasks.

Shape (procrastinate's loop, pgqueuer's recovery): each of a few *lanes* claims a batch in one
short transaction (SKIP LOCKED + lease), delivers it (delivery/round.py: Braze is called
outside any transaction) and settles each connection's share in another short transaction.
Lanes sleep until a NOTIFY on the outbox channel, the next scheduled retry, or the poll cap.
Side tasks run next to the lanes: lease renewal, the LISTEN client, and whatever the process
wiring injects (bulk replay jobs, retention). A killed worker's leases simply expire and the
next claim anywhere takes its work back. Stopping finishes the rounds in hand (within a grace
period) and releases whatever is left at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import os
import random
import secrets
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.braze.transport import HTTP_CONNECTIONS
from braze_bridge.config import Settings
from braze_bridge.db.notify import OUTBOX_CHANNEL, OutboxListener, wait_first
from braze_bridge.db.repositories import connections as connection_repo
from braze_bridge.db.repositories import outbox
from braze_bridge.db.repositories.connections import DeliveryConnection
from braze_bridge.db.repositories.outbox import ClaimedOperation, SettleRow
from braze_bridge.delivery.heartbeat import Heartbeat
from braze_bridge.delivery.identity import IdentityResolver
from braze_bridge.delivery.lanes import TenantSlots
from braze_bridge.delivery.ratelimit import RateLimiter
from braze_bridge.delivery.retry import RetryPolicy
from braze_bridge.delivery.round import (
    Clock,
    RoundDeps,
    WorkerStats,
    deliver_round,
    internal_error,
    settle_round,
)
from braze_bridge.delivery.settlement import RoundOutcome
from braze_bridge.domain.statuses import OperationStatus
from braze_bridge.logging import get_logger
from braze_bridge.security.secrets import SecretBox

log = get_logger(__name__)

__all__ = ["DeliveryWorker", "SideTask", "WorkerOptions", "WorkerStats"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    lease_seconds: float
    poll_seconds: float
    linger_ms: int
    retry: RetryPolicy
    # Per-user heads per claim (at most); each head brings up to `run_cap` queued objects of its
    # user. Under backlog a lane sizes its claims to fill about `claim_objects` request slots
    # (8 requests of 75), so rounds end on full requests rather than a stray partial one.
    claim_limit: int = 300
    claim_objects: int = 600
    run_cap: int = 16
    # Connections (lanes) one claim may take from, longest-waiting first (fairness).
    claim_lanes: int = 4
    lanes: int = 4
    shutdown_grace_seconds: float = 20.0
    tenant_max_inflight_requests: int = 6
    found_ttl_seconds: float = 86_400.0
    missing_ttl_seconds: float = 300.0
    heartbeat_file: Path | None = None  # renewed while the loop turns (delivery/heartbeat.py)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        return cls(
            lease_seconds=float(settings.worker_lease_seconds),
            poll_seconds=settings.worker_poll_seconds,
            linger_ms=settings.worker_linger_ms,
            tenant_max_inflight_requests=settings.worker_tenant_max_inflight_requests,
            retry=RetryPolicy(horizon_seconds=float(settings.retry_horizon_seconds)),
            heartbeat_file=settings.worker_heartbeat_file,
        )


@dataclass(frozen=True, slots=True)
class SideTask:
    """Background work a worker runs next to its lanes until its stop event is set.

    `run(stop)` should return soon after `stop` is set (it gets the shutdown grace period);
    `wake`, with `channel`, is called on each NOTIFY there (and once per LISTEN reconnect).
    """

    name: str
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    channel: str | None = None
    wake: Callable[[], None] | None = None


class Wakeup:
    """A wake-up signal that a lane cannot miss: lanes remember the generation they saw
    before claiming, and a signal that lands while they claim makes their wait return at once."""

    def __init__(self) -> None:
        self._generation = 0
        self._event = asyncio.Event()

    @property
    def generation(self) -> int:
        return self._generation

    def signal(self) -> None:
        self._generation += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, since: int, delay: float, stop: asyncio.Event) -> None:
        if self._generation != since:
            return
        await wait_first(self._event, stop, delay=delay)


class DeliveryWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        secret_box: SecretBox,
        *,
        options: WorkerOptions,
        listen_dsn: str | None = None,
        worker_id: str | None = None,
        clock: Clock = utcnow,
        jitter: Callable[[], float] = random.random,
        side_tasks: Sequence[SideTask] = (),
    ) -> None:
        self.options = options
        self.worker_id = worker_id or (
            f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._jitter = jitter
        self._side_tasks = tuple(side_tasks)
        self._stop = asyncio.Event()
        self._wakeup = Wakeup()
        self._held: set[int] = set()
        self._busy = False
        self._objects_per_head = 1.0
        self.limiter = RateLimiter(sessionmaker)
        self.resolver = IdentityResolver(
            sessionmaker,
            self.limiter,
            worker_id=self.worker_id,
            clock=clock,
            found_ttl_seconds=options.found_ttl_seconds,
            missing_ttl_seconds=options.missing_ttl_seconds,
        )
        self.stats = WorkerStats()
        self.heartbeat = Heartbeat(options.heartbeat_file)
        self._deps = RoundDeps(
            http=http,
            secret_box=secret_box,
            limiter=self.limiter,
            resolver=self.resolver,
            policy=options.retry,
            clock=clock,
            jitter=jitter,
            stop=self._stop,
            http_slots=asyncio.Semaphore(HTTP_CONNECTIONS),
            stats=self.stats,
            on_packed=self._learn_objects_per_head,
            tenant_slots=TenantSlots(options.tenant_max_inflight_requests),
        )
        wakes = {OUTBOX_CHANNEL: self._wakeup.signal}
        for task in self._side_tasks:
            if task.channel is not None and task.wake is not None:
                wakes[task.channel] = task.wake
        self._listener = OutboxListener(listen_dsn, wakes) if listen_dsn else None
        self.listening = self._listener.listening if self._listener else asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; `run` finishes the rounds in hand and releases the rest."""
        self._stop.set()

    def wake(self) -> None:
        self._wakeup.signal()

    async def run(self) -> None:
        log.info("worker.started", worker_id=self.worker_id, lanes=self.options.lanes)
        own = [asyncio.create_task(self._renew_leases(), name="lease-renewer")]
        if self._listener is not None:
            own.append(asyncio.create_task(self._listener.run(), name="listener"))
        injected = [
            asyncio.create_task(task.run(self._stop), name=task.name) for task in self._side_tasks
        ]
        lanes = [
            asyncio.create_task(self._lane(), name=f"lane-{i}") for i in range(self.options.lanes)
        ]
        stopping = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                [stopping, *lanes, *own, *injected], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopping and not task.cancelled() and task.exception():
                    # A side task or lane died: stop rather than run half a worker.
                    log.error("worker.task_failed", task=task.get_name(), exc_info=task.exception())
            self._stop.set()
            # Rounds in hand and side tasks (a replay batch) finish within the grace period.
            _, unfinished = await asyncio.wait(
                [*lanes, *injected], timeout=self.options.shutdown_grace_seconds
            )
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        finally:
            stopping.cancel()
            for task in [*own, *injected]:
                task.cancel()
            await asyncio.gather(*own, *injected, stopping, return_exceptions=True)
            released = 0
            with contextlib.suppress(Exception):
                async with self._sessionmaker.begin() as session:
                    released = await outbox.release_all_leases(session, owner=self.worker_id)
            log.info("worker.stopped", worker_id=self.worker_id, released=released)

    # -- the loop ----------------------------------------------------------------------------

    async def _lane(self) -> None:
        options = self.options
        while not self._stop.is_set():
            generation = self._wakeup.generation
            try:
                limit = self._head_limit()
                claimed = await self._claim(limit)
                heads = _count_users(claimed)
                if claimed and options.linger_ms and self._busy and heads < limit:
                    # Under load a few ms of patience fills the next requests; when idle
                    # (`_busy` false) a lone event goes out at once.
                    await asyncio.sleep(options.linger_ms / 1000)
                    claimed += await self._claim(limit - heads)
                    heads = _count_users(claimed)
                self._busy = heads >= limit
                if claimed:
                    await self.deliver(claimed)
                    self.heartbeat.beat()
                    continue
                delay = await self._idle_delay()
                self.heartbeat.beat()
            except Exception:  # the database may be restarting: keep the worker alive
                log.exception("worker.round_failed")
                delay = options.poll_seconds
            await self._wakeup.wait(generation, delay, self._stop)

    def _head_limit(self) -> int:
        wanted = int(self.options.claim_objects / max(self._objects_per_head, 1.0) * 0.97)
        return max(1, min(self.options.claim_limit, wanted))

    def _learn_objects_per_head(self, objects: int, users: int) -> None:
        # A moving average of objects per user, so claims under backlog fill whole requests.
        if users:
            self._objects_per_head = 0.8 * self._objects_per_head + 0.2 * (objects / users)

    async def _claim(self, limit: int) -> list[ClaimedOperation]:
        async with self._sessionmaker.begin() as session:
            claimed = await outbox.claim_due_operations(
                session,
                owner=self.worker_id,
                limit=limit,
                lease_seconds=self.options.lease_seconds,
                run_cap=self.options.run_cap,
                lane_objects=self.options.claim_objects,
                lanes=self.options.claim_lanes,
            )
        self._held.update(map(_ID_OF, claimed))
        return claimed

    async def _idle_delay(self) -> float:
        async with self._sessionmaker() as session:
            due = await outbox.seconds_until_next_due(session)
        if due is None:
            return self.options.poll_seconds
        return min(self.options.poll_seconds, max(0.01, due))

    async def claim_and_deliver_once(self) -> int:
        """One claim and its delivery (tests and tools); returns how many were claimed."""
        claimed = await self._claim(self.options.claim_limit)
        if claimed:
            await self.deliver(claimed)
        return len(claimed)

    async def deliver(self, claimed: Sequence[ClaimedOperation]) -> None:
        """Deliver claimed operations, one task per connection, each settling on its own."""
        ids = [op.id for op in claimed]
        try:
            groups: dict[uuid.UUID, list[ClaimedOperation]] = {}
            for op in claimed:
                group = groups.get(op.connection_id)
                if group is None:
                    groups[op.connection_id] = [op]
                else:
                    group.append(op)
            async with self._sessionmaker() as session:
                connections = await connection_repo.load_delivery_connections(session, list(groups))
            await asyncio.gather(
                *(
                    self._deliver_connection(connections[cid], ops)
                    for cid, ops in groups.items()
                    if cid in connections
                )
            )
            self.stats.rounds += 1
        finally:
            self._held.difference_update(ids)
        # Settled work may unblock later objects of the same users.
        self._wakeup.signal()

    async def _deliver_connection(
        self, connection: DeliveryConnection, ops: list[ClaimedOperation]
    ) -> None:
        try:
            await self._settle(await deliver_round(connection, ops, self._deps))
            return
        except Exception as exc:
            log.exception("worker.delivery_failed", connection_id=str(connection.id))
            failed = internal_error(connection, ops, exc)
        try:
            await self._settle(failed)
        except Exception:
            log.exception("worker.settle_failed", connection_id=str(connection.id))
            with contextlib.suppress(Exception):
                async with self._sessionmaker.begin() as session:
                    await outbox.settle_operations(
                        session,
                        owner=self.worker_id,
                        rows=[SettleRow(op.id, OperationStatus.PENDING) for op in ops],
                    )

    async def _settle(self, outcome: RoundOutcome) -> None:
        await settle_round(
            self._sessionmaker,
            outcome,
            worker_id=self.worker_id,
            policy=self.options.retry,
            limiter=self.limiter,
            clock=self._clock,
            jitter=self._jitter,
            lease_seconds=self.options.lease_seconds,
        )

    # -- side tasks --------------------------------------------------------------------------

    async def _renew_leases(self) -> None:
        interval = max(0.5, self.options.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            held = list(self._held)
            if not held:
                continue
            try:
                async with self._sessionmaker.begin() as session:
                    await outbox.renew_leases(
                        session,
                        owner=self.worker_id,
                        ids=held,
                        lease_seconds=self.options.lease_seconds,
                    )
            except Exception as exc:
                log.warning("worker.lease_renewal_failed", exc_info=exc)


_USER_OF = operator.attrgetter("connection_id", "user_key")
_ID_OF = operator.attrgetter("id")


def _count_users(claimed: Sequence[ClaimedOperation]) -> int:
    return len(set(map(_USER_OF, claimed)))
