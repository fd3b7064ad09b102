"""Process and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from braze_bridge.api.deps import ContextDep
from braze_bridge.db import engine as db_engine
from braze_bridge.db import migrate
from braze_bridge.errors import ErrorBody, NotReady

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"model": ErrorBody, "description": "database down or schema behind"}},
)
async def readyz(context: ContextDep) -> dict[str, str]:
    """Ready when the database answers and its schema is at the code's migration head."""
    head = migrate.head_revision()
    try:
        current = await db_engine.current_revision(context.engine)
    except (SQLAlchemyError, OSError) as exc:
        raise NotReady("database unreachable", details={"error": type(exc).__name__}) from exc
    if current != head:
        raise NotReady(
            "database schema is not at the migration head; run `braze-bridge migrate`",
            details={"database_revision": current, "head_revision": head},
        )
    return {"status": "ready", "revision": str(current)}
