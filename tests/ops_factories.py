"""Rows of the event log as ingest and delivery would leave them (their code is not needed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import (
    AttemptOperation,
    Connection,
    DeliveryAttempt,
    Event,
    EventBody,
    OutboxOperation,
    Tenant,
)
from braze_bridge.db.notify import EVENTS_CHANNEL, notify
from braze_bridge.domain.ids import uuid7
from braze_bridge.domain.statuses import EventStatus, ObjectKind, OperationStatus
from tests.factories import (
    MadeConnection,
    TenantWithToken,
    make_connection,
    make_tenant_with_token,
)

DEFAULT_BODY: dict[str, Any] = {
    "type": "reward_fulfilled",
    "event_id": "evt-1",
    "partner_user_id": "u-1",
    "email": "ada@example.com",
    "face_value": 10,
}


@dataclass
class ObjectSpec:
    """One Braze object of an event; `payload` defaults to a custom event named after kind."""

    status: OperationStatus = OperationStatus.PENDING
    kind: ObjectKind = ObjectKind.EVENTS
    payload: dict[str, Any] = field(default_factory=lambda: {"name": "extole_reward_fulfilled"})
    reason: str | None = None


def _connection(connection: MadeConnection | Connection) -> Connection:
    return connection.row if isinstance(connection, MadeConnection) else connection


async def make_event(
    session: AsyncSession,
    connection: MadeConnection | Connection,
    *,
    status: EventStatus = EventStatus.QUEUED,
    kind: str | None = "reward_fulfilled",
    user: str | None = "u-1",
    reason: str | None = None,
    operations: Sequence[ObjectSpec | OperationStatus] = (),
    body: dict[str, Any] | bytes | None = None,
    headers: dict[str, Any] | None = None,
    store_body: bool = True,
    received_at: datetime | None = None,
    normalized: dict[str, Any] | None = None,
    source_event_id: str | None = None,
) -> Event:
    """An event with its raw body and objects, committed. `user` becomes user_key `id:<user>`."""
    conn = _connection(connection)
    at = received_at or datetime.now(UTC)
    event_id = uuid7(int(at.timestamp() * 1000))
    event = Event(
        id=event_id,
        tenant_id=conn.tenant_id,
        connection_id=conn.id,
        dedupe_key=f"k-{event_id.hex}",
        source_event_id=source_event_id or f"src-{event_id.hex[-8:]}",
        kind=kind,
        status=status,
        reason=reason,
        user_key=f"id:{user}" if user else None,
        normalized=normalized if normalized is not None else {"kind": kind},
        received_at=at,
    )
    session.add(event)
    await session.flush()
    if store_body:
        raw = body if isinstance(body, bytes) else json.dumps(body or DEFAULT_BODY).encode()
        session.add(
            EventBody(
                event_id=event.id,
                body=raw,
                headers=headers or {"content-type": "application/json"},
                content_type="application/json",
                received_at=at,
            )
        )
    for position, spec in enumerate(operations):
        obj = spec if isinstance(spec, ObjectSpec) else ObjectSpec(status=spec)
        settled = obj.status not in (OperationStatus.PENDING, OperationStatus.IN_FLIGHT)
        session.add(
            OutboxOperation(
                event_id=event.id,
                tenant_id=conn.tenant_id,
                connection_id=conn.id,
                position=position,
                kind=obj.kind,
                user_key=f"id:{user or 'nobody'}",
                external_id=user,
                payload=obj.payload,
                status=obj.status,
                reason=obj.reason,
                attempts=1 if settled else 0,
                lease_owner="worker-1" if obj.status == OperationStatus.IN_FLIGHT else None,
                created_at=at,
                available_at=at,
                settled_at=at if settled else None,
            )
        )
    await notify(session, EVENTS_CHANNEL)  # as ingest announces stored events to live feeds
    await session.commit()
    return event


async def settle_event(
    session: AsyncSession, event: Event, status: EventStatus, reason: str | None = None
) -> None:
    """Give `event` a final status as delivery's roll-up would, announced to live feeds."""
    await session.execute(
        update(Event)
        .where(Event.id == event.id)
        .values(status=status, reason=reason, settled_at=datetime.now(UTC))
    )
    await notify(session, EVENTS_CHANNEL)
    await session.commit()


async def reload_event(session: AsyncSession, event: Event) -> Event:
    fresh = await session.scalar(
        select(Event).where(Event.id == event.id).execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


async def operations_of(session: AsyncSession, event: Event) -> list[OutboxOperation]:
    rows = await session.scalars(
        select(OutboxOperation)
        .where(OutboxOperation.event_id == event.id)
        .order_by(OutboxOperation.position)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def make_attempt(
    session: AsyncSession,
    connection: MadeConnection | Connection,
    operations: Sequence[OutboxOperation],
    *,
    status_code: int | None = 201,
    response_body: str = '{"message":"success"}',
    outcome: str = "delivered",
    started_at: datetime | None = None,
    error: str | None = None,
) -> DeliveryAttempt:
    conn = _connection(connection)
    attempt = DeliveryAttempt(
        tenant_id=conn.tenant_id,
        connection_id=conn.id,
        endpoint="/users/track",
        worker_id="worker-1",
        request_body={"events": [op.payload for op in operations]},
        status_code=status_code,
        response_body=response_body,
        response_headers={"content-type": "application/json"},
        error=error,
        duration_ms=42.5,
        started_at=started_at or datetime.now(UTC),
    )
    session.add(attempt)
    await session.flush()
    for op in operations:
        session.add(AttemptOperation(attempt_id=attempt.id, operation_id=op.id, outcome=outcome))
    await session.commit()
    return attempt


@dataclass
class Tenancy:
    """Two tenants, each with a token and a connection of its own."""

    a: TenantWithToken
    b: TenantWithToken
    conn_a: MadeConnection
    conn_b: MadeConnection

    @property
    def tenant_a(self) -> Tenant:
        return self.a.tenant

    @property
    def tenant_b(self) -> Tenant:
        return self.b.tenant

    @property
    def token_a(self) -> str:
        return self.a.token

    @property
    def token_b(self) -> str:
        return self.b.token

    def headers_a(self) -> dict[str, str]:
        return self.a.headers

    def headers_b(self) -> dict[str, str]:
        return self.b.headers


async def make_tenancy(
    session: AsyncSession, a: TenantWithToken | None = None, b: TenantWithToken | None = None
) -> Tenancy:
    """Connections for `a` and `b` (new tenants with unique slugs when not given)."""
    a = a or await make_tenant_with_token(session, f"acme-{uuid.uuid4().hex[:6]}")
    b = b or await make_tenant_with_token(session, f"globex-{uuid.uuid4().hex[:6]}")
    return Tenancy(
        a,
        b,
        await make_connection(session, a.tenant, name="Acme referral → Braze"),
        await make_connection(session, b.tenant, name="Globex loyalty → Braze"),
    )
