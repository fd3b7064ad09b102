"""Braze wire format: `/users/track` arrays, per-object errors, export/ids answers, rate headers.

Shared by the delivery engine (which reads Braze's answers) and the sandbox (which writes them),
so both sides agree on one spelling of Braze's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

TrackArray = Literal["attributes", "events", "purchases"]
TRACK_ARRAYS: Final[tuple[TrackArray, ...]] = ("attributes", "events", "purchases")

# Braze: "Each /users/track request can contain up to 75 total objects combined" (legacy
# accounts: 75 per array; accounts on the Monthly Active Users CY 24-25 plan: 50 combined);
# request bodies up to 4 MB, meant as 4,000,000 bytes (braze-inc/braze-docs
# `_docs/_api/endpoints/user_data/post_user_track.md`).
MAX_TRACK_OBJECTS: Final = 75
MAX_BODY_BYTES: Final = 4_000_000

TrackObjectCap = Literal["combined_75", "combined_50", "per_array_75"]
DEFAULT_TRACK_OBJECT_CAP: Final[TrackObjectCap] = "combined_75"
# Per cap: (most objects, counted per array rather than combined).
TRACK_OBJECT_CAPS: Final[dict[str, tuple[int, bool]]] = {
    "combined_75": (75, False),
    "combined_50": (50, False),
    "per_array_75": (75, True),
}

NO_VALID_DATA_MESSAGE: Final = (
    "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
)
MAX_INPUT_LENGTH_MESSAGE: Final = "Max Input Length Exceeded"

# The attributes-object flag that makes Braze deep-merge nested objects (and the matched objects
# of an array `$update`) instead of replacing them; it covers every nested value of its object.
MERGE_OBJECTS: Final = "_merge_objects"

# `/users/export/ids` budgets by workspace vintage (braze-inc/braze-docs
# `_docs/_api/api_limits.md`): 2,500 requests a minute for workspaces onboarded before 2024-08-22, 250 for those onboarded on
# or after it; `_includes/rate_limits.md` ("users export ids") adds that Braze raises the latter
# to 40 a second on request for calls that list `fields_to_export` (ours always do, never with
# campaigns or canvases received).
ExportRatePreset = Literal[
    "onboarded_before_2024_08_22", "onboarded_from_2024_08_22", "raised_40_per_second"
]
# Preset → (requests, window seconds).
EXPORT_RATE_PRESETS: Final[dict[str, tuple[int, int]]] = {
    "onboarded_before_2024_08_22": (2500, 60),
    "onboarded_from_2024_08_22": (250, 60),
    "raised_40_per_second": (40, 1),
}
DEFAULT_EXPORT_RATE_PRESET: Final[ExportRatePreset] = "onboarded_from_2024_08_22"

# Subscription states of `email_subscribe` / `push_subscribe` (braze-inc/braze-docs
# `_docs/_api/objects_filters/user_attributes_object.md`).
SUBSCRIPTION_STATES: Final = frozenset({"opted_in", "subscribed", "unsubscribed"})
# Event properties Braze reserves; purchases reserve their own fields too
# (`_docs/_api/objects_filters/event_object.md`, `purchase_object.md`).
RESERVED_EVENT_PROPERTIES: Final = frozenset({"time", "event_name"})
RESERVED_PURCHASE_PROPERTIES: Final = frozenset(
    {"time", "product_id", "quantity", "event_name", "price", "currency"}
)

# The currency codes Braze logs purchases in, from braze-inc/braze-docs
# `_docs/_developer_guide/analytics/logging_purchases.md` ("Supported currencies", commit
# 04763287). Braze's list, not ISO 4217's: it keeps retired codes (`VEF`, `MRO`, `STD`, `BYR`)
# and lacks their successors (`VES`, `MRU`, `STN`, `BYN`). The REST purchase object asks for "an
# ISO 4217 code" and does not say what Braze answers for one outside this list.
_LISTED: Final = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN
BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTC BTN BWP BYR BZD
CAD CDF CHF CLF CLP CNY COP CRC CUC CUP CVE CZK
DJF DKK DOP DZD
EEK EGP ERN ETB EUR
FJD FKP
GBP GEL GGP GHS GIP GMD GNF GTQ GYD
HKD HNL HRK HTG HUF
IDR ILS IMP INR IQD IRR ISK
JEP JMD JOD JPY
KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LTL LVL LYD
MAD MDL MGA MKD MMK MNT MOP MRO MTL MUR MVR MWK MXN MYR MZN
NAD NGN NIO NOK NPR NZD
OMR
PAB PEN PGK PHP PKR PLN PYG
QAR
RON RSD RUB RWF
SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD STD SVC SYP SZL
THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS
VEF VND VUV
WST
XAF XAG XAU XCD XDR XOF XPD XPF XPT
YER
ZAR ZMK ZMW ZWL
"""
BRAZE_CURRENCIES: Final = frozenset(_LISTED.split())

