"""Reward states as event-log kinds, through the real webhook route (so not in the rollback
tier: ingest commits on its own connection)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.extole_bodies import REWARD_FULFILLED
from tests.integration.hooks_helpers import post_signed
from tests.integration.test_event_log_truth import GRACE, event_of, listed
from tests.ops_factories import Tenancy


class TestKinds:
    async def test_an_extole_reward_is_logged_with_its_state(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        tenancy: Tenancy,
    ) -> None:
        """extole/product-docs (reward webhooks, research "States and event names"): each state
        of a reward fires its own webhook, named `reward_<state>`; `reward_fulfilled` is the one
        Extole's Braze integration sends by default."""
        response = await post_signed(client, tenancy.conn_a, REWARD_FULFILLED)
        assert response.status_code == 200, response.text
        event_id = response.json()["event_id"]
        shared = await event_of(session, tenancy.conn_a, GRACE, kind="shared")

        by_state = await listed(client, tenancy.headers_a(), kind="reward_fulfilled")
        any_reward = await listed(client, tenancy.headers_a(), kind="reward")
        other_state = await listed(client, tenancy.headers_a(), kind="reward_sent")
        shares = await listed(client, tenancy.headers_a(), kind="shared")

        assert [(i["id"], i["kind"]) for i in by_state] == [(event_id, "reward_fulfilled")]
        assert [i["id"] for i in any_reward] == [event_id]
        assert other_state == []
        assert [i["id"] for i in shares] == [str(shared.id)]
        detail = (await client.get(f"/v1/events/{event_id}", headers=tenancy.headers_a())).json()
        assert (detail["kind"], detail["normalized"]["state"]) == ("reward_fulfilled", "FULFILLED")

    async def test_a_reward_without_a_state_is_kind_reward(
        self, client: httpx.AsyncClient, tenancy: Tenancy
    ) -> None:
        """extole/product-docs: a reward webhook "always contains the `reward_id` and the
        `data` parameters"; such a body names no state."""
        body = {"reward_id": "b600f6fdd06c83f8ffdd6309", "data": {"email": "ada@example.com"}}
        response = await post_signed(client, tenancy.conn_a, body)
        assert response.status_code == 200, response.text

        items = await listed(client, tenancy.headers_a(), kind="reward")

        assert [(i["id"], i["kind"]) for i in items] == [(response.json()["event_id"], "reward")]
