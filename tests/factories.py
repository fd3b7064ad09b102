"""Typed async factories: rows as a test needs them, with plaintext secrets handed back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Connection, Tenant
from braze_bridge.db.repositories import tenants, tokens
from braze_bridge.domain.statuses import ConnectionState, Source, WebhookAuthMode
from braze_bridge.security.secrets import SecretBox, last4
from braze_bridge.security.tokens import display_prefix, generate_token, hash_token
from tests.conftest import TEST_SECRET_KEY

BOX = SecretBox(TEST_SECRET_KEY)
SANDBOX_ENDPOINT = "https://rest.iad-01.braze.com"


@dataclass
class MadeConnection:
    row: Connection
    api_key: str
    webhook_secret: str
    content_token: str

    @property
    def id(self) -> uuid.UUID:
        return self.row.id


async def make_tenant(session: AsyncSession, slug: str | None = None) -> Tenant:
    slug = slug or f"t-{uuid.uuid4().hex[:8]}"
    tenant = await tenants.create_tenant(session, slug=slug, name=slug.title())
    await session.commit()
    return tenant


async def make_token(session: AsyncSession, tenant: Tenant | None) -> str:
    token = generate_token(operator=tenant is None)
    await tokens.create_token(
        session,
        name="test",
        tenant_id=tenant.id if tenant else None,
        token_hash=hash_token(token),
        prefix=display_prefix(token),
    )
    await session.commit()
    return token


async def make_connection(
    session: AsyncSession,
    tenant: Tenant,
    *,
    source: Source = Source.EXTOLE,
    auth_mode: WebhookAuthMode = WebhookAuthMode.HMAC_SHA256,
    settings: dict[str, Any] | None = None,
    endpoint: str = SANDBOX_ENDPOINT,
    state: ConnectionState = ConnectionState.ACTIVE,
    name: str | None = None,
    **overrides: Any,
) -> MadeConnection:
    api_key = f"braze-key-{uuid.uuid4().hex}"
    secret = f"whsec_{uuid.uuid4().hex}"
    content_token = f"bbc_{uuid.uuid4().hex}"
    row = Connection(
        tenant_id=tenant.id,
        name=name or f"{source} test",
        source=source,
        state=state,
        braze_rest_endpoint=endpoint,
        braze_api_key_enc=BOX.encrypt(api_key),
        braze_api_key_last4=last4(api_key),
        webhook_auth_mode=auth_mode,
        webhook_username="extole" if auth_mode == WebhookAuthMode.BASIC else None,
        webhook_secret_enc=BOX.encrypt(secret),
        content_token_enc=BOX.encrypt(content_token),
        settings=settings or {},
        **overrides,
    )
    session.add(row)
    await session.commit()
    return MadeConnection(row, api_key, secret, content_token)
