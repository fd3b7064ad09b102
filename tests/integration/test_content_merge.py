"""The Connected Content rewards the ingest statement keeps, against a plain-Python statement of
the rules, through `store_events_on_driver` and `get_content` on real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from braze_bridge.db.repositories import content as content_repo
from braze_bridge.db.repositories import ingest_batch
from braze_bridge.db.repositories.ingest_batch import IngestRecord, store_events_on_driver
from braze_bridge.domain.content import ContentUpdate, RewardSnapshot
from braze_bridge.domain.ids import uuid7
from braze_bridge.domain.statuses import EventStatus
from tests.conftest import asyncpg_dsn
from tests.factories import MadeConnection, make_connection, make_tenant

NO_COUPON_STATES = {"CANCELED", "REVOKED"}
KEEP = 3  # small, so that trimming happens in few examples


@dataclass(frozen=True)
class Kept:
    snapshot: RewardSnapshot
    changed: int  # when its state last changed: orders equal times


def reference_batch(
    kept: dict[str, Kept], batch: Sequence[RewardSnapshot], clock: int, keep: int
) -> tuple[dict[str, Kept], int]:
    """The rules in Python, for one statement. Each snapshot in order: the newest state of a reward wins, equal
    times included (a late older delivery changes nothing, not even the order); a state
    without a coupon keeps the known code unless CANCELED/REVOKED. After the batch, rewards
    that ranked beyond `keep` before it are dropped, except those it changed."""
    before = shown(kept, len(kept))
    doomed = {s.reward_id for s in before[keep:]} - {s.reward_id for s in batch}
    kept = dict(kept)
    for snapshot in batch:
        clock += 1
        held = kept.get(snapshot.reward_id)
        if held is not None and held.snapshot.updated_at > snapshot.updated_at:
            continue
        if (
            held is not None
            and snapshot.coupon_code is None
            and snapshot.state not in NO_COUPON_STATES
        ):
            snapshot = replace(snapshot, coupon_code=held.snapshot.coupon_code)
        kept[snapshot.reward_id] = Kept(snapshot, clock)
    return {k: v for k, v in kept.items() if k not in doomed}, clock


def statements(batch: Sequence[RewardSnapshot]) -> list[list[RewardSnapshot]]:
    """A batch is written by one statement per run in which no reward repeats."""
    runs: list[list[RewardSnapshot]] = [[]]
    for snapshot in batch:
        if any(s.reward_id == snapshot.reward_id for s in runs[-1]):
            runs.append([])
        runs[-1].append(snapshot)
    return runs


def shown(kept: dict[str, Kept], limit: int) -> list[RewardSnapshot]:
    ordered = sorted(kept.values(), key=lambda k: (-k.snapshot.updated_at.timestamp(), k.changed))
    return [k.snapshot for k in ordered[:limit]]


snapshots = st.builds(
    RewardSnapshot,
    reward_id=st.sampled_from(["r1", "r2", "r3", "r4", "r5"]),
    state=st.sampled_from(["EARNED", "FULFILLED", "SENT", "REDEEMED", "CANCELED", "REVOKED"]),
    face_value=st.one_of(st.none(), st.integers(0, 100).map(float)),
    face_value_type=st.sampled_from([None, "USD", "PERCENT_OFF"]),
    coupon_code=st.sampled_from([None, "AAA", "BBB"]),
    # Few distinct times, so equal times (order ties) and late arrivals both happen.
    updated_at=st.sampled_from([datetime(2024, 5, day, 10, tzinfo=UTC) for day in range(1, 6)]),
)


@pytest.fixture
async def driver(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()


@pytest.fixture
async def connection(session: AsyncSession) -> MadeConnection:
    return await make_connection(session, await make_tenant(session))


def record(connection: MadeConnection, user: str, change: ContentUpdate) -> IngestRecord:
    event_id = uuid7()
    return IngestRecord(
        id=event_id,
        tenant_id=connection.row.tenant_id,
        connection_id=connection.id,
        dedupe_key=f"event:{event_id}",
        status=EventStatus.FILTERED,
        received_at=datetime.now(UTC),
        body=b"{}",
        headers={},
        content_type="application/json",
        content=change,
    )


def reward_record(connection: MadeConnection, user: str, snapshot: RewardSnapshot) -> IngestRecord:
    return record(connection, user, ContentUpdate(user, snapshot.updated_at, reward=snapshot))


async def rewards_shown(
    engine: AsyncEngine, connection: MadeConnection, user: str
) -> list[dict[str, Any]]:
    async with AsyncSession(engine) as session:
        view = await content_repo.get_content(session, connection.id, user)
    assert view is not None
    return view.rewards


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.lists(snapshots, min_size=1, max_size=4), min_size=1, max_size=6))
async def test_kept_rewards_follow_the_rules(
    driver: asyncpg.Connection,
    engine: AsyncEngine,
    connection: MadeConnection,
    monkeypatch: pytest.MonkeyPatch,
    batches: list[list[RewardSnapshot]],
) -> None:
    monkeypatch.setattr(ingest_batch, "MAX_REWARDS_KEPT", KEEP)
    monkeypatch.setattr(content_repo, "MAX_REWARDS_KEPT", KEEP)
    user = f"user-{uuid.uuid4().hex}"
    kept: dict[str, Kept] = {}
    clock = 0
    for batch in batches:
        await store_events_on_driver(driver, [reward_record(connection, user, s) for s in batch])
        for run in statements(batch):
            kept, clock = reference_batch(kept, run, clock, KEEP)

    assert await rewards_shown(engine, connection, user) == [s.as_json() for s in shown(kept, KEEP)]
    stored = await driver.fetchval(
        "SELECT count(*) FROM content_rewards WHERE connection_id = $1 AND external_id = $2",
        connection.id,
        user,
    )
    assert stored == len(kept)


async def test_a_late_older_state_keeps_the_newer_one_and_its_coupon(
    driver: asyncpg.Connection, engine: AsyncEngine, connection: MadeConnection
) -> None:
    fulfilled = RewardSnapshot(
        "r1",
        "FULFILLED",
        20.0,
        "PERCENT_OFF",
        "RAF12345",
        datetime(2024, 5, 29, 14, 15, 2, 1000, UTC),
    )
    earned_late = replace(
        fulfilled,
        state="EARNED",
        coupon_code=None,
        updated_at=datetime(2024, 5, 29, 14, 14, tzinfo=UTC),
    )
    sent = replace(
        fulfilled,
        state="SENT",
        coupon_code=None,
        updated_at=datetime(2024, 5, 29, 14, 16, tzinfo=UTC),
    )
    canceled = replace(
        fulfilled, state="CANCELED", coupon_code=None, updated_at=datetime(2024, 6, 3, tzinfo=UTC)
    )

    async def after(*batches: list[RewardSnapshot]) -> list[dict[str, Any]]:
        user = f"user-{uuid.uuid4().hex}"
        for batch in batches:
            await store_events_on_driver(
                driver, [reward_record(connection, user, s) for s in batch]
            )
        return await rewards_shown(engine, connection, user)

    assert await after([fulfilled], [earned_late]) == [fulfilled.as_json()]
    assert await after([fulfilled], [sent]) == [replace(sent, coupon_code="RAF12345").as_json()]
    # Both changes in one batch: two statements in one transaction, same outcome.
    assert await after([fulfilled, sent]) == [replace(sent, coupon_code="RAF12345").as_json()]
    assert await after([fulfilled], [sent, canceled]) == [canceled.as_json()]


async def test_only_the_newest_rewards_are_kept(
    driver: asyncpg.Connection, engine: AsyncEngine, connection: MadeConnection
) -> None:
    user = "ada"
    day = [datetime(2024, 5, 1, tzinfo=UTC).replace(day=d) for d in range(1, 29)]
    rewards = [RewardSnapshot(f"r{n}", "EARNED", 5.0, "USD", None, day[n]) for n in range(25)]
    for reward in rewards:
        await store_events_on_driver(driver, [reward_record(connection, user, reward)])

    shown_now = await rewards_shown(engine, connection, user)
    stored = await driver.fetchval(
        "SELECT count(*) FROM content_rewards WHERE external_id = $1", user
    )

    assert shown_now == [r.as_json() for r in reversed(rewards[5:])]
    assert stored == 21  # the oldest beyond 20 goes when this user's next reward comes


async def test_share_link_only_and_reward_only_users_both_have_content(
    driver: asyncpg.Connection, engine: AsyncEngine, connection: MadeConnection
) -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    reward = RewardSnapshot("r1", "EARNED", None, None, None, at)
    await store_events_on_driver(
        driver,
        [
            record(connection, "linked", ContentUpdate("linked", at, share_link="https://s/x")),
            reward_record(connection, "rewarded", reward),
        ],
    )

    async with AsyncSession(engine) as session:
        linked = await content_repo.get_content(session, connection.id, "linked")
        rewarded = await content_repo.get_content(session, connection.id, "rewarded")
        nobody = await content_repo.get_content(session, connection.id, "nobody")

    assert linked == content_repo.ContentView("https://s/x", None, [])
    assert rewarded == content_repo.ContentView(None, None, [reward.as_json()])
    assert nobody is None
