"""What a round's Braze replies mean for each operation, decided without a database.

`judge_replies` turns the per-object outcomes of `/users/track` replies into settle rows and
retry requests; `settlement_for` asks the retry policy about each retry request (given when
each operation first failed) and returns the frozen `Settlement` that
db/repositories/settlement.py applies in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from braze_bridge.braze.client import TRACK_PATH
from braze_bridge.db.repositories.attempts import AttemptWrite
from braze_bridge.db.repositories.connections import DeliveryConnection
from braze_bridge.db.repositories.outbox import ClaimedOperation, SettleRow
from braze_bridge.db.repositories.settlement import Settlement
from braze_bridge.delivery.ratelimit import Bucket
from braze_bridge.delivery.retry import GiveUp, RetryPolicy
from braze_bridge.delivery.track_reply import Exchange, TrackResult
from braze_bridge.domain.statuses import AttemptOutcome, OperationStatus, Source

Jitter = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryRequest:
    """A retryable failure of one operation; the retry policy decides when (or whether) next."""

    op: ClaimedOperation
    reason: str
    outcome: AttemptOutcome
    # A wait Braze announced (429 `Retry-After`): the next try comes no sooner.
    wait_at_least: float = 0.0
    sent_object: str | None = None


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """What one connection's round decided before the retry policy is asked."""

    connection: DeliveryConnection
    rows: tuple[SettleRow, ...] = ()
    retries: tuple[RetryRequest, ...] = ()
    exchanges: tuple[Exchange, ...] = ()
    auth_error: str | None = None
    rate_limited_until: datetime | None = None
    # An accepted answer said the workspace's window is spent: pause this bucket until then,
    # once the round is settled (not part of the settlement's transaction).
    window_spent: tuple[Bucket, datetime] | None = None

    def then(self, more: RoundOutcome) -> RoundOutcome:
        """This outcome followed by `more` (rows in order; the later hold wins)."""
        return RoundOutcome(
            self.connection,
            self.rows + more.rows,
            self.retries + more.retries,
            self.exchanges + more.exchanges,
            more.auth_error or self.auth_error,
            _latest(self.rate_limited_until, more.rate_limited_until),
            more.window_spent or self.window_spent,
        )


@dataclass(frozen=True, slots=True)
class JudgedReplies:
    outcome: RoundOutcome
    delivered: int
    sent: int
    # One wait per rate-limited object (the metric samples them).
    rate_limit_waits: tuple[float, ...]


def judge_replies(
    connection: DeliveryConnection,
    results: Sequence[TrackResult],
    ops: Mapping[int, ClaimedOperation],
    policy: RetryPolicy,
    now: datetime,
    jitter: Jitter,
) -> JudgedReplies:
    """Each object's outcome becomes a settle row (delivered, failed, held) or a retry request.

    A 429 without a usable wait header backs off by the policy; the latest wait of the round
    holds the whole connection.
    """
    rows: list[SettleRow] = []
    retries: list[RetryRequest] = []
    waits: list[float] = []
    auth_error: str | None = None
    rate_limited_until: datetime | None = None
    delivered = AttemptOutcome.DELIVERED
    sent = delivered_count = 0
    for result in results:
        for outcome in result.outcomes:
            obj = outcome.obj
            if not obj.op_ids:  # an alias-creating object (delivery/round.py) settles nothing
                continue
            sent += len(obj.op_ids)
            if outcome.kind == delivered:
                delivered_count += len(obj.op_ids)
                for op_id in obj.op_ids:
                    rows.append(SettleRow(op_id, OperationStatus.DELIVERED, None, obj.json))
            elif outcome.kind == AttemptOutcome.FAILED:
                rows += [
                    SettleRow(op_id, OperationStatus.FAILED, outcome.reason, obj.json)
                    for op_id in obj.op_ids
                ]
            elif outcome.kind == AttemptOutcome.HELD:
                auth_error = outcome.reason
                rows += [
                    SettleRow(op_id, OperationStatus.PENDING, reason=outcome.reason)
                    for op_id in obj.op_ids
                ]
            else:
                wait = 0.0
                if outcome.kind == AttemptOutcome.RATE_LIMITED:
                    wait = outcome.wait_seconds or policy.backoff_seconds(
                        ops[obj.op_ids[0]].attempts + 1, jitter()
                    )
                    waits.append(wait)
                    rate_limited_until = _latest(rate_limited_until, now + timedelta(seconds=wait))
                retries += [
                    RetryRequest(
                        ops[op_id], outcome.reason or outcome.kind, outcome.kind, wait, obj.json
                    )
                    for op_id in obj.op_ids
                ]
    exchanges = tuple(exchange for result in results for exchange in result.exchanges)
    return JudgedReplies(
        RoundOutcome(
            connection, tuple(rows), tuple(retries), exchanges, auth_error, rate_limited_until
        ),
        delivered_count,
        sent,
        tuple(waits),
    )


def settlement_for(
    outcome: RoundOutcome,
    *,
    worker_id: str,
    policy: RetryPolicy,
    now: datetime,
    jitter: Jitter,
    first_failures: Mapping[int, datetime],
) -> Settlement:
    """Decide every retry request and describe the round's attempts.

    `first_failures` holds when each retried operation first failed in a retryable way (the
    start of its retry horizon); an operation missing from it fails for the first time now.
    An operation past its horizon goes `dead`, and the attempt log says `dead` for it too.
    """
    rows = list(outcome.rows)
    dead: set[int] = set()
    for retry in outcome.retries:
        op = retry.op
        decision = policy.after_failure(
            attempts=op.attempts + 1,
            first_failure_at=min(first_failures.get(op.id, now), now),
            now=now,
            jitter=jitter(),
            wait_at_least=retry.wait_at_least,
        )
        if isinstance(decision, GiveUp):
            dead.add(op.id)
            rows.append(
                SettleRow(
                    op.id,
                    OperationStatus.DEAD,
                    reason=f"{retry.reason}; {decision.reason}",
                    sent_object=retry.sent_object,
                    bump=1,
                )
            )
        else:
            rows.append(
                SettleRow(
                    op.id,
                    OperationStatus.PENDING,
                    reason=retry.reason,
                    sent_object=retry.sent_object,
                    available_at=decision.at,
                    bump=1,
                )
            )
    connection = outcome.connection
    records = tuple(
        AttemptWrite(
            tenant_id=connection.tenant_id,
            connection_id=connection.id,
            endpoint=TRACK_PATH,
            worker_id=worker_id,
            request_json=exchange.body_json,
            status_code=exchange.reply.status_code if exchange.reply else None,
            response_body=exchange.reply.text if exchange.reply else None,
            response_headers=exchange.reply.headers if exchange.reply else None,
            error=exchange.error,
            duration_ms=exchange.duration_ms,
            started_at=exchange.started_at,
            operations=[
                (op_id, AttemptOutcome.DEAD if op_id in dead else word)
                for op_id, word in exchange.outcomes.items()
            ]
            if dead
            else list(exchange.outcomes.items()),
        )
        for exchange in outcome.exchanges
    )
    return Settlement(
        connection.id,
        tuple(rows),
        records,
        records_sent_values=connection.source == Source.ANTAVO,
        auth_error=outcome.auth_error,
        rate_limited_until=outcome.rate_limited_until,
    )


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
