"""Antavo bodies → typed events: the four shapes, the member, the time, the dedupe key, rejections."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from braze_bridge.domain.mapping import Rejected
from braze_bridge.partners.antavo import PARTNER
from braze_bridge.partners.antavo.normalize import (
    Checkout,
    FieldChange,
    ProgramEvent,
    WorkflowSync,
)

RECEIVED = datetime(2024, 11, 26, 16, 0, tzinfo=UTC)
MEMBER = "280e674c-c4ea-4a30-987a-d9267d1a5018"

# Antavo's documented webhook bodies (docs/antavo.md section 3).
IDENTIFY = {
    "type": "identify",
    "userId": MEMBER,
    "timestamp": "2024-11-26T15:19:14.000Z",
    "traits": {
        "email": "jsmith@example.com",
        "first_name": "John",
        "last_name": "Smith",
        "score": 1100,
        "spendable": 800,
        "pending": 50,
        "tier": "Gold",
    },
}
TRACK = {
    "type": "track",
    "event": "point_add",
    "userId": MEMBER,
    "timestamp": "2024-11-26T15:15:49.000Z",
    "properties": {"points": 5000, "account": "main_account"},
}
EVENT_DOCUMENT = {
    "_id": "6745e2b5f1a2c3d4e5f60718",
    "customer": MEMBER,
    "action": "point_add",
    "account": "main_account",
    "created_at": 1732634149,
    "data": {"points": 5000},
}
SYNC = {
    "type": "sync",
    "userId": MEMBER,
    "attributes": {"last_purchase_total": 59.9, "last_purchase_at": 1732634149},
    "types": {"last_purchase_at": "date"},
}


def normalize(body: Any) -> Any:
    return PARTNER.normalize(body, received_at=RECEIVED)


def test_identify_is_a_field_change_with_its_traits_as_sent() -> None:
    event = normalize(IDENTIFY)
    assert isinstance(event, FieldChange)
    assert event.as_json() == {
        "kind": "field_change",
        "source_event_id": None,
        "dedupe_key": None,
        "user": {"external_id": MEMBER, "email": None},
        "occurred_at": "2024-11-26T15:19:14Z",
        "unparsed_timestamp": None,
        "traits": IDENTIFY["traits"],
    }


def test_track_is_a_program_event() -> None:
    event = normalize(TRACK)
    assert isinstance(event, ProgramEvent)
    assert (event.action, event.properties, event.account) == (
        "point_add",
        {"points": 5000, "account": "main_account"},
        "main_account",
    )
    assert event.occurred_at == datetime(2024, 11, 26, 15, 15, 49, tzinfo=UTC)


def test_antavo_event_document_is_a_program_event_deduped_on_its_id() -> None:
    event = normalize(EVENT_DOCUMENT)
    assert isinstance(event, ProgramEvent)
    assert event.user.external_id == MEMBER
    assert event.dedupe_key == event.source_event_id == "6745e2b5f1a2c3d4e5f60718"
    assert event.account == "main_account"
    assert event.occurred_at == datetime(2024, 11, 26, 15, 15, 49, tzinfo=UTC)  # unix seconds


def test_sync_keeps_attributes_and_declared_types() -> None:
    event = normalize(SYNC)
    assert isinstance(event, WorkflowSync)
    assert event.attributes == SYNC["attributes"]
    assert event.types == {"last_purchase_at": "date"}


@pytest.mark.parametrize(
    "body",
    [
        {"customer": MEMBER, "action": "checkout", "data": {"transaction_id": "T-1", "total": 10}},
        {
            "type": "track",
            "event": "checkout",
            "userId": MEMBER,
            "properties": {"transaction_id": "T-1", "total": 10},
        },
    ],
)
def test_checkout_in_either_shape_dedupes_on_its_transaction_id(body: dict[str, Any]) -> None:
    event = normalize(body)
    assert isinstance(event, Checkout)
    assert event.transaction_id == "T-1"
    # Antavo refuses a second checkout with one transaction id; so do we, without an event id.
    assert event.dedupe_key == "checkout:T-1"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"event_id": "e-1"}, "e-1"),
        ({"messageId": "m-1"}, "m-1"),
        ({"_id": "a-1"}, "a-1"),
        ({"event_id": 42}, "42"),
        ({}, None),  # no id: the ingest service hashes the raw body
        ({"event_id": "x" * 300}, None),  # too long for the key column: body hash
    ],
)
def test_dedupe_key_is_the_antavo_event_id_when_present(extra: dict[str, Any], key: str) -> None:
    assert normalize({**IDENTIFY, **extra}).dedupe_key == key


def test_customer_as_an_object_and_numeric_ids() -> None:
    event = normalize({"customer": {"id": 12345, "email": "a@b.co"}, "action": "opt_in"})
    assert event.user.external_id == "12345"
    assert normalize({**TRACK, "userId": 777}).user.external_id == "777"


def test_type_is_read_case_insensitively() -> None:
    assert isinstance(normalize({**IDENTIFY, "type": "Identify"}), FieldChange)


def test_an_unreadable_timestamp_is_kept_for_the_log_not_fatal() -> None:
    event = normalize({**TRACK, "timestamp": "yesterday-ish"})
    assert event.occurred_at is None
    assert event.unparsed_timestamp == "yesterday-ish"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([TRACK], "a JSON array of events: send one event per request"),
        ("hello", "expected a JSON object"),
        ({"foo": 1}, "unknown body shape: expected"),
        ({**TRACK, "type": "page"}, "unsupported type 'page': expected identify, track or sync"),
        ({**IDENTIFY, "userId": ""}, "no user identifier: userId is missing or empty"),
        ({"type": "identify", "traits": {}}, "no user identifier: userId is missing or empty"),
        ({"type": "track", "anonymousId": "x", "event": "a"}, "no user identifier"),
        ({"action": "point_add", "data": {}}, "Antavo event without a customer"),
        ({"customer": "", "action": "point_add"}, "no user identifier: customer"),
        ({"type": "identify", "userId": MEMBER}, "identify body: traits: Field required"),
        ({**IDENTIFY, "traits": [1]}, "identify body: traits: Input should be a valid dictionary"),
        ({"type": "track", "userId": MEMBER}, "track body: event: Field required"),
        ({**SYNC, "attributes": {}}, "sync body: attributes is empty"),
        ({**SYNC, "types": {"a": "number"}}, "sync body: types.a: Input should be"),
        ({**IDENTIFY, "userId": "é" * 500}, "longer than Braze's 987-byte external id"),
    ],
)
def test_bodies_we_cannot_map_are_rejected_with_the_reason(body: Any, reason: str) -> None:
    with pytest.raises(Rejected) as excinfo:
        normalize(body)
    assert reason in excinfo.value.reason


def test_unknown_extra_keys_are_allowed_and_ignored() -> None:
    event = normalize({**TRACK, "context": {"library": "antavo"}})
    assert isinstance(event, ProgramEvent)
