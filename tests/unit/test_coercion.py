"""Braze type coercion: each type with good and bad values, and properties that hold for any input."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braze_bridge.domain.coercion import (
    MAX_ARRAY_ITEMS,
    MAX_NESTED_BYTES,
    MAX_STRING_CHARS,
    Coerced,
    Uncoercible,
    attribute_name_problem,
    coerce,
    coerce_attribute,
    format_datetime,
    parse_datetime,
    same_value,
)
from braze_bridge.domain.properties import attribute_values, event_properties

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
ISO_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$"


def ok(value: Any, to: Any) -> Any:
    result = coerce(value, to)
    assert isinstance(result, Coerced), result
    return result.value


def fails(value: Any, to: Any) -> str:
    result = coerce(value, to)
    assert isinstance(result, Uncoercible), result
    return result.reason


class TestInteger:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [(5, 5), (-3, -3), (7.0, 7), ("42", 42), (" 12 ", 12), ("1100.00", 1100), ("+8", 8)],
    )
    def test_whole_numbers_in_any_spelling(self, given: Any, expected: int) -> None:
        assert ok(given, "integer") == expected

    @pytest.mark.parametrize(
        ("given", "reason"),
        [
            (1.5, "1.5 is not a whole number"),
            ("12.5", '"12.5" is not a whole number'),
            (True, "a boolean is not an integer"),
            ("twelve", '"twelve" is not an integer'),
            ([1], "[1] is not an integer"),
            (2**64, "does not fit a 64-bit integer"),
            (math.inf, "inf is not a whole number"),
        ],
    )
    def test_bad_values_say_why(self, given: Any, reason: str) -> None:
        assert reason in fails(given, "integer")

    @given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
    def test_any_int64_survives_as_itself_and_as_text(self, number: int) -> None:
        assert ok(number, "integer") == number
        assert ok(str(number), "integer") == number


class TestFloat:
    @pytest.mark.parametrize(("given", "expected"), [(1.5, 1.5), (2, 2.0), ("3.25", 3.25)])
    def test_numbers(self, given: Any, expected: float) -> None:
        value = ok(given, "float")
        assert value == expected
        assert isinstance(value, float)

    @pytest.mark.parametrize("given", [math.nan, math.inf, "nan", "-inf", False, "1,5", {}])
    def test_non_finite_and_non_numbers_fail(self, given: Any) -> None:
        fails(given, "float")

    @given(st.floats(allow_nan=False, allow_infinity=False))
    def test_finite_floats_are_kept_exactly(self, number: float) -> None:
        assert ok(number, "float") == number


class TestString:
    def test_numbers_and_booleans_become_text(self) -> None:
        assert ok(1100, "string") == "1100"
        assert ok(2.0, "string") == "2"
        assert ok(2.5, "string") == "2.5"
        assert ok(True, "string") == "true"

    def test_long_text_is_cut_to_braze_limit_with_a_note(self) -> None:
        result = coerce("x" * 300, "string")
        assert isinstance(result, Coerced)
        assert result.value == "x" * MAX_STRING_CHARS
        assert result.notes == ("cut from 300 to 255 characters",)

    @pytest.mark.parametrize("given", [{"a": 1}, [1, 2], math.nan])
    def test_structures_are_not_strings(self, given: Any) -> None:
        fails(given, "string")

    @given(st.text() | st.text().map(lambda tail: "https://example.com/" + tail * 30))
    def test_any_text_fits_braze_or_is_a_link_left_whole(self, text: str) -> None:
        result = coerce(text, "string")
        if isinstance(result, Uncoercible):
            assert len(text) > MAX_STRING_CHARS
            assert text.startswith("https://")
            return
        value = result.value
        assert len(value) <= MAX_STRING_CHARS
        assert text.startswith(value)


class TestBoolean:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [(True, True), (False, False), ("true", True), ("No", False), (1, True), ("0", False)],
    )
    def test_usual_spellings(self, given: Any, expected: bool) -> None:
        assert ok(given, "boolean") is expected

    @pytest.mark.parametrize("given", ["maybe", 2, 0.5, [], {}])
    def test_others_fail(self, given: Any) -> None:
        assert "is not a boolean" in fails(given, "boolean")


class TestDate:
    def test_seconds_up_to_year_3000_and_milliseconds_after_1971_have_one_reading(self) -> None:
        assert ok(32_503_680_000, "date") == "3000-01-01T00:00:00Z"
        assert ok(32_503_680_001, "date") == "1971-01-12T04:48:00.001Z"

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            (1732634354, "2024-11-26T15:19:14Z"),  # unix seconds
            (1732634354123, "2024-11-26T15:19:14.123Z"),  # unix milliseconds
            ("1732634354", "2024-11-26T15:19:14Z"),
            ("2024-11-26T15:19:14.000Z", "2024-11-26T15:19:14Z"),
            ("2024-11-26T16:19:14+01:00", "2024-11-26T15:19:14Z"),
            ("2024-11-26T16:19:14+0100", "2024-11-26T15:19:14Z"),
            ("2024-11-26 15:19:14", "2024-11-26T15:19:14Z"),  # no zone: UTC, as Braze reads it
            ("2024-11-26", "2024-11-26T00:00:00Z"),
            ("2024-11-26T15:19:14.123456789Z", "2024-11-26T15:19:14.123Z"),
            ({"$time": "2024-11-26T15:19:14Z"}, "2024-11-26T15:19:14Z"),
        ],
    )
    def test_unix_and_iso_become_iso_8601_utc(self, given: Any, expected: str) -> None:
        assert ok(given, "date") == expected

    @pytest.mark.parametrize(
        ("given", "reason"),
        [
            ("next tuesday", "is not a date"),
            ("2024-13-40", "not a valid ISO 8601 date"),
            (True, "a boolean is not a date"),
            ("3001-01-01", "outside the years Braze stores"),
            ([2024], "a array is not a date"),
            (1e300, "out of range"),
        ],
    )
    def test_bad_dates_say_why(self, given: Any, reason: str) -> None:
        assert reason in fails(given, "date")

    def test_under_auto_a_year_after_3000_is_sent_as_the_text_braze_stores(self) -> None:
        """braze-inc/braze-docs `_docs/_api/objects_filters/user_attributes_object.md`: "if the
        year is less than 0 or greater than 3000, Braze stores these values as strings".
        """
        assert coerce("9999-12-31", "auto") == Coerced(
            "9999-12-31",
            ("sent as text: Braze stores dates outside the years 1-3000 as strings",),
        )
        assert "outside the years Braze stores" in fails("9999-12-31", "date")
        assert "is not a valid ISO 8601 date" in fails("9999-13-31", "auto")

    @given(st.datetimes(min_value=datetime(1971, 2, 1), max_value=datetime(2999, 12, 31)))  # noqa: DTZ001 - hypothesis bounds are naive
    def test_any_moment_round_trips_through_seconds_millis_and_iso(self, naive: datetime) -> None:
        moment = naive.replace(tzinfo=UTC, microsecond=naive.microsecond // 1000 * 1000)
        iso = format_datetime(moment)
        millis = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
        assert ok(iso, "date") == iso
        assert parse_datetime(iso) == moment
        assert parse_datetime(millis) == moment
        assert ok(str(millis), "date") == iso
        assert ok(int(moment.timestamp()), "date") == format_datetime(moment.replace(microsecond=0))


class TestArray:
    def test_scalars_kept_in_order_unique_with_nulls_dropped(self) -> None:
        result = coerce(["gold", 1, "gold", True, None, 1.5], "array")
        assert isinstance(result, Coerced)
        assert result.value == ["gold", 1, True, 1.5]
        assert result.notes == ("1 null item(s) dropped", "1 duplicate item(s) dropped")

    def test_more_than_500_keeps_the_newest_like_braze(self) -> None:
        value = ok(list(range(MAX_ARRAY_ITEMS + 20)), "array")
        assert value == list(range(20, MAX_ARRAY_ITEMS + 20))

    def test_long_items_are_cut(self) -> None:
        assert ok(["y" * 300], "array") == ["y" * MAX_STRING_CHARS]

    @pytest.mark.parametrize(
        ("given", "reason"),
        [
            ("gold", "a string is not an array"),
            ([{"a": 1}], "use object_array"),
            ([[1]], "item 0 is a array"),
        ],
    )
    def test_bad_arrays(self, given: Any, reason: str) -> None:
        assert reason in fails(given, "array")

    @given(st.lists(st.text(max_size=300) | st.integers() | st.booleans(), max_size=600))
    def test_any_scalar_list_becomes_a_braze_array(self, items: list[Any]) -> None:
        value = ok(items, "array")
        assert len(value) <= MAX_ARRAY_ITEMS
        assert len({json.dumps(v) for v in value}) == len(value)
        assert all(not isinstance(v, str) or len(v) <= MAX_STRING_CHARS for v in value)


class TestObject:
    def test_dates_inside_become_time_objects_and_nulls_go(self) -> None:
        result = coerce(
            {
                "tier": "Gold",
                "since": "2024-03-01T10:00:00+01:00",
                "expires": {"$time": 1732634354},
                "history": [{"at": "2024-01-01T00:00:00Z"}],
                "gone": None,
            },
            "object",
        )
        assert isinstance(result, Coerced)
        assert result.value == {
            "tier": "Gold",
            "since": {"$time": "2024-03-01T09:00:00Z"},
            "expires": {"$time": "2024-11-26T15:19:14Z"},
            "history": [{"at": {"$time": "2024-01-01T00:00:00Z"}}],
        }
        assert "gone: null dropped" in result.notes[0]

    @pytest.mark.parametrize(
        ("given", "reason"),
        [
            ({"a.b": 1}, "a.b: Braze does not accept '.' or '$'"),
            ({"x": {"$inc": 1}}, "x.$inc: Braze does not accept"),
            ({"fav colour": "red"}, "'fav colour': Braze does not accept spaces in object keys"),
            ({"prefs": {"a": {"fav\tcolour": 1}}}, "prefs.a.'fav\\tcolour': Braze does not"),
            ({"history": [{"at home": 1}]}, "history.0.'at home': Braze does not accept spaces"),
            ({"when": {"$time": "soon"}}, 'when: "soon" is not a date'),
            ([1], "a array is not an object"),
            ({"blob": "x" * 200, **{f"k{i}": "v" * 200 for i in range(600)}}, "bytes; Braze"),
        ],
    )
    def test_bad_objects(self, given: Any, reason: str) -> None:
        assert reason in fails(given, "object")

    def test_size_limit_is_braze_100kb(self) -> None:
        assert MAX_NESTED_BYTES == 102_400


class TestObjectArray:
    def test_each_item_is_an_object_with_dates_as_time(self) -> None:
        value = ok([{"id": "r1", "at": "2024-01-01T00:00:00Z"}, None, {"id": "r2"}], "object_array")
        assert value == [{"id": "r1", "at": {"$time": "2024-01-01T00:00:00Z"}}, {"id": "r2"}]

    @pytest.mark.parametrize(
        ("given", "reason"), [([1], "item 0 is a number"), ({}, "not an array")]
    )
    def test_bad_object_arrays(self, given: Any, reason: str) -> None:
        assert reason in fails(given, "object_array")

    def test_a_key_with_a_space_inside_an_item_refuses_the_attribute(self) -> None:
        """braze-inc/braze-docs
        `_docs/_user_guide/data/custom_data/custom_attributes/nested_custom_attribute_support.md`:
        "Key names cannot contain spaces"; Braze would drop every nested update in the request.
        """
        reason = fails([{"id": "r1"}, {"id": "r2", "extra": {"fav colour": "red"}}], "object_array")
        assert reason == (
            "1.extra.'fav colour': Braze does not accept spaces in object keys (type object_array)"
        )


class TestAuto:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            (True, True),
            (5, 5),
            (2.5, 2.5),
            ("Gold", "Gold"),
            ("2024-11-26T16:19:14+01:00", "2024-11-26T15:19:14Z"),
            (["a", "a"], ["a"]),
            ([{"id": 1}], [{"id": 1}]),
            ({"since": "2024-01-01T00:00:00Z"}, {"since": {"$time": "2024-01-01T00:00:00Z"}}),
            ({"$time": 0}, "1970-01-01T00:00:00Z"),
        ],
    )
    def test_infers_what_braze_would_detect(self, given: Any, expected: Any) -> None:
        assert ok(given, "auto") == expected

    def test_mixed_list_fails(self) -> None:
        assert "use object_array" in fails([1, {"a": 1}], "auto")


class TestAnyInput:
    @pytest.mark.parametrize(
        "to",
        [
            "string",
            "integer",
            "float",
            "boolean",
            "date",
            "array",
            "object",
            "object_array",
            "auto",
        ],
    )
    @given(value=json_values)
    def test_never_raises_and_always_gives_json_braze_can_read(self, to: Any, value: Any) -> None:
        result = coerce(value, to)
        if isinstance(result, Uncoercible):
            assert result.reason
            return
        encoded = json.dumps(result.value, allow_nan=False)  # no NaN/Infinity reaches Braze
        assert json.loads(encoded) == result.value

    @pytest.mark.parametrize("to", ["string", "integer", "float", "boolean", "date", "array"])
    def test_null_removes_the_attribute_for_every_type(self, to: Any) -> None:
        assert ok(None, to) is None


class TestStandardFields:
    @pytest.mark.parametrize(
        ("name", "given", "expected"),
        [
            ("email_subscribe", "Opted_In", "opted_in"),
            ("gender", "female", "F"),
            ("country", "hu", "HU"),
            ("language", "EN", "en"),
            ("dob", "1990-05-01T23:30:00-05:00", "1990-05-01"),
            ("dob", 641520000, "1990-05-01"),
            ("time_zone", "Europe/Budapest", "Europe/Budapest"),
            ("email", "jsmith@example.com", "jsmith@example.com"),
            ("current_location", {"latitude": 47.5, "longitude": 19.0}, None),
        ],
    )
    def test_values_braze_takes(self, name: str, given: Any, expected: Any) -> None:
        result = coerce_attribute(name, given, "auto")
        assert isinstance(result, Coerced), result
        assert result.value == (given if expected is None else expected)

    @pytest.mark.parametrize(
        ("name", "given", "expected"),
        [
            ("country", "Australia", "Australia"),
            ("country", " Hungary ", "Hungary"),
            ("time_zone", "Eastern Time (US & Canada)", "Eastern Time (US & Canada)"),
        ],
    )
    def test_names_braze_maps_itself_are_sent_as_received(
        self, name: str, given: Any, expected: str
    ) -> None:
        """braze-inc/braze-docs `_docs/_api/objects_filters/user_attributes_object.md`: Braze
        makes a best effort to map country names ("Australia" may map to "AU") and takes time
        zones such as "America/New_York" or "Eastern Time (US & Canada)".
        """
        assert coerce_attribute(name, given, "string") == Coerced(expected)

    @pytest.mark.parametrize(
        ("name", "given", "reason"),
        [
            ("email_subscribe", "yes", "not one of opted_in, subscribed, unsubscribed"),
            ("gender", "x", "not a gender Braze knows"),
            ("country", 36, "36 is not text (country takes"),
            ("time_zone", "", '"" is not text (time_zone takes'),
            ("time_zone", ["Europe/Budapest"], "is not text"),
            ("email", "not-an-email", "is not an email address"),
            ("dob", "someday", "is not a date"),
            ("current_location", {"latitude": 95, "longitude": 0}, "latitude 95 is out of range"),
            ("external_id", "x", "identifies the user"),
        ],
    )
    def test_values_braze_would_reject_fail_here(self, name: str, given: Any, reason: str) -> None:
        result = coerce_attribute(name, given, "string")
        assert isinstance(result, Uncoercible)
        assert reason in result.reason

    @pytest.mark.parametrize(
        ("name", "problem"),
        [
            ("", "must not be empty"),
            ("$points", "must not start with '$'"),
            ("loyalty.points", "must not contain '.'"),
            ("_merge_objects", "request flags"),
            ("braze_id", "identifies the user"),
            ("First_Name", "only by case"),
            ("x" * 256, "at most 255"),
        ],
    )
    def test_attribute_names_braze_would_misread(self, name: str, problem: str) -> None:
        found = attribute_name_problem(name)
        assert found is not None
        assert problem in found

    def test_ordinary_names_are_fine(self) -> None:
        assert attribute_name_problem("loyalty_points") is None
        assert attribute_name_problem("first_name") is None
        assert attribute_name_problem("Loyalty Tier") is None


class TestSameValue:
    @pytest.mark.parametrize(
        ("stored", "new", "same"),
        [
            (1, 1.0, True),
            (True, 1, False),
            ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, True),
            ([1, 2], [2, 1], False),
            (None, None, True),
            (None, "", False),
            ("1", 1, False),
        ],
    )
    def test_braze_equality(self, stored: Any, new: Any, same: bool) -> None:
        assert same_value(stored, new) is same

    @given(json_values)
    def test_a_value_equals_its_json_round_trip(self, value: Any) -> None:
        try:
            encoded = json.dumps(value, allow_nan=False)
        except ValueError:
            return
        assert same_value(json.loads(encoded), value)


LINK = "https://share.example.com/r/ABC?id=1" + "&utm=" * 60  # 336 characters


class TestLongLinks:
    """A link over Braze's 255 characters is left out with a note, never cut into a broken link.

    braze-inc/braze-docs `_docs/_api/objects_filters/user_attributes_object.md` limits string
    values to 255 characters; other long text is still cut.
    """

    def test_a_long_link_is_not_a_string_braze_can_take(self) -> None:
        assert len(LINK) == 336
        assert fails(LINK, "string") == (
            "a link of 336 characters; Braze takes at most 255 and a cut link would be broken "
            "(type string)"
        )
        assert "a cut link would be broken" in fails(LINK, "auto")
        assert ok("https://share.example.com/r/ABC", "string") == "https://share.example.com/r/ABC"

    def test_inside_arrays_and_objects_only_the_link_is_left_out(self) -> None:
        assert coerce(["a", LINK, "b"], "array") == Coerced(
            ["a", "b"],
            (
                "item 1 dropped: a link of 336 characters; Braze takes at most 255 and a cut "
                "link would be broken",
            ),
        )
        result = coerce({"code": "ABC", "links": {"share": LINK}, "all": [LINK]}, "object")
        assert result == Coerced(
            {"code": "ABC", "links": {}, "all": []},
            (
                "links.share dropped: a link of 336 characters; Braze takes at most 255 and a "
                "cut link would be broken",
                "all.0 dropped: a link of 336 characters; Braze takes at most 255 and a cut link "
                "would be broken",
            ),
        )

    def test_extole_values_leave_the_link_out_and_still_cut_other_text(self) -> None:
        notes: list[str] = []
        assert attribute_values({"extole_share_link": LINK, "bio": "x" * 300}, notes) == {
            "bio": "x" * 255
        }
        assert notes == [
            "extole_share_link not sent: a link of 336 characters; Braze takes at most 255 and "
            "a cut link would be broken"
        ]
        assert event_properties({"share_link": LINK, "note": "y" * 300}) == {"note": "y" * 255}
