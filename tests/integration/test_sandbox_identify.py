"""The sandbox's `/users/identify`, `email` identifier and several profiles per email.

Sources: braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_identify.md` (one of
`aliases_to_identify` / `emails_to_identify` / `phone_numbers_to_identify`, up to 50, a
`prioritization` for emails; no merge when several profiles have the email; `alias_name` is
case-sensitive), `_docs/_api/endpoints/user_data/post_user_track.md` (email as identifier) and
`_docs/_api/endpoints/export/user_data/post_users_identifier.md` (export by `email_address`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from braze_bridge.sandbox.app import SandboxConfig, create_sandbox_app

KEY = {"Authorization": "Bearer any-key"}
ALIAS = {"alias_name": "a@example.com", "alias_label": "email"}
PRIORITY = ["unidentified", "most_recently_updated"]


@pytest.fixture
async def sandbox() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig(seed=1))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as client:
        yield client


async def track(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post("/users/track", json=body, headers=KEY)
    assert response.status_code == 201, response.text


async def by_email(client: httpx.AsyncClient, email: str) -> list[dict[str, Any]]:
    profiles: list[dict[str, Any]] = (await client.get(f"/_sandbox/emails/{email}")).json()[
        "profiles"
    ]
    return profiles


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"aliases_to_identify": []},
        {"aliases_to_identify": [{"external_id": "x", "user_alias": ALIAS}] * 51},
        {"aliases_to_identify": [{"user_alias": ALIAS}]},
        {"aliases_to_identify": [{"external_id": "x", "user_alias": {"alias_name": "a"}}]},
        {"emails_to_identify": [{"external_id": "x", "email": "a@example.com"}]},
        {
            "emails_to_identify": [
                {"external_id": "x", "email": "a@example.com", "prioritization": []}
            ]
        },
        {
            "emails_to_identify": [
                {
                    "external_id": "x",
                    "email": "a@example.com",
                    "prioritization": ["identified", "unidentified"],
                }
            ]
        },
        {
            "emails_to_identify": [
                {"external_id": "x", "email": "a@example.com", "prioritization": ["newest"]}
            ]
        },
        {"aliases_to_identify": [{"external_id": "x", "user_alias": ALIAS}], "extra": 1},
    ],
)
async def test_a_malformed_identify_is_a_400_and_changes_nothing(
    sandbox: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    await track(sandbox, {"attributes": [{"user_alias": ALIAS, "_update_existing_only": False}]})
    response = await sandbox.post("/users/identify", json=body, headers=KEY)
    assert response.status_code == 400
    assert response.json()["message"]
    requests = (await sandbox.get("/_sandbox/received")).json()["requests"]
    assert [r["status"] for r in requests] == [201, 400]
    assert (await sandbox.get("/_sandbox/users/x")).status_code == 404


async def test_identify_needs_the_users_identify_permission(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post(
        "/users/identify",
        json={"aliases_to_identify": [{"external_id": "x", "user_alias": ALIAS}]},
        headers={"Authorization": "Bearer sandbox-perms:users.track"},
    )
    assert response.status_code == 403


async def test_identifying_an_alias_merges_it_into_the_identified_profile(
    sandbox: httpx.AsyncClient,
) -> None:
    await track(
        sandbox,
        {
            "attributes": [{"user_alias": ALIAS, "_update_existing_only": False, "tier": "gold"}],
            "events": [{"user_alias": ALIAS, "name": "joined", "time": "2026-01-01T00:00:00Z"}],
        },
    )
    await track(sandbox, {"attributes": [{"external_id": "crm-1", "tier": "silver"}]})
    response = await sandbox.post(
        "/users/identify",
        json={"aliases_to_identify": [{"external_id": "crm-1", "user_alias": ALIAS}]},
        headers=KEY,
    )
    assert response.json() == {"aliases_processed": 1, "message": "success"}
    profile = (await sandbox.get("/_sandbox/users/crm-1")).json()
    assert profile["custom_attributes"] == {"tier": "silver"}  # the identified value stays
    assert profile["user_aliases"] == [ALIAS]
    assert [e["name"] for e in profile["custom_events"]] == ["joined"]
    assert (await sandbox.get("/_sandbox/received")).json()["users"] == 1


async def test_alias_names_are_case_sensitive(sandbox: httpx.AsyncClient) -> None:
    await track(sandbox, {"attributes": [{"user_alias": ALIAS, "_update_existing_only": False}]})
    other_case = {**ALIAS, "alias_name": "A@example.com"}
    response = await sandbox.post(
        "/users/identify",
        json={"aliases_to_identify": [{"external_id": "crm-1", "user_alias": other_case}]},
        headers=KEY,
    )
    assert response.status_code == 201
    assert (await sandbox.get("/_sandbox/users/crm-1")).status_code == 404


async def test_an_email_with_several_profiles_is_not_merged(sandbox: httpx.AsyncClient) -> None:
    await track(sandbox, {"attributes": [{"email": "a@example.com", "tier": "x"}]})
    await track(sandbox, {"attributes": [{"external_id": "crm-2", "email": "a@example.com"}]})
    response = await sandbox.post(
        "/users/identify",
        json={
            "emails_to_identify": [
                {"external_id": "crm-1", "email": "a@example.com", "prioritization": PRIORITY}
            ]
        },
        headers=KEY,
    )
    assert response.status_code == 201
    assert len(await by_email(sandbox, "a@example.com")) == 2
    assert (await sandbox.get("/_sandbox/users/crm-1")).status_code == 404


async def test_the_email_identifier_updates_the_latest_identified_profile_else_creates_one(
    sandbox: httpx.AsyncClient,
) -> None:
    await track(sandbox, {"attributes": [{"email": "b@example.com", "n": 1}]})
    [email_only] = await by_email(sandbox, "b@example.com")
    assert email_only["external_id"] is None
    assert email_only["user_aliases"] == []
    await track(sandbox, {"attributes": [{"external_id": "old", "email": "b@example.com"}]})
    await track(sandbox, {"attributes": [{"external_id": "new", "email": "b@example.com"}]})
    await track(sandbox, {"attributes": [{"external_id": "old", "touched": True}]})
    await track(sandbox, {"attributes": [{"email": "b@example.com", "n": 2}]})
    profiles = {p["external_id"]: p for p in await by_email(sandbox, "b@example.com")}
    assert profiles["old"]["custom_attributes"]["n"] == 2
    assert profiles["new"]["custom_attributes"].get("n") is None
    assert profiles[None]["custom_attributes"]["n"] == 1
    exported = await sandbox.post(
        "/users/export/ids",
        json={"email_address": "b@example.com", "fields_to_export": ["external_id", "created_at"]},
        headers=KEY,
    )
    users = exported.json()["users"]
    assert [u.get("external_id") for u in users] == [None, "old", "new"]
    assert all(u["created_at"].endswith("Z") for u in users)
