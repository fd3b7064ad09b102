"""Typed async factories: rows as a test needs them, with plaintext secrets handed back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Connection, Event, OutboxOperation, Tenant
from braze_bridge.db.repositories import tenants, tokens
from braze_bridge.domain.operations import UserRef
from braze_bridge.domain.statuses import (
    ConnectionState,
    EventStatus,
    ObjectKind,
    Source,
    WebhookAuthMode,
)
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


@dataclass
class TenantWithToken:
    """A tenant and a plaintext admin token of its own."""

    tenant: Tenant
    token: str

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


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


async def make_tenant_with_token(session: AsyncSession, slug: str | None = None) -> TenantWithToken:
    tenant = await make_tenant(session, slug)
    return TenantWithToken(tenant, await make_token(session, tenant))


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
    max_batch_wait_ms: int = 0,
    **overrides: Any,
) -> MadeConnection:
    """A connection as the admin API stores it, except that it sends at once
    (`max_batch_wait_ms` 0) unless a test asks for a batch budget."""
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
        # As the admin API stores it: an Extole Basic connection has no username by default.
        webhook_username=(
            source.value
            if auth_mode == WebhookAuthMode.BASIC and source is not Source.EXTOLE
            else None
        ),
        webhook_secret_enc=BOX.encrypt(secret),
        content_token_enc=BOX.encrypt(content_token),
        settings=settings or {},
        max_batch_wait_ms=max_batch_wait_ms,
        **overrides,
    )
    session.add(row)
    await session.commit()
    return MadeConnection(row, api_key, secret, content_token)


def default_payload(kind: ObjectKind, n: int) -> dict[str, Any]:
    if kind == ObjectKind.EVENTS:
        return {"name": "test_event", "time": "2026-01-01T00:00:00Z", "properties": {"n": n}}
    if kind == ObjectKind.PURCHASES:
        return {"product_id": "p1", "currency": "USD", "price": 1.5, "time": "2026-01-01T00:00:00Z"}
    return {"test_counter": n}


async def make_operations(
    session: AsyncSession,
    connection: MadeConnection,
    count: int = 1,
    *,
    kind: ObjectKind = ObjectKind.EVENTS,
    external_id: str | None = "user-1",
    email: str | None = None,
    users: int | None = None,
    payload: dict[str, Any] | None = None,
    unknown_user: str = "alias",
    per_event: int = 1,
) -> list[OutboxOperation]:
    """`count` outbox rows for `connection`, `per_event` per event (status queued).

    `users=N` spreads them round-robin over external ids `user-0..N-1` instead of one user.
    """
    rows: list[OutboxOperation] = []
    event: Event | None = None
    for n in range(count):
        if n % per_event == 0:
            event = Event(
                tenant_id=connection.row.tenant_id,
                connection_id=connection.id,
                dedupe_key=f"test-{uuid.uuid4().hex}",
                status=EventStatus.QUEUED,
                kind="test",
            )
            session.add(event)
            await session.flush()
        assert event is not None
        ext = f"user-{n % users}" if users else external_id
        user = UserRef(external_id=ext, email=email, unknown_user=unknown_user)
        assert user.key is not None, "an object needs an external id or an email"
        rows.append(
            OutboxOperation(
                event_id=event.id,
                tenant_id=connection.row.tenant_id,
                connection_id=connection.id,
                position=n % per_event,
                kind=kind,
                user_key=user.key,
                external_id=ext,
                email=email,
                unknown_user=unknown_user,
                payload=payload if payload is not None else default_payload(kind, n),
            )
        )
    session.add_all(rows)
    await session.commit()
    return rows
