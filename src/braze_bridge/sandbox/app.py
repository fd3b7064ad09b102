"""A Braze REST test double: `/users/track`, `/users/export/ids`, `/users/alias/new`, `/events/list`.

Validates requests the way Braze documents (research/braze-api.md), answers in Braze's shapes
with rate-limit headers, returns 429 when its per-key bucket is empty and injects 5xx at a
configurable rate. `GET /_sandbox/received` shows what it got; `POST /_sandbox/reset` forgets.
State lives in memory and is bounded: it is a test double, not a database.

Strict where Braze is: more objects than the configured cap (75 combined; 50 combined for the
Monthly Active Users CY 24-25 plan; 75 per array for older accounts) is 400 "Max Input Length
Exceeded"; `/users/export/ids` needs `fields_to_export` and takes at most 50 `external_ids`;
`attributes_processed` counts distinct users; a 429 carries the X-RateLimit-* headers only,
`Retry-After` just when `retry_after_on_429` asks for it.

API keys: any non-empty key has every permission; `invalid` answers 401; a key spelled
`sandbox-perms:users.track,events.list` has only the permissions listed.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from braze_bridge.braze.models import (
    DEFAULT_TRACK_OBJECT_CAP,
    MAX_BODY_BYTES,
    MAX_INPUT_LENGTH_MESSAGE,
    NO_VALID_DATA_MESSAGE,
    TRACK_ARRAYS,
    TRACK_OBJECT_CAPS,
)

ALL_PERMISSIONS = frozenset(
    {"users.track", "users.export.ids", "users.alias.new", "users.identify", "events.list"}
)
PRIMARY_IDS = ("external_id", "user_alias", "braze_id")
RESERVED_EVENT_PROPERTIES = frozenset({"time", "event_name"})
RESERVED_PURCHASE_PROPERTIES = frozenset(
    {"time", "product_id", "quantity", "event_name", "price", "currency"}
)
SUBSCRIBE_STATES = frozenset({"opted_in", "subscribed", "unsubscribed"})
MAX_EXPORT_EXTERNAL_IDS = 50
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    track_limit_per_3s: int = 3000
    export_limit_per_minute: int = 250
    fail_rate: float = 0.0
    latency_ms: float = 0.0
    # combined_75 | combined_50 | per_array_75 (braze_bridge.braze.models.TRACK_OBJECT_CAPS).
    track_object_cap: str = DEFAULT_TRACK_OBJECT_CAP
    retry_after_on_429: bool = False
    max_logged_requests: int = 2000
    max_logged_bytes: int = 64 * 1024 * 1024
    max_users: int = 1_000_000
    seed: int | None = None


@dataclass(slots=True)
class _Window:
    """Braze-style fixed window: `limit` requests per `seconds`, reset on the boundary."""

    limit: int
    seconds: float
    started: float = 0.0
    used: int = 0

    def take(self, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining, reset epoch)."""
        if now - self.started >= self.seconds:
            self.started = now - (now % self.seconds)
            self.used = 0
        reset = self.started + self.seconds
        if self.used >= self.limit:
            return False, 0, reset
        self.used += 1
        return True, self.limit - self.used, reset


