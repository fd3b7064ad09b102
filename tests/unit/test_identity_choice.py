"""Which profile an email lookup addresses when several profiles share the email.

braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md` (email as identifier:
"Braze prioritizes the most recently updated profile with an external ID", else the most
recently updated profile) and `_docs/_api/endpoints/export/user_data/post_users_identifier.md`
(the export has `created_at`, `custom_events[].last`, `purchases[].last`, `apps[].last_used`,
no "last updated" field).
"""

from __future__ import annotations

from typing import Any

from braze_bridge.braze.models import parse_export_users, profile_braze_would_update


def chosen(users: list[dict[str, Any]]) -> tuple[str | None, str | None] | None:
    found = profile_braze_would_update(parse_export_users({"users": users, "message": "success"}))
    return None if found is None else (found.external_id, found.braze_id)


def test_the_latest_active_profile_with_an_external_id_wins_over_the_first_in_the_answer() -> None:
    assert chosen(
        [
            {"external_id": "old", "braze_id": "b1", "created_at": "2025-01-01T00:00:00.000Z"},
            {
                "external_id": "recent",
                "braze_id": "b2",
                "created_at": "2024-01-01T00:00:00.000Z",
                "custom_events": [{"name": "x", "last": "2026-05-01T00:00:00.000Z", "count": 1}],
            },
            {
                "braze_id": "b3",
                "created_at": "2026-06-01T00:00:00.000Z",
                "purchases": [{"name": "p", "last": "2026-07-01T00:00:00.000Z", "count": 1}],
            },
        ]
    ) == ("recent", "b2")


def test_session_dates_count_as_activity() -> None:
    assert chosen(
        [
            {"external_id": "a", "created_at": "2026-01-01T00:00:00Z"},
            {
                "external_id": "b",
                "created_at": "2025-01-01T00:00:00Z",
                "apps": [{"name": "app", "last_used": "2026-02-01T00:00:00Z"}],
            },
        ]
    ) == ("b", None)


def test_without_an_identified_profile_the_latest_unidentified_one_is_used() -> None:
    assert chosen(
        [
            {"braze_id": "b1", "created_at": "2026-01-01T00:00:00Z"},
            {"braze_id": "b2", "created_at": "2026-03-01T00:00:00Z"},
        ]
    ) == (None, "b2")


def test_undated_profiles_keep_the_answers_order_and_empty_ones_are_ignored() -> None:
    assert chosen([{}, {"external_id": "first"}, {"external_id": "second"}]) == ("first", None)
    assert chosen([{}]) is None
    assert chosen([]) is None


def test_a_date_braze_did_not_format_is_ignored_not_fatal() -> None:
    assert chosen(
        [
            {"external_id": "a", "created_at": "yesterday"},
            {"external_id": "b", "created_at": "2026-01-01T00:00:00Z"},
        ]
    ) == ("b", None)
