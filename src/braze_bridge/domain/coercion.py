"""Braze attribute types and the coercion of partner values into them. Pure; any partner may use it.

`coerce(value, type)` returns `Coerced(value, notes)` or `Uncoercible(reason)`; it never raises for
bad data, so one bad value fails only its own attribute. `coerce_attribute(name, value, type)`
adds the rules of Braze's standard profile fields (`dob` as `YYYY-MM-DD`, subscription states,
gender letters, ...). Limits are Braze's (braze-inc/braze-docs `_docs/_api/objects_filters/user_attributes_object.md`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal, get_args

from braze_bridge.braze.models import SUBSCRIPTION_STATES

# Raw JSON as partners send it; coercion is where it becomes typed.
Json = Any

BrazeType = Literal[
    "string", "integer", "float", "boolean", "date", "array", "object", "object_array", "auto"
]
BRAZE_TYPES: Final[tuple[str, ...]] = get_args(BrazeType)

MAX_STRING_CHARS: Final = 255
MAX_ARRAY_ITEMS: Final = 500
MAX_NESTED_BYTES: Final = 102_400  # arrays, objects and arrays of objects: 100 KB each
MAX_NESTING_DEPTH: Final = 32
# Braze stores years outside 0..3000 as strings; our floor is Python's (year 1).
MAX_YEAR: Final = 3000
# Integers Braze can hold without losing precision on its side: signed 64-bit.
MAX_INTEGER: Final = 2**63 - 1
# Unix time above this is milliseconds: it is 3000-01-01 in seconds (the last year Braze takes
# as a date) and 1971-01-12 in milliseconds, so every usable value has one reading.
MILLIS_THRESHOLD: Final = 32_503_680_000


@dataclass(frozen=True, slots=True)
class Coerced:
    """A value Braze accepts; `notes` say what was changed on the way (cut strings, ...)."""

    value: Json
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Uncoercible:
    """Why a value cannot become the requested type (shown in the event log)."""

    reason: str


CoercionResult = Coerced | Uncoercible


class _Fail(Exception):
    """Internal: unwinds nested coercion with the reason of the first bad value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _OutsideDateYears(_Fail):
    """Internal: a well-formed date whose year Braze keeps as a string, not a date."""


# ─── dates ─────────────────────────────────────────────────────────────────────────────────────

_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?)?$"
)
_NUMERIC = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def _describe(value: Json) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _from_unix(number: int | float) -> datetime:
    # timedelta does the unit change: dividing by 1000 in floating point would lose milliseconds.
    try:
        if abs(number) > MILLIS_THRESHOLD:
            delta = timedelta(milliseconds=number)
        else:
            delta = timedelta(seconds=number)
        return datetime(1970, 1, 1, tzinfo=UTC) + delta
    except OverflowError as exc:
        raise _Fail(f"{number} is out of range for a unix timestamp") from exc


def _parse_iso(text: str) -> datetime:
    # Python 3.11's fromisoformat reads "Z", offsets without a colon and 1-6 fraction digits.
    cleaned = text.replace(",", ".")
    fraction = re.search(r"\.(\d+)", cleaned)
    if fraction and len(fraction.group(1)) > 6:
        cleaned = cleaned.replace(fraction.group(0), "." + fraction.group(1)[:6], 1)
    if cleaned[-1:] in "zZ":
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise _Fail(f"{_describe(text)} is not a valid ISO 8601 date") from exc
    return parsed


def parse_datetime(value: Json) -> datetime:
    """Unix seconds or milliseconds, ISO 8601 text, `{"$time": ...}` → an aware UTC datetime.

    Raises ValueError with a readable reason; a date without a zone is taken as UTC (as Braze does).
    """
    try:
        return _to_datetime(value)
    except _Fail as exc:
        raise ValueError(exc.reason) from None


def _to_datetime(value: Json) -> datetime:
    if isinstance(value, dict) and set(value) == {"$time"}:
        return _to_datetime(value["$time"])
    if isinstance(value, bool):
        raise _Fail("a boolean is not a date")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise _Fail(f"{value} is not a date")
        parsed = _from_unix(value)
    elif isinstance(value, str):
        text = value.strip()
        if _NUMERIC.match(text):
            parsed = _from_unix(float(text) if "." in text else int(text))
        elif _ISO_DATE.match(text):
            parsed = _parse_iso(text)
        else:
            raise _Fail(f"{_describe(value)} is not a date (ISO 8601 or unix time expected)")
    else:
        raise _Fail(f"a {_kind(value)} is not a date")
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not 0 < parsed.year <= MAX_YEAR:
        raise _OutsideDateYears(
            f"{_describe(value)} is outside the years Braze stores as dates (1-3000)"
        )
    return parsed


