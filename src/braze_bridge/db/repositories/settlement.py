"""One delivery round's database writes for one connection, applied in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.repositories import attempts, outbox, user_values
from braze_bridge.db.repositories.attempts import AttemptRecord
from braze_bridge.db.repositories.outbox import Settled, SettleRow
from braze_bridge.domain.statuses import OperationStatus

RATE_LIMITED_MESSAGE = "braze 429: rate limited"


@dataclass(frozen=True, slots=True)
class Settlement:
    """Everything one round decided for one connection's leased operations."""

    connection_id: uuid.UUID
    rows: tuple[SettleRow, ...] = ()
    attempts: tuple[AttemptRecord, ...] = ()
    # Antavo `changed_only`: a value counts as sent only once Braze accepted it. Other partners
    # never record values, so they skip both statements.
    records_sent_values: bool = False
    # Braze refused the key (or it cannot be decrypted): hold the connection in auth_error.
    auth_error: str | None = None
    # Braze answered 429: no claim takes this connection's work before then.
    rate_limited_until: datetime | None = None


async def apply_settlement(session: AsyncSession, owner: str, settlement: Settlement) -> Settled:
    """Record the attempts, settle the operations `owner` still leases, roll up their events,
    keep Antavo's sent values in step and hold the connection if Braze asked for it."""
    await attempts.record_attempts(session, settlement.attempts)
    settled = await outbox.settle_operations(session, owner=owner, rows=settlement.rows)
    await outbox.roll_up_events(session, settled.event_ids)
    if settlement.records_sent_values:
        await user_values.record_accepted(session, settled.ids_with(OperationStatus.DELIVERED))
        await user_values.record_failed(
            session,
            settled.ids_with(OperationStatus.FAILED, OperationStatus.DEAD, OperationStatus.SKIPPED),
        )
    if settlement.auth_error is not None:
        await outbox.hold_connection_for_auth(
            session, settlement.connection_id, settlement.auth_error
        )
    if settlement.rate_limited_until is not None:
        await outbox.hold_connection_until(
            session, settlement.connection_id, settlement.rate_limited_until, RATE_LIMITED_MESSAGE
        )
    return settled
