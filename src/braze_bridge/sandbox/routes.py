"""The sandbox's HTTP surface: Braze's endpoints plus `/_sandbox/*` to look inside.

Every route gets the one SandboxState of its app through `Depends(get_state)`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from braze_bridge.braze.models import (
    MAX_BODY_BYTES,
    MAX_INPUT_LENGTH_MESSAGE,
    NO_VALID_DATA_MESSAGE,
    TRACK_ARRAYS,
)
from braze_bridge.sandbox.profiles import apply_attributes
from braze_bridge.sandbox.state import SandboxState, SandboxUser, Summary
from braze_bridge.sandbox.validation import (
    identifier_error,
    nested_update_problem,
    object_error,
    user_key,
)

ALL_PERMISSIONS: Final = frozenset(
    {
        "users.track",
        "users.export.ids",
        "users.alias.new",
        "users.identify",
        "events.list",
        "users.delete",
    }
)
# `/users/delete` takes one of these per request, up to 50 identifiers.
DELETE_KINDS: Final = ("external_ids", "user_aliases", "braze_ids", "email_addresses")
MAX_EXPORT_EXTERNAL_IDS: Final = 50

router = APIRouter()


async def get_state(request: Request) -> SandboxState:
    # async: FastAPI would run a plain function in its thread pool, once per request.
    state: SandboxState = request.app.state.sandbox
    return state


State = Annotated[SandboxState, Depends(get_state)]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _permissions(key: str) -> frozenset[str] | None:
    """None → 401. A `sandbox-perms:a,b` key only has permissions a and b."""
    if not key or key == "invalid":
        return None
    if key.startswith("sandbox-perms:"):
        return frozenset(p.strip() for p in key.split(":", 1)[1].split(",") if p.strip())
    return ALL_PERMISSIONS


def _authorize(request: Request, permission: str) -> JSONResponse | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    permissions = _permissions(key.strip()) if scheme.lower() == "bearer" else None
    if permissions is None:
        return _error(401, "Invalid API Key")
    if permission not in permissions:
        return _error(403, "Access Denied")
    return None


def _rate_headers(
    state: SandboxState, request: Request, bucket: str, limit: int, seconds: float
) -> tuple[bool, dict[str, str]]:
    """(allowed, the X-RateLimit-* headers Braze sends with every answer)."""
    window = state.window(bucket, request.headers.get("authorization", ""), limit, seconds)
    allowed, remaining, reset = window.take(time.time())
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(math.ceil(reset)),
    }
    if not allowed and state.config.retry_after_on_429:
        headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
    return allowed, headers


async def _admit(
    state: SandboxState,
    request: Request,
    endpoint: str,
    permission: str,
    bucket: tuple[str, int, float] | None,
) -> tuple[Response | None, dict[str, str]]:
    """Latency, auth, rate limit and injected failures: an early answer, or None and headers."""
    config = state.config
    if config.latency_ms:
        await asyncio.sleep(config.latency_ms / 1000)
    denied = _authorize(request, permission)
    if denied is not None:
        state.log(endpoint, denied.status_code, None)
        return denied, {}
    headers: dict[str, str] = {}
    if bucket is not None:
        allowed, headers = _rate_headers(state, request, *bucket)
        if not allowed:
            state.log(endpoint, 429, None)
            return _error(429, "Rate limit exceeded", headers), headers
    if config.fail_rate and state.rng.random() < config.fail_rate:
        status = state.rng.choice((500, 503))
        state.log(endpoint, status, None)
        return _error(status, "Internal Server Error (injected by the sandbox)"), headers
    return None, headers


async def _read_json(request: Request) -> tuple[Any, Response | None, int]:
    """(parsed body, error response, body length in bytes)."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return None, _error(413, "Request Entity Too Large"), len(raw)
    if "json" not in request.headers.get("content-type", ""):
        return None, _error(415, "Unsupported Media Type"), len(raw)
    try:
        return json.loads(raw), None, len(raw)
    except ValueError:
        problem = _error(400, "Error while parsing request body. Please check your syntax.")
        return None, problem, len(raw)


def _too_many(state: SandboxState, sizes: Mapping[str, int]) -> bool:
    max_objects, per_array = state.config.object_cap
    if per_array:
        return any(n > max_objects for n in sizes.values())
    return sum(sizes.values()) > max_objects


