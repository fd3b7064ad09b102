"""Connections and their audit trail: every query applies the caller's tenant scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Connection, ConnectionAudit
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ConnectionState, Source


def _visible_to(principal: Principal) -> Select[Connection]:
    """Live connections the principal may see; the one place the tenant filter is applied."""
    stmt = select(Connection).where(Connection.deleted_at.is_(None))
    if principal.tenant_id is not None:
        stmt = stmt.where(Connection.tenant_id == principal.tenant_id)
    return stmt


async def get_visible(
    session: AsyncSession,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Connection | None:
    """The connection, or None when it does not exist, is deleted or belongs to another tenant."""
    stmt = _visible_to(principal).where(Connection.id == connection_id)
    if for_update:
        stmt = stmt.with_for_update()
    row: Connection | None = await session.scalar(stmt)
    return row


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None = None,
    source: Source | None = None,
    state: ConnectionState | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> Sequence[Connection]:
    """Oldest first, keyset-paginated on (created_at, id)."""
    stmt = _visible_to(principal)
    if tenant_id is not None:
        stmt = stmt.where(Connection.tenant_id == tenant_id)
    if source is not None:
        stmt = stmt.where(Connection.source == source)
    if state is not None:
        stmt = stmt.where(Connection.state == state)
    if after is not None:
        stmt = stmt.where(tuple_(Connection.created_at, Connection.id) > tuple_(*after))
    stmt = stmt.order_by(Connection.created_at, Connection.id).limit(limit)
    return (await session.scalars(stmt)).all()


async def add(session: AsyncSession, connection: Connection) -> Connection:
    session.add(connection)
    await session.flush()
    return connection


async def record_audit(
    session: AsyncSession,
    connection: Connection,
    *,
    actor_token_id: uuid.UUID | None,
    action: str,
    fields: Sequence[str] = (),
) -> None:
    """Who did what to which fields; callers pass field paths, never values."""
    session.add(
        ConnectionAudit(
            connection_id=connection.id,
            tenant_id=connection.tenant_id,
            actor_token_id=actor_token_id,
            action=action,
            fields=list(fields),
        )
    )
    await session.flush()


async def list_audit(
    session: AsyncSession, connection_id: uuid.UUID, *, limit: int = 200
) -> Sequence[ConnectionAudit]:
    """Newest first."""
    stmt = (
        select(ConnectionAudit)
        .where(ConnectionAudit.connection_id == connection_id)
        .order_by(ConnectionAudit.id.desc())
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


async def lock_batch_for_key_rotation(
    session: AsyncSession, *, after: uuid.UUID | None, limit: int
) -> Sequence[Connection]:
    """Every connection, deleted ones too (their ciphertexts must stay readable), in id order."""
    stmt = select(Connection).order_by(Connection.id).limit(limit).with_for_update()
    if after is not None:
        stmt = stmt.where(Connection.id > after)
    return (await session.scalars(stmt)).all()
