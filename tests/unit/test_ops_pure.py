"""Pure parts of ops: cursors, header redaction, health judgement, re-map decisions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from braze_bridge.db.repositories.event_log import (
    decode_cursor,
    display_user,
    encode_cursor,
    user_key_candidates,
)
from braze_bridge.domain.mapping import MappingContext
from braze_bridge.domain.statuses import ConnectionState, EventStatus, HealthStatus
from braze_bridge.ops.events import redact_headers
from braze_bridge.ops.health import judge_health
from braze_bridge.ops.remap import MAPPED_VERSION_KEY, RemapImpossible, needs_remap, remap_event
from tests.fake_partner import FakePartner

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class TestCursor:
    def test_round_trips_and_is_opaque(self) -> None:
        event_id = uuid.uuid4()
        cursor = encode_cursor(event_id)
        assert str(event_id) not in cursor
        assert "=" not in cursor
        assert decode_cursor(cursor) == event_id

    @pytest.mark.parametrize("cursor", ["", "%%%", "AAAA", encode_cursor(uuid.uuid4())[:-2]])
    def test_foreign_cursors_are_refused(self, cursor: str) -> None:
        with pytest.raises(ValueError, match=r"base64|format"):
            decode_cursor(cursor)


def test_user_matching_covers_both_key_forms() -> None:
    assert user_key_candidates(" Ada@Example.com ") == [
        "Ada@Example.com",
        "id:Ada@Example.com",
        "email:ada@example.com",
    ]
    assert display_user("email:ada@example.com") == "ada@example.com"
    assert display_user("id:42") == "42"


def test_credential_headers_are_redacted_case_insensitively() -> None:
    shown = redact_headers(
        {
            "Authorization": "Bearer x",
            "x-extole-signature": "sha256=ab",
            "X-Api-Key": "k",
            "Cookie": "c",
            "Content-Type": "application/json",
        }
    )
    assert shown == {
        "Authorization": "[redacted]",
        "x-extole-signature": "[redacted]",
        "X-Api-Key": "[redacted]",
        "Cookie": "[redacted]",
        "Content-Type": "application/json",
    }


class TestJudgeHealth:
    def judge(self, **overrides: object) -> HealthStatus:
        facts: dict[str, object] = {
            "state": ConnectionState.ACTIVE,
            "rate_limited_until": None,
            "oldest_pending_age_seconds": None,
            "counts_last_hour": {},
            "last_error": None,
            "now": NOW,
        }
        facts.update(overrides)
        return judge_health(**facts)  # type: ignore[arg-type]

    def test_stored_state_wins_over_symptoms(self) -> None:
        assert (
            self.judge(state=ConnectionState.PAUSED, counts_last_hour={"dead": 3})
            == HealthStatus.PAUSED
        )

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({}, HealthStatus.OK),
            ({"oldest_pending_age_seconds": 14 * 60}, HealthStatus.OK),
            ({"oldest_pending_age_seconds": 16 * 60}, HealthStatus.DEGRADED),
            ({"counts_last_hour": {"partially_delivered": 1}}, HealthStatus.DEGRADED),
            # An error stays until an attempt succeeds (which clears it), however old.
            ({"last_error": "braze 503 on /users/track (server error)"}, HealthStatus.DEGRADED),
            ({"rate_limited_until": NOW + timedelta(seconds=1)}, HealthStatus.RATE_LIMITED),
        ],
    )
    def test_symptoms(self, overrides: dict[str, object], expected: HealthStatus) -> None:
        assert self.judge(**overrides) == expected


class TestRemap:
    @pytest.mark.parametrize(
        ("status", "normalized", "version", "expected"),
        [
            (EventStatus.REJECTED, None, 1, True),
            (EventStatus.FILTERED, {MAPPED_VERSION_KEY: 1}, 1, True),
            (EventStatus.DEAD, {MAPPED_VERSION_KEY: 1}, 2, True),
            (EventStatus.DEAD, {MAPPED_VERSION_KEY: 2}, 2, False),
            (EventStatus.DEAD, {"kind": "x"}, 5, False),
        ],
    )
    def test_when_to_remap(
        self,
        status: EventStatus,
        normalized: dict[str, object] | None,
        version: int,
        expected: bool,
    ) -> None:
        assert needs_remap(status, normalized, version) is expected

    def test_remap_records_the_settings_version(self) -> None:
        outcome = remap_event(
            FakePartner(),
            b'{"type": "shared", "partner_user_id": "u"}',
            {"loyalty_attribute": "pts"},
            MappingContext(received_at=NOW),
            connection_version=7,
        )
        assert outcome.status == EventStatus.QUEUED
        assert outcome.normalized is not None
        assert outcome.normalized[MAPPED_VERSION_KEY] == 7
        assert [op.payload for op in outcome.operations][1] == {"pts": 10}

    def test_invalid_json_is_rejected_and_invalid_settings_refused(self) -> None:
        rejected = remap_event(
            FakePartner(), b"{nope", {}, MappingContext(received_at=NOW), connection_version=1
        )
        assert rejected.status == EventStatus.REJECTED
        assert "not valid JSON" in (rejected.reason or "")
        with pytest.raises(RemapImpossible, match="settings are invalid"):
            remap_event(
                FakePartner(),
                b"{}",
                {"unknown": 1},
                MappingContext(received_at=NOW),
                connection_version=1,
            )