@router.post("/users/track")
async def users_track(request: Request, state: State) -> Response:
    early, headers = await _admit(
        state,
        request,
        "/users/track",
        "users.track",
        ("track", state.config.track_limit_per_3s, 3.0),
    )
    if early is not None:
        return early
    body, problem, size = await _read_json(request)
    if problem is not None:
        state.log("/users/track", problem.status_code, None)
        problem.headers.update(headers)
        return problem
    if not isinstance(body, Mapping) or any(
        not isinstance(body.get(a), list | None) for a in TRACK_ARRAYS
    ):
        state.log("/users/track", 400, body, size)
        return _error(400, NO_VALID_DATA_MESSAGE, headers)
    arrays: dict[str, list[Any]] = {a: body[a] for a in TRACK_ARRAYS if body.get(a) is not None}
    if _too_many(state, {a: len(items) for a, items in arrays.items()}):
        state.log("/users/track", 400, body, size)
        return _error(400, MAX_INPUT_LENGTH_MESSAGE, headers)
    errors: list[dict[str, Any]] = []
    valid: dict[str, list[Mapping[str, Any]]] = {}
    for array, items in arrays.items():
        kept = valid.setdefault(array, [])
        for index, obj in enumerate(items):
            problem_text = object_error(array, obj)
            if problem_text:
                errors.append({"type": problem_text, "input_array": array, "index": index})
            else:
                kept.append(obj)
    # Braze counts attributes per user updated, events and purchases per object.
    processed = {
        array: len({user_key(obj) for obj in objs}) if array == "attributes" else len(objs)
        for array, objs in valid.items()
    }
    if sum(processed.values()) == 0:
        state.log("/users/track", 400, body, size)
        answer: dict[str, Any] = {"message": NO_VALID_DATA_MESSAGE}
        if errors:
            answer["errors"] = errors
        return JSONResponse(answer, status_code=400, headers=headers)
    dropped, unmatched = _record(state, valid)
    notes = []
    if dropped:
        notes.append(f"every nested update dropped ({dropped}), as Braze does")
    if unmatched:
        notes.append(
            f"{unmatched} object(s) matched no profile and may not create one (update only): "
            "dropped, as Braze does"
        )
    note = "; ".join(notes) or None
    state.log("/users/track", 201, body, size, note)
    answer = {"message": "success"}
    for name, count in processed.items():
        answer[f"{name}_processed"] = count
    if errors:
        answer["errors"] = errors
    return JSONResponse(answer, status_code=201, headers=headers)


def _creates(array: str, obj: Mapping[str, Any]) -> bool:
    """Whether an object may create the profile it names (braze-inc/braze-docs
    `_docs/_api/objects_filters/user_attributes_object.md`, `event_object.md`,
    `purchase_object.md`): `_update_existing_only: true` never does; with a `user_alias` only an
    attributes object with `_update_existing_only: false` does (events and purchases by alias are
    always update only); a `braze_id` names an existing profile."""
    flag = obj.get("_update_existing_only")
    if flag is True or "braze_id" in obj:
        return False
    if "user_alias" in obj:
        return array == "attributes" and flag is False
    return True


def _epoch(value: Any, default: float) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def _summarize(summaries: dict[str, Summary], name: str, at: float) -> None:
    known = summaries.get(name)
    if known is None:
        summaries[name] = Summary(at, at)
    else:
        known.first, known.last, known.count = (
            min(known.first, at),
            max(known.last, at),
            known.count + 1,
        )


def _record(
    state: SandboxState, valid: Mapping[str, list[Mapping[str, Any]]]
) -> tuple[str | None, int]:
    """Apply the valid objects to the profiles; returns why nested updates were dropped, and
    how many objects matched no profile and could not create one.

    One invalid nested value (a key with a space, a null, a bad `$time`) makes Braze drop every
    nested update in the request while still answering 201 (braze-inc/braze-docs
    `_docs/_api/endpoints/user_data/post_user_track.md`, "How does /users/track handle invalid
    nested custom attributes?"; key rules in `nested_custom_attribute_support.md`). Arrays are
    applied in Braze's order: attributes, events, purchases.
    """
    attributes = valid.get("attributes", [])
    dropped = next(filter(None, map(nested_update_problem, attributes)), None)
    unmatched = 0
    for array, objs in valid.items():
        for obj in objs:
            user = state.find_or_create(obj, create=_creates(array, obj))
            if array == "events":
                state.remember_event_name(obj["name"])
            if user is None:
                unmatched += 1
                continue
            now = state.tick()
            user.updated_at = now
            if array == "events":
                _summarize(user.custom_events, obj["name"], _epoch(obj.get("time"), now))
            elif array == "purchases":
                _summarize(user.purchases, str(obj["product_id"]), _epoch(obj.get("time"), now))
            else:
                if isinstance(obj.get("email"), str) and obj["email"]:
                    state.set_email(user, obj["email"])
                apply_attributes(user.attributes, obj, nested_dropped=dropped is not None)
    return dropped, unmatched


