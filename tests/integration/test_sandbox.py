"""The Braze sandbox answers like Braze documents (validation, shapes, auth, rate limits).

Sources: braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md` (75 objects
combined, 50 on the Monthly Active Users CY 24-25 plan, 75 per array on older accounts),
`_docs/_api/errors.md` (400 "Max Input Length Exceeded"),
`_docs/_api/endpoints/export/user_data/post_users_identifier.md` (`fields_to_export`
required, at most 50 `external_ids`).
"""

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


async def test_an_empty_bucket_answers_429_with_rate_headers_only(
    sandbox: httpx.AsyncClient,
) -> None:
    statuses = [(await track(sandbox, {"events": [EVENT]})).status_code for _ in range(6)]
    assert statuses == [201] * 5 + [429]
    limited = await track(sandbox, {"events": [EVENT]})
    assert "Retry-After" not in limited.headers
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > 1_000_000_000
    # Another key has its own bucket.
    assert (await track(sandbox, {"events": [EVENT]}, key="other")).status_code == 201


async def test_retry_after_on_429_only_when_asked() -> None:
    app = create_sandbox_app(SandboxConfig(track_limit_per_3s=1, retry_after_on_429=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        await track(c, {"events": [EVENT]})
        limited = await track(c, {"events": [EVENT]})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 3


@pytest.mark.parametrize(
    ("cap", "accepted", "refused"),
    [
        (
            "combined_75",
            {"events": [EVENT] * 75},
            {"events": [EVENT] * 40, "attributes": [{}] * 36},
        ),
        (
            "combined_50",
            {"events": [EVENT] * 50},
            {"events": [EVENT] * 26, "attributes": [{}] * 25},
        ),
        (
            "per_array_75",
            {"events": [EVENT] * 75, "attributes": [{"external_id": "u1", "a": 1}] * 75},
            {"events": [EVENT] * 76},
        ),
    ],
)
async def test_more_objects_than_the_cap_is_max_input_length_exceeded(
    cap: str, accepted: Any, refused: Any
) -> None:
    app = create_sandbox_app(SandboxConfig(track_object_cap=cap))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        ok = await track(c, accepted)
        too_many = await track(c, refused)
    assert ok.status_code == 201
    assert (too_many.status_code, too_many.json()) == (
        400,
        {"message": "Max Input Length Exceeded"},
    )


async def test_attributes_processed_counts_distinct_users(sandbox: httpx.AsyncClient) -> None:
    body = {
        "attributes": [
            {"external_id": "u1", "a": 1},
            {"external_id": "u1", "b": 2},
            {"external_id": "u2", "a": 1},
        ],
        "events": [EVENT, EVENT],
    }
    response = await track(sandbox, body)
    assert response.json() == {
        "message": "success",
        "attributes_processed": 2,
        "events_processed": 2,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"external_ids": ["u1"]}, "'fields_to_export' is required"),
        (
            {"external_ids": [f"u{i}" for i in range(51)], "fields_to_export": ["external_id"]},
            "'external_ids' may list at most 50 ids",
        ),
    ],
)
async def test_export_ids_needs_fields_and_at_most_50_ids(
    sandbox: httpx.AsyncClient, body: Any, message: str
) -> None:
    response = await sandbox.post("/users/export/ids", json=body, headers=KEY)
    assert (response.status_code, response.json()) == (400, {"message": message})
    fifty = {"external_ids": [f"u{i}" for i in range(50)], "fields_to_export": ["external_id"]}
    assert (await sandbox.post("/users/export/ids", json=fifty, headers=KEY)).status_code == 201


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


async def stored(client: httpx.AsyncClient, external_id: str) -> dict[str, Any]:
    response = await client.get(f"/_sandbox/users/{external_id}")
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["custom_attributes"]
    return attributes


async def test_a_nested_key_with_a_space_drops_every_nested_update_behind_a_201(
    sandbox: httpx.AsyncClient,
) -> None:
    """braze-inc/braze-docs `_docs/_user_guide/data/activation/custom_data/custom_attributes/
    nested_custom_attribute_support.md` ("Key names cannot contain spaces") and
    `_docs/_api/endpoints/user_data/post_user_track.md` ("How does /users/track handle invalid
    nested custom attributes?"): Braze drops every nested update in the request and still
    answers success; the other attributes are applied."""
    first = {"external_id": "u1", "prefs": {"lang": "en"}}
    assert (await track(sandbox, {"attributes": [first]})).status_code == 201
    body = {
        "attributes": [
            {"external_id": "u1", "prefs": {"lang": "fr"}, "tier": "gold"},
            {"external_id": "u2", "address": {"home city": "Oslo"}, "tier": "silver"},
        ]
    }

    response = await track(sandbox, body)

    assert (response.status_code, response.json()) == (
        201,
        {"message": "success", "attributes_processed": 2},
    )
    assert await stored(sandbox, "u1") == {"prefs": {"lang": "en"}, "tier": "gold"}
    assert await stored(sandbox, "u2") == {"tier": "silver"}
    [logged] = (await sandbox.get("/_sandbox/received?limit=1")).json()["requests"]
    assert "home city" in logged["sandbox_note"]


