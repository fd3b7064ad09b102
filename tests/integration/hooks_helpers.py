"""Posting signed webhooks and reading back what ingest stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Event, EventBody, OutboxOperation
from braze_bridge.security.webhook_auth import sign_hmac_sha256
from tests.factories import MadeConnection


def raw(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


async def post_signed(
    client: httpx.AsyncClient,
    connection: MadeConnection,
    body: Any,
    *,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = raw(body)
    sent = {
        "Content-Type": "application/json",
        "X-Extole-Signature": sign_hmac_sha256(secret or connection.webhook_secret, content),
        **(headers or {}),
    }
    return await client.post(f"/v1/hooks/{connection.id}", content=content, headers=sent)


async def count_rows(session: AsyncSession) -> tuple[int, int, int]:
    events = await session.scalar(select(func.count()).select_from(Event))
    bodies = await session.scalar(select(func.count()).select_from(EventBody))
    operations = await session.scalar(select(func.count()).select_from(OutboxOperation))
    return (events or 0, bodies or 0, operations or 0)


async def stored_event(session: AsyncSession, event_id: str) -> Event:
    event = await session.get(Event, uuid.UUID(event_id), populate_existing=True)
    assert event is not None
    return event


async def stored_operations(session: AsyncSession, event_id: str) -> list[OutboxOperation]:
    rows = await session.scalars(
        select(OutboxOperation)
        .where(OutboxOperation.event_id == uuid.UUID(event_id))
        .order_by(OutboxOperation.id)
    )
    return list(rows)
