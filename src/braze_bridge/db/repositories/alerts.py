"""Alert webhooks and their alerts (ops/alerts.py). Cold paths: ORM and Core."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Alert, AlertWebhook, Connection
from braze_bridge.domain.statuses import AlertStatus


async def get_webhook(
    session: AsyncSession, connection_id: uuid.UUID, *, for_update: bool = False
) -> AlertWebhook | None:
    stmt = select(AlertWebhook).where(AlertWebhook.connection_id == connection_id)
    if for_update:
        stmt = stmt.with_for_update()
    row: AlertWebhook | None = await session.scalar(stmt)
    return row


async def any_webhook(session: AsyncSession) -> bool:
    """Whether any connection has an alert webhook (the worker loads the alert stack then)."""
    found = await session.scalar(select(AlertWebhook.connection_id).limit(1))
    return found is not None


async def lock_webhooks_of(
    session: AsyncSession, connection_ids: Sequence[uuid.UUID]
) -> Sequence[AlertWebhook]:
    """The webhooks of these connections, locked (secret key rotation, admin/keys.py)."""
    if not connection_ids:
        return []
    stmt = (
        select(AlertWebhook)
        .where(AlertWebhook.connection_id.in_(list(connection_ids)))
        .order_by(AlertWebhook.connection_id)
        .with_for_update()
    )
    return (await session.scalars(stmt)).all()


async def webhook_connection_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Live connections that have an alert webhook."""
    rows = await session.scalars(
        select(AlertWebhook.connection_id)
        .join(Connection, Connection.id == AlertWebhook.connection_id)
        .where(Connection.deleted_at.is_(None))
        .order_by(AlertWebhook.connection_id)
    )
    return list(rows.all())


async def lock_webhook_to_evaluate(
    session: AsyncSession, connection_id: uuid.UUID
) -> tuple[AlertWebhook, Connection] | None:
    """The webhook row locked for this transaction, or None when another evaluator holds it
    (it is deciding the same transition) or the connection is gone."""
    stmt = (
        select(AlertWebhook, Connection)
        .join(Connection, Connection.id == AlertWebhook.connection_id)
        .where(AlertWebhook.connection_id == connection_id, Connection.deleted_at.is_(None))
        .with_for_update(of=AlertWebhook, skip_locked=True)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def list_alerts(
    session: AsyncSession, connection_id: uuid.UUID, *, limit: int
) -> Sequence[Alert]:
    """Newest first."""
    stmt = (
        select(Alert)
        .where(Alert.connection_id == connection_id)
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def claim_due(session: AsyncSession, *, limit: int, lease: timedelta) -> Sequence[Alert]:
    """Pending alerts due now, each pushed `lease` into the future so that no other sender
    takes it while this one calls the receiver; `attempts` counts this try."""
    due = (
        select(Alert.id)
        .where(Alert.status == AlertStatus.PENDING, Alert.next_attempt_at <= func.now())
        .order_by(Alert.next_attempt_at, Alert.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Alert)
        .where(Alert.id.in_(due))
        .values(next_attempt_at=func.now() + lease, attempts=Alert.attempts + 1)
        .returning(Alert)
    )
    return (await session.scalars(stmt, execution_options={"synchronize_session": False})).all()


async def record_try(
    session: AsyncSession,
    alert_id: int,
    *,
    status: AlertStatus,
    status_code: int | None,
    error: str | None,
    retry_at: datetime | None = None,
) -> None:
    values: dict[str, object] = {
        "status": status,
        "last_status_code": status_code,
        "last_error": error,
    }
    if status == AlertStatus.SENT:
        values["sent_at"] = func.now()
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    await session.execute(update(Alert).where(Alert.id == alert_id).values(**values))
