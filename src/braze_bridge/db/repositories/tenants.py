"""Tenants: create and look up."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import Tenant


async def create_tenant(session: AsyncSession, *, slug: str, name: str) -> Tenant:
    tenant = Tenant(slug=slug, name=name)
    session.add(tenant)
    await session.flush()
    return tenant


async def get_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    tenant: Tenant | None = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    return tenant


async def get(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def list_visible(session: AsyncSession, *, tenant_id: uuid.UUID | None) -> list[Tenant]:
    """Every tenant for an operator (`tenant_id=None`), else just that one; by slug."""
    stmt = select(Tenant).order_by(Tenant.slug)
    if tenant_id is not None:
        stmt = stmt.where(Tenant.id == tenant_id)
    return list((await session.scalars(stmt)).all())
