"""POST /v1/connections/{id}/preview: a webhook body → its normalized event and Braze objects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from braze_bridge.api.deps import ContextDep, PrincipalDep
from braze_bridge.api.hooks import read_body_limited
from braze_bridge.api.schemas.preview import PreviewRead
from braze_bridge.api.text_check import CHECK_ADMIN_TEXT
from braze_bridge.errors import ErrorBody
from braze_bridge.ingest import preview, service

router = APIRouter(tags=["connections"], dependencies=[CHECK_ADMIN_TEXT])


@router.post(
    "/v1/connections/{connection_id}/preview",
    response_model=PreviewRead,
    # Keys the preview leaves out (a note for an external id) stay out of the answer.
    response_model_exclude_unset=True,
    responses={
        400: {"model": ErrorBody, "description": "body is not valid JSON"},
        401: {"model": ErrorBody},
        404: {"model": ErrorBody, "description": "unknown connection (or another tenant's)"},
        413: {"model": ErrorBody},
    },
)
async def preview_connection_webhook(
    connection_id: str, request: Request, principal: PrincipalDep, context: ContextDep
) -> dict[str, Any]:
    """Show what this body would produce with the connection's settings; nothing is stored."""
    body = await read_body_limited(request, context.settings.max_body_bytes)
    return await preview.preview_webhook(
        context.engine, principal, service.parse_connection_id(connection_id), body
    )
