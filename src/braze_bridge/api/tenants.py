"""/v1/tenants: tenants (operators create them) and their admin tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response

from braze_bridge.admin import tenants as service
from braze_bridge.api.deps import OperatorDep, PrincipalDep, SessionDep
from braze_bridge.api.paths import BODY_ERRORS, error_responses, parse_id
from braze_bridge.api.schemas.tenants import (
    TenantCreate,
    TenantPage,
    TenantRead,
    TokenCreate,
    TokenCreated,
    TokenPage,
    TokenRead,
)
from braze_bridge.api.text_check import CHECK_ADMIN_TEXT

router = APIRouter(
    prefix="/v1/tenants",
    tags=["tenants"],
    responses=error_responses(401),
    dependencies=[CHECK_ADMIN_TEXT],
)


@router.post(
    "",
    status_code=201,
    response_model=TenantRead,
    responses=error_responses(*BODY_ERRORS, 403, 409, 422),
)
async def create_tenant(
    body: TenantCreate, principal: OperatorDep, session: SessionDep
) -> TenantRead:
    """Create a tenant (operator token only). The slug is unique."""
    tenant = await service.create_tenant(
        session, principal, slug=body.slug, name=body.name or body.slug
    )
    return TenantRead.of(tenant)


@router.get("", response_model=TenantPage)
async def list_tenants(principal: PrincipalDep, session: SessionDep) -> TenantPage:
    """Every tenant for an operator token; only its own tenant for a tenant token."""
    rows = await service.list_tenants(session, principal)
    return TenantPage(items=[TenantRead.of(row) for row in rows])


@router.get("/{tenant_id}", response_model=TenantRead, responses=error_responses(404))
async def get_tenant(tenant_id: str, principal: PrincipalDep, session: SessionDep) -> TenantRead:
    """One tenant; another tenant's id answers 404."""
    tenant = await service.get_tenant(session, principal, parse_id(tenant_id, "tenant"))
    return TenantRead.of(tenant)


@router.post(
    "/{tenant_id}/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses=error_responses(*BODY_ERRORS, 404, 422),
)
async def issue_token(
    tenant_id: str, body: TokenCreate, principal: PrincipalDep, session: SessionDep
) -> TokenCreated:
    """Issue a tenant token (`bbt_…`), shown once in `token` and stored only as a hash.

    Operators may issue tokens for any tenant, a tenant token for its own tenant.
    """
    issued = await service.issue_token(
        session, principal, parse_id(tenant_id, "tenant"), name=body.name
    )
    return TokenCreated(**TokenRead.of(issued.row).model_dump(), token=issued.token)


@router.get("/{tenant_id}/tokens", response_model=TokenPage, responses=error_responses(404))
async def list_tokens(tenant_id: str, principal: PrincipalDep, session: SessionDep) -> TokenPage:
    """The tenant's live tokens: name and first characters, never the value."""
    rows = await service.list_tokens(session, principal, parse_id(tenant_id, "tenant"))
    return TokenPage(items=[TokenRead.of(row) for row in rows])


@router.delete(
    "/{tenant_id}/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(404),
)
async def revoke_token(
    tenant_id: str, token_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Revoke a tenant token; it answers 401 from the next request on."""
    await service.revoke_token(
        session, principal, parse_id(tenant_id, "tenant"), parse_id(token_id, "token")
    )
    return Response(status_code=204)
