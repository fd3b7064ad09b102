"""Packing: 75 objects per request (or per array), 4 MB, per-user segments, attribute merging."""

from __future__ import annotations

import json

from braze_bridge.delivery.batcher import Outgoing, PackLimits, pack_track_requests


def event(op_id: int, user: str, size: int = 0) -> Outgoing:
    payload = {"name": "e", "time": "2026-01-01T00:00:00Z", "properties": {"pad": "x" * size}}
    return Outgoing(op_id, user, "events", f'"external_id":"{user}"', json.dumps(payload))


def attrs(op_id: int, user: str, **values: object) -> Outgoing:
    return Outgoing(op_id, user, "attributes", f'"external_id":"{user}"', json.dumps(values))


def test_at_most_75_objects_in_total_per_request() -> None:
    packing = pack_track_requests([event(i, f"u{i}") for i in range(160)])
    assert [len(r.objects) for r in packing.requests] == [75, 75, 10]
    assert packing.deferred == []


def test_legacy_accounts_take_75_per_array() -> None:
    items = [event(i, f"u{i}") for i in range(75)] + [
        attrs(100 + i, f"v{i}", a=1) for i in range(75)
    ]
    packing = pack_track_requests(items, PackLimits(per_array=True))
    assert [len(r.objects) for r in packing.requests] == [150]


def test_each_track_object_cap_packs_as_braze_counts() -> None:
    """braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md`: 75 objects
    combined, 50 on the Monthly Active Users CY 24-25 plan, 75 per array on older accounts."""
    items = [event(i, f"u{i}") for i in range(75)] + [
        attrs(100 + i, f"v{i}", a=1) for i in range(75)
    ]
    counts = {
        cap: [len(r.objects) for r in pack_track_requests(items, PackLimits.for_cap(cap)).requests]
        for cap in ("combined_75", "combined_50", "per_array_75")
    }
    assert counts == {"combined_75": [75, 75], "combined_50": [50, 50, 50], "per_array_75": [150]}


def test_the_byte_cap_is_4_000_000_bytes() -> None:
    assert PackLimits().max_bytes == 4_000_000


def test_body_stays_under_the_byte_cap() -> None:
    packing = pack_track_requests(
        [event(i, f"u{i}", size=1000) for i in range(10)], PackLimits(max_bytes=4000)
    )
    assert all(len(r.body_json().encode()) <= 4000 for r in packing.requests)
    assert sum(len(r.objects) for r in packing.requests) == 10


def test_attribute_objects_of_one_user_merge_in_order_and_count_once() -> None:
    packing = pack_track_requests(
        [attrs(1, "u", tier="silver", city="Oslo"), attrs(2, "u", tier="gold"), event(3, "u")]
    )
    (request,) = packing.requests
    body = json.loads(request.body_json())
    assert body["attributes"] == [{"external_id": "u", "tier": "gold", "city": "Oslo"}]
    assert len(body["events"]) == 1
    assert request.objects[0].op_ids == (1, 2)


def test_increments_on_one_key_are_not_folded() -> None:
    packing = pack_track_requests(
        [attrs(1, "u", points={"inc": 5}), attrs(2, "u", points={"inc": 3})]
    )
    assert [r.op_ids for r in packing.requests] == [[1]]
    assert packing.deferred == [2]


def test_objects_that_differ_in_merge_objects_are_not_folded() -> None:
    """braze-inc/braze-docs `_docs/_user_guide/data/activation/custom_data/custom_attributes/
    nested_custom_attribute_support.md`: `_merge_objects` covers every nested object of its
    attributes object, so an overwrite and a merge of one user stay two objects."""
    packing = pack_track_requests(
        [
            attrs(1, "u", prefs={"lang": "en"}),
            attrs(2, "u", coupons={"$update": []}, _merge_objects=True),
            attrs(3, "u", tier="gold"),
        ]
    )
    assert [r.op_ids for r in packing.requests] == [[1]]
    assert packing.deferred == [2, 3]


def test_an_attribute_object_after_an_event_waits_for_the_next_round() -> None:
    # Braze applies a request's attributes before its events: sending both would reorder them.
    packing = pack_track_requests([event(1, "u"), attrs(2, "u", tier="gold"), event(3, "v")])
    assert [r.op_ids for r in packing.requests] == [[1, 3]]
    assert packing.deferred == [2]


def test_one_users_objects_never_straddle_two_requests() -> None:
    items = [event(i, f"u{i}") for i in range(70)] + [event(100 + i, "busy") for i in range(10)]
    packing = pack_track_requests(items)
    assert [len(r.objects) for r in packing.requests] == [70, 10]
    assert set(packing.requests[1].op_ids) == {100 + i for i in range(10)}


def test_locate_maps_braze_error_indexes_back_to_objects() -> None:
    (request,) = pack_track_requests([event(1, "a"), attrs(2, "b", x=1), event(3, "c")]).requests
    located = request.locate("events", 1)
    assert located is not None
    assert located.op_ids == (3,)
    assert request.locate("purchases", 0) is None