def _export_record(user: SandboxUser, fields: list[Any]) -> dict[str, Any]:
    record = user.profile()
    return {k: v for k, v in record.items() if k in fields and v not in (None, [], {})}


@router.post("/users/export/ids")
async def users_export_ids(request: Request, state: State) -> Response:
    early, headers = await _admit(
        state,
        request,
        "/users/export/ids",
        "users.export.ids",
        ("export", state.config.export_limit_per_minute, 60.0),
    )
    if early is not None:
        return early
    body, problem, size = await _read_json(request)
    if problem is not None or not isinstance(body, Mapping):
        state.log("/users/export/ids", 400, body, size)
        return problem or _error(400, "Valid request body required", headers)
    singles = [k for k in ("email_address", "phone", "device_id") if body.get(k)]
    if len(singles) > 1:
        state.log("/users/export/ids", 400, body, size)
        return _error(400, "Only one of email_address, phone or device_id may be given", headers)
    fields = body.get("fields_to_export")
    if not isinstance(fields, list) or not fields:
        state.log("/users/export/ids", 400, body, size)
        return _error(400, "'fields_to_export' is required", headers)
    external_ids = body.get("external_ids") or []
    if isinstance(external_ids, list) and len(external_ids) > MAX_EXPORT_EXTERNAL_IDS:
        state.log("/users/export/ids", 400, body, size)
        return _error(400, "'external_ids' may list at most 50 ids", headers)
    found: list[SandboxUser] = []
    invalid: list[str] = []
    for external_id in external_ids:
        user = state.find_or_create({"external_id": external_id}, create=False)
        if user:
            found.append(user)
        else:
            invalid.append(str(external_id))
    for alias in body.get("user_aliases") or []:
        user = state.find_or_create({"user_alias": alias}, create=False)
        if user:
            found.append(user)
    if isinstance(body.get("email_address"), str):
        # Every profile with the email, in no promised order (oldest first here).
        with_email = state.with_email(body["email_address"])
        found += with_email
        if not with_email:
            invalid.append(body["email_address"])
    if isinstance(body.get("braze_id"), str):
        user = state.users.get(body["braze_id"])
        if user:
            found.append(user)
    state.log("/users/export/ids", 201, body, size)
    answer: dict[str, Any] = {
        "users": [_export_record(user, fields) for user in found],
        "message": "success",
    }
    if invalid:
        answer["invalid_user_ids"] = invalid
    return JSONResponse(answer, status_code=201, headers=headers)


@router.post("/users/alias/new")
async def users_alias_new(request: Request, state: State) -> Response:
    early, headers = await _admit(state, request, "/users/alias/new", "users.alias.new", None)
    if early is not None:
        return early
    body, problem, size = await _read_json(request)
    aliases = body.get("user_aliases") if isinstance(body, Mapping) else None
    if problem is not None or not isinstance(aliases, list) or not 0 < len(aliases) <= 50:
        state.log("/users/alias/new", 400, body, size)
        return problem or _error(400, "'user_aliases' must list 1 to 50 aliases", headers)
    for alias in aliases:
        if not isinstance(alias, Mapping) or identifier_error({"user_alias": alias}):
            state.log("/users/alias/new", 400, body, size)
            return _error(400, "each alias needs 'alias_name' and 'alias_label'", headers)
    for alias in aliases:
        key = (str(alias["alias_label"]), str(alias["alias_name"]))
        if key in state.by_alias:
            continue
        if isinstance(alias.get("external_id"), str):
            user = state.find_or_create({"external_id": alias["external_id"]}, create=False)
            if user is None:
                continue
        else:
            user = state.new_user()
        state.add_alias(user, key)
    state.log("/users/alias/new", 201, body, size)
    return JSONResponse(
        {"aliases_processed": len(aliases), "message": "success"}, status_code=201, headers=headers
    )


def _users_to_delete(state: SandboxState, kind: str, values: list[Any]) -> list[SandboxUser]:
    found: list[SandboxUser | None] = []
    for value in values:
        if kind == "external_ids":
            found.append(state.find_or_create({"external_id": value}, create=False))
        elif kind == "user_aliases":
            found.append(state.find_or_create({"user_alias": value}, create=False))
        elif kind == "braze_ids":
            found.append(state.find_or_create({"braze_id": value}, create=False))
        else:
            found.extend(state.with_email(str(value)))
    unique = {user.braze_id: user for user in found if user is not None}
    return list(unique.values())


