"""Connection test: real calls to Braze with the stored key, one verdict and hint per check.

Checks, in order: `endpoint` (the host answers like a Braze REST endpoint), `api_key` (Braze
accepts the key), then one per permission the source needs. A later check is reported as not
checked when an earlier one failed, so the first failure is the one to fix. Every probe is a
valid request that changes nothing (`/users/track` updates a made-up user only if it exists,
`_update_existing_only`), and only a 2xx passes: a 400 proves neither key nor permission.
Redirects are never followed: the endpoint itself must answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.admin import connections
from braze_bridge.braze.client import (
    EXPORT_IDS_PATH,
    TRACK_PATH,
    BrazeClient,
    BrazeReply,
)
from braze_bridge.braze.errors import Unreachable
from braze_bridge.braze.hosts import InvalidBrazeEndpoint, normalize_rest_endpoint
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.statuses import ConnectionState, Source
from braze_bridge.logging import get_logger
from braze_bridge.security.secrets import SecretBox, SecretDecryptError

log = get_logger(__name__)

REQUIRED_PERMISSIONS: Final[dict[Source, tuple[str, ...]]] = {
    Source.EXTOLE: ("users.track", "users.export.ids"),
    # Braze's Antavo page lists events.list for Antavo's own module; we only write.
    Source.ANTAVO: ("users.track",),
}
PROBE_EXTERNAL_ID: Final = "braze-bridge-connection-test"
# (method, path, body) per permission; each is harmless to call against a live workspace.
PROBES: Final[dict[str, tuple[str, str, object]]] = {
    "users.track": (
        "POST",
        TRACK_PATH,
        {"attributes": [{"external_id": PROBE_EXTERNAL_ID, "_update_existing_only": True}]},
    ),
    "users.export.ids": (
        "POST",
        EXPORT_IDS_PATH,
        {"external_ids": [PROBE_EXTERNAL_ID], "fields_to_export": ["external_id"]},
    ),
}
CHECK_DEADLINE_S: Final = 10.0

HINT_UNREACHABLE: Final = (
    "Check braze.rest_endpoint: it must be the REST endpoint of your Braze instance, shown in "
    "Braze under Settings > APIs and Identifiers (e.g. https://rest.iad-01.braze.com), and "
    "reachable from this service."
)
HINT_WRONG_HOST: Final = (
    "This host does not answer like a Braze REST endpoint. Use the REST endpoint shown next to "
    "the key in Braze under Settings > APIs and Identifiers (e.g. https://rest.iad-01.braze.com "
    "or https://rest.fra-01.braze.eu), without a path."
)
HINT_KEY: Final = (
    "Braze rejected the key: wrong key, or the key belongs to another instance — check the "
    "REST endpoint shown next to the key in Braze."
)
HINT_REFUSED: Final = (
    "Braze refused a valid, harmless test request (400), so neither the key nor its permissions "
    "are proven. Check that braze.rest_endpoint is the REST endpoint of the key's instance and "
    "run the test again."
)
HINT_RETRY: Final = "Braze could not answer this check just now; run the test again in a minute."
HINT_DECRYPT: Final = (
    "The stored key cannot be decrypted with the configured BRAZE_BRIDGE_SECRET_KEY: set it "
    "again with PATCH braze.api_key, or list the previous key in BRAZE_BRIDGE_OLD_SECRET_KEYS."
)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionCheckReport:
    ok: bool
    checks: tuple[Check, ...]
    state: ConnectionState


def _braze_message(reply: BrazeReply) -> str:
    body = reply.json()
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message.strip():
        return f": {message.strip()[:200]}"
    return ""


def _not_checked(names: tuple[str, ...] | list[str], reason: str) -> list[Check]:
    return [Check(name, False, f"not checked: {reason}") for name in names]


def _missing_permission_hint(permission: str, needed: tuple[str, ...]) -> str:
    return (
        f"The key lacks the {permission} permission. In Braze, Settings > APIs and Identifiers, "
        f"give the key {permission} (or create a key that has it) and save it here with PATCH "
        f"braze.api_key; this connection needs {', '.join(needed)}."
    )


def _judge_endpoint(endpoint: str, path: str, reply: BrazeReply | Unreachable) -> Check:
    if isinstance(reply, Unreachable):
        return Check("endpoint", False, f"no answer from {endpoint}: {reply}", HINT_UNREACHABLE)
    if 300 <= reply.status_code < 400:
        return Check(
            "endpoint",
            False,
            f"{endpoint} answered {reply.status_code} (a redirect) for {path}; "
            "redirects are never followed",
            HINT_WRONG_HOST,
        )
    if reply.status_code == 404:
        return Check(
            "endpoint", False, f"{endpoint} answered 404 Not Found for {path}", HINT_WRONG_HOST
        )
    return Check("endpoint", True, f"{endpoint} answered HTTP {reply.status_code}")


def _judge_key(reply: BrazeReply) -> Check:
    status = reply.status_code
    if status == 401:
        return Check("api_key", False, f"Braze answered 401{_braze_message(reply)}", HINT_KEY)
    if status == 429 or status >= 500:
        return Check(
            "api_key",
            False,
            f"Braze answered {status}{_braze_message(reply)}; the key could not be verified",
            HINT_RETRY,
        )
    if reply.ok or status == 403:  # 403: a known key without the permission (checked next)
        return Check("api_key", True, "Braze accepted the key")
    if status == 400:
        return Check("api_key", False, f"Braze answered 400{_braze_message(reply)}", HINT_REFUSED)
    return Check("api_key", False, f"unexpected answer {status}{_braze_message(reply)}")


def _judge_permission(
    permission: str, reply: BrazeReply | Unreachable, needed: tuple[str, ...]
) -> Check:
    path = PROBES[permission][1]
    if isinstance(reply, Unreachable):
        return Check(permission, False, f"no answer for {path}: {reply}", HINT_UNREACHABLE)
    status, message = reply.status_code, _braze_message(reply)
    if reply.ok:
        return Check(permission, True, f"the key may call {path} (HTTP {status})")
    if status == 400:
        return Check(permission, False, f"Braze answered 400 for {path}{message}", HINT_REFUSED)
    if status == 403:
        return Check(
            permission,
            False,
            f"Braze answered 403 for {path}{message}",
            _missing_permission_hint(permission, needed),
        )
    if status == 401:
        return Check(permission, False, f"Braze answered 401 for {path}{message}", HINT_KEY)
    if status == 404 or 300 <= status < 400:
        return Check(permission, False, f"Braze answered {status} for {path}", HINT_WRONG_HOST)
    if status == 429 or status >= 500:
        return Check(permission, False, f"Braze answered {status} for {path}{message}", HINT_RETRY)
    return Check(permission, False, f"unexpected answer {status} for {path}{message}")


async def _probe(
    client: BrazeClient, permission: str, deadline_s: float
) -> BrazeReply | Unreachable:
    method, path, body = PROBES[permission]
    try:
        if method == "GET":
            return await client.get(path, deadline_s=deadline_s)
        return await client.post(path, body, deadline_s=deadline_s)
    except Unreachable as exc:
        return exc


async def run_checks(
    http: httpx.AsyncClient,
    rest_endpoint: str,
    api_key: str,
    permissions: tuple[str, ...],
    *,
    allow_any_url: bool,
    deadline_s: float = CHECK_DEADLINE_S,
) -> list[Check]:
    """Call Braze and judge each answer; the stored endpoint is re-checked before any call."""
    try:
        endpoint = normalize_rest_endpoint(rest_endpoint, allow_any=allow_any_url)
    except InvalidBrazeEndpoint as exc:
        return [
            Check("endpoint", False, f"{rest_endpoint} is not allowed: {exc}", HINT_WRONG_HOST),
            *_not_checked(["api_key", *permissions], "the REST endpoint is not valid"),
        ]
    client = BrazeClient(http, endpoint, api_key)
    # Every source needs users.track, so its probe also tells whether host and key are right.
    first = await _probe(client, "users.track", deadline_s)
    endpoint_check = _judge_endpoint(endpoint, TRACK_PATH, first)
    if not endpoint_check.ok or isinstance(first, Unreachable):
        return [
            endpoint_check,
            *_not_checked(["api_key", *permissions], "the REST endpoint did not answer as Braze"),
        ]
    key_check = _judge_key(first)
    checks = [endpoint_check, key_check]
    if not key_check.ok:
        return [*checks, *_not_checked(permissions, "the API key was not accepted")]
    for permission in permissions:
        reply = (
            first if permission == "users.track" else await _probe(client, permission, deadline_s)
        )
        checks.append(_judge_permission(permission, reply, permissions))
    return checks


async def check_connection(
    session: AsyncSession,
    box: SecretBox,
    http: httpx.AsyncClient,
    principal: Principal,
    connection_id: uuid.UUID,
    *,
    allow_any_url: bool,
    deadline_s: float = CHECK_DEADLINE_S,
) -> ConnectionCheckReport:
    """Test the stored endpoint and key; a full pass lifts an `auth_error` hold and clears the
    last delivery error."""
    row = await connections.get_connection(session, principal, connection_id)
    source, endpoint, state = row.source, row.braze_rest_endpoint, row.state
    had_error = row.last_error is not None
    permissions = REQUIRED_PERMISSIONS[source]
    try:
        api_key: str | None = box.decrypt(row.braze_api_key_enc)
    except SecretDecryptError:
        api_key = None
    await session.commit()  # no transaction stays open while Braze is called

    if api_key is None:
        checks = [
            Check("endpoint", False, "not checked: the stored API key is unreadable"),
            Check("api_key", False, "the stored API key cannot be decrypted", HINT_DECRYPT),
            *_not_checked(permissions, "the stored API key is unreadable"),
        ]
    else:
        checks = await run_checks(
            http,
            endpoint,
            api_key,
            permissions,
            allow_any_url=allow_any_url,
            deadline_s=deadline_s,
        )
    ok = all(check.ok for check in checks)
    if ok and (state == ConnectionState.AUTH_ERROR or had_error):
        state = await connections.reactivate_after_passing_test(session, principal, connection_id)
    log.info(
        "admin.connection_tested",
        connection_id=str(connection_id),
        ok=ok,
        failed=[check.name for check in checks if not check.ok],
    )
    return ConnectionCheckReport(ok, tuple(checks), state)
