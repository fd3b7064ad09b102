"""What preview says the mapping left out is what the event log shows for the stored event:
the list's `reason` and `notes`, the detail's `notes`, before and after delivery."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.delivery_support import drain, make_worker, sandbox_client
from tests.factories import MadeConnection
from tests.integration.test_antavo_webhooks import MEMBER, connection, post, token

__all__ = ["connection"]  # the Antavo connection fixture (JWT, typed field mappings)

BODY: dict[str, Any] = {
    "type": "identify",
    "userId": MEMBER,
    "timestamp": "2024-11-26T15:19:14Z",
    "traits": {"score": "lots", "tier": "Gold"},
}


async def test_antavo_coercion_notes_are_stored_and_shown_on_the_event(
    client: httpx.AsyncClient,
    connection: MadeConnection,
    sessionmaker: async_sessionmaker[AsyncSession],
    operator_headers: dict[str, str],
) -> None:
    """Antavo's identify body (docs/antavo.md, field mappings typed `integer`): a trait that is
    not an integer is not sent as one; braze-inc/braze-docs
    `_docs/_api/objects_filters/user_attributes_object.md` types custom attributes."""
    preview = await client.post(
        f"/v1/connections/{connection.id}/preview",
        content=json.dumps(BODY),
        headers=operator_headers,
    )
    assert preview.status_code == 200, preview.text
    notes = preview.json()["notes"]
    assert notes == [
        'loyalty_points (from score) not sent: "lots" is not an integer (type integer)'
    ]

    response = await post(client, connection, BODY, token(connection.webhook_secret))
    assert response.status_code == 200, response.text
    event_id = response.json()["event_id"]

    async def shown() -> tuple[dict[str, Any], dict[str, Any]]:
        page = await client.get("/v1/events", headers=operator_headers)
        (item,) = [i for i in page.json()["items"] if i["id"] == event_id]
        detail = await client.get(f"/v1/events/{event_id}", headers=operator_headers)
        return item, detail.json()

    item, detail = await shown()
    assert (item["status"], item["reason"], item["notes"]) == ("queued", notes[0], notes)
    assert (detail["reason"], detail["notes"]) == (notes[0], notes)

    http, _ = sandbox_client()
    async with http:
        await drain(make_worker(sessionmaker, http))

    item, detail = await shown()
    assert (item["status"], item["reason"], item["notes"]) == ("delivered", notes[0], notes)
    assert (detail["status"], detail["notes"]) == ("delivered", notes)
    [sent] = [obj["sent_object"] for obj in detail["objects"]]
    assert sent == {"external_id": MEMBER, "loyalty_tier": "Gold"}