@router.post("/users/delete")
async def users_delete(request: Request, state: State) -> Response:
    """braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_delete.md`: one kind of
    identifier, up to 50; answers how many profiles were queued for deletion."""
    early, headers = await _admit(state, request, "/users/delete", "users.delete", None)
    if early is not None:
        return early
    body, problem, size = await _read_json(request)
    kinds = [k for k in DELETE_KINDS if isinstance(body, Mapping) and k in body]
    values = body.get(kinds[0]) if len(kinds) == 1 else None
    if problem is not None or not isinstance(values, list) or not 0 < len(values) <= 50:
        state.log("/users/delete", 400, body, size)
        return problem or _error(
            400, "give one of external_ids, user_aliases, braze_ids or email_addresses (1-50)"
        )
    if kinds[0] == "user_aliases" and any(
        not isinstance(a, Mapping) or identifier_error({"user_alias": a}) for a in values
    ):
        state.log("/users/delete", 400, body, size)
        return _error(400, "each alias needs 'alias_name' and 'alias_label'", headers)
    users = _users_to_delete(state, kinds[0], values)
    for user in users:
        state.remove_user(user)
    state.log("/users/delete", 201, body, size)
    return JSONResponse(
        {"deleted": len(users), "message": "success"}, status_code=201, headers=headers
    )


IDENTIFY_ARRAYS: Final = ("aliases_to_identify", "emails_to_identify", "phone_numbers_to_identify")
MAX_IDENTIFY: Final = 50
PRIORITIES: Final = frozenset(
    {"identified", "unidentified", "most_recently_updated", "least_recently_updated"}
)


def _identify_problem(body: Any) -> str | None:
    """Braze's request rules for `/users/identify` (braze-inc/braze-docs
    `_docs/_api/endpoints/user_data/post_user_identify.md`): one of the three arrays, up to 50
    entries, each with an `external_id`; aliases with a user alias object; emails and phone
    numbers with a `prioritization` of allowed values, at most one of identified /
    unidentified (and here, as strictly, of the two recency words)."""
    if not isinstance(body, Mapping):
        return "Valid request body required"
    unknown = set(body) - set(IDENTIFY_ARRAYS)
    if unknown:
        return f"unknown field(s): {', '.join(sorted(unknown))}"
    arrays = {name: body[name] for name in IDENTIFY_ARRAYS if body.get(name) is not None}
    if any(not isinstance(items, list) for items in arrays.values()):
        return "identify arrays must be arrays"
    total = sum(len(items) for items in arrays.values())
    if total == 0:
        return "one of aliases_to_identify, emails_to_identify or phone_numbers_to_identify is required"
    if total > MAX_IDENTIFY:
        return "at most 50 users may be identified per request"
    for name, items in arrays.items():
        for item in items:
            if not isinstance(item, Mapping):
                return f"each entry of {name} must be an object"
            if not isinstance(item.get("external_id"), str) or not item["external_id"]:
                return f"each entry of {name} needs an 'external_id'"
            if name == "aliases_to_identify":
                if set(item) != {"external_id", "user_alias"} or identifier_error(
                    {"user_alias": item["user_alias"]}
                ):
                    return "each alias to identify needs 'external_id' and a 'user_alias' object"
                continue
            key = "email" if name == "emails_to_identify" else "phone"
            if set(item) != {"external_id", key, "prioritization"}:
                return f"each entry of {name} needs 'external_id', '{key}' and 'prioritization'"
            if not isinstance(item[key], str) or not item[key]:
                return f"'{key}' must be a non-empty string"
            order = item["prioritization"]
            if (
                not isinstance(order, list)
                or not order
                or not all(isinstance(word, str) and word in PRIORITIES for word in order)
                or len(set(order)) != len(order)
                or {"identified", "unidentified"} <= set(order)
                or {"most_recently_updated", "least_recently_updated"} <= set(order)
            ):
                return (
                    "'prioritization' must list identified or unidentified, and/or "
                    "most_recently_updated or least_recently_updated"
                )
    return None


