"""Hostile strings in webhook bodies (NUL, lone surrogates, huge numbers) at ingest and replay.

Postgres text and jsonb cannot hold U+0000 or a lone surrogate, and Braze cannot receive them
in an identifier. Ingest and replay store other strings cleaned the same way
(`clean_text`); an identifier that holds one is never rewritten: the event ends `rejected`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.domain.statuses import EventStatus, ObjectKind
from tests.ops_factories import Tenancy, make_event, make_tenancy, operations_of, reload_event

RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# As JSON text: the escapes reach Python as NUL and lone surrogates when the body is parsed.
HOSTILE_NAMES = (
    b'{"type": "reward_fulfilled", "event_id": "evt-h1", "reward_id": "r-1",'
    b' "partner_user_id": "u-1", "email": "ada@example.com",'
    b' "first_name": "Ada\\u0000", "last_name": "\\udfffX\\ud800"}'
)


async def replay(client: httpx.AsyncClient, tenancy: Tenancy, event_id: object) -> httpx.Response:
    return await client.post(f"/v1/events/{event_id}/replay", headers=tenancy.headers_a())


class TestReplayCleansStoredText:
    async def test_a_remap_of_names_with_nul_and_lone_surrogates_is_stored_cleaned(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tenancy = await make_tenancy(session)
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.REJECTED,
            reason="unknown shape",
            user=None,
            received_at=RECEIVED,
            body=HOSTILE_NAMES,
        )

        response = await replay(client, tenancy, event.id)

        assert response.status_code == 200
        assert response.json() == {
            "event_id": str(event.id),
            "status": "queued",
            "requeued": 2,
            "remapped": True,
        }
        refreshed = await reload_event(session, event)
        assert (refreshed.status, refreshed.user_key) == (EventStatus.QUEUED, "id:u-1")
        assert refreshed.normalized is not None
        assert (refreshed.normalized["first_name"], refreshed.normalized["last_name"]) == (
            "Ada",
            "?X?",
        )
        attributes, custom_event = await operations_of(session, event)
        assert (attributes.kind, attributes.external_id) == (ObjectKind.ATTRIBUTES, "u-1")
        assert attributes.payload == {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "?X?",
        }
        assert custom_event.kind == ObjectKind.EVENTS
