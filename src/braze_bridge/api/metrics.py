"""GET /metrics: Prometheus text exposition (process counters + queue gauges from Postgres)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.exc import SQLAlchemyError

from braze_bridge import metrics
from braze_bridge.api.deps import ContextDep
from braze_bridge.logging import get_logger
from braze_bridge.ops import health as health_service

router = APIRouter(tags=["ops"])
log = get_logger(__name__)


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(context: ContextDep) -> Response:
    """Unauthenticated like /healthz: scrape it from inside the network, don't publish it."""
    snapshots: list[metrics.QueueSnapshot] = []
    try:
        async with context.sessionmaker() as session:
            snapshots = await health_service.queue_snapshots(session)
    except (SQLAlchemyError, OSError) as exc:
        # Counters still tell what happened; the queue gauges are absent until the DB answers.
        log.warning("metrics.queue_unavailable", error=type(exc).__name__)
    return Response(metrics.render_latest(snapshots), media_type=metrics.CONTENT_TYPE_LATEST)
