"""`braze_bridge_merge_rewards` (SQL) against a plain-Python statement of the merge rules."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import asyncpg_dsn

NO_COUPON_STATES = {"CANCELED", "REVOKED"}


def reference_merge(
    stored: list[dict[str, Any]], snapshot: dict[str, Any], keep: int
) -> list[dict[str, Any]]:
    """The rules in Python: newest state of a reward wins (a late older delivery changes
    nothing); a state without a coupon keeps the known code unless CANCELED/REVOKED; newest
    first (stable for equal times), at most `keep`."""
    new = snapshot
    merged = []
    for entry in stored:
        if entry.get("reward_id") != snapshot["reward_id"]:
            merged.append(entry)
            continue
        if str(entry.get("updated_at", "")) > new["updated_at"]:
            new = entry
        elif new["coupon_code"] is None and snapshot["state"] not in NO_COUPON_STATES:
            new = {**new, "coupon_code": entry.get("coupon_code")}
    merged.append(new)
    merged.sort(key=lambda entry: str(entry.get("updated_at", "")), reverse=True)
    return merged[:keep]


snapshots = st.fixed_dictionaries(
    {
        "reward_id": st.sampled_from(["r1", "r2", "r3", "r4"]),
        "state": st.sampled_from(
            ["EARNED", "FULFILLED", "SENT", "REDEEMED", "CANCELED", "REVOKED"]
        ),
        "face_value": st.one_of(st.none(), st.integers(0, 100).map(float)),
        "face_value_type": st.sampled_from([None, "USD", "PERCENT_OFF"]),
        "coupon_code": st.sampled_from([None, "AAA", "BBB"]),
        # Few distinct times, so equal times (order ties) and late arrivals both happen.
        "updated_at": st.sampled_from([f"2024-05-0{d}T10:00:00+00:00" for d in range(1, 6)]),
    }
)


@pytest.fixture
async def db(database_url: str) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    yield conn
    await conn.close()


async def sql_merge(
    db: asyncpg.Connection, stored: list[dict[str, Any]], news: list[dict[str, Any]], keep: int
) -> list[dict[str, Any]]:
    text = await db.fetchval(
        "SELECT braze_bridge_merge_rewards($1::text::jsonb, $2::text::jsonb, $3)::text",
        json.dumps(stored),
        json.dumps(news),
        keep,
    )
    result: list[dict[str, Any]] = json.loads(text)
    return result


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    history=st.lists(snapshots, max_size=12),
    batch=st.lists(snapshots, min_size=1, max_size=4),
    keep=st.integers(1, 5),
)
async def test_sql_merge_follows_the_rules(
    db: asyncpg.Connection,
    history: list[dict[str, Any]],
    batch: list[dict[str, Any]],
    keep: int,
) -> None:
    stored: list[dict[str, Any]] = []
    for snapshot in history:
        stored = reference_merge(stored, snapshot, keep)
    expected = stored
    for snapshot in batch:
        expected = reference_merge(expected, snapshot, keep)

    assert await sql_merge(db, stored, batch, keep) == expected


async def test_a_late_older_state_keeps_the_newer_one_and_its_coupon(
    db: asyncpg.Connection,
) -> None:
    fulfilled = {
        "reward_id": "r1",
        "state": "FULFILLED",
        "face_value": 20.0,
        "face_value_type": "PERCENT_OFF",
        "coupon_code": "RAF12345",
        "updated_at": "2024-05-29T14:15:02.001000+00:00",
    }
    earned_late = {
        **fulfilled,
        "state": "EARNED",
        "coupon_code": None,
        "updated_at": "2024-05-29T14:14:18.548000+00:00",
    }
    sent = {
        **fulfilled,
        "state": "SENT",
        "coupon_code": None,
        "updated_at": "2024-05-29T14:16:40.300000+00:00",
    }
    canceled = {
        **fulfilled,
        "state": "CANCELED",
        "coupon_code": None,
        "updated_at": "2024-06-03T08:00:00+00:00",
    }

    assert await sql_merge(db, [fulfilled], [earned_late], 20) == [fulfilled]
    assert await sql_merge(db, [fulfilled], [sent], 20) == [{**sent, "coupon_code": "RAF12345"}]
    assert await sql_merge(db, [fulfilled], [sent, canceled], 20) == [canceled]
