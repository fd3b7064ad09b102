"""The product as a new user meets it: `serve` on its embedded database, the sandbox as Braze,
a signed Extole webhook, and the console in headless Chromium showing it delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.processes import running_sandbox, running_serve

pytestmark = pytest.mark.slow

OPERATOR = "bbo_quickstart-operator-token"


@pytest.fixture
def sandbox() -> Iterator[str]:
    with running_sandbox() as url:
        yield url


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with running_serve(
        tmp_path, BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL="1", BRAZE_BRIDGE_BOOTSTRAP_TOKEN=OPERATOR
    ) as url:
        yield url


async def test_a_signed_reward_shows_up_delivered_in_the_console(
    served: str, sandbox: str, browser: Browser
) -> None:
    admin = {"Authorization": f"Bearer {OPERATOR}"}
    async with httpx.AsyncClient(base_url=served, headers=admin, timeout=30) as api:
        tenant = (await api.post("/v1/tenants", json={"slug": "acme", "name": "Acme"})).json()
        created = await api.post(
            "/v1/connections",
            json={
                "tenant_id": tenant["id"],
                "name": "Acme referral",
                "source": "extole",
                "braze": {"rest_endpoint": sandbox, "api_key": "quickstart-key"},
            },
        )
        assert created.status_code == 201, created.text
        connection = created.json()
        body = json.dumps(
            {
                "event_id": "qs-1",
                "type": "reward_fulfilled",
                "partner_user_id": "u-1",
                "email": "ada@example.com",
                "reward_id": "r-1",
                "face_value": "5",
                "partner_reward_id": "CODE5",
            }
        ).encode()
        signature = hmac.new(
            connection["webhook_secret"].encode(), body, hashlib.sha256
        ).hexdigest()
        async with httpx.AsyncClient(timeout=30) as partner:
            accepted = await partner.post(
                connection["webhook_url"],
                content=body,
                headers={"Content-Type": "application/json", "X-Extole-Signature": signature},
            )
        assert accepted.json()["status"] == "accepted"
        event_id = accepted.json()["event_id"]

        page = await browser.new_page(viewport={"width": 1366, "height": 800})
        page.set_default_timeout(30_000)
        await page.goto(f"{served}/console")
        await page.get_by_test_id("token-input").fill(OPERATOR)
        await page.get_by_test_id("sign-in").click()
        row = page.locator(f'tr[data-event-id="{event_id}"]')
        # The in-process worker delivers it; the live feed moves the row to its final status.
        await expect(row).to_have_attribute("data-status", "delivered")
        await row.click()
        await expect(page.get_by_test_id("attempt")).to_contain_text("HTTP 201")

    async with httpx.AsyncClient(timeout=30) as http:
        received = (await http.get(f"{sandbox}/_sandbox/received")).json()
    tracks = [r["body"] for r in received["requests"] if r["endpoint"] == "/users/track"]
    assert [e["name"] for t in tracks for e in t.get("events", [])] == ["extole_reward_fulfilled"]
