"""One delivery round for one connection: decrypt its key, identify users, pack, take rate
permits, send, and record the settlement.

`deliver_round` makes no database writes of its own beyond the identity cache and the rate
buckets; what the round decided comes back as a `RoundOutcome`, which `settle_round` turns into
a `Settlement` and applies in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from json.encoder import encode_basestring

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.braze.client import TRACK_PATH, BrazeClient, BrazeReply
from braze_bridge.braze.models import TRACK_ARRAYS, TrackArray, exhausted_budget_seconds
from braze_bridge.db.repositories import attempts as attempt_repo
from braze_bridge.db.repositories.connections import DeliveryConnection
from braze_bridge.db.repositories.outbox import ClaimedOperation, SettleRow
from braze_bridge.db.repositories.settlement import apply_settlement
from braze_bridge.delivery.batcher import (
    Outgoing,
    Packing,
    PackLimits,
    TrackRequest,
    pack_track_requests,
)
from braze_bridge.delivery.health_signal import record_round_health
from braze_bridge.delivery.identify import identify_before_track
from braze_bridge.delivery.identity import (
    Found,
    IdentityResolver,
    NoProfile,
    Unresolved,
    alias_identifier,
)
from braze_bridge.delivery.lanes import TenantSlots
from braze_bridge.delivery.ratelimit import (
    RateLimiter,
    export_bucket,
    track_bucket,
    users_admin_bucket,
)
from braze_bridge.delivery.retry import RetryPolicy
from braze_bridge.delivery.settlement import (
    Jitter,
    RetryRequest,
    RoundOutcome,
    judge_replies,
    settlement_for,
)
from braze_bridge.delivery.track_reply import TrackResult, deliver_track_request
from braze_bridge.domain.statuses import AttemptOutcome, OperationStatus
from braze_bridge.logging import get_logger
from braze_bridge.security.secrets import SecretBox, SecretDecryptError

log = get_logger(__name__)

Clock = Callable[[], datetime]

UNDECRYPTABLE_KEY = (
    "cannot decrypt the stored Braze API key with the configured BRAZE_BRIDGE_SECRET_KEY; "
    "set the key again"
)
# Decrypted keys kept in memory, by ciphertext; the cache is simply emptied past this size.
MAX_CACHED_KEYS = 1000

_ARRAYS: dict[str, TrackArray] = {array: array for array in TRACK_ARRAYS}
# `operations.unknown_user` of identity mode `email`: Braze's email identifier, no lookup.
EMAIL_MODE = "email"


@dataclass(slots=True)
class WorkerStats:
    rounds: int = 0
    requests: int = 0
    objects_sent: int = 0
    delivered: int = 0


@dataclass(slots=True)
class RoundDeps:
    """What every round of one worker shares: clients, limiter, resolver and learned state."""

    http: httpx.AsyncClient
    secret_box: SecretBox
    limiter: RateLimiter
    resolver: IdentityResolver
    policy: RetryPolicy
    clock: Clock
    jitter: Jitter
    stop: asyncio.Event
    # Requests beyond the HTTP pools' size would queue inside httpcore (braze/transport.py).
    http_slots: asyncio.Semaphore
    stats: WorkerStats
    # Told how many objects went into how many users' requests (claim sizing).
    on_packed: Callable[[int, int], None]
    # Per connection: the most objects per request since Braze last said "too large"
    # (413 / Max Input Length Exceeded); kept for this process's life.
    learned_caps: dict[uuid.UUID, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    tenant_slots: TenantSlots = field(default_factory=lambda: TenantSlots(0))

    def api_key(self, connection: DeliveryConnection) -> str:
        key = self.keys.get(connection.api_key_enc)
        if key is None:
            key = self.secret_box.decrypt(connection.api_key_enc)
            if len(self.keys) > MAX_CACHED_KEYS:
                self.keys.clear()
            self.keys[connection.api_key_enc] = key
        return key


async def deliver_round(
    connection: DeliveryConnection, ops: Sequence[ClaimedOperation], deps: RoundDeps
) -> RoundOutcome:
    """Send `ops` (all of `connection`) to Braze and say what became of each."""
    try:
        api_key = deps.api_key(connection)
    except SecretDecryptError:
        held = tuple(SettleRow(op.id, OperationStatus.PENDING) for op in ops)
        return RoundOutcome(connection, held, auth_error=UNDECRYPTABLE_KEY)
    client = BrazeClient(deps.http, connection.rest_endpoint, api_key)

    identified, outgoing, creates = await _identify(connection, client, api_key, ops, deps)
    limits = PackLimits.for_cap(connection.track_object_cap)
    learned = deps.learned_caps.get(connection.id)
    if learned is not None and learned < limits.max_objects:
        limits = dataclasses.replace(limits, max_objects=learned)
    packing = _without_creating_objects(pack_track_requests(outgoing, limits))
    rows = [SettleRow(op_id, OperationStatus.PENDING) for op_id in packing.deferred]
    deps.on_packed(sum(len(r.objects) for r in packing.requests), packing.users)

    bucket = track_bucket(connection, api_key)
    requests = packing.requests
    if requests:
        permit = await deps.limiter.acquire(bucket, len(requests), deps.stop)
        later = deps.clock() + timedelta(seconds=permit.retry_in)
        for request in requests[permit.granted :]:
            rows += [
                SettleRow(op_id, OperationStatus.PENDING, available_at=later)
                for op_id in request.op_ids
            ]
        requests = requests[: permit.granted]

    async def send(body: str) -> BrazeReply:
        async with deps.tenant_slots.hold(connection.tenant_id), deps.http_slots:
            return await client.post_encoded(TRACK_PATH, body.encode())

    async def before_extra_request() -> None:
        # Bisection is rare: wait for the budget rather than abandon a half-split request.
        for _ in range(1000):
            permit = await deps.limiter.acquire(bucket, 1)
            if permit.granted or deps.stop.is_set():
                return
            await asyncio.sleep(permit.retry_in)

    results = await asyncio.gather(
        *(deliver_track_request(r, send, deps.clock, before_extra_request) for r in requests)
    )
    for result in results:
        if result.learned_cap is not None:
            cap = deps.learned_caps.get(connection.id, limits.max_objects)
            deps.learned_caps[connection.id] = min(cap, result.learned_cap)
        deps.stats.requests += result.requests_sent
    judged = judge_replies(
        connection, results, {op.id: op for op in ops}, deps.policy, deps.clock(), deps.jitter
    )
    for wait in judged.rate_limit_waits:
        metrics.rate_limit_wait(wait)
    deps.stats.objects_sent += judged.sent
    deps.stats.delivered += judged.delivered
    if creates:
        accepted = {
            creates[row.id]
            for row in judged.outcome.rows
            if row.status == OperationStatus.DELIVERED and row.id in creates
        }
        try:
            await deps.resolver.mark_created(connection, dict(accepted))
        except Exception as exc:
            # Braze accepted the objects: the round must still settle. Without the mark the
            # profile is only not identified later.
            log.warning(
                "worker.identity_mark_failed", connection_id=str(connection.id), exc_info=exc
            )
    exhausted = _exhausted_until(results, deps.clock())
    # Every connection on this key waits for the reset instead of spending its next request
    # on a 429.
    spent = RoundOutcome(
        connection, tuple(rows), window_spent=(bucket, exhausted) if exhausted else None
    )
    return identified.then(spent).then(judged.outcome)


async def settle_round(
    sessionmaker: async_sessionmaker[AsyncSession],
    outcome: RoundOutcome,
    *,
    worker_id: str,
    policy: RetryPolicy,
    limiter: RateLimiter,
    clock: Clock,
    jitter: Jitter,
    lease_seconds: float,
) -> None:
    """Record the round, on a new connection if the database connection is lost; then pause
    the workspace's bucket if Braze said its window is spent.

    Braze may already have accepted what the settlement records. The leases still hold (the
    renewer keeps them while this process lives), so recording again is safe, and it is the
    only way to keep the objects from being sent a second time. The transaction is all or
    nothing, so a retry starts from the same round outcome.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lease_seconds / 2
    pause = 0.05
    connection_id = str(outcome.connection.id)
    while True:
        try:
            await _settle_once(sessionmaker, outcome, worker_id, policy, clock, jitter)
            break
        except DBAPIError as exc:
            if not exc.connection_invalidated or loop.time() + pause > deadline:
                raise
            log.warning(
                "worker.settle_retried",
                connection_id=connection_id,
                reason="database connection lost",
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)
    if outcome.auth_error is not None:
        log.warning(
            "worker.connection_held", connection_id=connection_id, reason=outcome.auth_error
        )
    if outcome.window_spent is not None:
        # After the settlement: a failure here must not undo what Braze already accepted.
        await limiter.block(*outcome.window_spent)


