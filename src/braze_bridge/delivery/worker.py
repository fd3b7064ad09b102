"""The delivery worker: claim due operations, identify users, pack, rate-limit, send, settle.

Shape (procrastinate's loop, pgqueuer's recovery): each of a few *lanes* claims a batch in one
short transaction (SKIP LOCKED + lease), calls Braze outside any transaction, and settles in
another short transaction. Lanes sleep until a NOTIFY on the outbox channel, the next scheduled
retry, or the poll cap. A side task renews the leases of work in hand; a killed worker's leases
simply expire and the next claim anywhere takes its work back. Stopping finishes the rounds in
hand (within a grace period) and releases whatever is left at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import operator
import os
import random
import secrets
import signal
import socket
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring

import asyncpg
import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.braze.client import TRACK_PATH, BrazeClient, BrazeReply
from braze_bridge.braze.models import TRACK_ARRAYS, TrackArray, exhausted_budget_seconds
from braze_bridge.config import Settings
from braze_bridge.db.engine import create_engine, create_sessionmaker
from braze_bridge.db.notify import OUTBOX_CHANNEL
from braze_bridge.db.repositories import attempts as attempt_repo
from braze_bridge.db.repositories import connections as connection_repo
from braze_bridge.db.repositories import outbox, user_values
from braze_bridge.db.repositories.attempts import AttemptWrite
from braze_bridge.db.repositories.connections import DeliveryConnection
from braze_bridge.db.repositories.outbox import ClaimedOperation, SettleRow
from braze_bridge.delivery.batcher import Outgoing, PackLimits, pack_track_requests
from braze_bridge.delivery.identity import (
    Found,
    IdentityResolver,
    NotFound,
    Unresolved,
    alias_identifier,
)
from braze_bridge.delivery.ratelimit import RateLimiter, export_bucket, track_bucket
from braze_bridge.delivery.retry import GiveUp, RetryPolicy
from braze_bridge.delivery.settle import TrackResult, deliver_track_request
from braze_bridge.domain.statuses import OperationStatus, Source
from braze_bridge.logging import get_logger
from braze_bridge.security.secrets import SecretBox, SecretDecryptError

log = get_logger(__name__)

Clock = Callable[[], datetime]


# Braze requests one worker has in flight at most (httpx pool size and the worker's own cap).
HTTP_CONNECTIONS = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    lease_seconds: float = 60.0
    poll_seconds: float = 2.0
    linger_ms: int = 5
    # Per-user heads per claim (at most); each head brings up to `run_cap` queued objects of its
    # user. Under backlog a lane sizes its claims to fill about `claim_objects` request slots
    # (8 requests of 75), so rounds end on full requests rather than a stray partial one.
    claim_limit: int = 300
    claim_objects: int = 600
    run_cap: int = 16
    lanes: int = 4
    shutdown_grace_seconds: float = 20.0
    found_ttl_seconds: float = 86_400.0
    missing_ttl_seconds: float = 300.0
    housekeeping_interval_seconds: float = 600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> WorkerOptions:
        values: dict[str, object] = {
            "lease_seconds": float(settings.worker_lease_seconds),
            "poll_seconds": settings.worker_poll_seconds,
            "linger_ms": settings.worker_linger_ms,
            "retry": RetryPolicy(horizon_seconds=float(settings.retry_horizon_seconds)),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


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
        if self._generation != since or stop.is_set():
            return
        waiters = [asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


@dataclass(slots=True)
class WorkerStats:
    rounds: int = 0
    requests: int = 0
    objects_sent: int = 0
    delivered: int = 0


@dataclass(slots=True)
class _Settlement:
    """What one connection's round decided, applied in one transaction."""

    rows: list[SettleRow] = field(default_factory=list)
    # (operation, reason, wait_at_least, outcome word, sent object) for retryable failures.
    retries: list[tuple[ClaimedOperation, str, float, str, str | None]] = field(
        default_factory=list
    )
    results: list[TrackResult] = field(default_factory=list)
    auth_error: str | None = None
    rate_limited_until: datetime | None = None