def format_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`; milliseconds only when there are any."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def looks_like_iso_date(text: str) -> bool:
    return bool(_ISO_DATE.match(text.strip()))


def is_long_link(value: Json) -> bool:
    """A http(s) link over Braze's 255 characters: cutting it would leave a broken link."""
    return (
        isinstance(value, str)
        and len(value) > MAX_STRING_CHARS
        and value.lstrip()[:8].lower().startswith(("http://", "https://"))
    )


def long_link_note(value: str) -> str:
    return (
        f"a link of {len(value)} characters; Braze takes at most {MAX_STRING_CHARS} and a cut "
        "link would be broken"
    )


# ─── scalars ───────────────────────────────────────────────────────────────────────────────────


def _to_string(value: Json, notes: list[str]) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Fail(f"{value} is not a finite number")
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise _Fail(f"a {_kind(value)} is not a string")
    if is_long_link(text):
        raise _Fail(long_link_note(text))
    if len(text) > MAX_STRING_CHARS:
        notes.append(f"cut from {len(text)} to {MAX_STRING_CHARS} characters")
        text = text[:MAX_STRING_CHARS]
    return text


def _to_integer(value: Json) -> int:
    if isinstance(value, bool):
        raise _Fail("a boolean is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _Fail(f"{value} is not a whole number")
        number = int(value)
    elif isinstance(value, str) and _NUMERIC.match(value.strip()):
        text = value.strip()
        whole, _, fraction = text.partition(".")
        if fraction.strip("0"):
            raise _Fail(f"{_describe(value)} is not a whole number")
        number = int(whole)
    else:
        raise _Fail(f"{_describe(value)} is not an integer")
    if abs(number) > MAX_INTEGER:
        raise _Fail(f"{number} does not fit a 64-bit integer")
    return number


def _to_float(value: Json) -> float:
    if isinstance(value, bool):
        raise _Fail("a boolean is not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Fail(f"{_describe(value)} is not a number") from None
    else:
        raise _Fail(f"a {_kind(value)} is not a number")
    if not math.isfinite(number):
        raise _Fail(f"{_describe(value)} is not a finite number")
    return number


_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off"})


def _to_boolean(value: Json) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _Fail(f"{_describe(value)} is not a boolean (true/false, yes/no, 1/0)")


def _to_date(value: Json) -> str:
    return format_datetime(_to_datetime(value))


# ─── nested values ─────────────────────────────────────────────────────────────────────────────


def _check_size(value: Json, what: str) -> None:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_NESTED_BYTES:
        raise _Fail(f"{what} is {size} bytes; Braze takes at most {MAX_NESTED_BYTES}")


def _is_scalar(value: Json) -> bool:
    return isinstance(value, str | int | float | bool)


def _to_array(value: Json, notes: list[str]) -> list[Json]:
    if not isinstance(value, list | tuple):
        raise _Fail(f"a {_kind(value)} is not an array")
    items: list[Json] = []
    seen: set[str] = set()
    dropped_nulls = dropped_links = 0
    for position, item in enumerate(value):
        if item is None:
            dropped_nulls += 1
            continue
        if not _is_scalar(item):
            raise _Fail(
                f"item {position} is a {_kind(item)}; arrays hold strings, numbers and "
                "booleans (use object_array for objects)"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise _Fail(f"item {position} ({item}) is not a finite number")
        if is_long_link(item):
            notes.append(f"item {position} dropped: {long_link_note(item)}")
            dropped_links += 1
            continue
        if isinstance(item, str) and len(item) > MAX_STRING_CHARS:
            notes.append(f"item {position} cut to {MAX_STRING_CHARS} characters")
            item = item[:MAX_STRING_CHARS]
        # Braze keeps unique values only; `1` and `True` are different values to it.
        identity = json.dumps(item)
        if identity in seen:
            continue
        seen.add(identity)
        items.append(item)
    if dropped_nulls:
        notes.append(f"{dropped_nulls} null item(s) dropped")
    duplicates = len(value) - dropped_nulls - dropped_links - len(items)
    if duplicates:
        notes.append(f"{duplicates} duplicate item(s) dropped")
    if len(items) > MAX_ARRAY_ITEMS:
        # Braze drops the oldest items when an array outgrows its limit: keep the newest.
        notes.append(f"kept the last {MAX_ARRAY_ITEMS} of {len(items)} items")
        items = items[-MAX_ARRAY_ITEMS:]
    _check_size(items, "the array")
    return items


def _check_key(key: Json, path: str) -> str:
    if not isinstance(key, str) or not key:
        raise _Fail(f"{path}: object keys must be non-empty strings")
    if "." in key or "$" in key:
        raise _Fail(f"{path}{key}: Braze does not accept '.' or '$' in object keys")
    if any(character.isspace() for character in key):
        # Braze answers 201 but drops every nested update in the request: refuse it here.
        raise _Fail(f"{path}{key!r}: Braze does not accept spaces in object keys")
    if len(key) > MAX_STRING_CHARS:
        raise _Fail(f"{path}{key[:20]}...: object keys are at most {MAX_STRING_CHARS} characters")
    return key


def nested_key_problem(key: Json) -> str | None:
    """Why Braze would not take `key` inside a nested attribute, or None when it would."""
    try:
        _check_key(key, "")
    except _Fail as exc:
        return exc.reason
    return None


def _nested(value: Json, path: str, notes: list[str], depth: int) -> Json:
    """A value inside an object: dates become `{"$time": ...}`, nulls go (Braze would drop all)."""
    if depth > MAX_NESTING_DEPTH:
        raise _Fail(f"{path}: nested deeper than {MAX_NESTING_DEPTH} levels")
    if isinstance(value, dict):
        if set(value) == {"$time"}:
            try:
                return {"$time": _to_date(value["$time"])}
            except _Fail as exc:
                raise _Fail(f"{path.rstrip('.')}: {exc.reason}") from None
        result: dict[str, Json] = {}
        for key, item in value.items():
            name = _check_key(key, path)
            if item is None:
                notes.append(f"{path}{name}: null dropped (Braze rejects nulls in objects)")
                continue
            if is_long_link(item):
                notes.append(f"{path}{name} dropped: {long_link_note(item)}")
                continue
            result[name] = _nested(item, f"{path}{name}.", notes, depth + 1)
        return result
    if isinstance(value, list | tuple):
        items = []
        for position, item in enumerate(value):
            if item is None:
                notes.append(f"{path}{position}: null dropped")
                continue
            if is_long_link(item):
                notes.append(f"{path}{position} dropped: {long_link_note(item)}")
                continue
            items.append(_nested(item, f"{path}{position}.", notes, depth + 1))
        return items
    if isinstance(value, datetime | date):
        return {"$time": _to_date(value)}
    if isinstance(value, str):
        if looks_like_iso_date(value) and "T" in value.upper():
            # A full ISO date-time inside an object is a date to any reader; Braze needs $time.
            try:
                return {"$time": _to_date(value)}
            except _Fail:
                pass
        if len(value) > MAX_STRING_CHARS:
            notes.append(f"{path.rstrip('.')}: cut to {MAX_STRING_CHARS} characters")
            return value[:MAX_STRING_CHARS]
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise _Fail(f"{path.rstrip('.')}: {value} is not a finite number")
    if isinstance(value, bool | int | float):
        return value
    raise _Fail(f"{path.rstrip('.')}: a {_kind(value)} cannot be stored")


def _to_object(value: Json, notes: list[str]) -> dict[str, Json]:
    if not isinstance(value, dict):
        raise _Fail(f"a {_kind(value)} is not an object")
    result = _nested(value, "", notes, 0)
    if not isinstance(result, dict):  # {"$time": ...} alone is a date, not an object
        raise _Fail("a lone {'$time': ...} is a date, not an object")
    _check_size(result, "the object")
    return result


def _to_object_array(value: Json, notes: list[str]) -> list[Json]:
    if not isinstance(value, list | tuple):
        raise _Fail(f"a {_kind(value)} is not an array of objects")
    items: list[Json] = []
    for position, item in enumerate(value):
        if item is None:
            notes.append(f"item {position}: null dropped")
            continue
        if not isinstance(item, dict):
            raise _Fail(f"item {position} is a {_kind(item)}, not an object")
        items.append(_nested(item, f"{position}.", notes, 1))
    _check_size(items, "the array of objects")
    return items


def infer_type(value: Json) -> BrazeType:
    """What `auto` makes of a value: the type Braze would detect, dates recognised in text."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, datetime | date):
        return "date"
    if isinstance(value, str):
        return "date" if looks_like_iso_date(value) else "string"
    if isinstance(value, dict):
        return "date" if set(value) == {"$time"} else "object"
    if isinstance(value, list | tuple):
        non_null = [item for item in value if item is not None]
        if non_null and all(isinstance(item, dict) for item in non_null):
            return "object_array"
        return "array"
    return "string"


def coerce(value: Json, to: BrazeType) -> CoercionResult:
    """`value` as Braze type `to`; `None` stays `None` (Braze removes the attribute)."""
    if value is None:
        return Coerced(None)
    notes: list[str] = []
    target = infer_type(value) if to == "auto" else to
    try:
        if target == "string":
            result: Json = _to_string(value, notes)
        elif target == "integer":
            result = _to_integer(value)
        elif target == "float":
            result = _to_float(value)
        elif target == "boolean":
            result = _to_boolean(value)
        elif target == "date":
            try:
                result = _to_date(value)
            except _OutsideDateYears:
                if to != "auto" or not isinstance(value, str):
                    raise
                # Braze stores years outside 0..3000 as strings ("9999-12-31": never expires).
                result = _to_string(value, notes)
                notes.append("sent as text: Braze stores dates outside the years 1-3000 as strings")
        elif target == "array":
            result = _to_array(value, notes)
        elif target == "object":
            result = _to_object(value, notes)
        elif target == "object_array":
            result = _to_object_array(value, notes)
        else:
            return Uncoercible(f"unknown type {to!r}")
    except _Fail as exc:
        return Uncoercible(f"{exc.reason} (type {target})")
    return Coerced(result, tuple(notes))


# ─── standard profile fields ───────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class StandardField:
    """A Braze standard profile field: its type and, for some, the values it takes."""

    type: BrazeType
    description: str


# braze-inc/braze-docs `_docs/_api/objects_filters/user_attributes_object.md`. Fields that identify the user or need their own API
# (external_id, braze_id, aliases, push_tokens, subscription_groups) are not mappable.
STANDARD_FIELDS: Final[dict[str, StandardField]] = {
    "first_name": StandardField("string", "text"),
    "last_name": StandardField("string", "text"),
    "email": StandardField("string", "an email address"),
    "phone": StandardField("string", "a phone number (E.164 recommended)"),
    "home_city": StandardField("string", "text"),
    "country": StandardField("string", "an ISO 3166-1 alpha-2 code such as 'US', or a name"),
    "language": StandardField("string", "an ISO 639-1 code such as 'en'"),
    "time_zone": StandardField("string", "a zone name such as 'Europe/Budapest'"),
    "gender": StandardField("string", "one of M, F, O, N, P"),
    "email_subscribe": StandardField("string", "one of opted_in, subscribed, unsubscribed"),
    "push_subscribe": StandardField("string", "one of opted_in, subscribed, unsubscribed"),
    "dob": StandardField("date", "a date of birth, sent as YYYY-MM-DD"),
    "date_of_first_session": StandardField("date", "a date"),
    "date_of_last_session": StandardField("date", "a date"),
    "marked_email_as_spam_at": StandardField("date", "a date"),
    "email_open_tracking_disabled": StandardField("boolean", "true or false"),
    "email_click_tracking_disabled": StandardField("boolean", "true or false"),
    "current_location": StandardField("object", "{'latitude': ..., 'longitude': ...}"),
    "facebook": StandardField("object", "Braze's facebook object"),
    "twitter": StandardField("object", "Braze's twitter object"),
}
RESERVED_ATTRIBUTES: Final = frozenset(
    {
        "external_id",
        "user_alias",
        "braze_id",
        "alias_name",
        "alias_label",
        "push_tokens",
        "push_token_import",
        "subscription_groups",
        "app_id",
    }
)

_GENDER_WORDS = {
    "m": "M",
    "male": "M",
    "man": "M",
    "f": "F",
    "female": "F",
    "woman": "F",
    "o": "O",
    "other": "O",
    "n": "N",
    "not applicable": "N",
    "p": "P",
    "prefer not to say": "P",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2}$")
# Fields Braze reads leniently (a country name, "Eastern Time (US & Canada)"): any text is sent.
_TEXT_ONLY_FIELDS = frozenset({"country", "time_zone"})


def attribute_name_problem(name: str) -> str | None:
    """Why `name` cannot be a Braze attribute we write, or None when it can."""
    if not name or not name.strip():
        return "attribute names must not be empty"
    if len(name) > MAX_STRING_CHARS:
        return f"attribute names are at most {MAX_STRING_CHARS} characters"
    if name.startswith("$"):
        return "attribute names must not start with '$'"
    if "." in name:
        return "attribute names must not contain '.' (Braze reads it as a nested key)"
    if name.startswith("_"):
        return f"{name!r} is reserved: names starting with '_' are Braze request flags"
    if name in RESERVED_ATTRIBUTES:
        return f"{name!r} identifies the user in Braze and cannot be set as an attribute"
    lowered = name.lower()
    if name not in STANDARD_FIELDS and (
        lowered in STANDARD_FIELDS or lowered in RESERVED_ATTRIBUTES
    ):
        # Standard fields are case-sensitive: "First_Name" would quietly become a custom attribute.
        return f"{name!r} differs from Braze's standard field {lowered!r} only by case"
    return None


def _check_standard(name: str, value: Json) -> Json:
    if value is None:
        return None
    if name in {"email_subscribe", "push_subscribe"}:
        state = str(value).strip().lower()
        if state not in SUBSCRIPTION_STATES:
            raise _Fail(f"{_describe(value)} is not one of opted_in, subscribed, unsubscribed")
        return state
    if name == "gender":
        letter = _GENDER_WORDS.get(str(value).strip().lower())
        if letter is None:
            raise _Fail(f"{_describe(value)} is not a gender Braze knows (M, F, O, N, P)")
        return letter
    if name == "email":
        if not _EMAIL.match(str(value)):
            raise _Fail(f"{_describe(value)} is not an email address")
        return value
    if name == "country":
        # Braze makes a best effort to map country names ("Australia" → AU): send them as given.
        return str(value).upper() if _COUNTRY.match(str(value)) else value
    if name == "language":
        if not _LANGUAGE.match(str(value)):
            raise _Fail(f"{_describe(value)} is not an ISO 639-1 language code")
        return str(value).lower()
    if name == "time_zone":
        # Braze takes IANA names and names such as "Eastern Time (US & Canada)".
        return value
    if name == "dob":
        return str(value)[:10]  # Braze takes a date of birth as YYYY-MM-DD
    if name == "current_location":
        if not isinstance(value, dict) or set(value) != {"latitude", "longitude"}:
            raise _Fail("current_location must be {'latitude': ..., 'longitude': ...}")
        for axis, bound in (("latitude", 90.0), ("longitude", 180.0)):
            number = value[axis]
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise _Fail(f"current_location.{axis} must be a number")
            if not -bound <= number <= bound:
                raise _Fail(f"current_location.{axis} {number} is out of range")
    return value


def coerce_attribute(name: str, value: Json, to: BrazeType) -> CoercionResult:
    """Coerce a value for attribute `name`; standard fields get their own type and value rules."""
    problem = attribute_name_problem(name)
    if problem is not None:
        return Uncoercible(problem)
    standard = STANDARD_FIELDS.get(name)
    if standard is not None:
        to = standard.type
    if standard is not None and name in _TEXT_ONLY_FIELDS and value is not None:
        if not isinstance(value, str) or not any(character.isalpha() for character in value):
            return Uncoercible(
                f"{_describe(value)} is not text ({name} takes {standard.description})"
            )
        value = value.strip()
    result = coerce(value, to)
    if standard is None or isinstance(result, Uncoercible):
        return result
    if name == "dob" and isinstance(value, str) and looks_like_iso_date(value):
        # A birthday is a calendar date: keep the day as written, not the day in UTC.
        return Coerced(value.strip()[:10], result.notes)
    try:
        return Coerced(_check_standard(name, result.value), result.notes)
    except _Fail as exc:
        return Uncoercible(f"{exc.reason} ({name} takes {standard.description})")


# ─── equality as Braze sees it ─────────────────────────────────────────────────────────────────


def _canonical(value: Json) -> Json:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)  # 1 == 1.0 to Braze's number type, but never equal to True
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, dict):
        return ("d", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("l", tuple(_canonical(item) for item in value))
    return ("z", None) if value is None else ("?", repr(value))


def same_value(stored: Json, new: Json) -> bool:
    """True when writing `new` over `stored` would not change the Braze profile.

    Robust to a JSONB round trip (key order, `1` vs `1.0`) while keeping `true` apart from `1`.
    """
    return bool(_canonical(stored) == _canonical(new))
