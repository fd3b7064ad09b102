"""Tenants and their admin tokens: create, list, read, issue and revoke tokens.

Who may do what: only operators create tenants; a tenant token sees its own tenant and may
issue and revoke tokens of its own tenant (self-service rotation); any other tenant's id
answers 404, exactly like an id that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import ApiToken, Tenant
from braze_bridge.db.repositories import tenants as tenant_repo
from braze_bridge.db.repositories import tokens as token_repo
from braze_bridge.domain.principal import Principal
from braze_bridge.errors import Conflict, Forbidden, NotFound
from braze_bridge.logging import get_logger
from braze_bridge.security.tokens import display_prefix, generate_token, hash_token

log = get_logger(__name__)

# The command line (`braze-bridge tenants create`, `tokens create`): whoever can reach the
# database is an operator. No token row has this id.
COMMAND_LINE: Final = Principal(token_id=uuid.UUID(int=0), tenant_id=None)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A stored token row and its plaintext, which is shown once and never again."""

    row: ApiToken
    token: str


def _slug_taken(slug: str) -> Conflict:
    return Conflict(
        f"a tenant with slug {slug!r} already exists",
        details=[{"field": "slug", "message": "already taken", "type": "unique"}],
    )


async def create_tenant(
    session: AsyncSession, principal: Principal, *, slug: str, name: str
) -> Tenant:
    if not principal.is_operator:
        raise Forbidden("creating tenants needs an operator token")
    if await tenant_repo.get_by_slug(session, slug) is not None:
        raise _slug_taken(slug)
    try:
        tenant = await tenant_repo.create_tenant(session, slug=slug, name=name)
        await session.commit()
    except IntegrityError as exc:  # two creates raced past the check above
        await session.rollback()
        raise _slug_taken(slug) from exc
    log.info("admin.tenant_created", tenant_id=str(tenant.id), slug=slug)
    return tenant


async def list_tenants(session: AsyncSession, principal: Principal) -> list[Tenant]:
    return await tenant_repo.list_visible(session, tenant_id=principal.tenant_id)


async def get_tenant(session: AsyncSession, principal: Principal, tenant_id: uuid.UUID) -> Tenant:
    """The tenant, or NotFound when it does not exist or the principal may not see it."""
    tenant = await tenant_repo.get(session, tenant_id) if principal.can_see(tenant_id) else None
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    return tenant


async def get_tenant_by_slug(session: AsyncSession, principal: Principal, slug: str) -> Tenant:
    """The tenant with this slug, or NotFound (also when the principal may not see it)."""
    tenant = await tenant_repo.get_by_slug(session, slug)
    if tenant is None or not principal.can_see(tenant.id):
        raise NotFound(f"no tenant with slug {slug!r}")
    return tenant


async def issue_operator_token(
    session: AsyncSession, principal: Principal, *, name: str
) -> IssuedToken:
    """A new operator token (`bbo_…`, sees every tenant); only operators issue one."""
    if not principal.is_operator:
        raise Forbidden("issuing operator tokens needs an operator token")
    token = generate_token(operator=True)
    row = await token_repo.create_token(
        session,
        name=name,
        tenant_id=None,
        token_hash=hash_token(token),
        prefix=display_prefix(token),
    )
    await session.commit()
    log.info(
        "admin.operator_token_issued", credential_id=str(row.id), actor=str(principal.token_id)
    )
    return IssuedToken(row, token)


async def issue_token(
    session: AsyncSession, principal: Principal, tenant_id: uuid.UUID, *, name: str
) -> IssuedToken:
    """A new tenant token (`bbt_…`); only its SHA-256 is stored."""
    tenant = await get_tenant(session, principal, tenant_id)
    token = generate_token(operator=False)
    row = await token_repo.create_token(
        session,
        name=name,
        tenant_id=tenant.id,
        token_hash=hash_token(token),
        prefix=display_prefix(token),
    )
    await session.commit()
    log.info(
        "admin.token_issued",
        tenant_id=str(tenant.id),
        credential_id=str(row.id),
        actor=str(principal.token_id),
    )
    return IssuedToken(row, token)


async def list_tokens(
    session: AsyncSession, principal: Principal, tenant_id: uuid.UUID
) -> list[ApiToken]:
    tenant = await get_tenant(session, principal, tenant_id)
    return await token_repo.list_for_tenant(session, tenant.id)


async def revoke_token(
    session: AsyncSession, principal: Principal, tenant_id: uuid.UUID, token_id: uuid.UUID
) -> None:
    """Revoke a tenant token at once (a token may revoke itself)."""
    tenant = await get_tenant(session, principal, tenant_id)
    if not await token_repo.revoke(session, tenant_id=tenant.id, token_id=token_id):
        raise NotFound(f"no live token {token_id} in tenant {tenant_id}")
    await session.commit()
    log.info(
        "admin.token_revoked",
        tenant_id=str(tenant.id),
        credential_id=str(token_id),
        actor=str(principal.token_id),
    )
