"""Every read and write of a connection row, and its audit trail.

Admin CRUD is ORM, and every admin query applies the caller's tenant scope. The hot paths read
through named SQL (`db/sql/connections.sql`): `live_connections` for ingest, content and
preview, `delivery_connections` for the worker, and the worker's holds after a 401/403/404 or
a 429.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.db.models import Connection, ConnectionAudit
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ConnectionState, Source, WebhookAuthMode


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
    counts: Mapping[str, int] | None = None,
) -> None:
    """Who did what to which fields; callers pass field paths and counts, never values."""
    session.add(
        ConnectionAudit(
            connection_id=connection.id,
            tenant_id=connection.tenant_id,
            actor_token_id=actor_token_id,
            action=action,
            fields=list(fields),
            counts=dict(counts) if counts is not None else None,
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


@dataclass(frozen=True, slots=True)
class LiveConnection:
    """A snapshot of the columns ingest, content and preview read; secrets are ciphertexts."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    source: Source
    state: ConnectionState
    braze_app_id: str | None
    webhook_auth_mode: WebhookAuthMode
    webhook_username: str | None
    webhook_secret_enc: str
    previous_webhook_secret_enc: str | None
    previous_secret_expires_at: datetime | None
    content_token_enc: str | None
    settings: dict[str, Any]
    version: int


def _live(row: asyncpg.Record) -> LiveConnection:
    return LiveConnection(
        id=row["id"],
        tenant_id=row["tenant_id"],
        source=Source(row["source"]),
        state=ConnectionState(row["state"]),
        braze_app_id=row["braze_app_id"],
        webhook_auth_mode=WebhookAuthMode(row["webhook_auth_mode"]),
        webhook_username=row["webhook_username"],
        webhook_secret_enc=row["webhook_secret_enc"],
        previous_webhook_secret_enc=row["previous_webhook_secret_enc"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        content_token_enc=row["content_token_enc"],
        settings=dict(orjson.loads(row["settings"]) or {}),
        version=row["version"],
    )


async def live_connections(
    session: AsyncSession, connection_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LiveConnection]:
    """Live (not deleted) connections among `connection_ids`, by id."""
    rows = await driver.fetch(session, "live_connections", list(connection_ids))
    return {row["id"]: _live(row) for row in rows}


async def live_connections_on_driver(
    conn: asyncpg.Connection, connection_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LiveConnection]:
    """The same read on a held connection (the ingest lookup batches concurrent ids)."""
    rows = await driver.fetch_on_driver(conn, "live_connections", list(connection_ids))
    return {row["id"]: _live(row) for row in rows}


@dataclass(frozen=True, slots=True)
class DeliveryConnection:
    """What the worker needs to call Braze for one connection."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    # The partner; only Antavo connections record sent values (`changed_only`).
    source: Source
    state: ConnectionState
    rest_endpoint: str
    api_key_enc: str
    track_rate_limit: int | None
    track_rate_window_seconds: int | None
    export_rate_limit: int | None
    export_rate_window_seconds: int | None
    track_object_cap: str
    version: int


async def load_delivery_connections(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, DeliveryConnection]:
    """The connections of `ids` as the worker needs them, deleted ones included."""
    rows = await driver.fetch(session, "delivery_connections", list(ids))
    return {
        row[0]: DeliveryConnection(
            row[0], row[1], Source(row[2]), ConnectionState(row[3]), *row[4:]
        )
        for row in rows
    }


async def hold_connection_for_auth(
    session: AsyncSession, connection_id: uuid.UUID, message: str
) -> None:
    """401/403/404 from Braze: stop claiming this connection until its settings are fixed."""
    await driver.execute(
        session,
        "hold_connection_for_auth",
        connection_id,
        message,
        ConnectionState.AUTH_ERROR.value,
        ConnectionState.ACTIVE.value,
    )


async def hold_connection_until(
    session: AsyncSession, connection_id: uuid.UUID, until: datetime, message: str
) -> None:
    """429 from Braze: the whole connection waits (never shortens an existing wait)."""
    await driver.execute(session, "hold_connection_until", connection_id, until, message)
