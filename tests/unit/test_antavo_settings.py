"""Antavo settings: what a connection may be configured with, and editing one mapping pair."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from braze_bridge.partners.antavo.settings import AntavoSettings, FieldMapping


def settings(**fields: Any) -> AntavoSettings:
    return AntavoSettings.model_validate(fields)


def error_of(**fields: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as excinfo:
        AntavoSettings.model_validate(fields)
    error = excinfo.value.errors()[0]
    return ".".join(str(part) for part in error["loc"]), error["msg"]


def test_defaults_are_the_contract() -> None:
    assert settings().model_dump() == {
        "field_mappings": [],
        "sync_mode": "all_mapped",
        "event_name_prefix": "",
        "events": ["*"],
        "checkout_as_purchase": False,
        "merge_objects": False,
        "purchase": {
            "default_currency": None,
            "product_id_field": "product_id",
            "price_field": "price",
            "subtotal_field": "subtotal",
            "quantity_field": "quantity",
            "fallback_product_id": "checkout",
        },
        "privacy": {"delete_in_braze": False},
    }


def test_the_design_example_validates() -> None:
    config = settings(
        field_mappings=[
            {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"}
        ],
        sync_mode="changed_only",
        event_name_prefix="antavo_",
        events=["point_*", "checkout"],
    )
    assert config.field_mappings[0].type == "integer"


class TestAttributeNames:
    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("$points", "must not start with '$'"),
            ("loyalty.points", "must not contain '.'"),
            ("external_id", "identifies the user in Braze"),
            ("_update_existing_only", "request flags"),
            ("Email", "differs from Braze's standard field 'email' only by case"),
            ("x" * 256, "at most 255 characters"),
        ],
    )
    def test_names_braze_cannot_take_are_refused_with_the_field_named(
        self, name: str, message: str
    ) -> None:
        where, msg = error_of(field_mappings=[{"loyalty_field": "f", "braze_attribute": name}])
        assert where == "field_mappings.0.braze_attribute"
        assert message in msg

    def test_a_target_mapped_twice_is_refused(self) -> None:
        where, msg = error_of(
            field_mappings=[
                {"loyalty_field": "score", "braze_attribute": "points"},
                {"loyalty_field": "spendable", "braze_attribute": "points"},
            ]
        )
        assert where == "field_mappings"
        assert "'points' is mapped twice" in msg

    def test_one_loyalty_field_may_feed_two_attributes(self) -> None:
        config = settings(
            field_mappings=[
                {"loyalty_field": "score", "braze_attribute": "points"},
                {"loyalty_field": "score", "braze_attribute": "legacy_points"},
            ]
        )
        assert len(config.field_mappings) == 2


class TestStandardFields:
    @pytest.mark.parametrize(
        ("target", "wrong", "right"),
        [
            ("first_name", "integer", "string"),
            ("dob", "string", "date"),
            ("email_subscribe", "boolean", "string"),
            ("email_click_tracking_disabled", "string", "boolean"),
            ("first_name", "auto", "string"),
        ],
    )
    def test_a_standard_field_takes_only_its_own_type(
        self, target: str, wrong: str, right: str
    ) -> None:
        where, msg = error_of(
            field_mappings=[{"loyalty_field": "f", "braze_attribute": target, "type": wrong}]
        )
        assert where == "field_mappings.0"
        assert f"{target!r} is a Braze standard field of type {right!r}" in msg

    @pytest.mark.parametrize(("target", "type_"), [("first_name", "string"), ("dob", "date")])
    def test_without_a_type_the_standard_fields_type_is_used(self, target: str, type_: str) -> None:
        config = settings(field_mappings=[{"loyalty_field": "f", "braze_attribute": target}])
        assert config.field_mappings[0].type == type_

    def test_a_custom_attribute_without_a_type_is_auto(self) -> None:
        config = settings(field_mappings=[{"loyalty_field": "f", "braze_attribute": "tier"}])
        assert config.field_mappings[0].type == "auto"


class TestOtherSettings:
    @pytest.mark.parametrize(
        ("fields", "where", "message"),
        [
            ({"sync_mode": "sometimes"}, "sync_mode", "'all_mapped' or 'changed_only'"),
            ({"event_name_prefix": "$x"}, "event_name_prefix", "must not start with '$'"),
            ({"events": [""]}, "events.0", "at least 1 character"),
            ({"type_of": 1}, "type_of", "Extra inputs are not permitted"),
            (
                {
                    "field_mappings": [
                        {"loyalty_field": "a", "braze_attribute": "b", "type": "number"}
                    ]
                },
                "field_mappings.0.type",
                "Input should be",
            ),
            ({"purchase": {"default_currency": "euro"}}, "purchase.default_currency", "pattern"),
            (
                {"purchase": {"default_currency": "ves"}},
                "purchase.default_currency",
                "'VES' is not a currency Braze logs purchases in",
            ),
        ],
    )
    def test_bad_values_name_the_field(
        self, fields: dict[str, Any], where: str, message: str
    ) -> None:
        assert error_of(**fields)[0] == where
        assert message in error_of(**fields)[1]

    def test_currency_is_upper_cased(self) -> None:
        assert settings(purchase={"default_currency": "eur"}).purchase.default_currency == "EUR"


class TestEditingOnePair:
    base = settings(
        field_mappings=[
            {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"},
            {"loyalty_field": "tier", "braze_attribute": "loyalty_tier", "type": "string"},
        ]
    )

    def test_add(self) -> None:
        added = self.base.add_field_mapping(
            FieldMapping(loyalty_field="spendable", braze_attribute="spendable_points")
        )
        assert [m.braze_attribute for m in added.field_mappings] == [
            "loyalty_points",
            "loyalty_tier",
            "spendable_points",
        ]
        assert len(self.base.field_mappings) == 2  # the original is untouched

    def test_add_an_existing_target_is_refused(self) -> None:
        with pytest.raises(ValueError, match="'loyalty_tier' is already mapped"):
            self.base.add_field_mapping(
                FieldMapping(loyalty_field="tier_name", braze_attribute="loyalty_tier")
            )

    def test_change_keeps_the_position(self) -> None:
        changed = self.base.change_field_mapping(
            "loyalty_points",
            FieldMapping(loyalty_field="spendable", braze_attribute="loyalty_points", type="float"),
        )
        assert changed.field_mappings[0] == FieldMapping(
            loyalty_field="spendable", braze_attribute="loyalty_points", type="float"
        )

    def test_change_onto_another_mapped_target_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="'loyalty_tier' is mapped twice"):
            self.base.change_field_mapping(
                "loyalty_points", FieldMapping(loyalty_field="x", braze_attribute="loyalty_tier")
            )

    def test_remove(self) -> None:
        removed = self.base.remove_field_mapping("loyalty_tier")
        assert [m.braze_attribute for m in removed.field_mappings] == ["loyalty_points"]

    def test_removing_an_unmapped_target_is_refused(self) -> None:
        with pytest.raises(ValueError, match="'nope' is not mapped"):
            self.base.remove_field_mapping("nope")

    def test_changing_an_unmapped_target_is_refused(self) -> None:
        replacement = FieldMapping(loyalty_field="a", braze_attribute="b")
        with pytest.raises(ValueError, match="'nope' is not mapped"):
            self.base.change_field_mapping("nope", replacement)
