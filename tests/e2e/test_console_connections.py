"""Running a connection from the console (connections.js) in headless Chromium: create, edit
with the API's field errors shown next to the field, pause / resume, rotate the webhook
secret, test against Braze (faked with respx), preview a body, and the 24 h chart.

Braze's answers to the connection test follow braze-inc/braze-docs
`_docs/_api/endpoints/user_data/post_user_track.md` (201 `{"message": "success"}`) and
`_docs/_api/endpoints/export/user_data/post_users_identifier.md` (`/users/export/ids`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import Connection
from braze_bridge.domain.statuses import ConnectionState, EventStatus, OperationStatus
from braze_bridge.ops import alerts
from tests.conftest import OPERATOR_TOKEN
from tests.e2e.test_console import SCREENSHOT_DIR, LiveServer, live_server, signed_in_page
from tests.extole_bodies import REWARD_FULFILLED_RAW
from tests.factories import BOX, SANDBOX_ENDPOINT
from tests.ops_factories import Tenancy, make_attempt, make_event, operations_of

pytestmark = pytest.mark.slow

__all__ = ["live_server"]


@pytest.fixture
def braze() -> Iterator[respx.MockRouter]:
    # The server runs in a thread of this process: its httpx calls to Braze land here.
    with respx.mock(base_url=SANDBOX_ENDPOINT, assert_all_called=False) as router:
        yield router


async def stored(session: AsyncSession, connection_id: object) -> Connection:
    row = await session.scalar(
        select(Connection)
        .where(Connection.id == connection_id)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def open_manage(page: Page, name: str) -> None:
    item = page.get_by_test_id("connection").filter(has_text=name)
    await item.get_by_test_id("manage-connection").click()
    await expect(page.get_by_test_id("manage-title")).to_contain_text(name)


async def test_create_a_connection_with_a_field_error_then_the_secrets_once(
    live_server: LiveServer, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    page = await signed_in_page(browser, live_server, tenancy.token_a)
    await page.get_by_test_id("new-connection").click()
    form = page.get_by_test_id("connection-form")
    await form.get_by_test_id("field-name").fill("Acme loyalty")
    await form.get_by_test_id("field-source").select_option("extole")
    await form.get_by_test_id("field-braze-rest_endpoint").fill("https://braze.example.com")
    await form.get_by_test_id("field-braze-api_key").fill("key-1234567890")
    await form.get_by_test_id("field-settings").fill('{"reward_states": ["LOST"]}')

    await page.get_by_test_id("save-connection").click()

    # Both refusals of the one 422, each under its own field; nothing stored.
    await expect(form.get_by_test_id("error-braze-rest_endpoint")).not_to_be_empty()
    await expect(form.get_by_test_id("error-settings")).to_contain_text("settings.reward_states")
    await expect(form.get_by_test_id("error-name")).to_be_empty()
    names = await session.scalars(
        select(Connection.name).where(Connection.tenant_id == tenancy.a.id)
    )
    assert list(names) == ["Acme referral → Braze"]

    await form.get_by_test_id("field-braze-rest_endpoint").fill(SANDBOX_ENDPOINT)
    await form.get_by_test_id("field-settings").fill('{"reward_states": ["FULFILLED"]}')
    await page.get_by_test_id("save-connection").click()

    shown = page.get_by_test_id("one-time-secret")
    await expect(shown).to_contain_text("shown only this once")
    secret = await page.get_by_test_id("new-webhook-secret").inner_text()
    created_id = await page.get_by_test_id("manage").get_attribute("data-connection-id")
    row = await stored(session, created_id)
    assert (row.name, row.source, row.tenant_id) == ("Acme loyalty", "extole", tenancy.a.id)
    assert BOX.decrypt(row.webhook_secret_enc) == secret
    await expect(page.get_by_test_id("connection").filter(has_text="Acme loyalty")).to_have_count(1)
    # Opened again, the secret is gone from the page.
    await page.get_by_test_id("close-manage").click()
    await open_manage(page, "Acme loyalty")
    await expect(page.get_by_test_id("new-webhook-secret")).to_have_count(0)


async def test_edit_pause_resume_and_rotate(
    live_server: LiveServer, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    page = await signed_in_page(browser, live_server, tenancy.token_a)
    await open_manage(page, "Acme referral")
    form = page.get_by_test_id("connection-form")
    version = (await stored(session, tenancy.conn_a.id)).version

    # A bad username (a colon cannot be in a Basic user name) is shown under that field.
    await form.get_by_test_id("field-webhook_auth-mode").select_option("basic")
    await form.get_by_test_id("field-webhook_auth-username").fill("a:b")
    await page.get_by_test_id("save-connection").click()
    await expect(form.get_by_test_id("error-webhook_auth-username")).not_to_be_empty()
    assert (await stored(session, tenancy.conn_a.id)).version == version

    await form.get_by_test_id("field-webhook_auth-mode").select_option("hmac_sha256")
    await form.get_by_test_id("field-webhook_auth-username").fill("")
    await form.get_by_test_id("field-name").fill("Acme referral (EU)")
    await page.get_by_test_id("save-connection").click()
    await expect(page.get_by_test_id("saved")).to_contain_text(f"version {version + 1}")
    assert (await stored(session, tenancy.conn_a.id)).name == "Acme referral (EU)"

    await page.get_by_test_id("pause").click()
    await expect(page.get_by_test_id("manage-state")).to_have_text("paused")
    assert (await stored(session, tenancy.conn_a.id)).state == ConnectionState.PAUSED
    await expect(page.get_by_test_id("connection").first).to_contain_text("paused")
    await page.get_by_test_id("resume").click()
    await expect(page.get_by_test_id("manage-state")).to_have_text("active")
    assert (await stored(session, tenancy.conn_a.id)).state == ConnectionState.ACTIVE

    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_test_id("rotate-secret").click()
    await expect(page.get_by_test_id("one-time-secret")).to_contain_text("accepted until")
    secret = await page.get_by_test_id("new-webhook-secret").inner_text()
    row = await stored(session, tenancy.conn_a.id)
    assert secret != tenancy.conn_a.webhook_secret
    assert BOX.decrypt(row.webhook_secret_enc) == secret
    assert row.previous_webhook_secret_enc is not None


async def test_test_against_braze_and_preview_a_body(
    live_server: LiveServer,
    browser: Browser,
    session: AsyncSession,
    tenancy: Tenancy,
    braze: respx.MockRouter,
) -> None:
    braze.post("/users/track").respond(201, json={"message": "success"})
    braze.post("/users/export/ids").respond(201, json={"users": [], "message": "success"})
    page = await signed_in_page(browser, live_server, tenancy.token_a)
    await open_manage(page, "Acme referral")

    await page.get_by_test_id("test-connection").click()
    result = page.get_by_test_id("test-result")
    await expect(result).to_contain_text("Every check passed.")
    await expect(page.locator('[data-testid="check"][data-ok="true"]')).to_have_count(4)

    await page.get_by_test_id("preview-body").fill(REWARD_FULFILLED_RAW.decode())
    await page.get_by_test_id("run-preview").click()
    preview = page.get_by_test_id("preview-result")
    await expect(preview).to_contain_text("queued")
    await expect(preview).to_contain_text("extole_reward_fulfilled")

    await page.get_by_test_id("preview-body").fill("{not json")
    await page.get_by_test_id("run-preview").click()
    await expect(page.get_by_test_id("preview-error")).to_contain_text("JSON")


async def test_the_chart_shows_the_last_24_hours(
    live_server: LiveServer, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    now = datetime.now(UTC)
    good = [
        await make_event(
            session, tenancy.conn_a, received_at=now, operations=[OperationStatus.DELIVERED]
        )
        for _ in range(3)
    ]
    dead = await make_event(
        session,
        tenancy.conn_a,
        status=EventStatus.DEAD,
        received_at=now,
        operations=[OperationStatus.DEAD],
    )
    await make_attempt(
        session,
        tenancy.conn_a,
        [op for e in good for op in await operations_of(session, e)],
        started_at=now,
    )
    await make_attempt(
        session,
        tenancy.conn_a,
        await operations_of(session, dead),
        status_code=503,
        outcome="dead",
        started_at=now,
    )
    await make_event(session, tenancy.conn_b, received_at=now)  # another tenant's

    page = await signed_in_page(browser, live_server, tenancy.token_a)
    await open_manage(page, "Acme referral")

    chart = page.get_by_test_id("stats-chart")
    await expect(chart).to_have_attribute("data-loaded", "true")
    await expect(chart.get_by_test_id("total-received")).to_have_text("webhooks received 4")
    await expect(chart.get_by_test_id("total-delivered")).to_have_text("objects delivered 3")
    await expect(chart.get_by_test_id("total-dead")).to_have_text("dead 1")
    await expect(chart.get_by_test_id("total-answers_5xx")).to_have_text("5xx 1")
    await expect(chart.locator('polyline[data-series="received"]')).to_have_count(1)
    await expect(chart.locator('rect[data-series="answers_2xx"]')).to_have_count(1)
    await expect(chart.locator('rect[data-series="answers_5xx"]')).to_have_count(1)
    # docs/img/console-connection.png is this picture.
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    await page.get_by_test_id("manage").screenshot(path=str(SCREENSHOT_DIR / "connection.png"))


async def test_an_operator_names_the_tenant_and_a_refused_key_shows_its_hint(
    live_server: LiveServer,
    browser: Browser,
    session: AsyncSession,
    tenancy: Tenancy,
    braze: respx.MockRouter,
) -> None:
    braze.post("/users/track").respond(401, json={"message": "Invalid API Key"})
    braze.post("/users/export/ids").respond(401, json={"message": "Invalid API Key"})
    page = await signed_in_page(browser, live_server, OPERATOR_TOKEN)
    await page.get_by_test_id("new-connection").click()
    form = page.get_by_test_id("connection-form")
    await form.get_by_test_id("field-name").fill("Globex referral")
    await form.get_by_test_id("field-braze-rest_endpoint").fill(SANDBOX_ENDPOINT)
    await form.get_by_test_id("field-braze-api_key").fill("key-1234567890")
    await page.get_by_test_id("save-connection").click()
    # An operator token must say whose connection it is.
    await expect(form.get_by_test_id("error-tenant_id")).not_to_be_empty()

    await form.get_by_test_id("field-tenant_id").fill(str(tenancy.b.id))
    await page.get_by_test_id("save-connection").click()
    await expect(page.get_by_test_id("one-time-secret")).to_be_visible()
    created_id = await page.get_by_test_id("manage").get_attribute("data-connection-id")
    assert (await stored(session, created_id)).tenant_id == tenancy.b.id

    await page.get_by_test_id("test-connection").click()
    await expect(page.get_by_test_id("test-result")).to_contain_text("Some checks failed.")
    failed = page.locator('[data-testid="check"][data-ok="false"]')
    await expect(failed.first).to_contain_text("api_key")
    await expect(failed.first.locator(".muted")).not_to_be_empty()  # the hint


async def test_the_panel_lists_the_alerts_of_the_connection(
    live_server: LiveServer,
    browser: Browser,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """A degradation seen by the evaluator shows in the panel with its delivery state, and the
    webhook with what it last told (docs/ops.md, "Alerts")."""
    headers = {"Authorization": f"Bearer {tenancy.token_a}"}
    async with httpx.AsyncClient(base_url=live_server.base_url, headers=headers) as api:
        made = await api.put(
            f"/v1/connections/{tenancy.conn_a.id}/alert-webhook",
            json={"url": "https://hooks.example.com/services/T0/B0/X"},
        )
        assert made.status_code == 200, made.text
    await session.execute(
        text(
            "UPDATE connections SET last_error = 'braze 503 on /users/track (server error)', "
            "last_error_at = now() WHERE id = :id"
        ),
        {"id": tenancy.conn_a.id},
    )
    await session.commit()
    assert [k.value for k in await alerts.evaluate_connection(sessionmaker, tenancy.conn_a.id)] == [
        "degraded"
    ]

    page = await signed_in_page(browser, live_server, tenancy.token_a)
    await open_manage(page, "Acme referral")

    await expect(page.get_by_test_id("alert-webhook")).to_contain_text(
        'hooks.example.com/services/T0/B0/X: last told "degraded"'
    )
    alert = page.get_by_test_id("alert")
    await expect(alert).to_have_count(1)
    await expect(alert).to_have_attribute("data-kind", "degraded")
    await expect(alert).to_have_attribute("data-status", "pending")
    await expect(alert).to_contain_text("braze 503 on /users/track")
