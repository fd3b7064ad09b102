"""Read one live (not deleted) connection as the ingest, content and preview paths need it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from braze_bridge.domain.statuses import ConnectionState, Source, WebhookAuthMode


@dataclass(frozen=True, slots=True)
class LiveConnection:
    """A snapshot of the columns the hot paths read; secrets are still ciphertexts."""

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


_LIVE_CONNECTIONS_SQL = """
SELECT id, tenant_id, source, state, braze_app_id, webhook_auth_mode, webhook_username,
       webhook_secret_enc, previous_webhook_secret_enc, previous_secret_expires_at,
       content_token_enc, settings::text AS settings, version
FROM connections
WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL
"""


async def fetch_live_connections(
    driver: asyncpg.Connection, connection_ids: list[uuid.UUID]
) -> dict[uuid.UUID, LiveConnection]:
    """Several live connections in one statement (the ingest lookup batches concurrent ids)."""
    rows = await driver.fetch(_LIVE_CONNECTIONS_SQL, connection_ids)
    return {
        row["id"]: LiveConnection(
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
        for row in rows
    }
