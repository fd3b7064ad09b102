"""What a round's Braze replies do to each operation, decided without a database.

Behaviour follows braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md`
(a 2xx queues every object not named in `errors[]`) and `_docs/_api/api_limits.md` (a 429 says
when the window resets); the retry horizon is this project's contract (docs/delivery.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from braze_bridge.db.repositories.outbox import ClaimedOperation, DeliveryConnection, SettleRow
from braze_bridge.delivery.batcher import PackedObject
from braze_bridge.delivery.retry import RetryPolicy
from braze_bridge.delivery.settlement import (
    RetryRequest,
    RoundOutcome,
    judge_replies,
    settlement_for,
)
from braze_bridge.delivery.track_reply import Exchange, ObjectOutcome, TrackResult
from braze_bridge.domain.statuses import AttemptOutcome, OperationStatus, Source

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(horizon_seconds=3600.0, base_seconds=2.0, max_delay_seconds=900.0)
TENANT = uuid.uuid4()


def connection(source: Source = Source.EXTOLE) -> DeliveryConnection:
    return DeliveryConnection(
        id=uuid.uuid4(),
        tenant_id=TENANT,
        state="active",
        rest_endpoint="https://rest.iad-01.braze.com",
        api_key_enc="enc",
        track_rate_limit=None,
        track_rate_window_seconds=None,
        export_rate_limit=None,
        export_rate_window_seconds=None,
        track_object_cap="75",
        version=1,
        source=source.value,
    )


def op(op_id: int, attempts: int = 0) -> ClaimedOperation:
    return ClaimedOperation(
        id=op_id,
        event_id=uuid.uuid4(),
        tenant_id=TENANT,
        connection_id=uuid.uuid4(),
        kind="events",
        user_key=f"u{op_id}",
        external_id=f"u{op_id}",
        email=None,
        unknown_user="create",
        payload_json="{}",
        attempts=attempts,
    )


def obj(*op_ids: int) -> PackedObject:
    return PackedObject("events", f'{{"n":{op_ids[0]}}}', op_ids, 8)


def result(*outcomes: ObjectOutcome) -> TrackResult:
    return TrackResult(outcomes=list(outcomes))


def half() -> float:
    return 0.5


# -- judge_replies: one reply outcome → settle rows or retry requests ------------------------


@pytest.mark.parametrize(
    ("outcome", "rows", "retries"),
    [
        pytest.param(
            ObjectOutcome(AttemptOutcome.DELIVERED, obj(1, 2)),
            [
                SettleRow(1, OperationStatus.DELIVERED, None, '{"n":1}'),
                SettleRow(2, OperationStatus.DELIVERED, None, '{"n":1}'),
            ],
            [],
            id="delivered-merged-object-settles-each-operation",
        ),
        pytest.param(
            ObjectOutcome(AttemptOutcome.FAILED, obj(1), "bad field"),
            [SettleRow(1, OperationStatus.FAILED, "bad field", '{"n":1}')],
            [],
            id="failed-keeps-reason-and-sent-object",
        ),
        pytest.param(
            ObjectOutcome(AttemptOutcome.HELD, obj(1), "braze 401"),
            [SettleRow(1, OperationStatus.PENDING, reason="braze 401")],
            [],
            id="held-goes-back-without-an-attempt",
        ),
        pytest.param(
            ObjectOutcome(AttemptOutcome.RETRY, obj(1), "braze 503"),
            [],
            [(1, "braze 503", AttemptOutcome.RETRY, 0.0)],
            id="transient-is-a-retry-request",
        ),
        pytest.param(
            ObjectOutcome(AttemptOutcome.RETRY, obj(1)),
            [],
            [(1, "retry", AttemptOutcome.RETRY, 0.0)],
            id="retry-without-reason-names-its-outcome",
        ),
        pytest.param(
            ObjectOutcome(AttemptOutcome.RATE_LIMITED, obj(1), "braze 429", 30.0),
            [],
            [(1, "braze 429", AttemptOutcome.RATE_LIMITED, 30.0)],
            id="429-waits-at-least-the-announced-time",
        ),
        pytest.param(
            ObjectOutcome(AttemptOutcome.RATE_LIMITED, obj(1), "braze 429", None),
            [],
            # No header: equal-jitter backoff for attempt 1 (2 s step, jitter 0.5 → 1.5 s).
            [(1, "braze 429", AttemptOutcome.RATE_LIMITED, 1.5)],
            id="429-without-header-backs-off-by-policy",
        ),
    ],
)
def test_each_reply_outcome_becomes_a_row_or_a_retry_request(
    outcome: ObjectOutcome, rows: list[SettleRow], retries: list[tuple[object, ...]]
) -> None:
    conn = connection()
    ops = {1: op(1), 2: op(2)}

    judged = judge_replies(conn, [result(outcome)], ops, POLICY, NOW, half)

    assert list(judged.outcome.rows) == rows
    assert [
        (r.op.id, r.reason, r.outcome, r.wait_at_least) for r in judged.outcome.retries
    ] == retries
    assert all(r.sent_object == outcome.obj.json for r in judged.outcome.retries)


def test_the_longest_429_wait_holds_the_connection_and_each_wait_is_sampled() -> None:
    judged = judge_replies(
        connection(),
        [
            result(ObjectOutcome(AttemptOutcome.RATE_LIMITED, obj(1), "429", 10.0)),
            result(ObjectOutcome(AttemptOutcome.RATE_LIMITED, obj(2), "429", 40.0)),
            result(ObjectOutcome(AttemptOutcome.DELIVERED, obj(3))),
        ],
        {n: op(n) for n in (1, 2, 3)},
        POLICY,
        NOW,
        half,
    )

    assert judged.outcome.rate_limited_until == NOW + timedelta(seconds=40)
    assert judged.rate_limit_waits == (10.0, 40.0)
    assert (judged.sent, judged.delivered) == (3, 1)


def test_a_held_reply_holds_the_connection_for_auth() -> None:
    judged = judge_replies(
        connection(),
        [result(ObjectOutcome(AttemptOutcome.HELD, obj(1), "braze 403: no permission"))],
        {1: op(1)},
        POLICY,
        NOW,
        half,
    )

    assert judged.outcome.auth_error == "braze 403: no permission"
    assert judged.outcome.rate_limited_until is None


# -- settlement_for: retry decisions and attempt records --------------------------------------


def exchange(*outcomes: tuple[int, AttemptOutcome]) -> Exchange:
    return Exchange('{"events":[]}', None, "timeout", NOW, 0.0, dict(outcomes))


@pytest.mark.parametrize(
    ("first_failure", "wait", "expected"),
    [
        pytest.param(None, 0.0, (OperationStatus.PENDING, NOW + timedelta(seconds=3)), id="first"),
        pytest.param(
            NOW - timedelta(minutes=10),
            0.0,
            (OperationStatus.PENDING, NOW + timedelta(seconds=3)),
            id="inside-horizon",
        ),
        pytest.param(
            NOW - timedelta(minutes=10),
            120.0,
            (OperationStatus.PENDING, NOW + timedelta(seconds=120)),
            id="announced-wait-wins",
        ),
        pytest.param(
            NOW - timedelta(minutes=59, seconds=59),
            120.0,
            (OperationStatus.PENDING, NOW + timedelta(seconds=1)),
            id="last-try-at-the-horizon",
        ),
        pytest.param(NOW - timedelta(hours=1), 0.0, (OperationStatus.DEAD, None), id="past"),
    ],
)
def test_the_retry_policy_decides_each_retry_request(
    first_failure: datetime | None,
    wait: float,
    expected: tuple[OperationStatus, datetime | None],
) -> None:
    operation = op(7, attempts=1)  # this failure is its second attempt: a 4 s step
    outcome = RoundOutcome(
        connection(),
        retries=(RetryRequest(operation, "braze 503", AttemptOutcome.RETRY, wait, '{"n":7}'),),
        exchanges=(exchange((7, AttemptOutcome.RETRY)),),
    )
    firsts = {} if first_failure is None else {7: first_failure}

    settlement = settlement_for(
        outcome, worker_id="w", policy=POLICY, now=NOW, jitter=half, first_failures=firsts
    )

    (row,) = settlement.rows
    assert (row.id, row.status, row.available_at, row.bump) == (7, *expected, 1)
    assert row.sent_object == '{"n":7}'
    assert (row.reason or "").startswith("braze 503")
    (attempt,) = settlement.attempts
    word = AttemptOutcome.DEAD if expected[0] == OperationStatus.DEAD else AttemptOutcome.RETRY
    assert list(attempt.operations) == [(7, word)]


def test_a_settlement_carries_rows_holds_and_attempts_of_the_round() -> None:
    conn = connection(Source.ANTAVO)
    until = NOW + timedelta(seconds=30)
    outcome = RoundOutcome(
        conn,
        rows=(SettleRow(1, OperationStatus.DELIVERED, None, "{}"),),
        exchanges=(
            exchange((1, AttemptOutcome.DELIVERED)),
            exchange((2, AttemptOutcome.BISECT)),
        ),
        auth_error=None,
        rate_limited_until=until,
    )

    settlement = settlement_for(
        outcome, worker_id="w-1", policy=POLICY, now=NOW, jitter=half, first_failures={}
    )

    assert settlement.connection_id == conn.id
    assert settlement.rows == outcome.rows
    assert settlement.rate_limited_until == until
    assert settlement.records_sent_values  # Antavo records what Braze accepted
    assert [(a.worker_id, a.tenant_id, a.connection_id) for a in settlement.attempts] == [
        ("w-1", TENANT, conn.id)
    ] * 2
    assert [list(a.operations) for a in settlement.attempts] == [
        [(1, AttemptOutcome.DELIVERED)],
        [(2, AttemptOutcome.BISECT)],
    ]


def test_only_antavo_records_sent_values() -> None:
    settlement = settlement_for(
        RoundOutcome(connection(Source.EXTOLE)),
        worker_id="w",
        policy=POLICY,
        now=NOW,
        jitter=half,
        first_failures={},
    )
    assert not settlement.records_sent_values


def test_a_later_part_of_a_round_adds_rows_and_keeps_the_latest_holds() -> None:
    conn = connection()
    early = RoundOutcome(
        conn,
        rows=(SettleRow(1, OperationStatus.SKIPPED),),
        auth_error="export refused",
        rate_limited_until=NOW + timedelta(seconds=50),
    )
    late = RoundOutcome(
        conn,
        rows=(SettleRow(2, OperationStatus.DELIVERED),),
        rate_limited_until=NOW + timedelta(seconds=10),
    )

    both = early.then(late)

    assert [row.id for row in both.rows] == [1, 2]
    assert both.auth_error == "export refused"
    assert both.rate_limited_until == NOW + timedelta(seconds=50)
