"""The Braze sandbox answers like Braze documents (validation, shapes, auth, rate limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from braze_bridge.sandbox.app import SandboxConfig, create_sandbox_app

KEY = {"Authorization": "Bearer any-key"}
EVENT = {"external_id": "u1", "name": "signed_up", "time": "2026-01-01T00:00:00Z"}


@pytest.fixture
async def sandbox() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig(track_limit_per_3s=5, seed=1))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as client:
        yield client


async def track(client: httpx.AsyncClient, body: Any, key: str = "any-key") -> httpx.Response:
    return await client.post("/users/track", json=body, headers={"Authorization": f"Bearer {key}"})


async def test_valid_objects_are_accepted_with_counts_and_rate_headers(
    sandbox: httpx.AsyncClient,
) -> None:
    response = await track(
        sandbox, {"events": [EVENT], "attributes": [{"external_id": "u1", "tier": "gold"}]}
    )
    assert response.status_code == 201
    assert response.json() == {
        "message": "success",
        "events_processed": 1,
        "attributes_processed": 1,
    }
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert int(response.headers["X-RateLimit-Reset"]) > 1_000_000_000


async def test_bad_objects_are_named_by_array_and_index(sandbox: httpx.AsyncClient) -> None:
    body = {
        "events": [
            EVENT,
            {"external_id": "u1", "name": "x"},
            {"name": "x", "time": "2026-01-01T00:00:00Z"},
            {**EVENT, "properties": {"$bad": 1}},
            {**EVENT, "properties": {"time": 1}},
            {**EVENT, "braze_id": "b1"},
        ]
    }
    response = await track(sandbox, body)
    assert response.status_code == 201
    assert response.json() == {
        "message": "success",
        "events_processed": 1,
        "errors": [
            {
                "type": "'time' is required and must be ISO 8601",
                "input_array": "events",
                "index": 1,
            },
            {
                "type": "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required",
                "input_array": "events",
                "index": 2,
            },
            {"type": "Invalid 'properties' field", "input_array": "events", "index": 3},
            {"type": "Invalid 'properties' field", "input_array": "events", "index": 4},
            {
                "type": "only one of 'external_id', 'braze_id' or 'user_alias' may be provided",
                "input_array": "events",
                "index": 5,
            },
        ],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"attributes": []},
            "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.",
        ),
        ({}, "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."),
        ({"events": [EVENT] * 76}, "Max Input Length Exceeded"),
    ],
)
async def test_requests_with_nothing_valid_or_too_many_objects_answer_400(
    sandbox: httpx.AsyncClient, body: Any, message: str
) -> None:
    response = await track(sandbox, body)
    assert response.status_code == 400
    assert response.json()["message"] == message


async def test_keys_spell_their_permissions(sandbox: httpx.AsyncClient) -> None:
    assert (await track(sandbox, {"events": [EVENT]}, key="invalid")).status_code == 401
    limited = "sandbox-perms:events.list"
    response = await track(sandbox, {"events": [EVENT]}, key=limited)
    assert (response.status_code, response.json()) == (403, {"message": "Access Denied"})
    listed = await sandbox.get("/events/list", headers={"Authorization": f"Bearer {limited}"})
    assert listed.json() == {"message": "success", "events": []}


async def test_an_empty_bucket_answers_429_with_retry_after(sandbox: httpx.AsyncClient) -> None:
    statuses = [(await track(sandbox, {"events": [EVENT]})).status_code for _ in range(6)]
    assert statuses == [201] * 5 + [429]
    limited = await track(sandbox, {"events": [EVENT]})
    assert 1 <= int(limited.headers["Retry-After"]) <= 3
    # Another key has its own bucket.
    assert (await track(sandbox, {"events": [EVENT]}, key="other")).status_code == 201


async def test_export_ids_finds_users_seen_through_track(sandbox: httpx.AsyncClient) -> None:
    await track(sandbox, {"attributes": [{"external_id": "crm-1", "email": "a@example.com"}]})
    found = await sandbox.post(
        "/users/export/ids",
        json={"email_address": "A@example.com", "fields_to_export": ["external_id"]},
        headers=KEY,
    )
    assert found.json() == {"users": [{"external_id": "crm-1"}], "message": "success"}
    missing = await sandbox.post(
        "/users/export/ids",
        json={"external_ids": ["nobody"], "fields_to_export": ["external_id"]},
        headers=KEY,
    )
    assert missing.json() == {"users": [], "message": "success", "invalid_user_ids": ["nobody"]}


async def test_received_log_and_reset(sandbox: httpx.AsyncClient) -> None:
    await track(sandbox, {"events": [EVENT]})
    seen = (await sandbox.get("/_sandbox/received")).json()
    assert seen["counts"] == {"/users/track 201": 1, "objects.events": 1}
    assert seen["requests"][0]["body"] == {"events": [EVENT]}
    await sandbox.post("/_sandbox/reset")
    assert (await sandbox.get("/_sandbox/received")).json()["counts"] == {}


async def test_injected_failures_answer_5xx() -> None:
    app = create_sandbox_app(SandboxConfig(fail_rate=1.0, seed=3))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        response = await track(c, {"events": [EVENT]})
    assert response.status_code in (500, 503)
