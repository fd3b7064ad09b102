"""The keyset cursor codec shared by the connection list and the event log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from braze_bridge.db.pagination import KeysetCursor

CONNECTIONS = KeysetCursor("c1", datetime, uuid.UUID)
EVENTS = KeysetCursor("e1", uuid.UUID)


def test_a_cursor_gives_back_the_key_it_was_made_from() -> None:
    key = (datetime(2026, 12, 3, 13, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())
    cursor = CONNECTIONS.encode(*key)
    assert "=" not in cursor
    assert CONNECTIONS.decode(cursor) == key


def test_a_cursor_of_another_list_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown cursor format"):
        CONNECTIONS.decode(EVENTS.encode(uuid.uuid4()))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        KeysetCursor("c1", uuid.UUID, uuid.UUID).encode(uuid.uuid4(), uuid.uuid4()),
        KeysetCursor("c1", datetime, uuid.UUID).encode(datetime(2026, 1, 1), uuid.uuid4()),  # noqa: DTZ001
    ],
    ids=["empty", "not-base64", "wrong-kinds", "time-without-zone"],
)
def test_anything_else_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match=r"base64|format"):
        CONNECTIONS.decode(cursor)
