"""Migration 0006_event_user_search: rewards stored before it are listed with their state, and
back to `reward` on downgrade."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import migrate
from tests.factories import make_tenant_with_token
from tests.ops_factories import make_event, make_tenancy

BEFORE = "0002_extole_settings_names"


async def _kinds(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(text("SELECT source_event_id, kind FROM events"))
    return {row.source_event_id: row.kind for row in rows}


async def test_rewards_stored_before_get_their_state_as_kind(
    database_url: str, session: AsyncSession
) -> None:
    tenancy = await make_tenancy(
        session,
        await make_tenant_with_token(session, "acme"),
        await make_tenant_with_token(session, "globex"),
    )
    await asyncio.to_thread(migrate.downgrade, database_url, BEFORE)
    for source_id, state in (
        ("fulfilled", "FULFILLED"),
        ("untyped", None),
        ("canceled", "CANCELED"),
    ):
        await make_event(
            session,
            tenancy.conn_a,
            kind="reward",
            source_event_id=source_id,
            normalized={"kind": "reward", "state": state},
        )
    await make_event(session, tenancy.conn_a, kind="shared", source_event_id="share")

    await asyncio.to_thread(migrate.upgrade, database_url, "head")
    upgraded = await _kinds(session)
    await session.commit()
    await asyncio.to_thread(migrate.downgrade, database_url, BEFORE)
    downgraded = await _kinds(session)
    await session.commit()
    await asyncio.to_thread(migrate.upgrade, database_url, "head")

    assert upgraded == {
        "fulfilled": "reward_fulfilled",
        "untyped": "reward",
        "canceled": "reward_canceled",
        "share": "shared",
    }
    assert downgraded == {
        "fulfilled": "reward",
        "untyped": "reward",
        "canceled": "reward",
        "share": "shared",
    }
