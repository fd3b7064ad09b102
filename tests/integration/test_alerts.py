"""Alert webhooks: one signed, Slack-compatible alert per health change, retried until the
receiver takes it, listed per connection, and only to its tenant.

Real worker rounds and evaluators against real Postgres (fresh database per test: two
evaluators run on two database connections at once); Braze and the receiver faked with respx.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.ops import alerts
from braze_bridge.runtime import run_alerts_on_demand
from tests.delivery_support import make_due, make_worker
from tests.factories import BOX, SANDBOX_ENDPOINT, make_operations
from tests.ops_factories import Tenancy

TRACK = f"{SANDBOX_ENDPOINT}/users/track"
RECEIVER = "https://hooks.example.com/services/T000/B000/XXXX"


async def set_webhook(client: httpx.AsyncClient, tenancy: Tenancy) -> dict[str, Any]:
    response = await client.put(
        f"/v1/connections/{tenancy.conn_a.id}/alert-webhook",
        headers=tenancy.headers_a(),
        json={"url": RECEIVER},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed(client: httpx.AsyncClient, tenancy: Tenancy) -> dict[str, Any]:
    response = await client.get(
        f"/v1/connections/{tenancy.conn_a.id}/alerts", headers=tenancy.headers_a()
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def braze_round(
    sessionmaker: async_sessionmaker[AsyncSession], status: int, **worker: Any
) -> None:
    with respx.mock:
        respx.post(TRACK).respond(status, json={"message": "x"})
        async with httpx.AsyncClient() as http:
            await make_worker(sessionmaker, http, **worker).claim_and_deliver_once()


async def evaluate_twice_at_once(
    sessionmaker: async_sessionmaker[AsyncSession], tenancy: Tenancy
) -> list[str]:
    results = await asyncio.gather(
        alerts.evaluate_connection(sessionmaker, tenancy.conn_a.id),
        alerts.evaluate_connection(sessionmaker, tenancy.conn_a.id),
    )
    return sorted(kind.value for kinds in results for kind in kinds)


def verify(secret: str, request: httpx.Request) -> bool:
    """What a receiver does (docs/ops.md, "Alerts")."""
    timestamp = request.headers["X-Braze-Bridge-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.content, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(request.headers["X-Braze-Bridge-Signature"], f"v1={expected}")


async def test_a_degradation_alerts_exactly_once_signed_retried_and_its_recovery_too(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """braze-inc/braze-docs `_docs/_api/errors.md`: a 503 is an outage to retry; the alert
    says so once, however many evaluators look, and again once when Braze answers."""
    created = await set_webhook(client, tenancy)
    secret = created["secret"]
    assert secret.startswith("alsec_")
    await make_operations(session, tenancy.conn_a, 1)
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == []  # ok, as it was

    await braze_round(sessionmaker, 503)
    for _ in range(3):
        assert await evaluate_twice_at_once(sessionmaker, tenancy) in ([], ["degraded"])
    [alert] = (await listed(client, tenancy))["items"]
    assert (alert["kind"], alert["condition"], alert["previous_condition"]) == (
        "degraded",
        "degraded",
        "ok",
    )
    assert alert["status"] == "pending"
    assert "braze 503 on /users/track (server error)" in alert["text"]

    answers = iter([httpx.Response(500), httpx.Response(200, text="ok")])
    with respx.mock:
        receiver = respx.post(RECEIVER).mock(side_effect=lambda request: next(answers))
        async with httpx.AsyncClient() as http:
            assert await alerts.send_due_alerts(sessionmaker, BOX, http, backoff_base=0) == 0
            [failed_once] = (await listed(client, tenancy))["items"]
            assert (failed_once["status"], failed_once["attempts"]) == ("pending", 1)
            assert failed_once["last_status_code"] == 500
            assert failed_once["last_error"] == "receiver answered 500"
            assert failed_once["next_attempt_at"] is not None
            assert await alerts.send_due_alerts(sessionmaker, BOX, http, backoff_base=0) == 1
            assert await alerts.send_due_alerts(sessionmaker, BOX, http, backoff_base=0) == 0
        calls = [call.request for call in receiver.calls]
    assert len(calls) == 2
    assert all(verify(secret, request) for request in calls)
    assert not verify("alsec_wrong", calls[0])
    body = json.loads(calls[1].content)
    assert body["text"].startswith(":large_orange_circle: braze-bridge: connection")
    assert body["kind"] == "degraded"
    assert body["connection"]["id"] == str(tenancy.conn_a.id)
    assert body["health"]["last_error"] == "braze 503 on /users/track (server error)"
    assert calls[0].headers["X-Braze-Bridge-Alert-Id"] == str(alert["id"])
    [sent] = (await listed(client, tenancy))["items"]
    assert (sent["status"], sent["attempts"], sent["last_status_code"]) == ("sent", 2, 200)
    assert sent["sent_at"] is not None
    assert sent["next_attempt_at"] is None

    await make_due(session)
    await braze_round(sessionmaker, 201)
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == ["recovered"]
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == []
    kinds = [item["kind"] for item in (await listed(client, tenancy))["items"]]
    assert kinds == ["recovered", "degraded"]
    assert (await listed(client, tenancy))["webhook"]["condition"] == "ok"


async def test_auth_error_and_dead_objects_alert(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """A 401 (braze-inc/braze-docs `_docs/_api/errors.md`) alerts `auth_error`; objects past
    their retry horizon alert `dead` once, with how many."""
    await set_webhook(client, tenancy)
    await make_operations(session, tenancy.conn_a, 1)
    await braze_round(sessionmaker, 401)
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == ["auth_error"]

    await client.patch(
        f"/v1/connections/{tenancy.conn_a.id}",
        headers=tenancy.headers_a(),
        json={"braze": {"api_key": "a-new-working-key"}},
    )
    await make_operations(session, tenancy.conn_a, 2, users=2)
    await braze_round(sessionmaker, 503, horizon_seconds=0)
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == ["dead", "degraded"]
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == []
    dead = (await listed(client, tenancy))["items"][0]
    assert dead["kind"] == "dead"
    assert dead["payload"]["dead_objects"] == 3
    assert "3 object(s) went dead" in dead["text"]


async def test_a_paused_connection_keeps_its_condition(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    await set_webhook(client, tenancy)
    await make_operations(session, tenancy.conn_a, 1)
    await braze_round(sessionmaker, 503)
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == ["degraded"]
    await client.post(f"/v1/connections/{tenancy.conn_a.id}/pause", headers=tenancy.headers_a())
    assert await evaluate_twice_at_once(sessionmaker, tenancy) == []


async def test_secret_shown_once_rotated_and_url_change_keeps_it(
    client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
) -> None:
    first = await set_webhook(client, tenancy)
    again = await set_webhook(client, tenancy)
    assert again["secret"] is None
    listing = await listed(client, tenancy)
    assert listing["webhook"]["url"] == RECEIVER
    assert "secret" not in listing["webhook"]
    assert first["secret"] not in json.dumps(listing)
    stored = await session.scalar(text("SELECT secret_enc FROM alert_webhooks"))
    assert first["secret"] not in stored
    assert BOX.decrypt(stored) == first["secret"]

    rotated = await client.post(
        f"/v1/connections/{tenancy.conn_a.id}/alert-webhook/rotate-secret",
        headers=tenancy.headers_a(),
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("alsec_")
    assert rotated.json()["secret"] != first["secret"]

    removed = await client.delete(
        f"/v1/connections/{tenancy.conn_a.id}/alert-webhook", headers=tenancy.headers_a()
    )
    assert removed.status_code == 204
    assert (await listed(client, tenancy))["webhook"] is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("https://localhost/x", "must name a public host"),
        ("https://10.0.0.7/x", "must not be a private, loopback or link-local address"),
        ("https://169.254.169.254/latest", "must not be a private, loopback or link-local address"),
        ("https://user:pw@hooks.example.com/x", "must not carry credentials or a fragment"),
        ("hooks.example.com", "must be an absolute URL like https://hooks.slack.com/services/..."),
        ("https://hooks.example.com/a b", "must not contain spaces or control characters"),
    ],
)
async def test_bad_urls_are_422_and_store_nothing(
    url: str, message: str, client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
) -> None:
    response = await client.put(
        f"/v1/connections/{tenancy.conn_a.id}/alert-webhook",
        headers=tenancy.headers_a(),
        json={"url": url},
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "invalid alert webhook",
            "details": [{"field": "url", "message": message, "type": "alert_url"}],
        }
    }
    assert await session.scalar(text("SELECT count(*) FROM alert_webhooks")) == 0


async def test_another_tenant_sees_and_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, tenancy: Tenancy
) -> None:
    await set_webhook(client, tenancy)
    base = f"/v1/connections/{tenancy.conn_a.id}"
    other = {"Authorization": f"Bearer {tenancy.token_b}"}
    answers = [
        await client.get(f"{base}/alerts", headers=other),
        await client.put(f"{base}/alert-webhook", headers=other, json={"url": RECEIVER + "/b"}),
        await client.post(f"{base}/alert-webhook/rotate-secret", headers=other),
        await client.delete(f"{base}/alert-webhook", headers=other),
    ]
    assert [a.status_code for a in answers] == [404] * 4
    assert {a.json()["error"]["code"] for a in answers} == {"not_found"}
    assert (await listed(client, tenancy))["webhook"]["url"] == RECEIVER


async def test_the_worker_side_task_evaluates_and_sends(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """runtime.worker_side_tasks' `alerts` task: it loads the alert stack once a webhook exists,
    then evaluates and sends; the receiver's answer stops it."""
    await set_webhook(client, tenancy)
    await make_operations(session, tenancy.conn_a, 1)
    await braze_round(sessionmaker, 503)
    stop = asyncio.Event()

    def receive(request: httpx.Request) -> httpx.Response:
        stop.set()
        return httpx.Response(204)

    with respx.mock:
        receiver = respx.post(RECEIVER).mock(side_effect=receive)
        await asyncio.wait_for(
            run_alerts_on_demand(sessionmaker, BOX, stop, poll_seconds=0.01), timeout=30
        )
        assert receiver.call_count == 1
    [alert] = (await listed(client, tenancy))["items"]
    assert (alert["kind"], alert["status"], alert["last_status_code"]) == ("degraded", "sent", 204)
