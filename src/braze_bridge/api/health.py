"""Connection health: GET /v1/connections/{id}/health and the overview GET /v1/health."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from braze_bridge.api.deps import PrincipalDep, SessionDep
from braze_bridge.api.paths import error_responses
from braze_bridge.api.schemas.health import ConnectionHealthRead, HealthOverview
from braze_bridge.api.text_check import CHECK_ADMIN_TEXT
from braze_bridge.errors import ErrorBody
from braze_bridge.ops import health as health_service

router = APIRouter(
    prefix="/v1", tags=["health"], dependencies=[CHECK_ADMIN_TEXT], responses=error_responses(401)
)


@router.get(
    "/connections/{connection_id}/health",
    response_model=ConnectionHealthRead,
    responses={404: {"model": ErrorBody, "description": "unknown id, or another tenant's"}},
)
async def connection_health(
    connection_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> ConnectionHealthRead:
    """`ok`, `paused`, `auth_error`, `rate_limited` or `degraded`, with the queue depth, the age
    of the oldest unsettled object, the last error and the last hour's events by status."""
    health = await health_service.connection_health(session, principal, connection_id)
    return ConnectionHealthRead.of(health)


@router.get("/health", response_model=HealthOverview)
async def health_overview(principal: PrincipalDep, session: SessionDep) -> HealthOverview:
    """Health of every connection the token can see (the console's overview)."""
    rows = await health_service.all_connection_health(session, principal)
    return HealthOverview(connections=[ConnectionHealthRead.of(h) for h in rows])