@dataclass(slots=True)
class _User:
    braze_id: str
    external_id: str | None = None
    email: str | None = None
    aliases: list[dict[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class SandboxState:
    config: SandboxConfig
    rng: random.Random
    received: deque[dict[str, Any]] = field(default_factory=deque)
    logged_bytes: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    users: OrderedDict[str, _User] = field(default_factory=OrderedDict)  # braze_id → user
    by_external_id: dict[str, str] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)
    by_alias: dict[tuple[str, str], str] = field(default_factory=dict)
    event_names: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # Profile ids only; apart from `rng` so a seeded sandbox injects the same failures.
    ids: random.Random = field(default_factory=lambda: random.Random(secrets.randbits(64)))  # noqa: S311

    def reset(self) -> None:
        self.received.clear()
        self.logged_bytes = 0
        self.counts.clear()
        self.windows.clear()
        self.users.clear()
        self.by_external_id.clear()
        self.by_email.clear()
        self.by_alias.clear()
        self.event_names.clear()

    # -- users ---------------------------------------------------------------------------------

    def _new_user(self) -> _User:
        if len(self.users) >= self.config.max_users:
            _, old = self.users.popitem(last=False)
            if old.external_id:
                self.by_external_id.pop(old.external_id, None)
            if old.email:
                self.by_email.pop(old.email, None)
            for alias in old.aliases:
                self.by_alias.pop((alias["alias_label"], alias["alias_name"]), None)
        # 24 hex digits like Braze's ids; a PRNG draw instead of an os.urandom call per user.
        user = _User(braze_id=f"{self.ids.getrandbits(96):024x}")
        self.users[user.braze_id] = user
        return user

    def find_or_create(self, obj: Mapping[str, Any], *, create: bool) -> _User | None:
        braze_id: str | None = None
        if isinstance(obj.get("external_id"), str):
            braze_id = self.by_external_id.get(obj["external_id"])
            if braze_id is None and create:
                user = self._new_user()
                user.external_id = obj["external_id"]
                self.by_external_id[user.external_id] = user.braze_id
                return user
        elif isinstance(obj.get("user_alias"), Mapping):
            alias = obj["user_alias"]
            key = (str(alias["alias_label"]), str(alias["alias_name"]))
            braze_id = self.by_alias.get(key)
            if braze_id is None and create:
                user = self._new_user()
                user.aliases.append({"alias_label": key[0], "alias_name": key[1]})
                self.by_alias[key] = user.braze_id
                return user
        elif isinstance(obj.get("braze_id"), str):
            braze_id = obj["braze_id"]
        elif isinstance(obj.get("email"), str):
            braze_id = self.by_email.get(obj["email"].lower())
            if braze_id is None and create:
                user = self._new_user()
                self.set_email(user, obj["email"])
                return user
        return self.users.get(braze_id) if braze_id else None

    def set_email(self, user: _User, email: str) -> None:
        user.email = email.lower()
        self.by_email[user.email] = user.braze_id

    # -- log -----------------------------------------------------------------------------------

    def log(self, endpoint: str, status: int, body: Any, size: int | None = None) -> None:
        """Count and keep a request; `size` is its body's length as received, when known."""
        self.counts[f"{endpoint} {status}"] += 1
        if isinstance(body, Mapping) and endpoint == "/users/track" and 200 <= status < 300:
            for array in TRACK_ARRAYS:
                items = body.get(array)
                if isinstance(items, list):
                    self.counts[f"objects.{array}"] += len(items)
        if size is None:
            # Re-serializing a 75-object body only to bound the log cost more than validating it.
            size = len(json.dumps(body)) if body is not None else 0
        self.received.append(
            {"at": time.time(), "endpoint": endpoint, "status": status, "body": body, "bytes": size}
        )
        self.logged_bytes += size
        while self.received and (
            len(self.received) > self.config.max_logged_requests
            or self.logged_bytes > self.config.max_logged_bytes
        ):
            self.logged_bytes -= self.received.popleft()["bytes"]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _permissions(key: str) -> frozenset[str] | None:
    """None → 401. A `sandbox-perms:a,b` key only has permissions a and b."""
    if not key or key == "invalid":
        return None
    if key.startswith("sandbox-perms:"):
        return frozenset(p.strip() for p in key.split(":", 1)[1].split(",") if p.strip())
    return ALL_PERMISSIONS


def _valid_time(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        datetime.fromisoformat(value)  # Python 3.11+ reads a trailing "Z" as UTC
    except ValueError:
        try:  # what that misses, e.g. a date with "Z" ("2026-01-01Z")
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
    return True


def _identifier_error(obj: Mapping[str, Any]) -> str | None:
    # Runs once per object: plain tests, no intermediate lists or generators.
    primaries = ("external_id" in obj) + ("user_alias" in obj) + ("braze_id" in obj)
    if primaries > 1:
        return "only one of 'external_id', 'braze_id' or 'user_alias' may be provided"
    if not primaries:
        email, phone = obj.get("email"), obj.get("phone")
        if not (isinstance(email, str) and email) and not (isinstance(phone, str) and phone):
            return "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
    value = obj.get("external_id", _ABSENT)
    if value is not _ABSENT:
        if not isinstance(value, str) or not value:
            return "'external_id' must be a non-empty string"
        # UTF-8 takes at most 4 bytes a character: short ids need no encoding to be checked.
        if len(value) > 246 and len(value.encode()) > 987:
            return "EXTERNAL_USER_ID_TOO_LARGE"
    if "user_alias" in obj:
        alias = obj["user_alias"]
        if not isinstance(alias, Mapping) or not all(
            isinstance(alias.get(k), str) and 0 < len(alias[k].encode()) <= 236
            for k in ("alias_name", "alias_label")
        ):
            return "'user_alias' needs a non-empty 'alias_name' and 'alias_label'"
    return None


def _user_key(obj: Mapping[str, Any]) -> str:
    """Which profile a (valid) object names, for counting distinct users."""
    for key in ("external_id", "braze_id", "email", "phone"):
        if isinstance(obj.get(key), str):
            value = obj[key]
            return f"{key}:{value.lower() if key == 'email' else value}"
    alias = obj.get("user_alias")
    if isinstance(alias, Mapping):
        return f"alias:{alias.get('alias_label')}:{alias.get('alias_name')}"
    return f"object:{id(obj)}"


def _properties_error(props: Any, reserved: frozenset[str]) -> str | None:
    if props is None:
        return None
    if not isinstance(props, Mapping):
        return "Invalid 'properties' field"
    for key in props:
        if not key or len(key) > 255 or key.startswith("$") or key in reserved:
            return "Invalid 'properties' field"
    return None


def _object_error(array: str, obj: Any) -> str | None:
    if not isinstance(obj, Mapping):
        return f"'{array}' objects must be JSON objects"
    problem = _identifier_error(obj)
    if problem:
        return problem
    if array == "attributes":
        for key in ("email_subscribe", "push_subscribe"):
            if key in obj and obj[key] not in SUBSCRIBE_STATES:
                return f"BAD_{key.split('_')[0].upper()}_SUBSCRIPTION_STATE"
        if "email" in obj and obj["email"] is not None and "@" not in str(obj["email"]):
            return "EMAIL_BAD_FORMAT"
        for key in obj:
            if key[:1] == "$":
                return "attribute names must not start with '$'"
        return None
    if array == "events":
        if not isinstance(obj.get("name"), str) or not obj["name"]:
            return "'name' is required"
        if not _valid_time(obj.get("time")):
            return "'time' is required and must be ISO 8601"
        return _properties_error(obj.get("properties"), RESERVED_EVENT_PROPERTIES)
    if not isinstance(obj.get("product_id"), str) or not obj["product_id"]:
        return "'product_id' is required"
    if not isinstance(obj.get("currency"), str) or len(obj["currency"]) != 3:
        return "'currency' is not valid"
    if not isinstance(obj.get("price"), int | float) or isinstance(obj.get("price"), bool):
        return "'price' is not valid"
    quantity = obj.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= 100:
        return "'quantity' is not valid"
    if not _valid_time(obj.get("time")):
        return "'time' is required and must be ISO 8601"
    return _properties_error(obj.get("properties"), RESERVED_PURCHASE_PROPERTIES)


def create_sandbox_app(config: SandboxConfig | None = None) -> FastAPI:
    """The sandbox as an ASGI app (run by `braze-bridge sandbox`, or in-process by tests)."""
    config = config or SandboxConfig()
    state = SandboxState(config, random.Random(config.seed))  # noqa: S311 - not crypto
    app = FastAPI(title="braze-bridge Braze sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = state
    max_objects, per_array = TRACK_OBJECT_CAPS[config.track_object_cap]

    def authorize(request: Request, permission: str) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        permissions = _permissions(key.strip()) if scheme.lower() == "bearer" else None
        if permissions is None:
            return _error(401, "Invalid API Key")
        if permission not in permissions:
            return _error(403, "Access Denied")
        return None

    def rate_limit(request: Request, bucket: str, limit: int, seconds: float) -> dict[str, str]:
        key = request.headers.get("authorization", "")
        window = state.windows.setdefault((bucket, key), _Window(limit, seconds))
        allowed, remaining, reset = window.take(time.time())
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }
        if not allowed:
            if config.retry_after_on_429:
                headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
            headers["X-Sandbox-Limited"] = "1"
        return headers

    async def common(
        request: Request, endpoint: str, permission: str, bucket: tuple[str, int, float] | None
    ) -> tuple[Response | None, dict[str, str]]:
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        denied = authorize(request, permission)
        if denied is not None:
            state.log(endpoint, denied.status_code, None)
            return denied, {}
        headers: dict[str, str] = {}
        if bucket is not None:
            headers = rate_limit(request, *bucket)
            if headers.pop("X-Sandbox-Limited", None):
                state.log(endpoint, 429, None)
                return _error(429, "Rate limit exceeded", headers), headers
        if config.fail_rate and state.rng.random() < config.fail_rate:
            status = state.rng.choice((500, 503))
            state.log(endpoint, status, None)
            return _error(status, "Internal Server Error (injected by the sandbox)"), headers
        return None, headers

    async def read_json(request: Request) -> tuple[Any, Response | None, int]:
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

    @app.post("/users/track")
    async def users_track(request: Request) -> Response:
        early, headers = await common(
            request, "/users/track", "users.track", ("track", config.track_limit_per_3s, 3.0)
        )
        if early is not None:
            return early
        body, problem, size = await read_json(request)
        if problem is not None:
            state.log("/users/track", problem.status_code, None)
            problem.headers.update(headers)
            return problem
        if not isinstance(body, Mapping):
            state.log("/users/track", 400, body, size)
            return _error(400, NO_VALID_DATA_MESSAGE, headers)
        if any(not isinstance(body.get(a), list | None) for a in TRACK_ARRAYS):
            state.log("/users/track", 400, body, size)
            return _error(400, NO_VALID_DATA_MESSAGE, headers)
        arrays: dict[str, list[Any]] = {a: body[a] for a in TRACK_ARRAYS if body.get(a) is not None}
        sizes = {a: len(items) for a, items in arrays.items()}
        too_many = (
            any(n > max_objects for n in sizes.values())
            if per_array
            else sum(sizes.values()) > max_objects
        )
        if too_many:
            state.log("/users/track", 400, body, size)
            return _error(400, MAX_INPUT_LENGTH_MESSAGE, headers)
        errors: list[dict[str, Any]] = []
        processed: dict[str, int] = {}
        attribute_users: set[str] = set()
        for array, items in arrays.items():
            refused = len(errors)
            for index, obj in enumerate(items):
                problem_text = _object_error(array, obj)
                if problem_text:
                    errors.append({"type": problem_text, "input_array": array, "index": index})
                    continue
                if array == "attributes":
                    attribute_users.add(_user_key(obj))
                create = (
                    array != "attributes"
                    or obj.get("_update_existing_only") is False
                    or ("user_alias" not in obj and obj.get("_update_existing_only") is not True)
                )
                user = state.find_or_create(obj, create=create)
                if user is not None and array == "attributes" and isinstance(obj.get("email"), str):
                    state.set_email(user, obj["email"])
                if array == "events":
                    state.event_names[obj["name"]] = None
                    while len(state.event_names) > 10_000:
                        state.event_names.popitem(last=False)
            # Braze counts attributes per user updated, events and purchases per object.
            processed[array] = (
                len(attribute_users)
                if array == "attributes"
                else len(items) - (len(errors) - refused)
            )
        if sum(processed.values()) == 0:
            state.log("/users/track", 400, body, size)
            answer: dict[str, Any] = {"message": NO_VALID_DATA_MESSAGE}
            if errors:
                answer["errors"] = errors
            return JSONResponse(answer, status_code=400, headers=headers)
        state.log("/users/track", 201, body, size)
        answer = {"message": "success"}
        for name, count in processed.items():
            answer[f"{name}_processed"] = count
        if errors:
            answer["errors"] = errors
        return JSONResponse(answer, status_code=201, headers=headers)

    @app.post("/users/export/ids")
    async def users_export_ids(request: Request) -> Response:
        early, headers = await common(
            request,
            "/users/export/ids",
            "users.export.ids",
            ("export", config.export_limit_per_minute, 60.0),
        )
        if early is not None:
            return early
        body, problem, size = await read_json(request)
        if problem is not None or not isinstance(body, Mapping):
            state.log("/users/export/ids", 400, body, size)
            return problem or _error(400, "Valid request body required", headers)
        singles = [k for k in ("email_address", "phone", "device_id") if body.get(k)]
        if len(singles) > 1:
            state.log("/users/export/ids", 400, body, size)
            return _error(
                400, "Only one of email_address, phone or device_id may be given", headers
            )
        fields = body.get("fields_to_export")
        if not isinstance(fields, list) or not fields:
            state.log("/users/export/ids", 400, body, size)
            return _error(400, "'fields_to_export' is required", headers)
        external_ids = body.get("external_ids") or []
        if isinstance(external_ids, list) and len(external_ids) > MAX_EXPORT_EXTERNAL_IDS:
            state.log("/users/export/ids", 400, body, size)
            return _error(400, "'external_ids' may list at most 50 ids", headers)
        found: list[_User] = []
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
            user = state.find_or_create({"email": body["email_address"]}, create=False)
            if user:
                found.append(user)
            else:
                invalid.append(body["email_address"])
        if isinstance(body.get("braze_id"), str):
            user = state.users.get(body["braze_id"])
            if user:
                found.append(user)
        users = []
        for user in found:
            record: dict[str, Any] = {
                "braze_id": user.braze_id,
                "external_id": user.external_id,
                "email": user.email,
                "user_aliases": user.aliases,
            }
            record = {k: v for k, v in record.items() if k in fields}
            users.append({k: v for k, v in record.items() if v not in (None, [])})
        state.log("/users/export/ids", 201, body, size)
        answer: dict[str, Any] = {"users": users, "message": "success"}
        if invalid:
            answer["invalid_user_ids"] = invalid
        return JSONResponse(answer, status_code=201, headers=headers)

    @app.post("/users/alias/new")
    async def users_alias_new(request: Request) -> Response:
        early, headers = await common(request, "/users/alias/new", "users.alias.new", None)
        if early is not None:
            return early
        body, problem, size = await read_json(request)
        aliases = body.get("user_aliases") if isinstance(body, Mapping) else None
        if problem is not None or not isinstance(aliases, list) or not 0 < len(aliases) <= 50:
            state.log("/users/alias/new", 400, body, size)
            return problem or _error(400, "'user_aliases' must list 1 to 50 aliases", headers)
        for alias in aliases:
            if not isinstance(alias, Mapping) or _identifier_error({"user_alias": alias}):
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
                user = state._new_user()
            user.aliases.append({"alias_label": key[0], "alias_name": key[1]})
            state.by_alias[key] = user.braze_id
        state.log("/users/alias/new", 201, body, size)
        return JSONResponse(
            {"aliases_processed": len(aliases), "message": "success"},
            status_code=201,
            headers=headers,
        )

    @app.get("/events/list")
    async def events_list(request: Request) -> Response:
        early, headers = await common(request, "/events/list", "events.list", None)
        if early is not None:
            return early
        state.log("/events/list", 200, None)
        return JSONResponse(
            {"message": "success", "events": sorted(state.event_names)}, headers=headers
        )

    @app.get("/_sandbox/received")
    async def received(endpoint: str | None = None, limit: int = 200) -> dict[str, Any]:
        requests = [r for r in state.received if endpoint is None or r["endpoint"] == endpoint]
        return {
            "counts": dict(state.counts),
            "users": len(state.users),
            "requests": requests[-max(0, limit) :] if limit else requests,
            "logged": len(requests),
        }

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return app
