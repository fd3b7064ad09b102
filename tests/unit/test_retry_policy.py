"""Retry policy and Braze's rate-limit headers, with pinned time and jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from braze_bridge.braze.models import retry_after_seconds
from braze_bridge.delivery.retry import GiveUp, RetryAt, RetryPolicy

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_backoff_doubles_and_jitter_spreads_it() -> None:
    policy = RetryPolicy(base_seconds=2, max_delay_seconds=900)
    assert [policy.backoff_seconds(n, 0.0) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert [policy.backoff_seconds(n, 1.0) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert policy.backoff_seconds(30, 1.0) == 900


def test_retry_is_scheduled_after_the_backoff() -> None:
    decision = RetryPolicy().after_failure(attempts=3, first_failure_at=NOW, now=NOW, jitter=0.5)
    assert decision == RetryAt(NOW + timedelta(seconds=6))


def test_a_server_wait_longer_than_the_backoff_wins() -> None:
    decision = RetryPolicy().after_failure(
        attempts=1, first_failure_at=NOW, now=NOW, jitter=0.0, wait_at_least=30
    )
    assert decision == RetryAt(NOW + timedelta(seconds=30))


def test_past_the_horizon_the_object_goes_dead() -> None:
    policy = RetryPolicy(horizon_seconds=3600)
    decision = policy.after_failure(
        attempts=9, first_failure_at=NOW - timedelta(hours=1), now=NOW, jitter=0.5
    )
    assert isinstance(decision, GiveUp)
    assert "1 h" in decision.reason


def test_the_last_retry_lands_on_the_horizon_not_beyond() -> None:
    policy = RetryPolicy(horizon_seconds=60, max_delay_seconds=900)
    decision = policy.after_failure(
        attempts=20, first_failure_at=NOW - timedelta(seconds=50), now=NOW, jitter=1.0
    )
    assert decision == RetryAt(NOW + timedelta(seconds=10))


EPOCH = NOW.timestamp()


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"x-ratelimit-retry-after": "12"}, 12.0),
        ({"X-RateLimit-Reset": str(int(EPOCH) + 42)}, 42.0),  # epoch seconds
        ({"X-RateLimit-Reset": "42"}, 42.0),  # seconds remaining
        ({"Retry-After": "3", "X-RateLimit-Reset": str(int(EPOCH) + 20)}, 20.0),
        ({"X-RateLimit-Reset": str(int(EPOCH) - 5)}, 0.0),  # already past
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_every_braze_header_form(
    headers: dict[str, str], wait: float | None
) -> None:
    assert retry_after_seconds(headers, now_epoch=EPOCH) == wait
