"""Connection use cases: create, list, read, change, delete, rotate secrets, pause, resume.

Each function is one unit of work: it loads what the principal may see (another tenant's
connection is indistinguishable from a missing one), validates, writes an audit row that
names the changed fields (never their values) and commits before returning.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.admin.connection_schemas import ConnectionCreate, ConnectionUpdate
from braze_bridge.admin.json_merge import changed_paths, merge_patch
from braze_bridge.braze.hosts import InvalidBrazeEndpoint, normalize_rest_endpoint
from braze_bridge.db.models import Connection, ConnectionAudit
from braze_bridge.db.pagination import KeysetCursor
from braze_bridge.db.repositories import connections as connection_repo
from braze_bridge.db.repositories import tenants as tenant_repo
from braze_bridge.db.repositories import user_values
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ConnectionState, Source, WebhookAuthMode
from braze_bridge.errors import NotFound, ValidationFailed
from braze_bridge.logging import get_logger
from braze_bridge.partners import SETTINGS_MODELS
from braze_bridge.security.secrets import SecretBox, SecretDecryptError, last4
from braze_bridge.security.tokens import (
    CONTENT_TOKEN_PREFIX,
    WEBHOOK_SECRET_PREFIX,
    generate_secret,
)

log = get_logger(__name__)

JsonObject = dict[str, Any]  # raw JSON object

DEFAULT_AUTH_MODE: Final = {
    Source.EXTOLE: WebhookAuthMode.HMAC_SHA256,
    Source.ANTAVO: WebhookAuthMode.JWT_HS256,
}
WEBHOOK_SECRET_GRACE: Final = timedelta(hours=24)
LIMIT_FIELDS: Final = (
    "track_rate_limit",
    "track_rate_window_seconds",
    "export_rate_limit",
    "export_rate_window_seconds",
    "track_object_cap",
    "max_batch_wait_ms",
)
# A new Braze endpoint or key is the fix for a connection whose queue is held in auth_error.
AUTH_FIX_FIELDS: Final = frozenset({"braze.rest_endpoint", "braze.api_key"})


@dataclass(frozen=True, slots=True)
class CreatedConnection:
    """The stored row plus the two secrets that are shown once."""

    row: Connection
    webhook_secret: str
    content_token: str


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    row: Connection
    secret: str


@dataclass(frozen=True, slots=True)
class ConnectionListing:
    items: Sequence[Connection]
    next_cursor: str | None


def utcnow() -> datetime:
    return datetime.now(UTC)


def field_error(path: str, message: str, kind: str) -> dict[str, str]:
    """One entry of a 422's `details`, the same shape FastAPI's own validation errors get."""
    return {"field": path, "message": message, "type": kind}


def effective_settings(source: Source, stored: Mapping[str, Any]) -> JsonObject:
    """Stored settings with every default filled in (defaults added since are shown too)."""
    try:
        return SETTINGS_MODELS[source].model_validate(stored).model_dump(mode="json")
    except ValidationError:
        # Stored before a stricter model shipped: show what is stored rather than fail the read.
        return dict(stored)


def _validated_settings(
    source: Source, raw: Mapping[str, Any], errors: list[dict[str, str]]
) -> JsonObject | None:
    try:
        return SETTINGS_MODELS[source].model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        for err in exc.errors():
            path = ".".join(["settings", *(str(part) for part in err["loc"])])
            errors.append(field_error(path, err["msg"], err["type"]))
        return None


def _validated_endpoint(url: str, allow_any: bool, errors: list[dict[str, str]]) -> str | None:
    try:
        return normalize_rest_endpoint(url, allow_any=allow_any)
    except InvalidBrazeEndpoint as exc:
        errors.append(field_error("braze.rest_endpoint", str(exc), "braze_endpoint"))
        return None


def _webhook_auth(
    source: Source,
    mode: WebhookAuthMode,
    username: str | None,
    errors: list[dict[str, str]],
) -> str | None:
    """The username to store for `mode`; modes other than Basic have none.

    Extole's HTTP_Basic key sends `base64(<key>)` alone, so an Extole connection keeps no
    username unless one is given; an Antavo Basic connection defaults to the source name.
    """
    if mode == WebhookAuthMode.BASIC:
        if username or source is not Source.EXTOLE:
            return username or source.value
        return None
    if username is not None:
        errors.append(
            field_error(
                "webhook_auth.username", "only used with mode 'basic'", "username_not_allowed"
            )
        )
    return None


def _raise_if(errors: list[dict[str, str]]) -> None:
    if errors:
        named = ", ".join(e["field"] for e in errors[:5])
        raise ValidationFailed(f"invalid request: {named}", details=errors)


async def _target_tenant(
    session: AsyncSession, principal: Principal, tenant_id: uuid.UUID | None
) -> uuid.UUID:
    """The tenant a new connection belongs to; another tenant's id is reported as not found."""
    if tenant_id is None:
        if principal.tenant_id is None:
            raise ValidationFailed(
                "invalid request: tenant_id",
                details=[field_error("tenant_id", "required with an operator token", "missing")],
            )
        return principal.tenant_id
    if not principal.can_see(tenant_id) or await tenant_repo.get(session, tenant_id) is None:
        raise NotFound(
            f"no tenant {tenant_id}",
            details=[field_error("tenant_id", "no such tenant", "not_found")],
        )
    return tenant_id


