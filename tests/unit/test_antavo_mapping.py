"""Antavo events → the exact Braze objects, per body shape, type, sync mode and setting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from braze_bridge.domain.mapping import Filtered, Mapped, MappingContext, Partner, Rejected
from braze_bridge.domain.operations import Operation, UserRef
from braze_bridge.domain.statuses import ObjectKind, Source
from braze_bridge.partners.antavo import PARTNER, AntavoSettings
from braze_bridge.partners.antavo.settings import FieldMapping

RECEIVED = datetime(2024, 11, 26, 16, 0, tzinfo=UTC)
MEMBER = "280e674c"
USER = UserRef(external_id=MEMBER)
MAPPINGS = [
    {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"},
    {"loyalty_field": "spendable", "braze_attribute": "spendable_points", "type": "float"},
    {"loyalty_field": "tier", "braze_attribute": "loyalty_tier", "type": "string"},
    {"loyalty_field": "optin_at", "braze_attribute": "loyalty_joined_at", "type": "date"},
    {"loyalty_field": "first_name", "braze_attribute": "first_name"},
]


def config(**fields: Any) -> AntavoSettings:
    return AntavoSettings.model_validate({"field_mappings": MAPPINGS, **fields})


def run(
    body: dict[str, Any],
    settings: AntavoSettings | None = None,
    *,
    known: dict[str, Any] | None = None,
    app_id: str | None = "antavo-app",
) -> Mapped:
    event = PARTNER.normalize(body, received_at=RECEIVED)
    context = MappingContext(RECEIVED, app_id=app_id, known_values=known or {})
    return PARTNER.map(event, settings or config(), context)


def identify(**traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": MEMBER,
        "timestamp": "2024-11-26T15:19:14Z",
        "traits": traits,
    }


def track(event: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": MEMBER,
        "timestamp": "2024-11-26T15:15:49.000Z",
        "properties": properties,
    }


def test_the_partner_object_satisfies_the_protocol() -> None:
    partner: Partner = PARTNER
    assert partner.source is Source.ANTAVO
    assert partner.settings_model is AntavoSettings


class TestFieldChange:
    def test_all_mapped_sends_every_mapped_field_present_typed(self) -> None:
        mapped = run(
            identify(
                score="1100",
                spendable=800,
                tier="Gold",
                optin_at=1700000000,
                first_name="John",
                email="jsmith@example.com",
                pending=50,
            )
        )
        assert mapped.operations == [
            Operation.attributes(
                USER,
                {
                    "loyalty_points": 1100,
                    "spendable_points": 800.0,
                    "loyalty_tier": "Gold",
                    "loyalty_joined_at": "2023-11-14T22:13:20Z",
                    "first_name": "John",
                },
            )
        ]
        assert mapped.notes == ["traits not mapped: email, pending"]
        assert mapped.data_points_saved == 0

    def test_a_value_that_cannot_be_coerced_fails_only_its_attribute(self) -> None:
        mapped = run(identify(score="lots", tier="Gold", optin_at="someday"))
        assert mapped.operations == [Operation.attributes(USER, {"loyalty_tier": "Gold"})]
        assert mapped.notes == [
            'loyalty_points (from score) not sent: "lots" is not an integer (type integer)',
            'loyalty_joined_at (from optin_at) not sent: "someday" is not a date (ISO 8601 or '
            "unix time expected) (type date)",
        ]

    def test_when_every_value_fails_the_event_is_rejected_with_the_reasons(self) -> None:
        with pytest.raises(Rejected) as excinfo:
            run(identify(score=1.5))
        assert excinfo.value.reason == (
            "loyalty_points (from score) not sent: 1.5 is not a whole number (type integer)"
        )

    def test_a_cut_string_goes_with_a_note(self) -> None:
        mapped = run(identify(tier="G" * 300))
        assert mapped.operations[0].payload == {"loyalty_tier": "G" * 255}
        assert mapped.notes == ["loyalty_tier (from tier): cut from 300 to 255 characters"]

    def test_null_removes_the_attribute_in_braze(self) -> None:
        assert run(identify(tier=None)).operations[0].payload == {"loyalty_tier": None}

    def test_no_mapped_field_in_the_change_is_filtered(self) -> None:
        with pytest.raises(Filtered) as excinfo:
            run(identify(email="a@b.co"))
        assert excinfo.value.reason == (
            "none of the 5 mapped loyalty fields is in the change (traits: email)"
        )

    def test_without_mappings_field_changes_are_filtered(self) -> None:
        with pytest.raises(Filtered, match="no field mappings configured"):
            run(identify(score=1), AntavoSettings())

    def test_a_dotted_loyalty_field_reads_nested_traits(self) -> None:
        settings = AntavoSettings.model_validate(
            {
                "field_mappings": [
                    {"loyalty_field": "tiers.0.name", "braze_attribute": "tier_name"},
                    {
                        "loyalty_field": "accounts.main.spendable",
                        "braze_attribute": "main_spendable",
                    },
                ]
            }
        )
        mapped = run(
            identify(tiers=[{"name": "Gold"}], accounts={"main": {"spendable": 12}}), settings
        )
        assert mapped.operations[0].payload == {"tier_name": "Gold", "main_spendable": 12}

    @pytest.mark.parametrize(
        ("type_", "given", "sent"),
        [
            ("array", ["bronze", "silver", "bronze"], ["bronze", "silver"]),
            (
                "object",
                {"name": "Gold", "since": "2024-01-01T00:00:00Z"},
                {"name": "Gold", "since": {"$time": "2024-01-01T00:00:00Z"}},
            ),
            ("object_array", [{"id": "b1", "at": 1704067200}], [{"id": "b1", "at": 1704067200}]),
            ("boolean", "yes", True),
            ("auto", "2024-11-26T16:19:14+01:00", "2024-11-26T15:19:14Z"),
        ],
    )
    def test_structured_types(self, type_: str, given: Any, sent: Any) -> None:
        settings = AntavoSettings.model_validate(
            {"field_mappings": [{"loyalty_field": "x", "braze_attribute": "y", "type": type_}]}
        )
        assert run(identify(x=given), settings).operations[0].payload == {"y": sent}

    def test_standard_fields_get_their_braze_format(self) -> None:
        settings = AntavoSettings.model_validate(
            {
                "field_mappings": [
                    {"loyalty_field": "birthday", "braze_attribute": "dob"},
                    {"loyalty_field": "newsletter", "braze_attribute": "email_subscribe"},
                    {"loyalty_field": "sex", "braze_attribute": "gender"},
                ]
            }
        )
        mapped = run(identify(birthday=641520000, newsletter="Opted_In", sex="x"), settings)
        assert mapped.operations[0].payload == {"dob": "1990-05-01", "email_subscribe": "opted_in"}
        assert mapped.notes == [
            'gender (from sex) not sent: "x" is not a gender Braze knows (M, F, O, N, P) '
            "(gender takes one of M, F, O, N, P)"
        ]


class TestChangedOnly:
    def test_only_differences_from_known_values_are_sent_and_savings_counted(self) -> None:
        mapped = run(
            identify(score=1250, spendable=800, tier="Gold", first_name="John"),
            config(sync_mode="changed_only"),
            known={
                "loyalty_points": 1100,
                "spendable_points": 800,
                "loyalty_tier": "Gold",
                "first_name": "John",
            },
        )
        assert mapped.operations == [Operation.attributes(USER, {"loyalty_points": 1250})]
        assert mapped.data_points_saved == 3
        assert mapped.notes == [
            "changed_only: 3 unchanged attribute(s) not sent: spendable_points, loyalty_tier, "
            "first_name"
        ]

    def test_nothing_changed_means_no_operation_but_the_savings_are_reported(self) -> None:
        mapped = run(
            identify(tier="Gold"), config(sync_mode="changed_only"), known={"loyalty_tier": "Gold"}
        )
        assert mapped.operations == []
        assert mapped.data_points_saved == 1

    def test_an_attribute_never_sent_is_a_change(self) -> None:
        mapped = run(
            identify(tier="Gold", score=1),
            config(sync_mode="changed_only"),
            known={"loyalty_tier": "Gold"},
        )
        assert mapped.operations[0].payload == {"loyalty_points": 1}

    def test_comparison_is_on_the_coerced_value(self) -> None:
        # "1100" from Antavo is 1100 once typed: not a change.
        mapped = run(
            identify(score="1100"), config(sync_mode="changed_only"), known={"loyalty_points": 1100}
        )
        assert mapped.operations == []

    def test_all_mapped_ignores_known_values(self) -> None:
        mapped = run(identify(tier="Gold"), config(), known={"loyalty_tier": "Gold"})
        assert mapped.operations[0].payload == {"loyalty_tier": "Gold"}
        assert mapped.data_points_saved == 0


class TestProgramEvents:
    def test_track_becomes_a_custom_event_with_app_id(self) -> None:
        mapped = run(track("point_add", points=5000, account="main_account"))
        assert mapped.operations == [
            Operation(
                ObjectKind.EVENTS,
                USER,
                {
                    "name": "point_add",
                    "time": "2024-11-26T15:15:49Z",
                    "properties": {"points": 5000, "account": "main_account"},
                    "app_id": "antavo-app",
                },
            )
        ]
        assert mapped.notes == []

    def test_antavo_event_document_with_prefix_and_account(self) -> None:
        body = {
            "customer": MEMBER,
            "action": "coupon_redeem",
            "account": "main",
            "data": {"coupon": "SUMMER10", "redeemed_at": "2024-11-26T10:00:00Z"},
        }
        mapped = run(body, config(event_name_prefix="antavo_"), app_id=None)
        assert mapped.operations[0].payload == {
            "name": "antavo_coupon_redeem",
            "time": "2024-11-26T16:00:00Z",  # no time in the body: receipt time
            "properties": {
                "coupon": "SUMMER10",
                "redeemed_at": "2024-11-26T10:00:00Z",
                "account": "main",
            },
        }

    def test_properties_are_made_acceptable_to_braze(self) -> None:
        mapped = run(
            track(
                "point_add",
                time="x",
                event_name="y",
                note="n" * 300,
                gone=None,
                ok=True,
                **{"$bad": 1},
            )
        )
        assert mapped.operations[0].payload["properties"] == {"note": "n" * 255, "ok": True}
        assert mapped.notes == [
            "property 'time' dropped: the name is reserved by Braze",
            "property 'event_name' dropped: the name is reserved by Braze",
            "property 'note': cut to 255 characters",
            "property '$bad' dropped: Braze does not accept that name",
        ]

    def test_a_link_over_255_characters_is_left_out_not_cut(self) -> None:
        link = "https://shop.example.com/share?member=280e674c&" + "x" * 260
        mapped = run(track("referral_link", link=link, short="https://shop.example.com/s"))
        assert mapped.operations[0].payload["properties"] == {"short": "https://shop.example.com/s"}
        assert mapped.notes == [
            "property 'link' dropped: a link of 307 characters; Braze takes at most 255 and a "
            "cut link would be broken"
        ]

    def test_an_oversized_property_is_dropped_not_the_event(self) -> None:
        mapped = run(track("activity", blob=["x" * 250] * 500, small=1))
        assert mapped.operations[0].payload["properties"] == {"small": 1}
        assert mapped.notes == ["property 'blob' dropped: properties exceed 102400 bytes"]

    def test_an_unreadable_timestamp_uses_receipt_time_with_a_note(self) -> None:
        mapped = run({**track("point_add"), "timestamp": "soon"})
        assert mapped.operations[0].payload["time"] == "2024-11-26T16:00:00Z"
        assert mapped.notes == ["timestamp 'soon' is not a date; used receipt time"]

    @pytest.mark.parametrize(
        ("events", "action", "forwarded"),
        [
            (["*"], "point_add", True),
            (["point_*"], "point_sub", True),
            (["point_*"], "checkout", False),
            (["opt_in"], "opt_in", True),
            ([], "opt_in", False),
        ],
    )
    def test_events_list_filters_actions(
        self, events: list[str], action: str, forwarded: bool
    ) -> None:
        settings = config(events=events)
        if forwarded:
            assert run(track(action), settings).operations[0].payload["name"] == action
        else:
            with pytest.raises(Filtered) as excinfo:
                run(track(action), settings)
            assert excinfo.value.reason == (
                f"action {action!r} is not in this connection's events list"
            )

    @pytest.mark.parametrize(
        ("action", "prefix", "reason"),
        [
            ("$internal", "", "Braze event names must not start with '$'"),
            ("a" * 250, "antavo_", "event name is longer than 255 characters"),
        ],
    )
    def test_names_braze_refuses_are_rejected(self, action: str, prefix: str, reason: str) -> None:
        with pytest.raises(Rejected, match=reason.replace("$", r"\$")):
            run(track(action), config(event_name_prefix=prefix))


CHECKOUT = {
    "customer": MEMBER,
    "action": "checkout",
    "created_at": "2024-11-26T15:00:00Z",
    "data": {
        "transaction_id": "T-1001",
        "total": 310.0,
        "currency": "eur",
        "items": [
            {"product_id": "mug", "product_name": "Mug", "price": 10, "quantity": 2},
            {"product_id": "tea", "subtotal": 150, "quantity": 150},
            {"product_name": "no id", "price": 1},
        ],
    },
}


class TestCheckout:
    def test_by_default_a_checkout_is_a_custom_event(self) -> None:
        mapped = run(CHECKOUT)
        assert [op.kind for op in mapped.operations] == [ObjectKind.EVENTS]
        assert mapped.operations[0].payload["name"] == "checkout"
        assert mapped.operations[0].payload["properties"]["transaction_id"] == "T-1001"

    def test_as_purchase_each_item_line_is_a_purchase_split_at_100(self) -> None:
        mapped = run(CHECKOUT, config(checkout_as_purchase=True))
        common = {"currency": "EUR", "time": "2024-11-26T15:00:00Z", "app_id": "antavo-app"}
        assert [op.payload for op in mapped.operations] == [
            {
                "product_id": "mug",
                "price": 10.0,
                "quantity": 2,
                **common,
                "properties": {"product_name": "Mug", "transaction_id": "T-1001"},
            },
            {
                "product_id": "tea",
                "price": 1.0,
                "quantity": 100,
                **common,
                "properties": {"transaction_id": "T-1001"},
            },
            {
                "product_id": "tea",
                "price": 1.0,
                "quantity": 50,
                **common,
                "properties": {"transaction_id": "T-1001"},
            },
        ]
        assert all(op.kind is ObjectKind.PURCHASES for op in mapped.operations)
        assert mapped.notes == ["checkout item 2 not sent: has no product_id"]

    def test_without_items_the_total_is_one_purchase(self) -> None:
        body = {
            "customer": MEMBER,
            "action": "checkout",
            "data": {"transaction_id": "T-2", "total": "59.90"},
        }
        mapped = run(
            body,
            config(
                checkout_as_purchase=True,
                purchase={"default_currency": "HUF", "fallback_product_id": "order"},
            ),
        )
        assert mapped.operations[0].payload == {
            "product_id": "order",
            "currency": "HUF",
            "price": 59.9,
            "quantity": 1,
            "time": "2024-11-26T16:00:00Z",
            "properties": {"transaction_id": "T-2"},
            "app_id": "antavo-app",
        }

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            ({"total": 5}, "checkout has no currency and purchase.default_currency is not set"),
            ({"total": 5, "currency": "euro"}, "checkout currency 'euro' is not an ISO 4217 code"),
            ({"currency": "EUR"}, "checkout has neither items nor a total"),
            (
                {"currency": "EUR", "items": [{"product_id": "a", "price": -1}]},
                "checkout item 0 not sent: price -1.0 is negative",
            ),
            (
                {"currency": "EUR", "items": [{"product_id": "a", "price": 1, "quantity": 0}]},
                "quantity 0 is not a count >= 1",
            ),
        ],
    )
    def test_checkouts_that_cannot_be_purchases_are_rejected(
        self, data: dict[str, Any], reason: str
    ) -> None:
        body = {"customer": MEMBER, "action": "checkout", "data": data}
        with pytest.raises(Rejected) as excinfo:
            run(body, config(checkout_as_purchase=True))
        assert reason in excinfo.value.reason

    @pytest.mark.parametrize("currency", ["VES", "mru", "STN"])
    def test_a_currency_braze_does_not_log_is_refused_not_replaced(self, currency: str) -> None:
        """braze-inc/braze-docs `_docs/_developer_guide/analytics/logging_purchases.md`
        (Supported currencies): "Any other currency symbol you provide will log a warning and
        the purchase will not be logged to Braze."
        """
        body = {
            "customer": MEMBER,
            "action": "checkout",
            "data": {"total": 5, "currency": currency},
        }
        settings = config(checkout_as_purchase=True, purchase={"default_currency": "EUR"})
        with pytest.raises(Rejected) as excinfo:
            run(body, settings)
        assert excinfo.value.reason == (
            f"checkout currency {currency.upper()!r} is not supported by Braze: it does not log "
            "purchases in that currency"
        )

    def test_checkout_respects_the_events_list(self) -> None:
        with pytest.raises(Filtered):
            run(CHECKOUT, config(checkout_as_purchase=True, events=["point_*"]))


class TestWorkflowSync:
    def test_ad_hoc_attributes_typed_by_body_mapping_or_inference(self) -> None:
        body = {
            "type": "sync",
            "userId": MEMBER,
            "attributes": {
                "last_purchase_at": 1732634149,
                "loyalty_points": "12",
                "favourite_store": "Budapest",
                "badges": ["a", "a", "b"],
            },
            "types": {"last_purchase_at": "date"},
        }
        mapped = run(body)
        assert mapped.operations == [
            Operation.attributes(
                USER,
                {
                    "last_purchase_at": "2024-11-26T15:15:49Z",
                    "loyalty_points": 12,  # typed by the connection's field mapping (integer)
                    "favourite_store": "Budapest",
                    "badges": ["a", "b"],
                },
            )
        ]

    def test_a_bad_attribute_fails_alone(self) -> None:
        body = {
            "type": "sync",
            "userId": MEMBER,
            "attributes": {"bad.name": 1, "external_id": "other", "ok": 1},
        }
        mapped = run(body)
        assert mapped.operations[0].payload == {"ok": 1}
        assert mapped.notes == [
            "bad.name not sent: attribute names must not contain '.' (Braze reads it as a "
            "nested key)",
            "external_id not sent: 'external_id' identifies the user in Braze and cannot be set "
            "as an attribute",
        ]

    def test_merge_objects_asks_braze_to_merge_a_nested_object_not_overwrite_it(self) -> None:
        """braze-inc/braze-docs
        `_docs/_user_guide/data/custom_data/custom_attributes/nested_custom_attribute_support.md`:
        "You must set `_merge_objects` to `true`, or your objects will be overwritten."
        """
        body = {"type": "sync", "userId": MEMBER, "attributes": {"prefs": {"lang": "en"}, "n": 1}}
        assert run(body, config(merge_objects=True)).operations[0].payload == {
            "prefs": {"lang": "en"},
            "n": 1,
            "_merge_objects": True,
        }
        assert run(body).operations[0].payload == {"prefs": {"lang": "en"}, "n": 1}
        flat = {"type": "sync", "userId": MEMBER, "attributes": {"n": 1, "at": "2024-01-01"}}
        assert run(flat, config(merge_objects=True)).operations[0].payload == {
            "n": 1,
            "at": "2024-01-01T00:00:00Z",
        }

    def test_changed_only_applies_to_syncs_too(self) -> None:
        body = {"type": "sync", "userId": MEMBER, "attributes": {"store": "Budapest", "visits": 3}}
        mapped = run(body, config(sync_mode="changed_only"), known={"store": "Budapest"})
        assert mapped.operations[0].payload == {"visits": 3}
        assert mapped.data_points_saved == 1


class TestMappingEdits:
    def test_an_edit_changes_the_next_event_and_not_what_was_already_mapped(self) -> None:
        before = config()
        first = run(identify(score=10, tier="Gold"), before)
        first_payload = dict(first.operations[0].payload)

        after = (
            before.change_field_mapping(
                "loyalty_tier",
                FieldMapping(loyalty_field="tier", braze_attribute="loyalty_tier_name"),
            )
            .remove_field_mapping("loyalty_points")
            .add_field_mapping(
                FieldMapping(loyalty_field="score", braze_attribute="points_text", type="string")
            )
        )
        second = run(identify(score=10, tier="Gold"), after)

        assert (
            first.operations[0].payload
            == first_payload
            == {"loyalty_points": 10, "loyalty_tier": "Gold"}
        )
        assert second.operations[0].payload == {"loyalty_tier_name": "Gold", "points_text": "10"}
        assert run(identify(score=10, tier="Gold"), before).operations == first.operations


# ─── arrays of objects: $add / $remove / $update ──────────────────────────────────────────────
# braze-inc/braze-docs `_docs/_user_guide/data/activation/custom_data/custom_attributes/
# array_of_objects.md`.

UPDATE_COUPONS = {
    "loyalty_field": "redeemed",
    "braze_attribute": "coupons",
    "type": "object_array",
    "array_operation": "update",
    "identifier_key": "code",
}
UPDATE = {
    "$update": [
        {"$identifier_key": "code", "$identifier_value": "C2", "$new_object": {"state": "used"}}
    ]
}


def payloads(mapped: Mapped) -> list[dict[str, Any]]:
    return [op.payload for op in mapped.operations]


def test_an_update_alone_travels_with_merge_objects() -> None:
    settings = AntavoSettings.model_validate({"field_mappings": [*MAPPINGS, UPDATE_COUPONS]})
    mapped = run(identify(redeemed=[{"code": "C2", "state": "used"}], tier="Gold"), settings)
    assert payloads(mapped) == [{"coupons": UPDATE, "loyalty_tier": "Gold", "_merge_objects": True}]


def test_an_update_does_not_turn_another_objects_overwrite_into_a_merge() -> None:
    prefs = {"loyalty_field": "prefs", "braze_attribute": "prefs", "type": "object"}
    settings = AntavoSettings.model_validate({"field_mappings": [prefs, UPDATE_COUPONS]})
    mapped = run(identify(redeemed=[{"code": "C2", "state": "used"}], prefs={"a": 1}), settings)
    assert payloads(mapped) == [{"prefs": {"a": 1}}, {"coupons": UPDATE, "_merge_objects": True}]
    merging = AntavoSettings.model_validate(
        {"field_mappings": [prefs, UPDATE_COUPONS], "merge_objects": True}
    )
    merged = run(identify(redeemed=[{"code": "C2", "state": "used"}], prefs={"a": 1}), merging)
    assert payloads(merged) == [{"prefs": {"a": 1}, "coupons": UPDATE, "_merge_objects": True}]


def test_changed_only_always_sends_an_array_operation() -> None:
    add = {**UPDATE_COUPONS, "array_operation": "add", "identifier_key": None}
    settings = AntavoSettings.model_validate({"field_mappings": [add], "sync_mode": "changed_only"})
    coupon = {"code": "C9"}
    mapped = run(identify(redeemed=[coupon]), settings, known={"coupons": {"$add": [coupon]}})
    assert payloads(mapped) == [{"coupons": {"$add": [coupon]}}]
    assert mapped.data_points_saved == 0


@pytest.mark.parametrize(
    ("value", "note"),
    [
        (None, "null has nothing to remove (an array operation never erases)"),
        ([{"state": "x"}], "no item to remove: item 0 left out: no text or number 'code'"),
    ],
)
def test_a_removal_with_nothing_to_name_is_not_sent(value: Any, note: str) -> None:
    remove = {**UPDATE_COUPONS, "array_operation": "remove"}
    settings = AntavoSettings.model_validate({"field_mappings": [remove]})
    with pytest.raises(Rejected) as refused:
        run(identify(redeemed=value), settings)
    assert refused.value.reason == f"coupons (from redeemed) not sent: {note}"