@pytest.mark.parametrize(
    "bad",
    [
        {"prefs": {"lang": None}},
        {"prefs": {"since": {"$time": "yesterday"}}},
        {"prefs": {"a.b": 1}},
        {"pets": {"$add": [{"pet name": "Gus"}]}},
        {"pets": {"$update": [{"$identifier_key": "id", "$identifier_value": 1}]}},
        {"prefs": {"note": "n" * 256}},
    ],
)
async def test_any_invalid_nested_value_drops_the_nested_updates_of_the_request(
    sandbox: httpx.AsyncClient, bad: dict[str, Any]
) -> None:
    """The same page: invalid time formats and null values count as invalid nested values;
    a string over the 255 characters of `nested_custom_attribute_support.md` does too here
    (what Braze does with one is undocumented: the strict reading)."""
    body = {"attributes": [{"external_id": "u1", "good": {"k": 1}, **bad}]}
    assert (await track(sandbox, body)).status_code == 201
    assert await stored(sandbox, "u1") == {}


async def test_nested_objects_merge_only_under_merge_objects(sandbox: httpx.AsyncClient) -> None:
    """`nested_custom_attribute_support.md`: without `_merge_objects` an object is overwritten;
    with it, deep-merged."""
    song = {"external_id": "u1", "song": {"name": "Solea", "plays": {"count": 1}}}
    await track(sandbox, {"attributes": [song]})
    await track(
        sandbox,
        {"attributes": [{"external_id": "u1", "_merge_objects": True, "song": {"year": 1960}}]},
    )
    merged = await stored(sandbox, "u1")
    await track(sandbox, {"attributes": [{"external_id": "u1", "song": {"year": 1961}}]})

    assert merged == {"song": {"name": "Solea", "plays": {"count": 1}, "year": 1960}}
    assert await stored(sandbox, "u1") == {"song": {"year": 1961}}


async def test_array_of_objects_operations_apply_add_remove_then_update(
    sandbox: httpx.AsyncClient,
) -> None:
    """braze-inc/braze-docs `_docs/_user_guide/data/activation/custom_data/custom_attributes/
    array_of_objects.md`: `$add`, `$remove` by identifier, `$update` deep-merging under
    `_merge_objects` (replacing without it), processed in the order add, remove, update."""
    pets = [{"id": 1, "type": "dog", "name": "Gus"}, {"id": 2, "type": "cat", "name": "Gerald"}]
    await track(sandbox, {"attributes": [{"external_id": "u1", "pets": pets}]})
    change = {
        "external_id": "u1",
        "_merge_objects": True,
        "pets": {
            "$remove": [{"$identifier_key": "id", "$identifier_value": 1}],
            "$add": [{"id": 3, "type": "fish", "name": "Larry"}],
            "$update": [
                {"$identifier_key": "id", "$identifier_value": 3, "$new_object": {"name": "Mo"}}
            ],
        },
    }
    await track(sandbox, {"attributes": [change]})
    merged = await stored(sandbox, "u1")
    replace = {
        "external_id": "u1",
        "pets": {
            "$update": [
                {"$identifier_key": "id", "$identifier_value": 2, "$new_object": {"name": "G"}}
            ]
        },
    }
    await track(sandbox, {"attributes": [replace]})

    assert merged == {
        "pets": [
            {"id": 2, "type": "cat", "name": "Gerald"},
            {"id": 3, "type": "fish", "name": "Mo"},
        ]
    }
    assert (await stored(sandbox, "u1"))["pets"] == [{"name": "G"}, merged["pets"][1]]


async def test_a_purchase_in_a_currency_braze_does_not_list_is_refused(
    sandbox: httpx.AsyncClient,
) -> None:
    """braze-inc/braze-docs `_docs/_developer_guide/analytics/logging_purchases.md` ("Supported
    currencies": VEF is listed, VES is not). What Braze's REST API answers for another code is
    undocumented; the sandbox names the object in `errors[]` so a test cannot pass on it."""
    purchase = {
        "external_id": "u1",
        "product_id": "mug",
        "price": 10.0,
        "time": "2026-01-01T00:00:00Z",
    }
    body = {"purchases": [{**purchase, "currency": "VES"}, {**purchase, "currency": "VEF"}]}

    response = await track(sandbox, body)

    assert (response.status_code, response.json()) == (
        201,
        {
            "message": "success",
            "purchases_processed": 1,
            "errors": [
                {
                    "type": "'currency' is not a currency Braze supports",
                    "input_array": "purchases",
                    "index": 0,
                }
            ],
        },
    )
