"""Shared pieces of the admin API tests: request bodies, row access, the error shape.

The `tenant_a` / `tenant_b` fixtures live in tests/support/tenancy.py."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import Connection, ConnectionAudit
from tests.factories import TenantWithToken

__all__ = ["TenantWithToken"]

BRAZE = "https://rest.iad-01.braze.com"
API_KEY = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def extole_body(tenant_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Acme referral → Braze prod",
        "source": "extole",
        "braze": {"rest_endpoint": BRAZE, "api_key": API_KEY, "app_id": None},
        "settings": {"reward_states": ["FULFILLED", "EARNED"]},
    }
    if tenant_id is not None:
        body["tenant_id"] = str(tenant_id)
    body.update(copy.deepcopy(overrides))
    return body


def antavo_body(tenant_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Acme loyalty",
        "source": "antavo",
        "braze": {"rest_endpoint": "https://rest.fra-02.braze.eu", "api_key": API_KEY},
        "settings": {
            "field_mappings": [
                {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"}
            ]
        },
    }
    if tenant_id is not None:
        body["tenant_id"] = str(tenant_id)
    body.update(copy.deepcopy(overrides))
    return body


async def load_connection(
    sessionmaker: async_sessionmaker[AsyncSession], connection_id: uuid.UUID | str
) -> Connection:
    """The row as stored now (a fresh session, so nothing cached)."""
    async with sessionmaker() as s:
        row = await s.get(Connection, uuid.UUID(str(connection_id)))
        assert row is not None
        return row


async def audit_rows(
    sessionmaker: async_sessionmaker[AsyncSession], connection_id: uuid.UUID | str
) -> list[ConnectionAudit]:
    async with sessionmaker() as s:
        rows = await s.scalars(
            select(ConnectionAudit)
            .where(ConnectionAudit.connection_id == uuid.UUID(str(connection_id)))
            .order_by(ConnectionAudit.id)
        )
        return list(rows)


def error_of(response: Any) -> dict[str, Any]:
    """The contract's error object; fails when the body has another shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    error: dict[str, Any] = body["error"]
    return error


def fields_of(response: Any) -> list[str]:
    return [d["field"] for d in error_of(response)["details"]]