async def _settle_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    outcome: RoundOutcome,
    worker_id: str,
    policy: RetryPolicy,
    clock: Clock,
    jitter: Jitter,
) -> None:
    async with sessionmaker.begin() as session:
        firsts = (
            await attempt_repo.first_retry_times(session, [r.op.id for r in outcome.retries])
            if outcome.retries
            else {}
        )
        settlement = settlement_for(
            outcome,
            worker_id=worker_id,
            policy=policy,
            now=clock(),
            jitter=jitter,
            first_failures=firsts,
        )
        settled = await apply_settlement(session, worker_id, settlement)
        await record_round_health(session, outcome, settled)
    for record in settlement.attempts:
        metrics.braze_request(record.endpoint, record.status_code or "error")
    counts = Counter(settled.statuses.values())
    connection_id = str(outcome.connection.id)
    for status in (OperationStatus.DELIVERED, OperationStatus.FAILED, OperationStatus.DEAD):
        metrics.objects_settled(connection_id, status, counts[status])
    metrics.delivery_latencies(settled.delivered_ages)


def internal_error(
    connection: DeliveryConnection, ops: Sequence[ClaimedOperation], error: Exception
) -> RoundOutcome:
    """A round that failed in our own code: every operation is retried by the policy."""
    reason = f"internal error: {type(error).__name__}"
    return RoundOutcome(
        connection, retries=tuple(RetryRequest(op, reason, AttemptOutcome.RETRY) for op in ops)
    )


