"""The console's read side in headless Chromium (Debian's package) against a real server and
database: replay convergence under the restart race, a server that goes away and comes back,
time range + deep links + keyboard, and what an event's detail says about its attempts.

Set CONSOLE_SCREENSHOTS=<dir> to save the main views (docs/console.md uses them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, Request, Route, expect
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.app import Runtime
from braze_bridge.db.models import Event, OutboxOperation
from braze_bridge.domain.events import MAPPING_NOTES_KEY
from braze_bridge.domain.statuses import EventStatus, OperationStatus
from tests.ops_factories import (
    ObjectSpec,
    Tenancy,
    make_attempt,
    make_event,
    operations_of,
    settle_event,
)
from tests.support.live_server import serving
from tests.support.net import free_port

pytestmark = pytest.mark.slow

SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


@pytest.fixture
async def server(runtime: Runtime) -> AsyncIterator[str]:
    async with serving(runtime) as url:
        yield url


async def open_console(
    browser: Browser, url: str, token: str, *, path: str = "/console", **context: str
) -> Page:
    page = await browser.new_page(viewport={"width": 1366, "height": 860}, **context)  # type: ignore[arg-type]
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    await page.goto(f"{url}{path}")
    await page.get_by_test_id("token-input").fill(token)
    await page.get_by_test_id("sign-in").click()
    await expect(page.get_by_test_id("connection")).not_to_have_count(0)
    return page


def row(page: Page, event: Event) -> Locator:
    return page.locator(f'tr[data-event-id="{event.id}"]')


async def api_state(url: str, tenancy: Tenancy, event: Event) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url, headers=tenancy.headers_a()) as client:
        body: dict[str, object] = (await client.get(f"/v1/events/{event.id}")).json()
    return body


async def deliver_everything(session: AsyncSession, event: Event) -> None:
    """What a worker does once Braze accepts the replayed objects: objects delivered, the
    event rolled up (and announced)."""
    await session.execute(
        update(OutboxOperation)
        .where(OutboxOperation.event_id == event.id)
        .values(status=OperationStatus.DELIVERED, reason=None, settled_at=datetime.now(UTC))
    )
    await settle_event(session, event, EventStatus.DELIVERED)


class WorkerRace:
    """Lets the console's first detail read after a replay (or the replay's answer) through,
    then settles the event as a worker would, then hands the console what it read: the
    console now shows a state the database has already left."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], event: Event) -> None:
        self.sessionmaker = sessionmaker
        self.event = event
        self.replayed = False
        self.raced = False
        self.done = asyncio.Event()

    def on_request(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/replay"):
            self.replayed = True

    async def route(self, route: Route) -> None:
        if self.raced or not self.replayed:  # only the console's first read after the replay
            await route.continue_()
            return
        self.raced = True
        answer = await route.fetch()  # read as queued...
        body = await answer.body()
        async with self.sessionmaker() as worker:  # ...settled before the console shows it
            await deliver_everything(worker, self.event)
        self.done.set()
        await route.fulfill(response=answer, body=body)


# --- replay convergence --------------------------------------------------------------------

CASES = [
    # (the event's state, what the console read before the worker finished)
    ("filtered", "stale detail"),
    ("rejected", "stale detail"),
    ("filtered", "settled before the answer"),
    ("rejected", "stale detail"),
    ("filtered", "stale detail"),
]


async def test_a_replayed_event_always_converges_to_the_api_state(
    server: str,
    browser: Browser,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    tenancy: Tenancy,
) -> None:
    """The race of issue "console stays queued": the event settles after the console read it
    as queued, before its live feed was back. Five rounds, on one page."""
    page = await open_console(browser, server, tenancy.token_a)
    for round_no, (status, race) in enumerate(CASES):
        if status == "filtered":
            event = await make_event(
                session,
                tenancy.conn_a,
                status=EventStatus.FILTERED,
                user=f"filtered-{round_no}",
                reason="unknown user: skipped",
                operations=[ObjectSpec(OperationStatus.SKIPPED, reason="unknown user: skipped")],
            )
        else:
            event = await make_event(
                session,
                tenancy.conn_a,
                status=EventStatus.REJECTED,
                user=f"rejected-{round_no}",
                reason="Braze 400: invalid object",
                operations=[ObjectSpec(OperationStatus.FAILED, reason="Braze 400")],
            )
        line = row(page, event)
        await expect(line).to_have_attribute("data-status", status)  # arrived by the feed
        await line.click()
        await expect(page.get_by_test_id("detail-id")).to_have_text(str(event.id))

        worker_race = WorkerRace(sessionmaker, event)
        page.on("request", worker_race.on_request)
        if race == "stale detail":
            await page.route(f"**/v1/events/{event.id}", worker_race.route)
        else:
            await page.route(f"**/v1/events/{event.id}/replay", worker_race.route)

        await page.get_by_test_id("replay").click()
        await expect(page.get_by_test_id("replay-result")).to_contain_text("queued again")
        await asyncio.wait_for(worker_race.done.wait(), 15)

        expected = await api_state(server, tenancy, event)
        assert expected["status"] == "delivered"
        await expect(line).to_have_attribute("data-status", "delivered")
        await expect(page.locator("#d-title [data-status]")).to_have_attribute(
            "data-status", "delivered"
        )
        objects = page.get_by_test_id("object-row")
        expected_objects = [o["status"] for o in expected["objects"]]  # type: ignore[union-attr]
        await expect(objects).to_have_count(len(expected_objects))
        for n, object_status in enumerate(expected_objects):
            await expect(objects.nth(n)).to_have_attribute("data-status", str(object_status))
        await page.unroute_all()
        page.remove_listener("request", worker_race.on_request)
        await page.get_by_test_id("close-detail").click()
    assert page.errors == []


# --- server away ---------------------------------------------------------------------------


async def test_a_console_says_when_its_server_is_away_and_recovers(
    runtime: Runtime, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    port = free_port()
    queued = await make_event(
        session, tenancy.conn_a, status=EventStatus.QUEUED, operations=[OperationStatus.PENDING]
    )
    async with serving(runtime, port) as url:
        page = await open_console(browser, url, tenancy.token_a)
        await expect(page.get_by_test_id("live")).to_have_class("live on")
        await expect(page.get_by_test_id("offline")).to_be_hidden()

    offline = page.get_by_test_id("offline")
    await expect(offline).to_be_visible()
    await expect(offline).to_contain_text("not answering")
    await expect(page.get_by_test_id("live")).not_to_have_class("live on")
    await shot(page, "console-offline")

    # While it was away: a new event arrived, and the queued one was delivered.
    fresh = await make_event(session, tenancy.conn_a, user="while-away")
    await deliver_everything(session, queued)

    async with serving(runtime, port):
        await expect(offline).to_be_hidden()
        await expect(page.get_by_test_id("live")).to_have_class("live on")
        await expect(row(page, fresh)).to_have_count(1)
        await expect(row(page, queued)).to_have_attribute("data-status", "delivered")
        assert page.errors == []


# --- time range, deep links, time zone, keyboard -------------------------------------------


async def test_time_range_deep_link_zone_and_keyboard(
    server: str, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    now = datetime.now(UTC)
    await make_event(session, tenancy.conn_a, user="old", received_at=now - timedelta(days=2))
    middle = await make_event(
        session, tenancy.conn_a, user="middle", received_at=now - timedelta(hours=1)
    )
    newest = await make_event(session, tenancy.conn_a, user="newest", received_at=now)
    tokyo = ZoneInfo("Asia/Tokyo")
    page = await open_console(
        browser, server, tenancy.token_a, timezone_id="Asia/Tokyo", locale="en-US"
    )
    rows = page.get_by_test_id("event-row")
    await expect(rows).to_have_count(3)
    await shot(page, "console-events")

    # Times are in the browser's zone and say so.
    shown = rows.nth(0).locator("time")
    local = newest.received_at.astimezone(tokyo)
    await expect(shown).to_contain_text(local.strftime("%I:%M:%S"))
    await expect(shown).to_contain_text("GMT+9")

    since = (now - timedelta(hours=2)).astimezone(tokyo).strftime("%Y-%m-%dT%H:%M")
    until = (now + timedelta(hours=1)).astimezone(tokyo).strftime("%Y-%m-%dT%H:%M")
    await page.get_by_test_id("filter-since").fill(since)
    await page.get_by_test_id("filter-until").fill(until)
    await page.get_by_test_id("apply-filters").click()
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_have_attribute("data-event-id", str(newest.id))
    await expect(rows.nth(1)).to_have_attribute("data-event-id", str(middle.id))

    # Keyboard: arrows move, Enter opens, Esc closes and gives the row its focus back.
    await rows.nth(0).focus()
    await page.keyboard.press("ArrowDown")
    await expect(rows.nth(1)).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("detail-id")).to_have_text(str(middle.id))
    await shot(page, "console-detail")

    link = page.url
    assert f"event={middle.id}" in link
    assert "since=" in link
    assert "until=" in link

    # A reload restores the range and the open event.
    await page.reload()
    await expect(page.get_by_test_id("detail-id")).to_have_text(str(middle.id))
    await expect(page.get_by_test_id("filter-since")).to_have_value(since)
    await expect(page.get_by_test_id("filter-until")).to_have_value(until)
    await expect(rows).to_have_count(2)
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("detail")).to_be_hidden()
    assert "event=" not in page.url
    await expect(page.locator(f'tr[data-event-id="{middle.id}"]')).to_be_focused()

    # The link in another tab (signed in afresh) opens the same view.
    other = await open_console(
        browser,
        server,
        tenancy.token_a,
        path=link.removeprefix(server),
        timezone_id="Asia/Tokyo",
        locale="en-US",
    )
    await expect(other.get_by_test_id("detail-id")).to_have_text(str(middle.id))
    await expect(other.get_by_test_id("event-row")).to_have_count(2)
    assert page.errors == []
    assert other.errors == []


# --- what the detail says ------------------------------------------------------------------


async def test_attempts_are_coloured_by_class_and_notes_reasons_next_try_shown(
    server: str, browser: Browser, session: AsyncSession, tenancy: Tenancy
) -> None:
    note = "loyalty_points not sent: 'lots' is not an integer"
    event = await make_event(
        session,
        tenancy.conn_a,
        status=EventStatus.QUEUED,
        reason="retrying: Braze 503",
        normalized={"kind": "reward_fulfilled", MAPPING_NOTES_KEY: [note]},
        operations=[ObjectSpec(OperationStatus.PENDING, reason="Braze 503, retrying")],
    )
    ops = await operations_of(session, event)
    next_try = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    await session.execute(
        update(OutboxOperation)
        .where(OutboxOperation.id == ops[0].id)
        .values(attempts=4, available_at=next_try)
    )
    await session.commit()
    start = datetime.now(UTC) - timedelta(minutes=10)
    answers = [(201, "c2xx"), (400, "c4xx"), (503, "c5xx"), (429, "c429"), (None, "network")]
    for n, (code, _) in enumerate(answers):
        await make_attempt(
            session,
            tenancy.conn_a,
            ops,
            status_code=code,
            outcome="retry",
            started_at=start + timedelta(minutes=n),
            error="ConnectError" if code is None else None,
        )

    page = await open_console(browser, server, tenancy.token_a, timezone_id="UTC", locale="en-US")
    line = page.locator(f'tr[data-event-id="{event.id}"]')
    # The API shows a queued event's waiting object's reason and when it is tried again.
    await expect(line.get_by_test_id("row-reason")).to_contain_text(
        "Braze 503, retrying · next try 01/02/2030"
    )
    await line.click()
    attempts = page.get_by_test_id("attempt")
    await expect(attempts).to_have_count(len(answers))
    outcomes = [await attempts.nth(n).get_attribute("data-outcome") for n in range(len(answers))]
    assert sorted(outcomes) == sorted(cls for _, cls in answers)  # type: ignore[type-var]
    colours = await page.evaluate(
        "[...document.querySelectorAll('[data-testid=attempt]')]"
        ".map(n => getComputedStyle(n).borderLeftColor)"
    )
    assert len(set(colours)) == len(answers)  # each class its own colour

    await expect(page.get_by_test_id("detail-notes")).to_contain_text(note)
    await expect(page.get_by_test_id("detail-reason")).to_have_text("Braze 503, retrying")
    await expect(page.get_by_test_id("object-row").first).to_contain_text("Braze 503, retrying")
    retry = page.get_by_test_id("object-next-retry")
    await expect(retry).to_contain_text("next try")
    assert await retry.locator("time").get_attribute("datetime") is not None
    await shot(page, "console-attempts")
    await expect(page.get_by_test_id("detail-next-retry")).to_contain_text(
        "01/02/2030, 03:04:05 AM UTC"
    )
    assert page.errors == []


# --- the stream over HTTP ------------------------------------------------------------------


async def read_messages(
    lines: AsyncIterator[str], count: int
) -> list[tuple[str, dict[str, object]]]:
    """The next `count` created/updated messages of an SSE response's lines."""
    messages: list[tuple[str, dict[str, object]]] = []
    kind = ""
    async for line in lines:
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            messages.append((kind, json.loads(line[5:])))
            if len(messages) == count:
                break
    return messages


async def test_a_stream_starts_with_the_current_state_of_the_events_it_watches(
    server: str, session: AsyncSession, tenancy: Tenancy
) -> None:
    """What the console shows may be older than the stream: a watched event that settled
    before the stream (re)started is reported at once, and another tenant's id never is."""
    settled = await make_event(
        session, tenancy.conn_a, status=EventStatus.QUEUED, operations=[OperationStatus.PENDING]
    )
    theirs = await make_event(session, tenancy.conn_b, status=EventStatus.QUEUED)
    await deliver_everything(session, settled)
    params = [("watch", str(theirs.id)), ("watch", str(settled.id))]
    async with (
        httpx.AsyncClient(base_url=server, timeout=15) as client,
        client.stream(
            "GET", "/v1/events/stream", params=params, headers=tenancy.headers_a()
        ) as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()
        first = await asyncio.wait_for(read_messages(lines, 1), 10)
        later = await make_event(session, tenancy.conn_a, user="later")
        second = await asyncio.wait_for(read_messages(lines, 1), 10)

    assert [(kind, item["id"], item["status"]) for kind, item in first] == [
        ("updated", str(settled.id), "delivered")
    ]
    assert [(kind, item["id"]) for kind, item in second] == [("created", str(later.id))]


async def test_open_streams_share_one_listen_and_one_notify_wakes_them_all(
    server: str, session: AsyncSession, tenancy: Tenancy
) -> None:
    async with (
        httpx.AsyncClient(base_url=server, timeout=15) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        streams = [
            await stack.enter_async_context(
                client.stream("GET", "/v1/events/stream", headers=tenancy.headers_a())
            )
            for _ in range(5)
        ]
        for response in streams:
            assert response.status_code == 200
        listening = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
        fresh = await make_event(session, tenancy.conn_a, user="everyone")
        received = await asyncio.wait_for(
            asyncio.gather(*(read_messages(r.aiter_lines(), 1) for r in streams)), 10
        )

    assert listening == 1
    assert [[item["id"] for _, item in messages] for messages in received] == [[str(fresh.id)]] * 5
