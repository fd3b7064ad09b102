"""A Braze object waiting to be sent: what partners' mappings produce, what the outbox stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from braze_bridge.domain.statuses import ObjectKind


@dataclass(frozen=True, slots=True)
class UserRef:
    """Who an object is about. The worker resolves `email`-only users through Braze."""

    external_id: str | None = None
    email: str | None = None
    # How the worker addresses a user known only by email, the connection's identity mode as
    # stored on the operation (`operations.unknown_user`, named before the modes existed):
    # "email" (the email identifier), "alias" (lookup_then_alias: export/ids, else an alias-only
    # profile) or "skip" (docs/delivery.md, "Identity").
    unknown_user: str = "alias"

    @property
    def key(self) -> str | None:
        """Stable per-connection ordering key: external id first, else the email."""
        if self.external_id:
            return f"id:{self.external_id}"
        if self.email:
            return f"email:{self.email.lower()}"
        return None


@dataclass(frozen=True, slots=True)
class Operation:
    """One Braze object without its identifier; the worker adds `external_id`/alias on send.

    `payload` is the object as Braze will see it (e.g. `{"name": ..., "time": ...,
    "properties": {...}}` for an event, `{"email": ..., "first_name": ...}` for attributes).
    """

    kind: ObjectKind
    user: UserRef
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def attributes(cls, user: UserRef, values: dict[str, Any]) -> Operation:
        return cls(ObjectKind.ATTRIBUTES, user, dict(values))

    @classmethod
    def custom_event(
        cls, user: UserRef, name: str, *, time: str, properties: dict[str, Any] | None = None
    ) -> Operation:
        payload: dict[str, Any] = {"name": name, "time": time}
        if properties:
            payload["properties"] = dict(properties)
        return cls(ObjectKind.EVENTS, user, payload)

    @classmethod
    def purchase(cls, user: UserRef, payload: dict[str, Any]) -> Operation:
        return cls(ObjectKind.PURCHASES, user, dict(payload))
