"""Process and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from braze_bridge.api.deps import ContextDep
from braze_bridge.db import engine as db_engine
from braze_bridge.db import migrate
from braze_bridge.errors import error_response

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database down or schema behind"}})
async def readyz(context: ContextDep) -> Any:
    """Ready when the database answers and its schema is at the code's migration head."""
    head = migrate.head_revision()
    try:
        current = await db_engine.current_revision(context.engine)
    except (SQLAlchemyError, OSError) as exc:
        return error_response(
            503, "not_ready", "database unreachable", {"error": type(exc).__name__}
        )
    if current != head:
        return error_response(
            503,
            "not_ready",
            "database schema is not at the migration head; run `braze-bridge migrate`",
            {"database_revision": current, "head_revision": head},
        )
    return JSONResponse({"status": "ready", "revision": current})
