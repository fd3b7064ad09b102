"""The sandbox's `/users/delete`, as braze-inc/braze-docs
`_docs/_api/endpoints/user_data/post_user_delete.md` documents it: one kind of identifier
(`external_ids`, `user_aliases`, `braze_ids`, `email_addresses`), up to 50; the answer counts
the profiles queued for deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from braze_bridge.sandbox.app import SandboxConfig, create_sandbox_app

KEY = {"Authorization": "Bearer any-key"}
ALIAS = {"alias_name": "ada@example.com", "alias_label": "email"}


@pytest.fixture
async def sandbox() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig(seed=1))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as client:
        yield client


async def delete(client: httpx.AsyncClient, body: Any, key: str = "any-key") -> httpx.Response:
    return await client.post("/users/delete", json=body, headers={"Authorization": f"Bearer {key}"})


async def test_deleted_profiles_are_gone_and_counted(sandbox: httpx.AsyncClient) -> None:
    created = await sandbox.post(
        "/users/track",
        json={
            "attributes": [
                {"external_id": "u1", "email": "u1@example.com", "first_name": "U"},
                {"user_alias": ALIAS, "_update_existing_only": False, "first_name": "A"},
                {"external_id": "u2", "first_name": "V"},
            ]
        },
        headers=KEY,
    )
    assert created.status_code == 201, created.text

    by_id = await delete(sandbox, {"external_ids": ["u1", "nobody"]})
    by_alias = await delete(sandbox, {"user_aliases": [ALIAS]})

    assert (by_id.status_code, by_id.json()) == (201, {"deleted": 1, "message": "success"})
    assert (by_alias.status_code, by_alias.json()) == (201, {"deleted": 1, "message": "success"})
    assert (await sandbox.get("/_sandbox/users/u1")).status_code == 404
    assert (await sandbox.get("/_sandbox/users/u2")).status_code == 200
    again = await delete(sandbox, {"email_addresses": ["u1@example.com"]})
    assert again.json()["deleted"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"external_ids": []},
        {"external_ids": [f"u{n}" for n in range(51)]},
        {"external_ids": ["u1"], "braze_ids": ["b1"]},
        {"user_aliases": [{"alias_name": "x"}]},
    ],
)
async def test_a_bad_body_is_400_and_deletes_nothing(
    sandbox: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    await sandbox.post(
        "/users/track", json={"attributes": [{"external_id": "u1", "a": 1}]}, headers=KEY
    )

    response = await delete(sandbox, body)

    assert response.status_code == 400
    assert "message" in response.json()
    assert (await sandbox.get("/_sandbox/users/u1")).status_code == 200


async def test_a_key_without_users_delete_is_403(sandbox: httpx.AsyncClient) -> None:
    response = await delete(sandbox, {"external_ids": ["u1"]}, key="sandbox-perms:users.track")
    assert (response.status_code, response.json()) == (403, {"message": "Access Denied"})
