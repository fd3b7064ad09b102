"""The tenancy fixtures every database test shares: two tenants (`tenant_a` "acme",
`tenant_b` "globex") with a token each, and `tenancy`, which adds a connection to each."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import TenantWithToken, make_tenant_with_token
from tests.ops_factories import Tenancy, make_tenancy


@pytest.fixture
async def tenant_a(session: AsyncSession) -> TenantWithToken:
    return await make_tenant_with_token(session, "acme")


@pytest.fixture
async def tenant_b(session: AsyncSession) -> TenantWithToken:
    return await make_tenant_with_token(session, "globex")


@pytest.fixture
async def tenancy(
    session: AsyncSession, tenant_a: TenantWithToken, tenant_b: TenantWithToken
) -> Tenancy:
    return await make_tenancy(session, tenant_a, tenant_b)