async def _visible(
    session: AsyncSession,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Connection:
    row = await connection_repo.get_visible(
        session, principal, connection_id, for_update=for_update
    )
    if row is None:
        raise NotFound(f"no connection {connection_id}")
    return row


def _touch(row: Connection, now: datetime) -> None:
    row.version += 1
    row.updated_at = now


async def create_connection(
    session: AsyncSession,
    box: SecretBox,
    principal: Principal,
    new: ConnectionCreate,
    *,
    allow_any_url: bool,
) -> CreatedConnection:
    """Validate and store a connection; its webhook secret and content token are generated."""
    tenant_id = await _target_tenant(session, principal, new.tenant_id)
    errors: list[dict[str, str]] = []
    endpoint = _validated_endpoint(new.braze.rest_endpoint, allow_any_url, errors)
    mode = new.webhook_auth.mode or DEFAULT_AUTH_MODE[new.source]
    username = _webhook_auth(new.source, mode, new.webhook_auth.username, errors)
    settings = _validated_settings(new.source, new.settings, errors)
    _raise_if(errors)
    assert endpoint is not None  # noqa: S101 - _raise_if raised otherwise
    assert settings is not None  # noqa: S101

    webhook_secret = generate_secret(WEBHOOK_SECRET_PREFIX)
    content_token = generate_secret(CONTENT_TOKEN_PREFIX)
    api_key = new.braze.api_key.get_secret_value()
    limits = new.limits.stored_values() if new.limits else {}
    now = utcnow()
    row = Connection(
        tenant_id=tenant_id,
        name=new.name,
        source=new.source,
        state=ConnectionState.ACTIVE,
        braze_rest_endpoint=endpoint,
        braze_api_key_enc=box.encrypt(api_key),
        braze_api_key_last4=last4(api_key),
        braze_app_id=new.braze.app_id,
        webhook_auth_mode=mode,
        webhook_username=username,
        webhook_secret_enc=box.encrypt(webhook_secret),
        content_token_enc=box.encrypt(content_token),
        settings=settings,
        version=1,
        created_at=now,
        updated_at=now,
        **{name: limits[name] for name in LIMIT_FIELDS if name in limits},
    )
    await connection_repo.add(session, row)
    await connection_repo.record_audit(
        session, row, actor_token_id=principal.token_id, action="create"
    )
    await session.commit()
    log.info(
        "admin.connection_created",
        connection_id=str(row.id),
        tenant_id=str(tenant_id),
        source=new.source.value,
    )
    return CreatedConnection(row, webhook_secret, content_token)


_CURSOR = KeysetCursor("c1", datetime, uuid.UUID)


def encode_cursor(row: Connection) -> str:
    return _CURSOR.encode(row.created_at, row.id)


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, ident = _CURSOR.decode(cursor)
        return cast(datetime, at), cast(uuid.UUID, ident)
    except ValueError as exc:
        raise ValidationFailed(
            "invalid request: cursor",
            details=[field_error("cursor", "not a cursor this API returned", "cursor")],
        ) from exc


async def list_connections(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None = None,
    source: Source | None = None,
    state: ConnectionState | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> ConnectionListing:
    """Oldest first; `next_cursor` is set when more may follow."""
    rows = await connection_repo.list_visible(
        session,
        principal,
        tenant_id=tenant_id,
        source=source,
        state=state,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    items = rows[:limit]
    return ConnectionListing(items, encode_cursor(items[-1]) if len(rows) > limit else None)


async def get_connection(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    return await _visible(session, principal, connection_id)


def _secret_differs(box: SecretBox, ciphertext: str, plaintext: str) -> bool:
    try:
        return box.decrypt(ciphertext) != plaintext
    except SecretDecryptError:
        return True  # unreadable under today's keys: the new value is a change for sure


async def update_connection(
    session: AsyncSession,
    box: SecretBox,
    principal: Principal,
    connection_id: uuid.UUID,
    update: ConnectionUpdate,
    *,
    allow_any_url: bool,
) -> Connection:
    """Apply the fields the PATCH sent; a no-op PATCH changes nothing (no version bump, no
    audit). `ConnectionUpdate` refused explicit nulls, so a null sent here means "clear it"."""
    row = await _visible(session, principal, connection_id, for_update=True)
    sent = update.model_dump(exclude_unset=True)
    errors: list[dict[str, str]] = []
    changed: list[str] = []

    if "name" in sent and sent["name"] != row.name:
        row.name = sent["name"]
        changed.append("name")
    braze: dict[str, Any] = sent.get("braze", {})
    if "rest_endpoint" in braze:
        endpoint = _validated_endpoint(braze["rest_endpoint"], allow_any_url, errors)
        if endpoint is not None and endpoint != row.braze_rest_endpoint:
            row.braze_rest_endpoint = endpoint
            changed.append("braze.rest_endpoint")
    if "api_key" in braze:
        api_key: str = braze["api_key"].get_secret_value()
        if _secret_differs(box, row.braze_api_key_enc, api_key):
            row.braze_api_key_enc = box.encrypt(api_key)
            row.braze_api_key_last4 = last4(api_key)
            changed.append("braze.api_key")
    if "app_id" in braze and braze["app_id"] != row.braze_app_id:
        row.braze_app_id = braze["app_id"]
        changed.append("braze.app_id")

    auth: dict[str, Any] = sent.get("webhook_auth", {})
    mode: WebhookAuthMode = auth.get("mode", row.webhook_auth_mode)
    if "username" in auth:
        requested = auth["username"]
    else:
        # Keep a Basic username across unrelated changes; other modes carry none.
        requested = row.webhook_username if mode == WebhookAuthMode.BASIC else None
    username = _webhook_auth(row.source, mode, requested, errors)
    if mode != row.webhook_auth_mode:
        row.webhook_auth_mode = mode
        changed.append("webhook_auth.mode")
    if username != row.webhook_username:
        row.webhook_username = username
        changed.append("webhook_auth.username")

    if "settings" in sent:
        before = effective_settings(row.source, row.settings)
        base = before
        if isinstance(sent["settings"], dict) and "unknown_user" in sent["settings"]:
            # The former name of `identity`, sent alone, replaces the current mode.
            base = {k: v for k, v in before.items() if k != "identity"}
        after = _validated_settings(row.source, merge_patch(base, sent["settings"]), errors)
        if after is not None and after != before:
            changed.extend(changed_paths(before, after, "settings"))
            row.settings = after
            if (
                before.get("sync_mode") != "changed_only"
                and after.get("sync_mode") == "changed_only"
            ):
                # Values recorded before the switch may be stale: start from a full sync.
                await user_values.forget_user_values(session, row.id)

    limits = update.limits.stored_values() if update.limits is not None else {}
    for name, value in limits.items():
        if name in LIMIT_FIELDS and getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(f"limits.{name}")

    _raise_if(errors)
    if not changed:
        await session.commit()  # ends the transaction and its row lock; nothing was written
        return row
    if row.state == ConnectionState.AUTH_ERROR and AUTH_FIX_FIELDS.intersection(changed):
        row.state = ConnectionState.ACTIVE
        # The error was about the replaced key or endpoint; the next attempt tells about these.
        row.last_error = row.last_error_at = None
        changed.append("state")
    _touch(row, utcnow())
    await connection_repo.record_audit(
        session, row, actor_token_id=principal.token_id, action="update", fields=changed
    )
    await session.commit()
    log.info("admin.connection_updated", connection_id=str(row.id), fields=changed)
    return row


async def delete_connection(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> None:
    """Soft delete: the row stays for history, every route and webhook then answers 404."""
    row = await _visible(session, principal, connection_id, for_update=True)
    now = utcnow()
    row.deleted_at = now
    _touch(row, now)
    await connection_repo.record_audit(
        session, row, actor_token_id=principal.token_id, action="delete"
    )
    await session.commit()
    log.info("admin.connection_deleted", connection_id=str(row.id))


async def rotate_webhook_secret(
    session: AsyncSession,
    box: SecretBox,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    grace: timedelta = WEBHOOK_SECRET_GRACE,
) -> RotatedSecret:
    """A new webhook secret; the replaced one keeps verifying for `grace` (0 ends it now).

    Only the secret being replaced gets a grace period: rotating twice within 24 h retires
    the oldest one at once.
    """
    row = await _visible(session, principal, connection_id, for_update=True)
    secret = generate_secret(WEBHOOK_SECRET_PREFIX)
    now = utcnow()
    if grace > timedelta(0):
        row.previous_webhook_secret_enc = row.webhook_secret_enc
        row.previous_secret_expires_at = now + grace
    else:
        row.previous_webhook_secret_enc = None
        row.previous_secret_expires_at = None
    row.webhook_secret_enc = box.encrypt(secret)
    _touch(row, now)
    await connection_repo.record_audit(
        session,
        row,
        actor_token_id=principal.token_id,
        action="rotate_secret",
        fields=["webhook_auth.secret"],
    )
    await session.commit()
    log.info(
        "admin.webhook_secret_rotated",
        connection_id=str(row.id),
        grace_seconds=int(grace.total_seconds()),
    )
    return RotatedSecret(row, secret)


async def rotate_content_token(
    session: AsyncSession, box: SecretBox, principal: Principal, connection_id: uuid.UUID
) -> RotatedSecret:
    """A new Connected Content token; the old one stops working at once."""
    row = await _visible(session, principal, connection_id, for_update=True)
    token = generate_secret(CONTENT_TOKEN_PREFIX)
    row.content_token_enc = box.encrypt(token)
    _touch(row, utcnow())
    await connection_repo.record_audit(
        session,
        row,
        actor_token_id=principal.token_id,
        action="rotate_content_token",
        fields=["content_token"],
    )
    await session.commit()
    log.info("admin.content_token_rotated", connection_id=str(row.id))
    return RotatedSecret(row, token)


async def _set_state(
    session: AsyncSession,
    principal: Principal,
    connection_id: uuid.UUID,
    state: ConnectionState,
    action: str,
) -> Connection:
    row = await _visible(session, principal, connection_id, for_update=True)
    if row.state == state:
        await session.commit()  # already there: release the row lock, write nothing
        return row
    row.state = state
    _touch(row, utcnow())
    await connection_repo.record_audit(
        session, row, actor_token_id=principal.token_id, action=action, fields=["state"]
    )
    await session.commit()
    log.info("admin.connection_state_changed", connection_id=str(row.id), state=state.value)
    return row


async def pause_connection(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    """Webhooks are still accepted and stored; nothing is sent until resume."""
    return await _set_state(session, principal, connection_id, ConnectionState.PAUSED, "pause")


async def resume_connection(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    """Back to `active`, from `paused` or from `auth_error` (delivery retries the held queue)."""
    return await _set_state(session, principal, connection_id, ConnectionState.ACTIVE, "resume")


async def list_audit(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID, *, limit: int = 200
) -> Sequence[ConnectionAudit]:
    row = await _visible(session, principal, connection_id)
    return await connection_repo.list_audit(session, row.id, limit=limit)


async def reactivate_after_passing_test(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> ConnectionState:
    """A connection held in `auth_error` goes back to `active` once every check passed, and
    its last error is cleared (Braze just answered with the stored endpoint and key)."""
    row = await _visible(session, principal, connection_id, for_update=True)
    if row.state == ConnectionState.ACTIVE and row.last_error is not None:
        row.last_error = row.last_error_at = None
    if row.state == ConnectionState.AUTH_ERROR:
        row.state = ConnectionState.ACTIVE
        row.last_error = row.last_error_at = None
        _touch(row, utcnow())
        await connection_repo.record_audit(
            session, row, actor_token_id=principal.token_id, action="test_passed", fields=["state"]
        )
        log.info("admin.connection_reactivated", connection_id=str(row.id))
    await session.commit()
    return row.state