async def _identify(
    connection: DeliveryConnection,
    client: BrazeClient,
    api_key: str,
    ops: Sequence[ClaimedOperation],
    deps: RoundDeps,
) -> tuple[RoundOutcome, list[Outgoing], dict[int, tuple[str, str]]]:
    """Give each operation its Braze identifier; settle or park those that cannot have one.

    Also returns, for each operation whose object creates a profile when Braze has none (alias
    or email identifier), `(email, "alias" | "email")`: marked in the identity cache once
    delivered, for identify later (docs/delivery.md, "Identity").
    """
    rows: list[SettleRow] = []
    outgoing: list[Outgoing] = []
    creates: dict[int, tuple[str, str]] = {}
    by_email: dict[str, list[ClaimedOperation]] = {}
    linked = False
    for op in ops:
        array = _ARRAYS.get(op.kind)
        if array is None:
            rows.append(
                SettleRow(op.id, OperationStatus.FAILED, reason=f"unknown object kind {op.kind!r}")
            )
        elif op.external_id:
            # The identifier's JSON is built directly: `"external_id":"<escaped>"`.
            identifier = '"external_id":' + encode_basestring(op.external_id)
            outgoing.append(Outgoing(op.id, op.user_key, array, identifier, op.payload_json))
            linked = linked or bool(op.email)
        elif op.email:
            email = op.email.strip().lower()
            if op.unknown_user == EMAIL_MODE:
                # Braze's email identifier: no lookup, no alias; Braze picks the profile.
                identifier = '"email":' + encode_basestring(email)
                outgoing.append(Outgoing(op.id, op.user_key, array, identifier, op.payload_json))
                creates[op.id] = (email, EMAIL_MODE)
            else:
                by_email.setdefault(email, []).append(op)
        else:
            rows.append(SettleRow(op.id, OperationStatus.FAILED, reason="no user identifier"))
    outcome = RoundOutcome(connection, tuple(rows))
    if linked:
        identify = await identify_before_track(
            connection,
            client,
            ops,
            resolver=deps.resolver,
            limiter=deps.limiter,
            bucket=users_admin_bucket(connection, api_key),
            http_slots=deps.http_slots,
            stop=deps.stop,
            clock=deps.clock,
        )
        outcome = outcome.then(identify.outcome)
        if identify.waiting:
            outgoing = [item for item in outgoing if item.op_id not in identify.waiting]
    if not by_email:
        return outcome, outgoing, creates
    answers = await deps.resolver.resolve_emails(
        connection,
        client,
        export_bucket(connection, api_key),
        {email: [op.id for op in email_ops] for email, email_ops in by_email.items()},
    )
    now = deps.clock()
    rows = []
    retries: list[RetryRequest] = []
    auth_error: str | None = None
    aliased: set[str] = set()
    for email, email_ops in by_email.items():
        answer = answers[email]
        for op in email_ops:
            if isinstance(answer, Found):
                ident = _identifier_json(dict(answer.identifier()))
            elif isinstance(answer, NoProfile):
                if op.unknown_user == "skip":
                    rows.append(
                        SettleRow(op.id, OperationStatus.SKIPPED, reason="unknown_user_skipped")
                    )
                    continue
                ident = _identifier_json(alias_identifier(email))
                creates[op.id] = (email, "alias")
                aliased.add(op.user_key)
            else:
                auth_error = _park_unresolved(op, answer, now, rows, retries) or auth_error
                continue
            outgoing.append(Outgoing(op.id, op.user_key, _ARRAYS[op.kind], ident, op.payload_json))
    outgoing.sort(key=lambda item: item.op_id)
    if aliased:
        outgoing = _creating_objects_first(outgoing, aliased)
    resolved = RoundOutcome(connection, tuple(rows), tuple(retries), auth_error=auth_error)
    return outcome.then(resolved), outgoing, creates


