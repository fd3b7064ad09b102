"""Every webhook outcome is one structured log line (`webhook.handled`): connection, source,
outcome, HTTP status, body bytes and duration, and never the body, headers or secrets
(docs/ops.md, "Webhook log lines"). A wrong webhook secret shows up in the log, not only in
/metrics."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from tests import extole_bodies as bodies
from tests.factories import MadeConnection, make_connection, make_tenant
from tests.integration.hooks_helpers import count_rows, post_signed, raw

FIELDS = {
    "event",
    "log_level",
    "connection_id",
    "source",
    "outcome",
    "status",
    "bytes",
    "duration_ms",
    "event_id",
}


@pytest.fixture
async def extole(session: AsyncSession) -> MadeConnection:
    tenant = await make_tenant(session)
    return await make_connection(session, tenant, settings={"reward_states": ["FULFILLED"]})


def only_hook_line(logs: list[dict[str, Any]]) -> dict[str, Any]:
    lines = [line for line in logs if line["event"] == "webhook.handled"]
    assert len(lines) == 1, logs
    line = lines[0]
    assert set(line) == FIELDS
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    return line


def assert_no_secrets(logs: list[dict[str, Any]], connection: MadeConnection) -> None:
    text = repr(logs)
    for secret in (connection.webhook_secret, connection.api_key, connection.content_token):
        assert secret not in text
    assert "RAF12345" not in text  # the body's coupon code


async def test_accepted_then_duplicate(
    client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
) -> None:
    body = raw(bodies.REWARD_FULFILLED_RAW)

    with capture_logs() as first_logs:
        first = await post_signed(client, extole, body)
    with capture_logs() as again_logs:
        again = await post_signed(client, extole, body)

    accepted, duplicate = only_hook_line(first_logs), only_hook_line(again_logs)
    assert first.status_code == again.status_code == 200
    expected = {"connection_id": str(extole.id), "source": "extole", "bytes": len(body)}
    assert accepted | expected == accepted
    assert (accepted["outcome"], accepted["status"], accepted["log_level"]) == (
        "accepted",
        200,
        "info",
    )
    assert accepted["event_id"] == first.json()["event_id"]
    assert (duplicate["outcome"], duplicate["status"]) == ("duplicate", 200)
    assert duplicate["event_id"] == first.json()["event_id"]
    assert_no_secrets(first_logs + again_logs, extole)


async def test_a_wrong_secret_is_a_warning_naming_the_connection(
    client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
) -> None:
    body = raw(bodies.REWARD_FULFILLED_RAW)

    with capture_logs() as logs:
        response = await post_signed(client, extole, body, secret="whsec_not-the-right-one")

    assert response.status_code == 401
    line = only_hook_line(logs)
    assert line == {
        "event": "webhook.handled",
        "log_level": "warning",
        "connection_id": str(extole.id),
        "source": "extole",
        "outcome": "unauthorized",
        "status": 401,
        "bytes": len(body),
        "duration_ms": line["duration_ms"],
        "event_id": None,
    }
    assert_no_secrets(logs, extole)
    assert "whsec_not-the-right-one" not in repr(logs)
    assert await count_rows(session) == (0, 0, 0)


async def test_a_body_that_is_not_json(
    client: httpx.AsyncClient, session: AsyncSession, extole: MadeConnection
) -> None:
    body = b'{"event_id": "RAF12345", broken'

    with capture_logs() as logs:
        response = await post_signed(client, extole, body)

    assert response.status_code == 400
    line = only_hook_line(logs)
    assert (line["outcome"], line["status"], line["bytes"]) == ("invalid_json", 400, len(body))
    assert line["source"] == "extole"
    assert_no_secrets(logs, extole)
    assert await count_rows(session) == (0, 0, 0)


async def test_an_unknown_connection(client: httpx.AsyncClient) -> None:
    unknown = str(uuid.uuid4())

    with capture_logs() as logs:
        response = await client.post(
            f"/v1/hooks/{unknown}", content=b"{}", headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 404
    line = only_hook_line(logs)
    assert line | {"duration_ms": 0.0} == {
        "event": "webhook.handled",
        "log_level": "info",
        "connection_id": unknown,
        "source": None,
        "outcome": "not_found",
        "status": 404,
        "bytes": None,  # refused before the body is read
        "duration_ms": 0.0,
        "event_id": None,
    }
