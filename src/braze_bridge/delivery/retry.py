"""Retry policy, pure: given what happened and when, say when to try again or give up.

Time and randomness come in as arguments (STYLE 7), so tests pin both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryAt:
    at: datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The retry horizon has passed: the object goes `dead` (replayable)."""

    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by a horizon measured from the first failure.

    The horizon clock starts at an object's first retryable failure (5xx, timeout, connection
    error, 429), not at its creation: time spent queued behind a backlog, paused, or held while
    the connection is in `auth_error` never counts, so fixing a key after a weekend does not
    turn the weekend's webhooks dead on the first hiccup.
    """

    horizon_seconds: float = 86_400.0
    base_seconds: float = 2.0
    max_delay_seconds: float = 900.0

    def backoff_seconds(self, attempts: int, jitter: float) -> float:
        """Delay before attempt `attempts + 1`; `jitter` in [0, 1).

        "Equal jitter": half the exponential step is fixed, half random, so retries of many
        objects spread out without any of them coming back immediately.
        """
        step = min(self.max_delay_seconds, self.base_seconds * 2.0 ** max(0, attempts - 1))
        return step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)

    def after_failure(
        self,
        *,
        attempts: int,
        first_failure_at: datetime,
        now: datetime,
        jitter: float,
        wait_at_least: float = 0.0,
    ) -> RetryAt | GiveUp:
        """Decide after a retryable failure; `attempts` counts the one that just failed."""
        deadline = first_failure_at + timedelta(seconds=self.horizon_seconds)
        if now >= deadline:
            hours = self.horizon_seconds / 3600
            return GiveUp(f"retry horizon of {hours:g} h passed after {attempts} attempts")
        delay = max(wait_at_least, self.backoff_seconds(attempts, jitter))
        # One last try at the horizon rather than giving up early.
        return RetryAt(min(now + timedelta(seconds=delay), deadline))
