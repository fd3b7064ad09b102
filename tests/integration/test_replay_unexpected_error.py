"""A bug during a single-event replay: a generic 500 in the contract's shape, logged once,
with no SQL, bound parameters or personal data in the answer or the log, and nothing kept."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.domain.statuses import EventStatus, OperationStatus
from braze_bridge.ops import replay as replay_service
from tests.ops_factories import Tenancy, make_event, make_tenancy, operations_of, reload_event

PERSONAL = "alice.replay@example.com"


async def failing_mark_event_queued(session: AsyncSession, event_id: uuid.UUID) -> None:
    """A real database error whose text holds the statement and a personal parameter."""
    await session.execute(text("SELECT CAST(CAST(:email AS text) AS integer)"), {"email": PERSONAL})


async def test_a_database_failure_mid_replay_is_a_clean_500_logged_once(
    client: httpx.AsyncClient,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenancy: Tenancy = await make_tenancy(session)
    event = await make_event(
        session,
        tenancy.conn_a,
        status=EventStatus.DEAD,
        user=PERSONAL,
        operations=[OperationStatus.DEAD, OperationStatus.DELIVERED],
    )
    # Fails after the objects were put back to pending in the same transaction.
    monkeypatch.setattr(replay_service.replay_repo, "mark_event_queued", failing_mark_event_queued)

    with structlog.testing.capture_logs() as logged:
        # The client fixture re-raises whatever the app raises: an answer proves the error
        # went no further (no second "Exception in ASGI application" from the server).
        response = await client.post(f"/v1/events/{event.id}/replay", headers=tenancy.headers_a())

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal error; the request was not completed",
            "details": None,
        }
    }
    errors = [entry for entry in logged if entry["log_level"] == "error"]
    assert [entry["event"] for entry in errors] == ["http.unhandled_error"]
    assert errors[0]["error"] == "DBAPIError"
    assert errors[0]["sqlstate"] == "22P02"  # invalid_text_representation
    # Where, without what: this project's frames by file, line and function, from the route in.
    assert errors[0]["where"][0].startswith("events.py:")
    assert errors[0]["where"][0].endswith(" replay_one")
    assert any(frame.startswith("replay.py:") for frame in errors[0]["where"])
    written = json.dumps(logged, default=str) + capsys.readouterr().err
    for leak in (PERSONAL, "SELECT", "CAST", "integer"):
        assert leak not in written
        assert leak not in response.text

    # The transaction was rolled back: nothing was put back to pending.
    assert [op.status for op in await operations_of(session, event)] == [
        OperationStatus.DEAD,
        OperationStatus.DELIVERED,
    ]
    assert (await reload_event(session, event)).status == EventStatus.DEAD
