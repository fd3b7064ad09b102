"""What one settled round says about its connection's health (docs/ops.md, "Connection health").

Any failed attempt (a 5xx or unexpected answer, a timeout, a connection error, an export/ids
failure, a 429 on export/ids, our own error) makes the connection read `degraded` at once, with
`last_error` naming the failure class; the next attempt Braze answers clears it. Auth failures
and `/users/track` 429s are recorded by their holds (db/repositories/settlement.py). The words
are ours, never Braze's body text: a reply can echo what we sent (emails, attributes).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.braze.client import EXPORT_IDS_PATH, TRACK_PATH
from braze_bridge.db.repositories import delivery_health
from braze_bridge.db.repositories.outbox import Settled
from braze_bridge.delivery.settlement import RoundOutcome
from braze_bridge.delivery.track_reply import AUTH_STATUSES, REJECT_STATUSES
from braze_bridge.domain.statuses import AttemptOutcome, OperationStatus

INTERNAL_ERROR_PREFIX = "internal error"
EXPORT_PREFIX = "export/ids: "
EXPORT_RATE_LIMITED = f"braze 429 on {EXPORT_IDS_PATH}"


@dataclass(frozen=True, slots=True)
class HealthSignal:
    # The latest failure of the round, worded as a class; None when nothing failed.
    error: str | None
    # Braze answered at least one request usefully (2xx, or a 400/413 about our content).
    answered: bool
    dead: int = 0


def _track_failure(status: int | None, transport_error: str | None) -> str | None:
    if status is None:
        # Our own text (braze/client.py): "timeout calling Braze ..." / "cannot reach Braze ...".
        return transport_error or f"no answer from Braze on {TRACK_PATH}"
    if 200 <= status < 300 or status in REJECT_STATUSES or status in AUTH_STATUSES:
        return None
    if status == 429:
        return None  # the rate-limit hold records it
    kind = "server error" if status >= 500 else "unexpected answer"
    return f"braze {status} on {TRACK_PATH} ({kind})"


def _lookup_failure(reason: str) -> str:
    """An export/ids reason without Braze's message (delivery/identity.py words them)."""
    if reason.startswith(EXPORT_PREFIX):
        return reason.removeprefix(EXPORT_PREFIX)
    return reason.split(": ", 1)[0]


def health_signal(outcome: RoundOutcome, settled: Settled) -> HealthSignal:
    error: str | None = None
    answered = limited = False
    for exchange in outcome.exchanges:
        status = exchange.reply.status_code if exchange.reply is not None else None
        failure = _track_failure(status, exchange.error)
        if failure is not None:
            error = failure
        elif status == 429:
            limited = True  # the hold's message stays until a round without one
        elif status is not None and status not in AUTH_STATUSES:
            answered = True
    for retry in outcome.retries:
        if retry.outcome == AttemptOutcome.LOOKUP_FAILED:
            error = _lookup_failure(retry.reason)
        elif retry.reason.startswith(INTERNAL_ERROR_PREFIX):
            error = f"{retry.reason} in delivery"
    for row in outcome.rows:
        if row.reason is not None and row.reason.startswith(EXPORT_RATE_LIMITED):
            error = f"{EXPORT_RATE_LIMITED} (rate limited)"
    dead = sum(1 for status in settled.statuses.values() if status == OperationStatus.DEAD)
    return HealthSignal(error, answered and not limited, dead)


async def record_round_health(
    session: AsyncSession, outcome: RoundOutcome, settled: Settled
) -> None:
    """Write what the round says (inside the settlement's transaction). A round with a failure
    reads as failed even if another of its requests succeeded (a partial outage)."""
    signal = health_signal(outcome, settled)
    connection_id = outcome.connection.id
    if signal.error is not None:
        await delivery_health.record_error(session, connection_id, signal.error)
    elif signal.answered:
        await delivery_health.clear_error(session, connection_id)
    if signal.dead:
        await delivery_health.count_dead(session, connection_id, signal.dead)
