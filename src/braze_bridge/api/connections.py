"""/v1/connections: configure partner → Braze connections (docs/admin-api.md, "Connections")."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from braze_bridge.admin import connection_test
from braze_bridge.admin import connections as service
from braze_bridge.admin import forget as forget_service
from braze_bridge.api.deps import ContextDep, PrincipalDep, SessionDep
from braze_bridge.api.paths import BODY_ERRORS, ConnectionIdPath, error_responses
from braze_bridge.api.schemas.connections import (
    AuditEntry,
    AuditPage,
    ConnectionCreate,
    ConnectionCreated,
    ConnectionPage,
    ConnectionRead,
    ConnectionTestRead,
    ConnectionUpdate,
    ContentTokenRotated,
    ForgetRequest,
    ForgetResult,
    SecretRotation,
    WebhookSecretRotated,
)
from braze_bridge.api.text_check import CHECK_ADMIN_TEXT
from braze_bridge.domain.statuses import ConnectionState, Source

router = APIRouter(
    prefix="/v1/connections",
    tags=["connections"],
    responses=error_responses(401),
    dependencies=[CHECK_ADMIN_TEXT],
)


@router.post(
    "",
    status_code=201,
    response_model=ConnectionCreated,
    responses=error_responses(*BODY_ERRORS, 404, 422),
)
async def create_connection(
    body: ConnectionCreate, principal: PrincipalDep, session: SessionDep, context: ContextDep
) -> ConnectionCreated:
    """Create a connection. The answer carries `webhook_secret` and `content_token` once.

    A tenant token may omit `tenant_id`; another tenant's id answers 404.
    """
    created = await service.create_connection(
        session,
        context.secrets,
        principal,
        body,
        allow_any_url=context.settings.allow_any_braze_url,
    )
    return ConnectionCreated.of_created(created, context.settings.base_url)


@router.get("", response_model=ConnectionPage, responses=error_responses(422))
async def list_connections(
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
    tenant_id: uuid.UUID | None = None,
    source: Source | None = None,
    state: ConnectionState | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ConnectionPage:
    """Connections the token may see, oldest first, `limit` per page."""
    page = await service.list_connections(
        session,
        principal,
        tenant_id=tenant_id,
        source=source,
        state=state,
        cursor=cursor,
        limit=limit,
    )
    base = context.settings.base_url
    return ConnectionPage(
        items=[ConnectionRead.of(row, base) for row in page.items], next_cursor=page.next_cursor
    )


@router.get("/{connection_id}", response_model=ConnectionRead, responses=error_responses(404))
async def get_connection(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> ConnectionRead:
    """One connection; secrets show only `api_key_last4`."""
    row = await service.get_connection(session, principal, connection_id)
    return ConnectionRead.of(row, context.settings.base_url)


@router.patch(
    "/{connection_id}",
    response_model=ConnectionRead,
    responses=error_responses(*BODY_ERRORS, 404, 422),
)
async def update_connection(
    connection_id: ConnectionIdPath,
    body: ConnectionUpdate,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> ConnectionRead:
    """Partial update; `settings` is merged (RFC 7396) and the result validated whole.

    A new Braze endpoint or key lifts an `auth_error` hold. Audited without values.
    """
    row = await service.update_connection(
        session,
        context.secrets,
        principal,
        connection_id,
        body,
        allow_any_url=context.settings.allow_any_braze_url,
    )
    return ConnectionRead.of(row, context.settings.base_url)


@router.delete(
    "/{connection_id}", status_code=204, response_class=Response, responses=error_responses(404)
)
async def delete_connection(
    connection_id: ConnectionIdPath, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Delete the connection; from then on it answers 404 everywhere, webhooks included."""
    await service.delete_connection(session, principal, connection_id)
    return Response(status_code=204)


@router.post(
    "/{connection_id}/test", response_model=ConnectionTestRead, responses=error_responses(404)
)
async def run_connection_test(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> ConnectionTestRead:
    """Call Braze with the stored key: endpoint, key, and each permission the source needs.

    Extole needs users.track and users.export.ids, Antavo users.track. Only a 2xx passes. A
    failed check carries a `hint`. A full pass moves an `auth_error` connection to `active`.
    """
    report = await connection_test.check_connection(
        session,
        context.secrets,
        context.http,
        principal,
        connection_id,
        allow_any_url=context.settings.allow_any_braze_url,
    )
    return ConnectionTestRead.of(report)


@router.post(
    "/{connection_id}/rotate-secret",
    response_model=WebhookSecretRotated,
    responses=error_responses(*BODY_ERRORS, 404, 422),
)
async def rotate_secret(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
    body: Annotated[SecretRotation | None, Body()] = None,
) -> WebhookSecretRotated:
    """New webhook secret, shown once; the replaced one keeps working for 24 h.

    Send `{"grace_seconds": 0}` to retire the replaced secret at once (e.g. after a leak).
    """
    rotation = body or SecretRotation()
    rotated = await service.rotate_webhook_secret(
        session,
        context.secrets,
        principal,
        connection_id,
        grace=timedelta(seconds=rotation.grace_seconds),
    )
    return WebhookSecretRotated.of_rotated(rotated, context.settings.base_url)


@router.post(
    "/{connection_id}/rotate-content-token",
    response_model=ContentTokenRotated,
    responses=error_responses(404),
)
async def rotate_content_token(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> ContentTokenRotated:
    """New Connected Content token, shown once; the previous one stops working now."""
    rotated = await service.rotate_content_token(session, context.secrets, principal, connection_id)
    return ContentTokenRotated.of_rotated(rotated, context.settings.base_url)


@router.post(
    "/{connection_id}/pause", response_model=ConnectionRead, responses=error_responses(404)
)
async def pause_connection(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> ConnectionRead:
    """Stop sending to Braze; webhooks are still accepted and stored."""
    row = await service.pause_connection(session, principal, connection_id)
    return ConnectionRead.of(row, context.settings.base_url)


@router.post(
    "/{connection_id}/resume", response_model=ConnectionRead, responses=error_responses(404)
)
async def resume_connection(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> ConnectionRead:
    """Send again: from `paused`, or from `auth_error` once the cause is fixed in Braze."""
    row = await service.resume_connection(session, principal, connection_id)
    return ConnectionRead.of(row, context.settings.base_url)


@router.get("/{connection_id}/audit", response_model=AuditPage, responses=error_responses(404))
async def list_audit(
    connection_id: ConnectionIdPath,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditPage:
    """Who changed what and when, newest first; field paths only, never values."""
    rows = await service.list_audit(session, principal, connection_id, limit=limit)
    return AuditPage(items=[AuditEntry.of(row) for row in rows])


@router.post(
    "/{connection_id}/users/forget",
    response_model=ForgetResult,
    responses=error_responses(*BODY_ERRORS, 404, 422),
)
async def forget_user(
    connection_id: ConnectionIdPath,
    body: ForgetRequest,
    principal: PrincipalDep,
    session: SessionDep,
    context: ContextDep,
) -> ForgetResult:
    """Forget a person (GDPR / CCPA erasure): `{"external_id"}` or `{"email"}`, exactly one.

    Cancels their unsent objects (`skipped`, reason `forgotten`), deletes or redacts what is
    stored about them in this connection and, with `settings.privacy.delete_in_braze`, asks
    Braze to delete the profile. Answers counts only; audited (docs/privacy.md).
    """
    report = await forget_service.forget_person(
        session,
        context.secrets,
        context.http,
        principal,
        connection_id,
        external_id=body.external_id,
        email=body.email,
    )
    return ForgetResult.of(report)
