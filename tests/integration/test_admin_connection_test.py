"""POST /v1/connections/{id}/test against Braze faked with respx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.domain.statuses import ConnectionState, Source
from braze_bridge.security.secrets import SecretBox
from tests.factories import MadeConnection, make_connection
from tests.integration.admin_support import BRAZE, TenantWithToken, audit_rows, load_connection

pytestmark = pytest.mark.rollback

OK_TRACK = {"message": "success", "attributes_processed": 0}


@pytest.fixture
def braze() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BRAZE, assert_all_called=False) as router:
        yield router


async def run_test(
    client: httpx.AsyncClient, made: MadeConnection, tenant: TenantWithToken
) -> dict[str, Any]:
    response = await client.post(f"/v1/connections/{made.id}/test", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert made.api_key not in response.text
    body: dict[str, Any] = response.json()
    return body


def verdicts(body: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(check["name"], check["ok"]) for check in body["checks"]]


def check(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in body["checks"] if c["name"] == name)
    return found


async def test_extole_connection_passes_every_check_with_harmless_probes(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    track = braze.post("/users/track").respond(201, json=OK_TRACK)
    export = braze.post("/users/export/ids").respond(201, json={"users": [], "message": "success"})

    body = await run_test(client, made, tenant_a)

    assert body["ok"] is True
    assert body["state"] == "active"
    assert verdicts(body) == [
        ("endpoint", True),
        ("api_key", True),
        ("users.track", True),
        ("users.export.ids", True),
    ]
    assert all(c["hint"] is None for c in body["checks"])
    sent = track.calls.last.request
    assert sent.headers["Authorization"] == f"Bearer {made.api_key}"
    # braze-inc/braze-docs `_docs/_partners/isv_partners/api_partner.md`: partners name
    # themselves in User-Agent on every call.
    for call in (track.calls.last, export.calls.last):
        assert (
            call.request.headers["User-Agent"]
            == f"partner-BrazeBridge-BrazeBridge/{version('braze-bridge')}"
        )
    # A valid object that changes nothing: `_update_existing_only` on a made-up user.
    assert json.loads(sent.content) == {
        "attributes": [
            {"external_id": "braze-bridge-connection-test", "_update_existing_only": True}
        ]
    }
    assert json.loads(export.calls.last.request.content) == {
        "external_ids": ["braze-bridge-connection-test"],
        "fields_to_export": ["external_id"],
    }


async def test_antavo_connection_needs_only_users_track(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    """We only write to Braze for Antavo: a key without events.list is fine."""
    made = await make_connection(session, tenant_a.tenant, source=Source.ANTAVO)
    braze.post("/users/track").respond(201, json=OK_TRACK)
    events = braze.get("/events/list").respond(403, json={"message": "Access Denied"})
    export = braze.post("/users/export/ids").respond(201, json={})

    body = await run_test(client, made, tenant_a)

    assert body["ok"] is True
    assert verdicts(body) == [("endpoint", True), ("api_key", True), ("users.track", True)]
    assert not events.called
    assert not export.called


async def test_rejected_key_fails_api_key_with_a_hint_and_skips_permissions(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(401, json={"message": "Invalid API Key"})
    export = braze.post("/users/export/ids").respond(201, json={})

    body = await run_test(client, made, tenant_a)

    assert body["ok"] is False
    assert verdicts(body) == [
        ("endpoint", True),
        ("api_key", False),
        ("users.track", False),
        ("users.export.ids", False),
    ]
    key = check(body, "api_key")
    assert "Invalid API Key" in key["detail"]
    assert key["hint"].startswith("Braze rejected the key: wrong key, or the key belongs to")
    assert check(body, "users.track")["detail"].startswith("not checked")
    assert not export.called


async def test_missing_export_permission_is_named_with_a_hint(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(201, json=OK_TRACK)
    braze.post("/users/export/ids").respond(403, json={"message": "Access Denied"})

    body = await run_test(client, made, tenant_a)

    assert body["ok"] is False
    assert verdicts(body)[-1] == ("users.export.ids", False)
    assert verdicts(body)[:3] == [("endpoint", True), ("api_key", True), ("users.track", True)]
    failed = check(body, "users.export.ids")
    assert "403" in failed["detail"]
    assert "Access Denied" in failed["detail"]
    assert "lacks the users.export.ids permission" in failed["hint"]
    assert "users.track, users.export.ids" in failed["hint"]


async def test_missing_track_permission_still_checks_the_others(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(403, json={"message": "Access Denied"})
    braze.post("/users/export/ids").respond(201, json={"users": [], "message": "success"})

    body = await run_test(client, made, tenant_a)

    assert verdicts(body) == [
        ("endpoint", True),
        ("api_key", True),
        ("users.track", False),
        ("users.export.ids", True),
    ]
    assert "lacks the users.track permission" in check(body, "users.track")["hint"]


async def test_wrong_host_answering_404_fails_the_endpoint_check(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(404, text="Not Found")

    body = await run_test(client, made, tenant_a)

    assert verdicts(body) == [
        ("endpoint", False),
        ("api_key", False),
        ("users.track", False),
        ("users.export.ids", False),
    ]
    endpoint = check(body, "endpoint")
    assert "404" in endpoint["detail"]
    assert "does not answer like a Braze REST endpoint" in endpoint["hint"]


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")],
    ids=["refused", "timeout"],
)
async def test_unreachable_host_fails_the_endpoint_check(
    failure: Exception,
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").mock(side_effect=failure)

    body = await run_test(client, made, tenant_a)

    endpoint = check(body, "endpoint")
    assert (body["ok"], endpoint["ok"]) == (False, False)
    assert endpoint["detail"].startswith(f"no answer from {BRAZE}")
    assert "Check braze.rest_endpoint" in endpoint["hint"]


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(307, headers={"Location": "http://169.254.169.254/"})
    elsewhere = respx.post("http://169.254.169.254/").respond(200)

    body = await run_test(client, made, tenant_a)

    assert check(body, "endpoint")["ok"] is False
    assert "redirect" in check(body, "endpoint")["detail"]
    assert not elsewhere.called


@pytest.mark.parametrize(("status", "name"), [(429, "rate-limited"), (503, "server error")])
async def test_busy_braze_makes_the_key_check_inconclusive(
    status: int,
    name: str,
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(status, json={"message": name})

    body = await run_test(client, made, tenant_a)

    key = check(body, "api_key")
    assert (key["ok"], str(status) in key["detail"]) == (False, True)
    assert "run the test again" in key["hint"]


async def test_a_400_from_track_proves_nothing(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    """The probe is a valid object, so a 400 is not Braze vouching for the key."""
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(400, json={"message": "Bad Request"})
    export = braze.post("/users/export/ids").respond(201, json={})

    body = await run_test(client, made, tenant_a)
    assert body["ok"] is False
    assert verdicts(body) == [
        ("endpoint", True),
        ("api_key", False),
        ("users.track", False),
        ("users.export.ids", False),
    ]
    key = check(body, "api_key")
    assert key["detail"] == "Braze answered 400: Bad Request"
    assert key["hint"].startswith("Braze refused a valid, harmless test request (400)")
    assert not export.called


async def test_a_400_from_export_ids_fails_that_permission(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    braze.post("/users/track").respond(201, json=OK_TRACK)
    braze.post("/users/export/ids").respond(400, json={"message": "Bad Request"})

    body = await run_test(client, made, tenant_a)
    assert body["ok"] is False
    assert verdicts(body)[-1] == ("users.export.ids", False)


async def test_passing_test_lifts_auth_error_and_a_failing_one_does_not(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant, state=ConnectionState.AUTH_ERROR)
    track = braze.post("/users/track")
    braze.post("/users/export/ids").respond(201, json={})

    track.respond(401, json={"message": "Invalid API Key"})
    failing = await run_test(client, made, tenant_a)
    assert failing["state"] == "auth_error"
    assert (await load_connection(sessionmaker, made.id)).state == ConnectionState.AUTH_ERROR

    track.respond(201, json=OK_TRACK)
    passing = await run_test(client, made, tenant_a)

    assert (passing["ok"], passing["state"]) == (True, "active")
    row = await load_connection(sessionmaker, made.id)
    assert (row.state, row.version) == (ConnectionState.ACTIVE, 2)
    assert [(a.action, a.fields) for a in await audit_rows(sessionmaker, made.id)] == [
        ("test_passed", ["state"])
    ]


async def test_passing_test_leaves_a_paused_connection_paused(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant, state=ConnectionState.PAUSED)
    braze.post("/users/track").respond(201, json=OK_TRACK)
    braze.post("/users/export/ids").respond(201, json={})

    body = await run_test(client, made, tenant_a)
    assert (body["ok"], body["state"]) == (True, "paused")


async def test_stored_endpoint_no_longer_allowed_is_never_called(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
) -> None:
    # Stored while BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL was on; the switch is off now.
    made = await make_connection(session, tenant_a.tenant, endpoint="http://10.0.0.5:9000")
    with respx.mock(assert_all_called=False) as router:
        internal = router.route(host="10.0.0.5").respond(200)
        body = await run_test(client, made, tenant_a)

    assert not internal.called
    assert check(body, "endpoint")["ok"] is False
    assert "not allowed" in check(body, "endpoint")["detail"]


async def test_key_stored_under_an_unknown_secret_key_is_reported_not_sent(
    client: httpx.AsyncClient,
    tenant_a: TenantWithToken,
    session: AsyncSession,
    braze: respx.MockRouter,
) -> None:
    made = await make_connection(session, tenant_a.tenant)
    made.row.braze_api_key_enc = SecretBox("some-other-deployment-key").encrypt("k" * 36)
    await session.commit()
    track = braze.post("/users/track").respond(201, json=OK_TRACK)

    body = await run_test(client, made, tenant_a)

    assert not track.called
    key = check(body, "api_key")
    assert key["ok"] is False
    assert "BRAZE_BRIDGE_OLD_SECRET_KEYS" in key["hint"]
