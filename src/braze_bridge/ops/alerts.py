"""Alert webhooks: a connection tells a URL (Slack-compatible JSON) when its health changes.

docs/ops.md, "Alerts". The evaluator compares each connection's health with the condition its
webhook last announced, under a row lock on the webhook row (SKIP LOCKED: a second worker
evaluating at the same moment skips it), so each change yields exactly one alert; objects gone
`dead` since the last alert yield one `dead` alert. The sender claims due alerts with a lease,
signs each body (HMAC-SHA256 over `<timestamp>.<body>`) and retries failures with backoff.
Both run in every worker (runtime.worker_side_tasks).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import Alert, AlertWebhook, Connection
from braze_bridge.db.notify import wait_first
from braze_bridge.db.repositories import alerts as alert_repo
from braze_bridge.db.repositories import health as health_repo
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import AlertCondition, AlertKind, AlertStatus, HealthStatus
from braze_bridge.errors import NotFound, ValidationFailed
from braze_bridge.logging import get_logger
from braze_bridge.ops.health import ConnectionHealth, health_of
from braze_bridge.security.secrets import SecretBox, SecretDecryptError

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Braze-Bridge-Signature"
TIMESTAMP_HEADER = "X-Braze-Bridge-Timestamp"
ALERT_ID_HEADER = "X-Braze-Bridge-Alert-Id"
SECRET_PREFIX = "alsec_"  # noqa: S105 - a display prefix, not a secret
MAX_URL_LENGTH = 2048
EVALUATE_SECONDS = 5.0
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 30 * 60.0
SEND_LEASE = timedelta(seconds=60)
SEND_TIMEOUT_SECONDS = 10.0
SEND_BATCH = 20

_CONDITION_OF = {
    HealthStatus.OK: AlertCondition.OK,
    HealthStatus.DEGRADED: AlertCondition.DEGRADED,
    # Braze refusing us for a while is a degradation to whoever is on call.
    HealthStatus.RATE_LIMITED: AlertCondition.DEGRADED,
    HealthStatus.AUTH_ERROR: AlertCondition.AUTH_ERROR,
}
_ICON = {
    AlertKind.AUTH_ERROR: ":red_circle:",
    AlertKind.DEGRADED: ":large_orange_circle:",
    AlertKind.DEAD: ":warning:",
    AlertKind.RECOVERED: ":large_green_circle:",
}


# -- configuration (the admin side) ----------------------------------------------------------


def validate_alert_url(url: str, *, allow_any: bool) -> str:
    """An https URL on a public host name (Slack, a pager, your own receiver). Private,
    loopback and link-local addresses are refused (the worker must not be a way into the
    network), except with BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL=1, which also allows http (local
    receivers and tests), like Braze endpoints (braze/hosts.py)."""
    raw = url.strip()

    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed(
            "invalid alert webhook",
            details=[{"field": "url", "message": message, "type": "alert_url"}],
        )

    if not raw or len(raw) > MAX_URL_LENGTH:
        raise refuse(f"must be 1 to {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise refuse("must not contain spaces or control characters")
    try:
        parts = urlsplit(raw)
        _ = parts.port
    except ValueError as exc:
        raise refuse("is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refuse("must be an absolute URL like https://hooks.slack.com/services/...")
    if parts.username or parts.password or parts.fragment:
        raise refuse("must not carry credentials or a fragment")
    if allow_any:
        return raw
    if parts.scheme != "https":
        raise refuse("must use https")
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise refuse("must name a public host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return raw
    if not address.is_global:
        raise refuse("must not be a private, loopback or link-local address")
    return raw


@dataclass(frozen=True, slots=True)
class WebhookWithSecret:
    row: AlertWebhook
    # Shown once: when this call created or rotated it.
    secret: str | None


async def _visible_connection(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> Connection:
    connection = await health_repo.get_connection(session, principal.tenant_id, connection_id)
    if connection is None:
        raise NotFound(f"no connection {connection_id}")
    return connection


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def set_webhook(
    session: AsyncSession,
    box: SecretBox,
    principal: Principal,
    connection_id: uuid.UUID,
    url: str,
    *,
    allow_any: bool,
) -> WebhookWithSecret:
    """Set (or change) the URL. The first time a signing secret is made and returned once;
    a changed URL keeps the secret. Alerting starts from the connection's current health."""
    checked = validate_alert_url(url, allow_any=allow_any)
    connection = await _visible_connection(session, principal, connection_id)
    row = await alert_repo.get_webhook(session, connection.id, for_update=True)
    secret: str | None = None
    if row is None:
        secret = _new_secret()
        row = AlertWebhook(
            connection_id=connection.id,
            tenant_id=connection.tenant_id,
            url=checked,
            secret_enc=box.encrypt(secret),
            condition=AlertCondition.OK,
            # Objects that went dead before the webhook existed are not announced.
            dead_told=connection.dead_objects,
        )
        session.add(row)
    else:
        row.url = checked
    await session.commit()
    await session.refresh(row)
    log.info("alerts.webhook_set", connection_id=str(connection.id), new_secret=secret is not None)
    return WebhookWithSecret(row, secret)


