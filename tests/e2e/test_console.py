"""The ops console in headless Chromium (Debian's package), against a real server and database.

The server runs in a thread (uvicorn) on this test's database; events are seeded as ingest
and delivery would leave them. Selectors are waited for, never slept on.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime
from braze_bridge.domain.statuses import EventStatus, OperationStatus
from braze_bridge.ops.remap import registered_partners
from braze_bridge.ops.replay_jobs import ReplayRunner
from tests.ops_factories import (
    ObjectSpec,
    Tenancy,
    make_attempt,
    make_event,
    operations_of,
    settle_event,
)
from tests.support.live_server import serving

pytestmark = pytest.mark.slow

# Look at these to check the layout; never committed.
SCREENSHOT_DIR = Path(tempfile.gettempdir()) / "braze-bridge-console"


@dataclass
class LiveServer:
    base_url: str


@pytest.fixture
async def live_server(runtime: Runtime) -> AsyncIterator[LiveServer]:
    async with serving(runtime) as base_url:
        yield LiveServer(base_url)


@pytest.fixture
async def replay_worker(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Bulk replay jobs run in workers, not in the API process the console talks to: this is
    a worker's replay side task, on the test's database (polling, as without a NOTIFY)."""
    stop = asyncio.Event()
    runner = ReplayRunner(sessionmaker, registered_partners, poll_seconds=0.1)
    running = asyncio.create_task(runner.run(stop))
    try:
        yield
    finally:
        stop.set()
        await running


async def signed_in_page(browser: Browser, server: LiveServer, token: str) -> Page:
    page = await browser.new_page(viewport={"width": 1366, "height": 800})
    page.set_default_timeout(15_000)
    await page.goto(f"{server.base_url}/console")
    await page.get_by_test_id("token-input").fill(token)
    await page.get_by_test_id("sign-in").click()
    await expect(page.get_by_test_id("connection")).not_to_have_count(0)
    return page


async def test_ops_follow_an_event_to_braze_and_replay_it(
    live_server: LiveServer, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    earlier = datetime.now(UTC) - timedelta(minutes=3)
    delivered = await make_event(
        session,
        tenancy.conn_a,
        status=EventStatus.DELIVERED,
        received_at=earlier,
        user="ada",
        operations=[OperationStatus.DELIVERED],
    )
    dead = await make_event(
        session,
        tenancy.conn_a,
        status=EventStatus.PARTIALLY_DELIVERED,
        kind="reward_fulfilled",
        user="grace",
        received_at=earlier + timedelta(seconds=30),
        reason="1 of 2 objects dead after 24 h",
        operations=[
            ObjectSpec(OperationStatus.DELIVERED, payload={"name": "extole_reward_fulfilled"}),
            ObjectSpec(
                OperationStatus.DEAD,
                payload={"name": "extole_reward_fulfilled_again"},
                reason="Braze 503 for 24 h",
            ),
        ],
    )
    ops = await operations_of(session, dead)
    await make_attempt(
        session,
        tenancy.conn_a,
        ops,
        status_code=503,
        response_body="Service Unavailable",
        outcome="retry",
    )
    theirs = await make_event(session, tenancy.conn_b, user="someone-else")

    page = await signed_in_page(browser, live_server, tenancy.token_a)

    # Connections with health: only this tenant's.
    connections = page.get_by_test_id("connection")
    await expect(connections).to_have_count(1)
    await expect(connections.first).to_contain_text("Acme referral → Braze")
    await expect(page.get_by_test_id("connections")).not_to_contain_text("Globex")

    # The event log: this tenant's two events, newest first.
    rows = page.get_by_test_id("event-row")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_have_attribute("data-event-id", str(dead.id))
    await expect(rows.nth(1)).to_have_attribute("data-event-id", str(delivered.id))
    await expect(page.locator(f'tr[data-event-id="{theirs.id}"]')).to_have_count(0)

    # The live feed: another tenant's new event never shows, this tenant's does.
    await expect(page.get_by_test_id("live")).to_have_class("live on")
    foreign = await make_event(session, tenancy.conn_b, user="intruder")
    fresh = await make_event(session, tenancy.conn_a, status=EventStatus.QUEUED, user="linus")
    await expect(page.locator(f'tr[data-event-id="{fresh.id}"]')).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-event-id", str(fresh.id))
    await expect(page.locator(f'tr[data-event-id="{foreign.id}"]')).to_have_count(0)

    # Event detail: objects with status and reason, the attempt, the raw body.
    await page.locator(f'tr[data-event-id="{dead.id}"]').click()
    detail = page.get_by_test_id("detail")
    await expect(detail).to_be_visible()
    await expect(page.get_by_test_id("detail-id")).to_have_text(str(dead.id))
    objects = page.get_by_test_id("object-row")
    await expect(objects).to_have_count(2)
    await expect(objects.nth(1)).to_contain_text("Braze 503 for 24 h")
    await expect(page.get_by_test_id("attempt")).to_contain_text("HTTP 503")
    await expect(page.get_by_test_id("raw-body")).to_contain_text("reward_fulfilled")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT_DIR / "detail.png"))

    # Replay: only the dead object goes back to pending.
    await page.get_by_test_id("replay").click()
    await expect(page.get_by_test_id("replay-result")).to_contain_text(
        "1 Braze object queued again"
    )
    await expect(objects.nth(1)).to_have_attribute("data-status", "pending")
    await expect(objects.nth(0)).to_have_attribute("data-status", "delivered")
    # ...the list shows the new status, and the feed follows it until it settles.
    row = page.locator(f'tr[data-event-id="{dead.id}"]')
    await expect(row).to_have_attribute("data-status", "queued")
    await settle_event(session, dead, EventStatus.DELIVERED)
    # The feed hears the roll-up's NOTIFY; allow for a loaded CI machine.
    await expect(row).to_have_attribute("data-status", "delivered", timeout=20_000)
    assert [op.status for op in await operations_of(session, dead)] == [
        OperationStatus.DELIVERED,
        OperationStatus.PENDING,
    ]
    await page.get_by_test_id("close-detail").click()
    await page.screenshot(path=str(SCREENSHOT_DIR / "feed.png"))