def _merge_into(state: SandboxState, anonymous: SandboxUser, external_id: str) -> str:
    """Identify `anonymous` with `external_id`: what the sandbox did, in words."""
    target_id = state.by_external_id.get(external_id)
    if target_id is None:
        anonymous.external_id = external_id
        state.by_external_id[external_id] = anonymous.braze_id
        anonymous.updated_at = state.tick()
        return "external_id added to the unidentified profile"
    target = state.users[target_id]
    labels = {alias["alias_label"] for alias in target.aliases}
    if any(alias["alias_label"] in labels for alias in anonymous.aliases):
        return "not combined: the identified profile has an alias with the same label"
    state.remove_user(anonymous)
    for name, value in anonymous.attributes.items():
        target.attributes.setdefault(name, value)  # fields only the anonymous profile has
    for mine, theirs in (
        (target.custom_events, anonymous.custom_events),
        (target.purchases, anonymous.purchases),
    ):
        for name, summary in theirs.items():
            known = mine.get(name)
            if known is None:
                mine[name] = summary
            else:
                known.first = min(known.first, summary.first)
                known.last = max(known.last, summary.last)
                known.count += summary.count
    for alias in anonymous.aliases:
        state.add_alias(target, (alias["alias_label"], alias["alias_name"]))
    if anonymous.email and not target.email:
        state.set_email(target, anonymous.email)
    target.updated_at = state.tick()
    return "merged into the identified profile"


def _identify_email(state: SandboxState, item: Mapping[str, Any]) -> str:
    profiles = state.with_email(item["email"])
    if len(profiles) != 1:
        # "A merge does not occur if the email address ... matches multiple users."
        return f"not combined: {len(profiles)} profiles have the email"
    (profile,) = profiles
    order = item["prioritization"]
    if profile.external_id is not None:
        return "not combined: the only profile with the email is identified"
    if "identified" in order:
        return "not combined: prioritization asks for an identified profile"
    return _merge_into(state, profile, item["external_id"])


@router.post("/users/identify")
async def users_identify(request: Request, state: State) -> Response:
    early, headers = await _admit(
        state,
        request,
        "/users/identify",
        "users.identify",
        ("users-admin", state.config.users_admin_limit_per_minute, 60.0),
    )
    if early is not None:
        return early
    body, problem, size = await _read_json(request)
    said = None if problem is not None else _identify_problem(body)
    if problem is not None or said is not None:
        state.log("/users/identify", 400, body, size)
        return problem or _error(400, said or "", headers)
    done: list[str] = []
    for item in body.get("aliases_to_identify") or []:
        alias = item["user_alias"]
        # alias_name is case-sensitive: a different case silently matches nothing.
        found = state.by_alias.get((alias["alias_label"], alias["alias_name"]))
        user = state.users.get(found) if found else None
        if user is None:
            done.append("no profile has the alias")
        elif user.external_id is not None:
            done.append("the alias's profile is already identified")
        else:
            done.append(_merge_into(state, user, item["external_id"]))
    for item in body.get("emails_to_identify") or []:
        done.append(_identify_email(state, item))
    total = sum(len(body.get(name) or []) for name in IDENTIFY_ARRAYS)
    state.log("/users/identify", 201, body, size, "; ".join(done) or None)
    return JSONResponse(
        {"aliases_processed": total, "message": "success"}, status_code=201, headers=headers
    )


@router.get("/_sandbox/emails/{email}")
async def profiles_with_email(email: str, state: State) -> dict[str, Any]:
    """Every profile with this email, oldest first (alias-only and email-only ones included)."""
    return {"profiles": [user.profile() for user in state.with_email(email)]}


@router.get("/events/list")
async def events_list(request: Request, state: State) -> Response:
    early, headers = await _admit(state, request, "/events/list", "events.list", None)
    if early is not None:
        return early
    state.log("/events/list", 200, None)
    return JSONResponse(
        {"message": "success", "events": sorted(state.event_names)}, headers=headers
    )


@router.get("/_sandbox/received")
async def received(state: State, endpoint: str | None = None, limit: int = 200) -> dict[str, Any]:
    requests = [r for r in state.received if endpoint is None or r["endpoint"] == endpoint]
    return {
        "counts": dict(state.counts),
        "users": len(state.users),
        "requests": requests[-max(0, limit) :] if limit else requests,
        "logged": len(requests),
    }


@router.get("/_sandbox/users/{external_id}")
async def profile(external_id: str, state: State) -> Response:
    """The profile as the sandbox stores it: identifiers and every attribute Braze kept."""
    user = state.find_or_create({"external_id": external_id}, create=False)
    if user is None:
        return _error(404, f"no profile with external_id {external_id!r}")
    return JSONResponse(user.profile())


@router.post("/_sandbox/reset")
async def reset(state: State) -> dict[str, str]:
    state.reset()
    return {"status": "reset"}
