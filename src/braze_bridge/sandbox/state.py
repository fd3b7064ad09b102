"""The sandbox's memory: its settings, rate windows, the profiles it has seen, what it received.

Bounded (oldest profiles and requests go first): it is a test double, not a database.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from braze_bridge.braze.models import DEFAULT_TRACK_OBJECT_CAP, TRACK_ARRAYS, TRACK_OBJECT_CAPS


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

    @property
    def object_cap(self) -> tuple[int, bool]:
        """(most objects per /users/track request, counted per array rather than combined)."""
        return TRACK_OBJECT_CAPS[self.track_object_cap]


@dataclass(slots=True)
class RateWindow:
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
class SandboxUser:
    braze_id: str
    external_id: str | None = None
    email: str | None = None
    aliases: list[dict[str, str]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    def profile(self) -> dict[str, Any]:
        return {
            "braze_id": self.braze_id,
            "external_id": self.external_id,
            "email": self.email,
            "user_aliases": self.aliases,
            "custom_attributes": self.attributes,
        }


@dataclass(slots=True)
class SandboxState:
    config: SandboxConfig
    rng: random.Random
    received: deque[dict[str, Any]] = field(default_factory=deque)
    logged_bytes: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    windows: dict[tuple[str, str], RateWindow] = field(default_factory=dict)
    users: OrderedDict[str, SandboxUser] = field(default_factory=OrderedDict)  # braze_id → user
    by_external_id: dict[str, str] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)
    by_alias: dict[tuple[str, str], str] = field(default_factory=dict)
    event_names: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # Profile ids only; apart from `rng` so a seeded sandbox injects the same failures.
    ids: random.Random = field(default_factory=lambda: random.Random(secrets.randbits(64)))  # noqa: S311

    @classmethod
    def new(cls, config: SandboxConfig) -> SandboxState:
        return cls(config, random.Random(config.seed))  # noqa: S311 - not crypto

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

    # -- rate windows --------------------------------------------------------------------------

    def window(self, bucket: str, key: str, limit: int, seconds: float) -> RateWindow:
        return self.windows.setdefault((bucket, key), RateWindow(limit, seconds))

    # -- users ---------------------------------------------------------------------------------

    def new_user(self) -> SandboxUser:
        if len(self.users) >= self.config.max_users:
            _, old = self.users.popitem(last=False)
            if old.external_id:
                self.by_external_id.pop(old.external_id, None)
            if old.email:
                self.by_email.pop(old.email, None)
            for alias in old.aliases:
                self.by_alias.pop((alias["alias_label"], alias["alias_name"]), None)
        # 24 hex digits like Braze's ids; a PRNG draw instead of an os.urandom call per user.
        user = SandboxUser(braze_id=f"{self.ids.getrandbits(96):024x}")
        self.users[user.braze_id] = user
        return user

    def find_or_create(self, obj: Mapping[str, Any], *, create: bool) -> SandboxUser | None:
        braze_id: str | None = None
        if isinstance(obj.get("external_id"), str):
            braze_id = self.by_external_id.get(obj["external_id"])
            if braze_id is None and create:
                user = self.new_user()
                user.external_id = obj["external_id"]
                self.by_external_id[user.external_id] = user.braze_id
                return user
        elif isinstance(obj.get("user_alias"), Mapping):
            alias = obj["user_alias"]
            key = (str(alias["alias_label"]), str(alias["alias_name"]))
            braze_id = self.by_alias.get(key)
            if braze_id is None and create:
                user = self.new_user()
                self.add_alias(user, key)
                return user
        elif isinstance(obj.get("braze_id"), str):
            braze_id = obj["braze_id"]
        elif isinstance(obj.get("email"), str):
            braze_id = self.by_email.get(obj["email"].lower())
            if braze_id is None and create:
                user = self.new_user()
                self.set_email(user, obj["email"])
                return user
        return self.users.get(braze_id) if braze_id else None

    def set_email(self, user: SandboxUser, email: str) -> None:
        user.email = email.lower()
        self.by_email[user.email] = user.braze_id

    def add_alias(self, user: SandboxUser, key: tuple[str, str]) -> None:
        """`key` is (label, name)."""
        user.aliases.append({"alias_label": key[0], "alias_name": key[1]})
        self.by_alias[key] = user.braze_id

    def delete_user(self, user: SandboxUser) -> None:
        """`/users/delete`: the profile and every way to find it go."""
        self.users.pop(user.braze_id, None)
        if user.external_id:
            self.by_external_id.pop(user.external_id, None)
        if user.email:
            self.by_email.pop(user.email, None)
        for alias in user.aliases:
            self.by_alias.pop((alias["alias_label"], alias["alias_name"]), None)

    def remember_event_name(self, name: str) -> None:
        self.event_names[name] = None
        while len(self.event_names) > 10_000:
            self.event_names.popitem(last=False)

    # -- log -----------------------------------------------------------------------------------

    def log(
        self,
        endpoint: str,
        status: int,
        body: Any,
        size: int | None = None,
        note: str | None = None,
    ) -> None:
        """Count and keep a request; `size` is its body's length as received, when known;
        `note` says what the sandbox did that Braze's answer does not show."""
        self.counts[f"{endpoint} {status}"] += 1
        if isinstance(body, Mapping) and endpoint == "/users/track" and 200 <= status < 300:
            for array in TRACK_ARRAYS:
                items = body.get(array)
                if isinstance(items, list):
                    self.counts[f"objects.{array}"] += len(items)
        if size is None:
            # Re-serializing a 75-object body only to bound the log cost more than validating it.
            size = len(json.dumps(body)) if body is not None else 0
        entry = {"at": time.time(), "endpoint": endpoint, "status": status, "body": body}
        entry["bytes"] = size
        if note is not None:
            entry["sandbox_note"] = note
        self.received.append(entry)
        self.logged_bytes += size
        while self.received and (
            len(self.received) > self.config.max_logged_requests
            or self.logged_bytes > self.config.max_logged_bytes
        ):
            self.logged_bytes -= self.received.popleft()["bytes"]