def _creating_objects_first(outgoing: list[Outgoing], aliased: set[str]) -> list[Outgoing]:
    """Put an attributes object that creates the alias-only profile ahead of an aliased user's
    events and purchases when the user's objects do not start with one.

    Braze's event and purchase objects are "update only" with a `user_alias`
    (braze-inc/braze-docs `_docs/_api/objects_filters/event_object.md`,
    `purchase_object.md`), so an event sent before its alias-only profile exists is dropped.
    Braze processes a request's attributes before its events (`_docs/_api/api_limits.md`), so
    the creating object in the same request comes first. It carries no operation: its id is the
    negative of the user's first operation, and `_without_creating_objects` strips it after
    packing.
    """
    result: list[Outgoing] = []
    seen: set[str] = set()
    for item in outgoing:
        if item.user_key in aliased and item.user_key not in seen:
            seen.add(item.user_key)
            if item.array != "attributes":
                result.append(
                    Outgoing(-item.op_id, item.user_key, "attributes", item.identifier_json, "{}")
                )
        result.append(item)
    return result


def _without_creating_objects(packing: Packing) -> Packing:
    """Packed requests whose creating objects carry no operation id (they settle nothing)."""
    if not any(op_id < 0 for request in packing.requests for op_id in request.op_ids):
        return packing
    requests = [
        TrackRequest(
            tuple(
                obj._replace(op_ids=tuple(i for i in obj.op_ids if i > 0))
                if any(i < 0 for i in obj.op_ids)
                else obj
                for obj in request.objects
            )
        )
        for request in packing.requests
    ]
    deferred = [op_id for op_id in packing.deferred if op_id > 0]
    return Packing(requests, deferred, packing.users)


def _park_unresolved(
    op: ClaimedOperation,
    answer: Unresolved,
    now: datetime,
    rows: list[SettleRow],
    retries: list[RetryRequest],
) -> str | None:
    """Put an operation whose user could not be identified back; returns an auth hold."""
    if answer.auth:
        rows.append(SettleRow(op.id, OperationStatus.PENDING, reason=answer.reason))
        return answer.reason
    if answer.wait_seconds is not None:
        # Waiting for the export/ids budget is not the object's fault: no attempt burned.
        rows.append(
            SettleRow(
                op.id,
                OperationStatus.PENDING,
                reason=answer.reason,
                available_at=now + timedelta(seconds=answer.wait_seconds),
            )
        )
    else:
        retries.append(RetryRequest(op, answer.reason, AttemptOutcome.LOOKUP_FAILED))
    return None


def _identifier_json(identifier: dict[str, object]) -> str:
    return json.dumps(identifier, separators=(",", ":"), ensure_ascii=False)[1:-1]


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
