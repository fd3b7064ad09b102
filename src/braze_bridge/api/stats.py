"""GET /v1/connections/{id}/stats: hourly traffic of one connection (the console's chart)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from braze_bridge.api.deps import PrincipalDep, SessionDep
from braze_bridge.api.paths import ConnectionIdPath, error_responses
from braze_bridge.api.schemas.stats import ConnectionStatsRead
from braze_bridge.api.text_check import CHECK_ADMIN_TEXT
from braze_bridge.ops import stats as stats_service

router = APIRouter(
    prefix="/v1/connections",
    tags=["connections"],
    responses=error_responses(401),
    dependencies=[CHECK_ADMIN_TEXT],
)


@router.get(
    "/{connection_id}/stats",
    response_model=ConnectionStatsRead,
    responses=error_responses(404, 422),
)
async def connection_stats(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    hours: Annotated[int, Query(ge=1, le=stats_service.MAX_HOURS)] = 24,
) -> ConnectionStatsRead:
    """Per UTC hour, oldest first, the current hour last: webhooks received, objects
    delivered / failed / dead, and Braze's answers by class (2xx, 4xx, 429, 5xx, network)."""
    stats = await stats_service.connection_stats(session, principal, connection_id, hours=hours)
    return ConnectionStatsRead.of(stats)
