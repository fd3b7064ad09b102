"""Opaque 400s on multi-object requests are split to isolate the bad object(s).

An object is failed only after Braze refused it sent alone; a request refused as too large
(braze-inc/braze-docs `_docs/_api/errors.md`: 400 "Max Input Length Exceeded", 413) is resent
in halves, since the refusal says nothing against any one object
(braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md`: 75 objects combined,
50 for Monthly Active Users CY 24-25 accounts).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from braze_bridge.braze.client import BrazeReply
from braze_bridge.delivery.batcher import Outgoing, TrackRequest, pack_track_requests
from braze_bridge.delivery.track_reply import deliver_track_request


def request_of(n: int) -> TrackRequest:
    items = [
        Outgoing(i, f"u{i}", "events", f'"external_id":"u{i}"', json.dumps({"name": f"e{i}"}))
        for i in range(n)
    ]
    (request,) = pack_track_requests(items).requests
    return request


class FakeBraze:
    """Answers 400 (naming nothing) to any request carrying a bad object, 201 otherwise."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.bodies: list[dict[str, list[dict[str, str]]]] = []

    async def __call__(self, body: str) -> BrazeReply:
        parsed = json.loads(body)
        self.bodies.append(parsed)
        names = {obj["name"] for obj in parsed["events"]}
        if names & self.bad:
            return BrazeReply(400, '{"message": "Bad Request"}', {}, 1.0)
        return BrazeReply(201, '{"message": "success"}', {}, 1.0)


def clock() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize("bad_index", [0, 1, 36, 37, 38, 50, 73, 74])
async def test_one_bad_object_among_75_is_isolated_in_at_most_7_extra_requests_then_sent_alone(
    bad_index: int,
) -> None:
    braze = FakeBraze({f"e{bad_index}"})
    result = await deliver_track_request(request_of(75), braze, clock)

    (isolated_after,) = result.isolated_after
    assert isolated_after - 1 <= 7
    # Then the presumed-good rest goes out, and the culprit alone before it may fail.
    assert len(braze.bodies) - 1 <= 9
    assert braze.bodies[-1] == {
        "events": [{"external_id": f"u{bad_index}", "name": f"e{bad_index}"}]
    }
    failed = [o.obj.op_ids[0] for o in result.outcomes if o.kind == "failed"]
    delivered = sorted(o.obj.op_ids[0] for o in result.outcomes if o.kind == "delivered")
    assert failed == [bad_index]
    assert delivered == [i for i in range(75) if i != bad_index]
    # Every good object reached Braze in exactly one accepted request.
    accepted = [b for b in braze.bodies if not {o["name"] for o in b["events"]} & braze.bad]
    names = [o["name"] for b in accepted for o in b["events"]]
    assert sorted(names) == sorted(f"e{i}" for i in range(75) if i != bad_index)


async def test_several_bad_objects_are_all_found_and_the_rest_delivered() -> None:
    bad = {"e3", "e40", "e41", "e70"}
    braze = FakeBraze(bad)
    result = await deliver_track_request(request_of(75), braze, clock)
    failed = sorted(o.obj.op_ids[0] for o in result.outcomes if o.kind == "failed")
    assert failed == [3, 40, 41, 70]
    assert sum(o.kind == "delivered" for o in result.outcomes) == 71
    assert len(result.outcomes) == 75


async def test_a_400_that_names_the_objects_settles_them_without_splitting() -> None:
    async def braze(body: str) -> BrazeReply:
        count = len(json.loads(body)["events"])
        if count == 3:
            errors = [
                {"type": "'name' is required", "input_array": "events", "index": i}
                for i in range(3)
            ]
            text = json.dumps({"message": "Valid data must be provided...", "errors": errors})
            return BrazeReply(400, text, {}, 1.0)
        raise AssertionError("no second request expected")

    result = await deliver_track_request(request_of(3), braze, clock)
    assert [(o.kind, o.reason) for o in result.outcomes] == [("failed", "'name' is required")] * 3
    assert len(result.exchanges) == 1


async def test_a_culprit_that_braze_accepts_alone_is_delivered_not_failed() -> None:
    """Braze refuses any two objects together (a combination, not one object, is at fault)."""
    bodies: list[int] = []

    async def braze(body: str) -> BrazeReply:
        count = len(json.loads(body)["events"])
        bodies.append(count)
        if count > 1:
            return BrazeReply(400, '{"message": "Bad Request"}', {}, 1.0)
        return BrazeReply(201, '{"message": "success"}', {}, 1.0)

    result = await deliver_track_request(request_of(3), braze, clock)
    assert sorted(o.kind for o in result.outcomes) == ["delivered"] * 3
    assert bodies[0] == 3


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, '{"message": "Max Input Length Exceeded"}'),
        (413, "<html>Request Entity Too Large</html>"),
    ],
)
async def test_a_too_large_refusal_is_halved_and_every_object_delivered(
    status: int, text: str
) -> None:
    counts: list[int] = []

    async def braze(body: str) -> BrazeReply:
        count = len(json.loads(body)["events"])
        counts.append(count)
        if count > 20:
            return BrazeReply(status, text, {}, 1.0)
        return BrazeReply(201, '{"message": "success"}', {}, 1.0)

    result = await deliver_track_request(request_of(75), braze, clock)
    assert [o.kind for o in result.outcomes] == ["delivered"] * 75
    assert sorted(o.obj.op_ids[0] for o in result.outcomes) == list(range(75))
    # 75 → 38 + 37 → 19 + 19 + 19 + 18: every object in exactly one accepted request.
    assert counts == [75, 38, 19, 19, 37, 19, 18]
    assert result.learned_cap == 19


async def test_a_too_large_refusal_of_one_object_fails_it() -> None:
    async def braze(body: str) -> BrazeReply:
        return BrazeReply(413, "", {}, 1.0)

    result = await deliver_track_request(request_of(1), braze, clock)
    assert [(o.kind, o.reason) for o in result.outcomes] == [
        ("failed", "braze 413: request refused")
    ]
