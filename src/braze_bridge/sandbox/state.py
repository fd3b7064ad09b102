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
from datetime import UTC, datetime
from typing import Any

from braze_bridge.braze.models import DEFAULT_TRACK_OBJECT_CAP, TRACK_ARRAYS, TRACK_OBJECT_CAPS


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    track_limit_per_3s: int = 3000
    export_limit_per_minute: int = 250
    # /users/identify, /users/alias/new, /users/merge, /users/delete share this window.
    users_admin_limit_per_minute: int = 20_000
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
class Summary:
    """What Braze keeps per custom event or purchase product: first, last (epoch), count."""

    first: float
    last: float
    count: int = 1

    def export(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "first": _iso(self.first),
            "last": _iso(self.last),
            "count": self.count,
        }


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass(slots=True)
class SandboxUser:
    braze_id: str
    external_id: str | None = None
    email: str | None = None
    aliases: list[dict[str, str]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    # When anything last changed on the profile: how Braze picks among profiles of one email.
    updated_at: float = 0.0
    custom_events: dict[str, Summary] = field(default_factory=dict)
    purchases: dict[str, Summary] = field(default_factory=dict)

    def profile(self) -> dict[str, Any]:
        return {
            "braze_id": self.braze_id,
            "external_id": self.external_id,
            "email": self.email,
            "user_aliases": self.aliases,
            "custom_attributes": self.attributes,
            "created_at": _iso(self.created_at),
            "custom_events": [s.export(n) for n, s in self.custom_events.items()],
            "purchases": [s.export(n) for n, s in self.purchases.items()],
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
    # email → braze ids of every profile with it, oldest first: several profiles may share one.
    by_email: dict[str, list[str]] = field(default_factory=dict)
    last_tick: float = 0.0
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

    def tick(self) -> float:
        """Now, strictly after the last tick: "most recently updated" must tell profiles apart."""
        self.last_tick = max(time.time(), self.last_tick + 0.001)
        return self.last_tick

    def new_user(self) -> SandboxUser:
        if len(self.users) >= self.config.max_users:
            _, old = self.users.popitem(last=False)
            self.unindex(old)
        # 24 hex digits like Braze's ids; a PRNG draw instead of an os.urandom call per user.
        now = self.tick()
        user = SandboxUser(
            braze_id=f"{self.ids.getrandbits(96):024x}", created_at=now, updated_at=now
        )
        self.users[user.braze_id] = user
        return user

    def unindex(self, user: SandboxUser) -> None:
        """Forget every way `user` could be found (it left the sandbox or was merged away)."""
        if user.external_id and self.by_external_id.get(user.external_id) == user.braze_id:
            del self.by_external_id[user.external_id]
        if user.email:
            self._drop_email(user)
        for alias in user.aliases:
            key = (alias["alias_label"], alias["alias_name"])
            if self.by_alias.get(key) == user.braze_id:
                del self.by_alias[key]

    def remove_user(self, user: SandboxUser) -> None:
        """The profile and every way to find it go (`/users/delete`, or merged away)."""
        self.unindex(user)
        self.users.pop(user.braze_id, None)

    def _drop_email(self, user: SandboxUser) -> None:
        assert user.email is not None  # noqa: S101
        ids = self.by_email.get(user.email, [])
        if user.braze_id in ids:
            ids.remove(user.braze_id)
        if not ids:
            self.by_email.pop(user.email, None)

    def with_email(self, email: str) -> list[SandboxUser]:
        """Every profile with this email (any case), oldest first."""
        return [self.users[i] for i in self.by_email.get(email.lower(), []) if i in self.users]

    def by_email_identifier(self, email: str) -> SandboxUser | None:
        """The profile Braze updates for the `email` identifier: the most recently updated one
        with an external id, else the most recently updated one (braze-inc/braze-docs
        `_docs/_api/endpoints/user_data/post_user_track.md`)."""
        profiles = self.with_email(email)
        pool = [u for u in profiles if u.external_id] or profiles
        return max(pool, key=lambda u: u.updated_at) if pool else None

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
            found = self.by_email_identifier(obj["email"])
            if found is None and create:
                # No profile has the email: Braze creates an email-only one, with no alias.
                user = self.new_user()
                self.set_email(user, obj["email"])
                return user
            return found
        return self.users.get(braze_id) if braze_id else None

    def set_email(self, user: SandboxUser, email: str) -> None:
        lowered = email.lower()
        if user.email == lowered:
            return
        if user.email:
            self._drop_email(user)
        user.email = lowered
        self.by_email.setdefault(lowered, []).append(user.braze_id)

    def add_alias(self, user: SandboxUser, key: tuple[str, str]) -> None:
        """`key` is (label, name)."""
        user.aliases.append({"alias_label": key[0], "alias_name": key[1]})
        self.by_alias[key] = user.braze_id

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