@pytest.mark.usefixtures("replay_worker")
async def test_filters_and_bulk_replay_from_the_console(
    live_server: LiveServer, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    dead = [
        await make_event(
            session, tenancy.conn_a, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
        )
        for _ in range(3)
    ]
    await make_event(
        session,
        tenancy.conn_a,
        status=EventStatus.DELIVERED,
        operations=[OperationStatus.DELIVERED],
    )
    page = await signed_in_page(browser, live_server, tenancy.token_a)
    await expect(page.get_by_test_id("event-row")).to_have_count(4)

    await page.get_by_test_id("filter-status").select_option("dead")
    await page.get_by_test_id("apply-filters").click()
    await expect(page.get_by_test_id("event-row")).to_have_count(3)

    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_test_id("replay-matching").click()
    await expect(page.get_by_test_id("job")).to_have_attribute("data-status", "done")
    await expect(page.get_by_test_id("job")).to_contain_text(
        "3 of 3 events, 3 objects queued again"
    )
    for event in dead:
        assert [op.status for op in await operations_of(session, event)] == [
            OperationStatus.PENDING
        ]


async def test_a_wrong_token_is_refused_and_nothing_is_shown(
    live_server: LiveServer, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    await make_event(session, tenancy.conn_a)
    page = await browser.new_page()
    page.set_default_timeout(15_000)
    await page.goto(f"{live_server.base_url}/console")

    await page.get_by_test_id("token-input").fill("bbt_not-a-real-token")
    await page.get_by_test_id("sign-in").click()

    await expect(page.get_by_test_id("signin-error")).to_have_text("That token was refused.")
    await expect(page.get_by_test_id("event-row")).to_have_count(0)
    assert await page.evaluate("sessionStorage.length") == 0


async def test_stream_over_http_is_tenant_scoped_and_needs_the_header(
    live_server: LiveServer, session: AsyncSession, tenancy: Tenancy
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as client:
        refused = await client.get("/v1/events/stream")
        url_token = await client.get(f"/v1/events/stream?token={tenancy.token_a}")
        assert refused.status_code == 401
        assert url_token.status_code == 401

        async with client.stream(
            "GET", "/v1/events/stream", headers=tenancy.headers_a()
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            await make_event(session, tenancy.conn_b, user="other-tenant")
            mine = await make_event(session, tenancy.conn_a, user="mine")
            received: list[dict[str, object]] = []
            async for line in lines:
                if line.startswith("data:"):
                    received.append(json.loads(line[5:]))
                    break

    assert [item["id"] for item in received] == [str(mine.id)]
    assert received[0]["user"] == "mine"


async def test_console_assets_are_served_with_a_strict_policy(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as client:
        page = await client.get("/console")
        script = await client.get("/console/assets/app.js")
        missing = await client.get("/console/assets/../app.py")

    assert page.status_code == 200
    assert "braze-bridge console" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert script.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404


@pytest.mark.usefixtures("replay_worker")
async def test_cli_replays_by_filter_with_progress_and_one_event(
    live_server: LiveServer, session: AsyncSession, tenancy: Tenancy
) -> None:
    from typer.testing import CliRunner

    from braze_bridge.cli import app as cli

    dead = [
        await make_event(
            session, tenancy.conn_a, status=EventStatus.DEAD, operations=[OperationStatus.DEAD]
        )
        for _ in range(2)
    ]
    single = await make_event(
        session,
        tenancy.conn_a,
        status=EventStatus.PARTIALLY_DELIVERED,
        operations=[OperationStatus.DELIVERED, OperationStatus.FAILED],
    )
    runner = CliRunner()
    env = {"BRAZE_BRIDGE_TOKEN": tenancy.token_a, "BRAZE_BRIDGE_URL": live_server.base_url}

    bulk = await asyncio.to_thread(runner.invoke, cli, ["replay", "--status", "dead"], env=env)
    one = await asyncio.to_thread(runner.invoke, cli, ["replay", str(single.id)], env=env)
    theirs = await make_event(session, tenancy.conn_b, status=EventStatus.DEAD)
    refused = await asyncio.to_thread(runner.invoke, cli, ["replay", str(theirs.id)], env=env)
    bad = await asyncio.to_thread(runner.invoke, cli, ["replay", "--status", "lost"], env=env)

    assert bulk.exit_code == 0, bulk.output
    assert "done: 2 event(s), 2 object(s) queued again" in bulk.output
    for event in dead:
        assert [op.status for op in await operations_of(session, event)] == [
            OperationStatus.PENDING
        ]
    assert one.exit_code == 0, one.output
    assert "1 Braze object(s) queued again" in one.output
    assert [op.status for op in await operations_of(session, single)] == [
        OperationStatus.DELIVERED,
        OperationStatus.PENDING,
    ]
    assert refused.exit_code == 1
    assert f"no event {theirs.id}" in refused.output
    assert bad.exit_code == 1
    assert "--status must be one of" in bad.output