def _identifier_json(identifier: dict[str, object]) -> str:
    return json.dumps(identifier, separators=(",", ":"), ensure_ascii=False)[1:-1]


class DeliveryWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        secret_box: SecretBox,
        *,
        listen_dsn: str | None = None,
        options: WorkerOptions | None = None,
        worker_id: str | None = None,
        clock: Clock = utcnow,
        jitter: Callable[[], float] = random.random,
        housekeeping: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.options = options or WorkerOptions()
        # Periodic upkeep injected by the process wiring (retention purge); never fatal.
        self._housekeeping = housekeeping
        self.worker_id = worker_id or (
            f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self._sessionmaker = sessionmaker
        self._http = http
        self._secret_box = secret_box
        self._listen_dsn = listen_dsn
        self._clock = clock
        self._jitter = jitter
        self._stop = asyncio.Event()
        self._wakeup = Wakeup()
        self._held: set[int] = set()
        self._busy = False
        self._objects_per_head = 1.0
        self._keys: dict[str, str] = {}
        # Per connection: the most objects per request since Braze last said "too large"
        # (413 / Max Input Length Exceeded); kept for this process's life.
        self._learned_caps: dict[uuid.UUID, int] = {}
        # Requests beyond the pool's size would queue inside httpcore, which rescans its whole
        # queue against every connection on each state change (quadratic CPU); they wait here.
        self._http_slots = asyncio.Semaphore(HTTP_CONNECTIONS)
        self.limiter = RateLimiter(sessionmaker)
        self.resolver = IdentityResolver(
            sessionmaker,
            self.limiter,
            worker_id=self.worker_id,
            clock=clock,
            found_ttl_seconds=self.options.found_ttl_seconds,
            missing_ttl_seconds=self.options.missing_ttl_seconds,
        )
        self.stats = WorkerStats()
        self.listening = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming; `run` finishes the rounds in hand and releases the rest."""
        self._stop.set()

    def wake(self) -> None:
        self._wakeup.signal()

    async def run(self) -> None:
        log.info("worker.started", worker_id=self.worker_id, lanes=self.options.lanes)
        side = [asyncio.create_task(self._renew_leases(), name="lease-renewer")]
        if self._listen_dsn:
            side.append(asyncio.create_task(self._listen(self._listen_dsn), name="listener"))
        if self._housekeeping is not None:
            side.append(asyncio.create_task(self._housekeep(self._housekeeping), name="upkeep"))
        lanes = [
            asyncio.create_task(self._lane(), name=f"lane-{i}") for i in range(self.options.lanes)
        ]
        stopping = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                [stopping, *lanes, *side], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopping and not task.cancelled() and task.exception():
                    # A side task or lane died: stop rather than run half a worker.
                    log.error(
                        "worker.task_failed", task=task.get_name(), error=repr(task.exception())
                    )
            self._stop.set()
            _, unfinished = await asyncio.wait(lanes, timeout=self.options.shutdown_grace_seconds)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        finally:
            stopping.cancel()
            for task in side:
                task.cancel()
            await asyncio.gather(*side, stopping, return_exceptions=True)
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
                    continue
                delay = await self._idle_delay()
            except Exception as exc:  # the database may be restarting: keep the worker alive
                log.exception("worker.round_failed", error=repr(exc))
                delay = options.poll_seconds
            await self._wakeup.wait(generation, delay, self._stop)

    def _head_limit(self) -> int:
        wanted = int(self.options.claim_objects / max(self._objects_per_head, 1.0) * 0.97)
        return max(1, min(self.options.claim_limit, wanted))

    def _learn_objects_per_head(self, objects: int, users: int) -> None:
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
            for op in claimed:  # once per object: no throw-away list per `setdefault`
                group = groups.get(op.connection_id)
                if group is None:
                    groups[op.connection_id] = [op]
                else:
                    group.append(op)
            async with self._sessionmaker() as session:
                connections = await connection_repo.load_delivery_connections(session, list(groups))
            await asyncio.gather(
                *(
                    self._deliver_connection_safely(connections[cid], ops)
                    for cid, ops in groups.items()
                    if cid in connections
                )
            )
            self.stats.rounds += 1
        finally:
            self._held.difference_update(ids)
        # Settled work may unblock later objects of the same users.
        self._wakeup.signal()

    async def _deliver_connection_safely(
        self, connection: DeliveryConnection, ops: list[ClaimedOperation]
    ) -> None:
        try:
            await self._deliver_connection(connection, ops)
        except Exception as exc:
            log.exception("worker.delivery_failed", connection_id=str(connection.id))
            settlement = _Settlement()
            for op in ops:
                settlement.retries.append(
                    (op, f"internal error: {type(exc).__name__}", 0.0, "retry", None)
                )
            try:
                await self._settle(connection, settlement)
            except Exception:
                log.exception("worker.settle_failed", connection_id=str(connection.id))
                with contextlib.suppress(Exception):
                    async with self._sessionmaker.begin() as session:
                        await outbox.settle_operations(
                            session,
                            owner=self.worker_id,
                            rows=[SettleRow(op.id, OperationStatus.PENDING) for op in ops],
                        )

    # -- one connection's share of a round ---------------------------------------------------

    def _api_key(self, connection: DeliveryConnection) -> str:
        key = self._keys.get(connection.api_key_enc)
        if key is None:
            key = self._secret_box.decrypt(connection.api_key_enc)
            if len(self._keys) > 1000:
                self._keys.clear()
            self._keys[connection.api_key_enc] = key
        return key

    async def _deliver_connection(
        self, connection: DeliveryConnection, ops: list[ClaimedOperation]
    ) -> None:
        settlement = _Settlement()
        try:
            api_key = self._api_key(connection)
        except SecretDecryptError:
            settlement.auth_error = (
                "cannot decrypt the stored Braze API key with the configured "
                "BRAZE_BRIDGE_SECRET_KEY; set the key again"
            )
            settlement.rows += [SettleRow(op.id, OperationStatus.PENDING) for op in ops]
            await self._settle(connection, settlement)
            return
        client = BrazeClient(self._http, connection.rest_endpoint, api_key)
        by_id = {op.id: op for op in ops}

        outgoing = await self._identify(connection, client, api_key, ops, settlement)
        limits = PackLimits.for_cap(connection.track_object_cap)
        learned = self._learned_caps.get(connection.id)
        if learned is not None and learned < limits.max_objects:
            limits = dataclasses.replace(limits, max_objects=learned)
        packing = pack_track_requests(outgoing, limits)
        settlement.rows += [SettleRow(op_id, OperationStatus.PENDING) for op_id in packing.deferred]
        self._learn_objects_per_head(sum(len(r.objects) for r in packing.requests), packing.users)

        bucket = track_bucket(connection, api_key)
        requests = packing.requests
        if requests:
            permit = await self.limiter.acquire(bucket, len(requests), self._stop)
            later = self._clock() + timedelta(seconds=permit.retry_in)
            for request in requests[permit.granted :]:
                settlement.rows += [
                    SettleRow(op_id, OperationStatus.PENDING, available_at=later)
                    for op_id in request.op_ids
                ]
            requests = requests[: permit.granted]

        async def send(body: str) -> BrazeReply:
            async with self._http_slots:
                return await client.post_encoded(TRACK_PATH, body.encode())

        async def before_extra_request() -> None:
            # Bisection is rare: wait for the budget rather than abandon a half-split request.
            for _ in range(1000):
                permit = await self.limiter.acquire(bucket, 1)
                if permit.granted or self._stop.is_set():
                    return
                await asyncio.sleep(permit.retry_in)

        results = await asyncio.gather(
            *(deliver_track_request(r, send, self._clock, before_extra_request) for r in requests)
        )
        rows = settlement.rows
        delivered = OperationStatus.DELIVERED
        sent_count = delivered_count = 0
        for result in results:
            settlement.results.append(result)
            if result.learned_cap is not None:
                cap = self._learned_caps.get(connection.id, limits.max_objects)
                self._learned_caps[connection.id] = min(cap, result.learned_cap)
            self.stats.requests += result.requests_sent
            # Once per object: the delivered case stays as short as it can be.
            for outcome in result.outcomes:
                obj = outcome.obj
                sent_count += len(obj.op_ids)
                if outcome.kind == "delivered":
                    delivered_count += len(obj.op_ids)
                    for op_id in obj.op_ids:
                        rows.append(SettleRow(op_id, delivered, None, obj.json))
                elif outcome.kind == "failed":
                    settlement.rows += [
                        SettleRow(
                            op_id,
                            OperationStatus.FAILED,
                            reason=outcome.reason,
                            sent_object=obj.json,
                        )
                        for op_id in obj.op_ids
                    ]
                elif outcome.kind == "held":
                    settlement.auth_error = outcome.reason
                    settlement.rows += [
                        SettleRow(op_id, OperationStatus.PENDING, reason=outcome.reason)
                        for op_id in obj.op_ids
                    ]
                else:
                    wait = 0.0
                    if outcome.kind == "rate_limited":
                        wait = outcome.wait_seconds or self.options.retry.backoff_seconds(
                            by_id[obj.op_ids[0]].attempts + 1, self._jitter()
                        )
                        metrics.rate_limit_wait(wait)
                        until = self._clock() + timedelta(seconds=wait)
                        if (
                            settlement.rate_limited_until is None
                            or until > settlement.rate_limited_until
                        ):
                            settlement.rate_limited_until = until
                    for op_id in obj.op_ids:
                        settlement.retries.append(
                            (
                                by_id[op_id],
                                outcome.reason or outcome.kind,
                                wait,
                                outcome.kind,
                                obj.json,
                            )
                        )
        self.stats.objects_sent += sent_count
        self.stats.delivered += delivered_count
        await self._settle(connection, settlement)
        pause_until = settlement.rate_limited_until or _exhausted_until(results, self._clock())
        if pause_until is not None:
            await self.limiter.block(bucket, pause_until)

    async def _identify(
        self,
        connection: DeliveryConnection,
        client: BrazeClient,
        api_key: str,
        ops: list[ClaimedOperation],
        settlement: _Settlement,
    ) -> list[Outgoing]:
        """Give each operation its Braze identifier; settle or park those that cannot have one."""
        outgoing: list[Outgoing] = []
        add = outgoing.append
        by_email: dict[str, list[ClaimedOperation]] = {}
        # Once per object: one dict lookup for the array; the id's JSON is one string escape
        # (`encode_basestring`) instead of a json.dumps.
        for op in ops:
            array = _ARRAYS.get(op.kind)
            if array is None:
                settlement.rows.append(
                    SettleRow(
                        op.id, OperationStatus.FAILED, reason=f"unknown object kind {op.kind!r}"
                    )
                )
            elif op.external_id:
                add(
                    Outgoing(
                        op.id,
                        op.user_key,
                        array,
                        '"external_id":' + encode_basestring(op.external_id),
                        op.payload_json,
                    )
                )
            elif op.email:
                by_email.setdefault(op.email.strip().lower(), []).append(op)
            else:
                settlement.rows.append(
                    SettleRow(op.id, OperationStatus.FAILED, reason="no user identifier")
                )
        if not by_email:
            return outgoing
        answers = await self.resolver.resolve_emails(
            connection,
            client,
            export_bucket(connection, api_key),
            {email: [op.id for op in email_ops] for email, email_ops in by_email.items()},
        )
        now = self._clock()
        for email, email_ops in by_email.items():
            answer = answers[email]
            for op in email_ops:
                if isinstance(answer, Found):
                    ident = _identifier_json(dict(answer.identifier()))
                elif isinstance(answer, NotFound):
                    if op.unknown_user == "skip":
                        settlement.rows.append(
                            SettleRow(op.id, OperationStatus.SKIPPED, reason="unknown_user_skipped")
                        )
                        continue
                    ident = _identifier_json(alias_identifier(email))
                else:
                    self._park_unresolved(op, answer, now, settlement)
                    continue
                outgoing.append(
                    Outgoing(op.id, op.user_key, _array(op.kind), ident, op.payload_json)
                )
        outgoing.sort(key=lambda item: item.op_id)
        return outgoing

    def _park_unresolved(
        self, op: ClaimedOperation, answer: Unresolved, now: datetime, settlement: _Settlement
    ) -> None:
        if answer.auth:
            settlement.auth_error = answer.reason
            settlement.rows.append(SettleRow(op.id, OperationStatus.PENDING, reason=answer.reason))
        elif answer.wait_seconds is not None:
            # Waiting for the export/ids budget is not the object's fault: no attempt burned.
            settlement.rows.append(
                SettleRow(
                    op.id,
                    OperationStatus.PENDING,
                    reason=answer.reason,
                    available_at=now + timedelta(seconds=answer.wait_seconds),
                )
            )
        else:
            settlement.retries.append((op, answer.reason, 0.0, "lookup_failed", None))

    async def _settle(self, connection: DeliveryConnection, settlement: _Settlement) -> None:
        await self._settle_surviving_disconnects(connection, settlement)
        if settlement.auth_error is not None:
            log.warning(
                "worker.connection_held",
                connection_id=str(connection.id),
                reason=settlement.auth_error,
            )

    async def _settle_surviving_disconnects(
        self, connection: DeliveryConnection, settlement: _Settlement
    ) -> None:
        """Record the settlement, on a new connection if the database connection is lost.

        Braze may already have accepted what the settlement records. The leases still hold (the
        renewer keeps them while this process lives), so recording again is safe, and it is
        the only way to keep the objects from being sent a second time. The transaction is
        all or nothing, so a retry starts from the same settlement.
        """
        deadline = asyncio.get_running_loop().time() + self.options.lease_seconds / 2
        pause = 0.05
        while True:
            try:
                await self._settle_in_transaction(connection, settlement)
                return
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                if asyncio.get_running_loop().time() + pause > deadline:
                    raise
                log.warning(
                    "worker.settle_retried",
                    connection_id=str(connection.id),
                    reason="database connection lost",
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def _settle_in_transaction(
        self, connection: DeliveryConnection, settlement: _Settlement
    ) -> None:
        now = self._clock()
        rows = list(settlement.rows)
        dead: set[int] = set()
        async with self._sessionmaker.begin() as session:
            if settlement.retries:
                firsts = await attempt_repo.first_retry_times(
                    session, [op.id for op, *_ in settlement.retries]
                )
                for op, reason, wait, _word, sent in settlement.retries:
                    decision = self.options.retry.after_failure(
                        attempts=op.attempts + 1,
                        first_failure_at=min(firsts.get(op.id, now), now),
                        now=now,
                        jitter=self._jitter(),
                        wait_at_least=wait,
                    )
                    if isinstance(decision, GiveUp):
                        dead.add(op.id)
                        rows.append(
                            SettleRow(
                                op.id,
                                OperationStatus.DEAD,
                                reason=f"{reason}; {decision.reason}",
                                sent_object=sent,
                                bump=1,
                            )
                        )
                    else:
                        rows.append(
                            SettleRow(
                                op.id,
                                OperationStatus.PENDING,
                                reason=reason,
                                sent_object=sent,
                                available_at=decision.at,
                                bump=1,
                            )
                        )
            records = [
                AttemptWrite(
                    tenant_id=connection.tenant_id,
                    connection_id=connection.id,
                    endpoint=TRACK_PATH,
                    worker_id=self.worker_id,
                    request_json=exchange.body_json,
                    status_code=exchange.reply.status_code if exchange.reply else None,
                    response_body=exchange.reply.text if exchange.reply else None,
                    response_headers=exchange.reply.headers if exchange.reply else None,
                    error=exchange.error,
                    duration_ms=exchange.duration_ms,
                    started_at=exchange.started_at,
                    operations=[
                        (op_id, "dead" if op_id in dead else word)
                        for op_id, word in exchange.outcomes.items()
                    ]
                    if dead
                    else list(exchange.outcomes.items()),
                )
                for result in settlement.results
                for exchange in result.exchanges
            ]
            await attempt_repo.record_attempts(session, records)
            settled = await outbox.settle_operations(session, owner=self.worker_id, rows=rows)
            await outbox.roll_up_events(session, settled.event_ids)
            if connection.source == Source.ANTAVO.value:
                # Antavo `changed_only`: a value counts as sent only once Braze accepted it.
                # Other partners never record values: two statements saved per round.
                await user_values.record_accepted(session, settled.ids_with("delivered"))
                await user_values.record_failed(
                    session, settled.ids_with("failed", "dead", "skipped")
                )
            if settlement.auth_error is not None:
                await connection_repo.hold_connection_for_auth(
                    session, connection.id, settlement.auth_error
                )
            if settlement.rate_limited_until is not None:
                await connection_repo.hold_connection_until(
                    session, connection.id, settlement.rate_limited_until, "braze 429: rate limited"
                )
        for record in records:
            metrics.braze_request(record.endpoint, record.status_code or "error")
        # Per round, not per object: one count per status and one bulk latency observation.
        counts = Counter(settled.statuses.values())
        for status in ("delivered", "failed", "dead"):
            metrics.objects_settled(str(connection.id), status, counts[status])
        metrics.delivery_latencies(settled.delivered_ages)

    # -- side tasks --------------------------------------------------------------------------

    async def _housekeep(self, task: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                result = await task()
                log.info("worker.housekeeping_done", result=repr(result))
            except Exception:
                log.exception("worker.housekeeping_failed")
            await asyncio.sleep(self.options.housekeeping_interval_seconds)

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
                log.warning("worker.lease_renewal_failed", error=repr(exc))

    async def _listen(self, dsn: str) -> None:
        """LISTEN on a dedicated connection; reconnect with backoff. Polling covers the gaps."""
        backoff = 0.5
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except Exception as exc:
                log.warning("worker.listen_connect_failed", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            lost = asyncio.Event()
            connection.add_termination_listener(_setter(lost))
            try:
                await connection.add_listener(OUTBOX_CHANNEL, lambda *_: self._wakeup.signal())
                self.listening.set()
                self._wakeup.signal()  # catch up on anything that arrived while not listening
                while not lost.is_set():
                    # A quiet socket can die silently: a cheap round trip now and then notices.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=30.0)
                    if not lost.is_set():
                        await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout=10.0)
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                log.warning("worker.listen_lost", error=repr(exc))
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)


_USER_OF = operator.attrgetter("connection_id", "user_key")
_ID_OF = operator.attrgetter("id")


def _exhausted_until(results: Sequence[TrackResult], now: datetime) -> datetime | None:
    """When an accepted answer said the workspace's window is spent: its reset time."""
    waits = [
        wait
        for result in results
        for exchange in result.exchanges
        if exchange.reply is not None
        and (wait := exhausted_budget_seconds(exchange.reply.headers, now_epoch=now.timestamp()))
    ]
    return now + timedelta(seconds=max(waits)) if waits else None


def _count_users(claimed: Sequence[ClaimedOperation]) -> int:
    return len(set(map(_USER_OF, claimed)))  # runs per object: no Python-level loop


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _connection: event.set()


_ARRAYS: dict[str, TrackArray] = {array: array for array in TRACK_ARRAYS}


def _array(kind: str) -> TrackArray:
    # A dict lookup: this runs once per object.
    try:
        return _ARRAYS[kind]
    except KeyError:
        raise ValueError(kind) from None


# Young-generation threshold for worker processes (Python's default is 700): above the container
# objects a few rounds in flight hold, so a round's objects are freed by reference counting
# before the collector ever scans them.
YOUNG_GC_THRESHOLD = 20_000


def _settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector off the hot path (the worker process only).

    Measured on the delivery bench, the collector took ~18 % of a worker's CPU: everything
    imported at start (SQLAlchemy, pydantic, the app: hundreds of thousands of objects) lives as
    long as the process, yet each full collection rescanned it, and the objects of rounds in
    flight were scanned and promoted every 700 allocations. Freezing moves the start-up heap out
    of the collector's sight; the higher young threshold lets round objects die first. Reference
    cycles are still collected, just less often. No collection before freezing: at this point
    it finds a handful of unreachable objects and costs ~60 ms of start-up.
    """
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


def listen_dsn(database_url: str) -> str:
    """asyncpg wants a plain `postgresql://` URL."""
    scheme, rest = database_url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else database_url


class OneConnectionPools(httpx.AsyncBaseTransport):
    """`size` keep-alive connections, as `size` httpx transports of one connection each.

    httpcore re-examines every connection of its pool on each request state change (a `poll()`
    per idle connection, quadratic `is_idle` checks); at 8 connections that bookkeeping was ~40 %
    of httpx's CPU per request on the delivery bench. A pool of one connection has nothing to
    scan. Each request goes to the least busy pool: a free one while the worker keeps no more
    requests in flight than there are pools (`DeliveryWorker._http_slots`), else it queues
    inside that pool as it would have in a shared one.
    """

    def __init__(self, size: int) -> None:
        # What each transport would build for itself, built once: loading the CA bundle costs
        # ~25 ms of CPU per context.
        tls = httpx.create_ssl_context()
        self._pools = [
            httpx.AsyncHTTPTransport(
                verify=tls, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
            )
            for _ in range(size)
        ]
        self.in_flight = [0] * size

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)  # noqa: S101 - an async transport's
        except BaseException:
            self.in_flight[index] -= 1
            raise
        response.stream = _ReleasingStream(stream, self.in_flight, index)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that marks its pool free again once closed (httpx always closes it)."""

    def __init__(self, stream: httpx.AsyncByteStream, in_flight: list[int], index: int) -> None:
        self._stream = stream
        self._in_flight = in_flight
        self._index: int | None = index

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._index is not None:
                self._in_flight[self._index] -= 1
                self._index = None


def create_http_client() -> httpx.AsyncClient:
    timeout = httpx.Timeout(30.0, connect=10.0)
    if urllib.request.getproxies():
        # HTTP(S)_PROXY & co: httpx routes through them only with its own default transport.
        return httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS
            ),
            follow_redirects=False,
        )
    # A few connections, never over-subscribed (see `_http_slots`), each its own pool: 8 in
    # flight still allow hundreds of requests a second.
    return httpx.AsyncClient(
        transport=OneConnectionPools(HTTP_CONNECTIONS), timeout=timeout, follow_redirects=False
    )


async def run_worker_process(
    database_url: str,
    settings: Settings,
    secret_key: str,
    housekeeping: Callable[[async_sessionmaker[AsyncSession]], Awaitable[object]] | None = None,
) -> None:
    """`braze-bridge worker`: run one worker until SIGTERM/SIGINT, then stop gracefully."""
    engine = create_engine(database_url)
    http = create_http_client()
    box = SecretBox(secret_key, [key.get_secret_value() for key in settings.old_secret_keys])
    sessionmaker = create_sessionmaker(engine)
    worker = DeliveryWorker(
        sessionmaker,
        http,
        box,
        listen_dsn=listen_dsn(database_url),
        options=WorkerOptions.from_settings(settings),
        housekeeping=(lambda: housekeeping(sessionmaker)) if housekeeping else None,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    _settle_garbage_collector()
    try:
        await worker.run()
    finally:
        await http.aclose()
        await engine.dispose()