async def rotate_webhook_secret(
    session: AsyncSession, box: SecretBox, principal: Principal, connection_id: uuid.UUID
) -> WebhookWithSecret:
    """A new signing secret, returned once; the old one stops signing now."""
    connection = await _visible_connection(session, principal, connection_id)
    row = await alert_repo.get_webhook(session, connection.id, for_update=True)
    if row is None:
        raise NotFound(f"connection {connection_id} has no alert webhook")
    secret = _new_secret()
    row.secret_enc = box.encrypt(secret)
    row.secret_created_at = datetime.now(UTC)
    await session.commit()
    await session.refresh(row)
    log.info("alerts.secret_rotated", connection_id=str(connection.id))
    return WebhookWithSecret(row, secret)


async def remove_webhook(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> None:
    """No more alerts; the history stays listed."""
    connection = await _visible_connection(session, principal, connection_id)
    row = await alert_repo.get_webhook(session, connection.id, for_update=True)
    if row is None:
        raise NotFound(f"connection {connection_id} has no alert webhook")
    await session.delete(row)
    await session.commit()


@dataclass(frozen=True, slots=True)
class AlertsView:
    webhook: AlertWebhook | None
    alerts: Sequence[Alert]


async def list_alerts(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID, *, limit: int
) -> AlertsView:
    connection = await _visible_connection(session, principal, connection_id)
    webhook = await alert_repo.get_webhook(session, connection.id)
    alerts = await alert_repo.list_alerts(session, connection.id, limit=limit)
    return AlertsView(webhook, alerts)


# -- evaluation ------------------------------------------------------------------------------


def alert_payload(
    kind: AlertKind,
    connection: Connection,
    health: ConnectionHealth,
    condition: AlertCondition,
    previous: AlertCondition | None,
    *,
    dead_objects: int = 0,
) -> dict[str, Any]:
    """Slack's incoming-webhook `text`, plus the same facts as fields for machines."""
    name = f"{connection.name} ({connection.source})"
    if kind == AlertKind.RECOVERED:
        text = f"braze-bridge: connection {name} recovered (was {previous})"
    elif kind == AlertKind.DEAD:
        text = f"braze-bridge: connection {name}: {dead_objects} object(s) went dead"
    else:
        text = f"braze-bridge: connection {name} is {kind}"
    if kind != AlertKind.RECOVERED and health.last_error:
        text += f": {health.last_error}"
    return {
        "text": f"{_ICON[kind]} {text}",
        "kind": kind.value,
        "condition": condition.value,
        "previous_condition": previous.value if previous else None,
        "connection": {
            "id": str(connection.id),
            "name": connection.name,
            "source": connection.source.value,
            "tenant_id": str(connection.tenant_id),
        },
        "health": {
            "status": health.status.value,
            "last_error": health.last_error,
            "last_error_at": health.last_error_at.isoformat() if health.last_error_at else None,
            "queue_depth": health.queue_depth,
        },
        "dead_objects": dead_objects,
        "at": datetime.now(UTC).isoformat(),
    }


def _alert(
    webhook: AlertWebhook,
    kind: AlertKind,
    condition: AlertCondition,
    previous: AlertCondition | None,
    payload: dict[str, Any],
) -> Alert:
    return Alert(
        tenant_id=webhook.tenant_id,
        connection_id=webhook.connection_id,
        kind=kind,
        condition=condition,
        previous_condition=previous,
        payload=payload,
        status=AlertStatus.PENDING,
    )


async def evaluate_connection(
    sessionmaker: async_sessionmaker[AsyncSession], connection_id: uuid.UUID
) -> list[AlertKind]:
    """Queue the alerts this connection's health calls for; the kinds queued."""
    async with sessionmaker.begin() as session:
        locked = await alert_repo.lock_webhook_to_evaluate(session, connection_id)
        if locked is None:
            return []
        webhook, connection = locked
        health = await health_of(session, connection)
        queued: list[AlertKind] = []
        condition = _CONDITION_OF.get(health.status)  # paused: keeps what it announced
        previous = webhook.condition
        if condition is not None and condition != previous:
            kind = AlertKind.RECOVERED if condition == AlertCondition.OK else AlertKind(condition)
            payload = alert_payload(kind, connection, health, condition, previous)
            session.add(_alert(webhook, kind, condition, previous, payload))
            webhook.condition = condition
            webhook.condition_since = datetime.now(UTC)
            queued.append(kind)
        new_dead = connection.dead_objects - webhook.dead_told
        if new_dead > 0:
            current = webhook.condition
            payload = alert_payload(
                AlertKind.DEAD, connection, health, current, None, dead_objects=new_dead
            )
            session.add(_alert(webhook, AlertKind.DEAD, current, None, payload))
            webhook.dead_told = connection.dead_objects
            queued.append(AlertKind.DEAD)
    for kind in queued:
        log.info("alerts.queued", connection_id=str(connection_id), kind=kind.value)
    return queued


async def evaluate_alerts(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Every connection with a webhook; how many alerts were queued."""
    async with sessionmaker() as session:
        ids = await alert_repo.webhook_connection_ids(session)
    queued = 0
    for connection_id in ids:
        queued += len(await evaluate_connection(sessionmaker, connection_id))
    return queued


# -- sending ---------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `<timestamp>.<body>` keyed by the signing secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def backoff_seconds(attempts: int, base: float) -> float:
    return float(min(base * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


async def send_due_alerts(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    http: httpx.AsyncClient,
    *,
    backoff_base: float = BACKOFF_BASE_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Send what is due; returns how many the receivers accepted (2xx)."""
    async with sessionmaker.begin() as session:
        claimed = await alert_repo.claim_due(session, limit=SEND_BATCH, lease=SEND_LEASE)
    accepted = 0
    for alert in claimed:
        accepted += await _send_one(sessionmaker, box, http, alert, backoff_base, max_attempts)
    return accepted


async def _send_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    http: httpx.AsyncClient,
    alert: Alert,
    backoff_base: float,
    max_attempts: int,
) -> int:
    async with sessionmaker() as session:
        webhook = await alert_repo.get_webhook(session, alert.connection_id)
    status_code: int | None = None
    error: str | None = None
    if webhook is None:
        error = "the alert webhook was removed"
        max_attempts = 0
    else:
        try:
            secret = box.decrypt(webhook.secret_enc)
        except SecretDecryptError:
            error, max_attempts = "cannot decrypt the signing secret; rotate it", 0
        else:
            body = json.dumps(alert.payload, separators=(",", ":")).encode()
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(secret, timestamp, body),
                ALERT_ID_HEADER: str(alert.id),
            }
            try:
                reply = await http.post(
                    webhook.url, content=body, headers=headers, timeout=SEND_TIMEOUT_SECONDS
                )
                status_code = reply.status_code
                if not 200 <= status_code < 300:
                    error = f"receiver answered {status_code}"
            except httpx.TimeoutException:
                error = "timeout calling the receiver"
            except httpx.HTTPError as exc:
                error = f"cannot reach the receiver: {type(exc).__name__}"
    if error is None:
        status, retry_at = AlertStatus.SENT, None
    elif alert.attempts >= max_attempts:
        status, retry_at = AlertStatus.FAILED, None
    else:
        status = AlertStatus.PENDING
        retry_at = datetime.now(UTC) + timedelta(
            seconds=backoff_seconds(alert.attempts, backoff_base)
        )
    async with sessionmaker.begin() as session:
        await alert_repo.record_try(
            session,
            alert.id,
            status=status,
            status_code=status_code,
            error=error,
            retry_at=retry_at,
        )
    log.info(
        "alerts.sent" if error is None else "alerts.send_failed",
        alert_id=alert.id,
        connection_id=str(alert.connection_id),
        attempts=alert.attempts,
        status_code=status_code,
        status=status.value,
    )
    return 1 if error is None else 0


async def run_alerts(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    stop: asyncio.Event,
    *,
    interval_seconds: float = EVALUATE_SECONDS,
) -> None:
    """The worker side task: evaluate, send, wait; never fatal."""
    async with httpx.AsyncClient(follow_redirects=False) as http:
        while not stop.is_set():
            try:
                await evaluate_alerts(sessionmaker)
                await send_due_alerts(sessionmaker, box, http)
            except Exception:
                log.exception("alerts.round_failed")
            await wait_first(stop, delay=interval_seconds)
