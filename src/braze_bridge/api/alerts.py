"""Alert webhooks of a connection (docs/ops.md, "Alerts")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from braze_bridge.api.deps import ContextDep, PrincipalDep, SessionDep
from braze_bridge.api.paths import BODY_ERRORS, ConnectionIdPath, error_responses
from braze_bridge.api.schemas.alerts import (
    AlertList,
    AlertRead,
    AlertWebhookRead,
    AlertWebhookSet,
    AlertWebhookWithSecret,
)
from braze_bridge.api.text_check import CHECK_ADMIN_TEXT
from braze_bridge.ops import alerts as service

router = APIRouter(
    prefix="/v1/connections",
    tags=["alerts"],
    responses=error_responses(401),
    dependencies=[CHECK_ADMIN_TEXT],
)


def _with_secret(result: service.WebhookWithSecret) -> AlertWebhookWithSecret:
    base = AlertWebhookRead.of(result.row)
    return AlertWebhookWithSecret(**base.model_dump(), secret=result.secret)


@router.put(
    "/{connection_id}/alert-webhook",
    response_model=AlertWebhookWithSecret,
    responses=error_responses(*BODY_ERRORS, 404, 422),
)
async def set_alert_webhook(
    connection_id: ConnectionIdPath,
    body: AlertWebhookSet,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> AlertWebhookWithSecret:
    """Alert this URL when the connection enters `auth_error` or `degraded`, when objects go
    `dead` and when it recovers. The first call returns the signing secret, once."""
    result = await service.set_webhook(
        session,
        context.secrets,
        principal,
        connection_id,
        body.url,
        allow_any=context.settings.allow_any_braze_url,
    )
    return _with_secret(result)


@router.post(
    "/{connection_id}/alert-webhook/rotate-secret",
    response_model=AlertWebhookWithSecret,
    responses=error_responses(404),
)
async def rotate_alert_secret(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> AlertWebhookWithSecret:
    """New signing secret, shown once; alerts are signed with it from now on."""
    result = await service.rotate_webhook_secret(session, context.secrets, principal, connection_id)
    return _with_secret(result)


@router.delete("/{connection_id}/alert-webhook", status_code=204, responses=error_responses(404))
async def remove_alert_webhook(
    connection_id: ConnectionIdPath, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Stop alerting; past alerts stay listed."""
    await service.remove_webhook(session, principal, connection_id)
    return Response(status_code=204)


@router.get(
    "/{connection_id}/alerts", response_model=AlertList, responses=error_responses(404, 422)
)
async def list_alerts(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertList:
    """The webhook (without its secret) and the recent alerts with their delivery state."""
    view = await service.list_alerts(session, principal, connection_id, limit=limit)
    return AlertList(
        connection_id=connection_id,
        webhook=AlertWebhookRead.of(view.webhook) if view.webhook else None,
        items=[AlertRead.of(alert) for alert in view.alerts],
    )
