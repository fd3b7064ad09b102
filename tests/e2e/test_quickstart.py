"""The product as a new user meets it: `serve` on its embedded database, the sandbox as Braze,
a signed Extole webhook, and the console in headless Chromium showing it delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.e2e.test_console import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_embedded_serve import cli_env, free_port, wait_ready

pytestmark = pytest.mark.slow

OPERATOR = "bbo_quickstart-operator-token"


@pytest.fixture
def sandbox() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "braze_bridge", "sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/_sandbox/received", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = cli_env(tmp_path, port)
    env.update(BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL="1", BRAZE_BRIDGE_BOOTSTRAP_TOKEN=OPERATOR)
    process = subprocess.Popen(
        [sys.executable, "-m", "braze_bridge", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make chromium` (apt-get install -y chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


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

    received = httpx.get(f"{sandbox}/_sandbox/received").json()
    tracks = [r["body"] for r in received["requests"] if r["endpoint"] == "/users/track"]
    assert [e["name"] for t in tracks for e in t.get("events", [])] == ["extole_reward_fulfilled"]
