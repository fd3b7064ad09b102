"""GET /metrics: Prometheus text exposition (process counters + queue gauges from Postgres).

Served on the API port, or, with `BRAZE_BRIDGE_METRICS_PORT`, only on a listener of its own
(`metrics_app`); with `BRAZE_BRIDGE_METRICS_TOKEN` a scrape must send that bearer token.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State

from braze_bridge import metrics
from braze_bridge.api.deps import ContextDep, bearer_token
from braze_bridge.errors import Unauthorized, install_error_handlers
from braze_bridge.logging import get_logger
from braze_bridge.ops import health as health_service

router = APIRouter(tags=["ops"])
log = get_logger(__name__)


@router.get("/metrics", response_class=Response, responses={401: {"description": "bad token"}})
async def prometheus_metrics(request: Request, context: ContextDep) -> Response:
    """Open like /healthz unless BRAZE_BRIDGE_METRICS_TOKEN is set (then `Authorization:
    Bearer <that token>`); scrape it from inside the network, don't publish it."""
    expected = context.settings.metrics_token
    if expected is not None:
        sent = bearer_token(request) or ""
        if not hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
            raise Unauthorized("/metrics needs Authorization: Bearer <BRAZE_BRIDGE_METRICS_TOKEN>")
    snapshots: list[metrics.QueueSnapshot] = []
    try:
        async with context.sessionmaker() as session:
            snapshots = await health_service.queue_snapshots(session)
    except (SQLAlchemyError, OSError) as exc:
        # Counters still tell what happened; the queue gauges are absent until the DB answers.
        log.warning("metrics.queue_unavailable", error=type(exc).__name__)
    return Response(metrics.render_latest(snapshots), media_type=metrics.CONTENT_TYPE_LATEST)


def metrics_app(state: State) -> FastAPI:
    """The metrics listener's app: only /metrics, reading the API app's `state` (its context)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state = state
    install_error_handlers(app)
    app.include_router(router)
    return app
