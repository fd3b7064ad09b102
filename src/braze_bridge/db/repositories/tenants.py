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
