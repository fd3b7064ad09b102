"""Preview: what a webhook body would become for one connection; nothing stored or sent.

It runs `evaluate_body`, the very function ingest runs, on the connection's current settings.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from braze_bridge.db.jsonb import jsonb_safe
from braze_bridge.domain.json_body import parse_json_body
from braze_bridge.domain.operations import Operation, UserRef
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ObjectKind
from braze_bridge.errors import NotFound
from braze_bridge.ingest.service import find_connection
from braze_bridge.partners import PARTNERS
from braze_bridge.partners.evaluate import evaluate_body


def identity_view(user: UserRef | None) -> dict[str, Any] | None:
    """How the worker will address the user, in words an admin can check."""
    if user is None:
        return None
    if user.external_id:
        return {"external_id": user.external_id, "email": None, "resolution": "external_id"}
    if user.unknown_user == "email":
        return {
            "external_id": None,
            "email": user.email,
            "resolution": "email_identifier",
            "note": (
                "no external id: the worker sends Braze's email identifier; Braze updates the "
                "most recently updated profile with an external id that has this email, else "
                "creates an email-only profile"
            ),
        }
    fallback = (
        "skips the object"
        if user.unknown_user == "skip"
        else 'creates an alias-only profile {"alias_name": email, "alias_label": "email"}'
    )
    return {
        "external_id": None,
        "email": user.email,
        "resolution": "email_lookup",
        "note": (
            "no external id: the worker looks the email up with /users/export/ids and updates "
            f"the profile found; if Braze has none it {fallback}"
        ),
    }


def braze_object(operation: Operation) -> dict[str, Any]:
    """The object as Braze will receive it (external id known) or without identifier yet."""
    if operation.user.external_id:
        return {"external_id": operation.user.external_id, **operation.payload}
    return dict(operation.payload)


async def preview_webhook(
    engine: AsyncEngine, principal: Principal, connection_id: uuid.UUID, body: bytes
) -> dict[str, Any]:
    connection = await find_connection(engine, connection_id)
    if not principal.can_see(connection.tenant_id):
        raise NotFound("unknown connection", details={"connection_id": str(connection_id)})
    parsed = parse_json_body(body)
    evaluation = evaluate_body(
        PARTNERS.get(connection.source),
        connection.settings,
        parsed,
        received_at=datetime.now(UTC),
        app_id=connection.braze_app_id,
    )
    braze: dict[str, list[dict[str, Any]]] = {kind.value: [] for kind in ObjectKind}
    for operation in evaluation.operations:
        braze[operation.kind.value].append(braze_object(operation))
    # Cleaned as it would be stored (U+0000 removed, lone surrogates as `?`): a JSON answer
    # cannot carry a lone surrogate either. Identifiers holding one were rejected, not cleaned.
    answer: dict[str, Any] = jsonb_safe(
        {
            "normalized": evaluation.normalized.as_json() if evaluation.normalized else None,
            "status": evaluation.status.value,
            "reason": evaluation.reason,
            "user": identity_view(evaluation.user),
            "braze": braze,
            "notes": evaluation.notes,
        }
    )
    return answer