# Values above this are UTC epoch seconds, below it a number of seconds to wait: Braze documents
# `X-RateLimit-Reset` as UTC epoch seconds (`_docs/_api/api_limits.md`), and a value this small
# cannot be a reset time of ours, so it is read as a delay rather than as a date in 1970.
EPOCH_THRESHOLD: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class TrackObjectError:
    """One entry of Braze's `errors[]`: which object of which array, and why."""

    input_array: str
    index: int
    type: str


def parse_track_errors(body: Any) -> list[TrackObjectError]:
    """The `errors[]` entries that name an object (`input_array` + `index`); others are ignored."""
    if not isinstance(body, Mapping):
        return []
    raw = body.get("errors")
    if not isinstance(raw, list):
        return []
    found: list[TrackObjectError] = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        array, index = item.get("input_array"), item.get("index")
        if array in TRACK_ARRAYS and isinstance(index, int) and not isinstance(index, bool):
            found.append(TrackObjectError(array, index, str(item.get("type") or "unknown error")))
    return found


def reply_message(body: Any, fallback: str) -> str:
    """Braze's top-level `message`, else `fallback` (non-JSON bodies, proxies, HTML pages)."""
    if isinstance(body, Mapping) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    return fallback


# What an email lookup asks `/users/export/ids` for: the identifiers, and the dates that tell
# how recently each profile was active. The export has no "last updated" field
# (braze-inc/braze-docs `_docs/_api/endpoints/export/user_data/post_users_identifier.md`,
# "Fields to export"), so the latest of `created_at`, `custom_events[].last`,
# `purchases[].last` and `apps[].last_used` stands in for it.
EXPORT_LOOKUP_FIELDS: Final = [
    "external_id",
    "braze_id",
    "created_at",
    "custom_events",
    "purchases",
    "apps",
]


@dataclass(frozen=True, slots=True)
class ExportedUser:
    """What export/ids says about one profile: identifiers and its latest activity (epoch
    seconds, None when the answer carries no date)."""

    external_id: str | None
    braze_id: str | None
    active_at: float | None = None


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _latest_activity(item: Mapping[str, Any]) -> float | None:
    dates = [_epoch(item.get("created_at"))]
    for array, key in (("custom_events", "last"), ("purchases", "last"), ("apps", "last_used")):
        entries = item.get(array)
        if isinstance(entries, list):
            dates += [_epoch(e.get(key)) for e in entries if isinstance(e, Mapping)]
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def parse_export_users(body: Any) -> list[ExportedUser]:
    """Profiles in an export/ids answer; an unknown user is simply absent from `users`."""
    if not isinstance(body, Mapping) or not isinstance(body.get("users"), list):
        return []
    users: list[ExportedUser] = []
    for item in body["users"]:
        if not isinstance(item, Mapping):
            continue
        external_id = item.get("external_id")
        braze_id = item.get("braze_id")
        users.append(
            ExportedUser(
                external_id if isinstance(external_id, str) and external_id else None,
                braze_id if isinstance(braze_id, str) and braze_id else None,
                _latest_activity(item),
            )
        )
    return users


def profile_braze_would_update(users: list[ExportedUser]) -> ExportedUser | None:
    """The profile Braze updates for an email that several profiles share: the most recently
    updated one with an external id, else the most recently updated one (braze-inc/braze-docs
    `_docs/_api/endpoints/user_data/post_user_track.md`, email as identifier). Undated profiles
    count as oldest; among equals the first in the answer wins."""
    usable = [u for u in users if u.external_id or u.braze_id]
    pool = [u for u in usable if u.external_id] or usable
    best: ExportedUser | None = None
    for user in pool:
        if best is None or (user.active_at or 0.0) > (best.active_at or 0.0):
            best = user
    return best


def retry_after_seconds(headers: Mapping[str, str], *, now_epoch: float) -> float | None:
    """Seconds to wait before calling again, from Braze's rate-limit headers (None if absent).

    `Retry-After` and `X-Ratelimit-Retry-After` are seconds (an HTTP-date Retry-After is not
    sent by Braze and is ignored); `X-RateLimit-Reset` is epoch seconds or a delta, told apart
    by size. The longest wait wins: waking early only earns another 429.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    waits: list[float] = []
    for name in ("retry-after", "x-ratelimit-retry-after"):
        value = _number(lowered.get(name))
        if value is not None:
            waits.append(value)
    reset = _number(lowered.get("x-ratelimit-reset"))
    if reset is not None:
        waits.append(reset - now_epoch if reset > EPOCH_THRESHOLD else reset)
    if not waits:
        return None
    return max(0.0, max(waits))


def exhausted_budget_seconds(headers: Mapping[str, str], *, now_epoch: float) -> float | None:
    """Seconds until the window resets when an answer says no request is left in it, else None.

    Braze sends `X-RateLimit-Remaining` on every answer, so the budget can be respected
    before a 429 rather than after one.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    remaining = _number(lowered.get("x-ratelimit-remaining"))
    if remaining is None or remaining > 0:
        return None
    return retry_after_seconds(headers, now_epoch=now_epoch)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return number
