"""Typed Extole event + connection settings → Braze operations (docs/extole.md section 6). Pure.

Each kind yields its attributes object first (so a Canvas triggered by the event can already read
the new attributes), then its custom event. Identity follows `external_id_source`; without an
external id the operations carry only the email and the worker resolves it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from braze_bridge.domain.content import ContentUpdate, RewardSnapshot
from braze_bridge.domain.mapping import Filtered, Mapped, MappingContext, Rejected
from braze_bridge.domain.operations import Operation, UserRef
from braze_bridge.domain.properties import attribute_values, clip_string, event_properties
from braze_bridge.domain.statuses import ObjectKind
from braze_bridge.partners.extole.events import (
    ExtoleEvent,
    Outcome,
    Reward,
    Shared,
    ShareLinkCreated,
    Subscribed,
    Unsubscribed,
)
from braze_bridge.partners.extole.normalize import step_name
from braze_bridge.partners.extole.settings import STORED_MODE, ExtoleSettings, RewardState

PARTNER = "Extole"
MAX_IDENTIFIER_LENGTH = 512
# Coupon codes of rewards taken back must not reach a message.
NO_COUPON_STATES = frozenset({"CANCELED", "REVOKED"})


def braze_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. `2024-03-15T10:30:00.000Z`."""
    utc = moment.astimezone(UTC)
    # Formatted by hand, in one %-format (strftime, f-string specs and isoformat all cost more).
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond // 1000,
    )


def user_for(event: ExtoleEvent, settings: ExtoleSettings) -> UserRef:
    """The identifier the worker will use; raises Rejected(`no_user_identifier`) with none."""
    if settings.external_id_source == "email_address":
        external_id = event.email
    else:
        external_id = event.user.external_id
    email = event.email
    for value, what in ((external_id, "external id"), (email, "email")):
        if value is not None and len(value) > MAX_IDENTIFIER_LENGTH:
            raise Rejected(
                f"invalid_user_identifier: {what} is longer than {MAX_IDENTIFIER_LENGTH} characters"
            )
    if external_id:
        # The email rides along: it tells the worker which profile it created for this email
        # before the external id was known, to identify it (docs/delivery.md, "Identify later").
        return UserRef(
            external_id=external_id,
            email=email or None,
            unknown_user=STORED_MODE[settings.identity],
        )
    if email:
        return UserRef(email=email, unknown_user=STORED_MODE[settings.identity])
    raise Rejected("no_user_identifier")


# The ExtoleEvents switch of each kind that has one.
_KIND_SWITCHES: dict[type[ExtoleEvent], str] = {
    ShareLinkCreated: "share_link_created",
    Shared: "shared",
    Subscribed: "subscribed",
    Unsubscribed: "unsubscribed",
}


@lru_cache(maxsize=256)
def _enabled_steps(outcomes: tuple[str, ...]) -> frozenset[str]:
    """The step names a connection's `events.outcomes` list enables (settings change rarely)."""
    return frozenset(step_name(name) for name in outcomes)


def reward_state(event: Reward, settings: ExtoleSettings) -> RewardState:
    """The state the body names, else the connection's `untyped_reward_state`."""
    return event.state or settings.untyped_reward_state


def check_enabled(event: ExtoleEvent, settings: ExtoleSettings) -> None:
    """Raise Filtered when the settings do not forward this kind or reward state."""
    events = settings.events
    if type(event) is Reward:
        state = reward_state(event, settings)
        if state not in settings.reward_states:
            raise Filtered(f"reward_state_not_enabled: {state}")
        return
    if type(event) is Outcome:
        enabled = _enabled_steps(tuple(events.outcomes))
        if "*" not in enabled and event.step not in enabled:
            raise Filtered(f"outcome_not_enabled: {event.step}")
        return
    switch = _KIND_SWITCHES.get(type(event))
    if switch is not None and not getattr(events, switch):
        raise Filtered(f"kind_not_enabled: {event.kind}")


def _subscription_groups(settings: ExtoleSettings, state: str) -> list[dict[str, str]] | None:
    if settings.subscription_group_id is None:
        return None
    return [{"subscription_group_id": settings.subscription_group_id, "subscription_state": state}]


def _operations(
    notes: list[str],
    user: UserRef,
    attributes: dict[str, Any],
    event_name: str | None,
    time: str,
    properties: dict[str, Any],
) -> list[Operation]:
    # Operation.attributes / custom_event, without their defensive copies: these dicts are new.
    operations = []
    values = attribute_values(attributes, notes)
    if values:
        operations.append(Operation(ObjectKind.ATTRIBUTES, user, values))
    if event_name is not None:
        payload: dict[str, Any] = {"name": event_name, "time": time}
        sent = event_properties(properties)
        if sent:
            payload["properties"] = sent
        operations.append(Operation(ObjectKind.EVENTS, user, payload))
    return operations


def map_extole(event: ExtoleEvent, settings: ExtoleSettings, context: MappingContext) -> Mapped:
    check_enabled(event, settings)
    notes: list[str] = []
    user = user_for(event, settings)
    at = event.occurred_at or context.received_at
    time = braze_time(at)
    names: dict[str, Any] = {
        "email": event.email,
        "first_name": event.first_name,
        "last_name": event.last_name,
    }
    base: dict[str, Any] = {"partner": PARTNER, "funnel": event.funnel, "program": event.program}
    content: ContentUpdate | None = None
    attributes: dict[str, Any]
    properties: dict[str, Any]

    # Exact classes (each kind is one final class): an isinstance miss on a pydantic model
    # class goes through ABCMeta, ~0.2 µs each.

    if type(event) is ShareLinkCreated:
        # Names and properties as Extole's own Braze integration sends them.
        name = settings.event_name("extole_share_link_created", "share_link_created")
        attributes = {
            "email": event.email,
            "extole_share_link": event.share_link,
            "extole_share_code": event.share_code,
        }
        properties = {**base, "email": event.email}
        operations = _operations(notes, user, attributes, name, time, properties)
        if user.external_id and (event.share_link or event.share_code):
            content = ContentUpdate(
                user.external_id, at, share_link=event.share_link, share_code=event.share_code
            )
    elif type(event) is Shared:
        name = settings.event_name("extole_shared", "shared")
        properties = {
            **base,
            "email": event.email,
            "external_id": user.external_id,
            "share_channel": event.share_channel,
        }
        operations = _operations(notes, user, names, name, time, properties)
        if user.external_id and event.share_link:
            content = ContentUpdate(user.external_id, at, share_link=event.share_link)
    elif type(event) is Outcome:
        default = clip_string(f"extole_{event.step}")
        name = settings.event_name(default, event.step)
        properties = {**base}
        for key, value in event.fields.items():
            properties.setdefault(key, value)
        operations = _operations(notes, user, names, name, time, properties)
    elif type(event) is Subscribed:
        attributes = {
            "email": event.email,
            "email_subscribe": "opted_in",
            "extole_list_type": event.list_type,
            "subscription_groups": _subscription_groups(settings, "subscribed"),
        }
        operations = _operations(notes, user, attributes, None, time, {})
    elif type(event) is Unsubscribed:
        name = settings.event_name("extole_unsubscribed", "unsubscribed")
        # An opt-out of Extole's emails, not of all email: Braze's global `email_subscribe`
        # changes only when the connection asks for it.
        attributes = {
            "extole_list_type": event.list_type,
            "subscription_groups": _subscription_groups(settings, "unsubscribed"),
        }
        if settings.global_email_unsubscribe:
            attributes["email_subscribe"] = "unsubscribed"
        properties = {
            "email": event.email,
            "external_id": user.external_id,
            "subscription_state": "unsubscribed",
            "subscription_group_id": settings.subscription_group_id,
        }
        operations = _operations(notes, user, attributes, name, time, properties)
    elif type(event) is Reward:
        upper = reward_state(event, settings)
        state = upper.lower()
        name = settings.event_name(f"extole_reward_{state}", f"reward_{state}", event.reward_type)
        coupon = None if upper in NO_COUPON_STATES else event.coupon_code
        properties = {
            "email": event.email,
            "face_value": event.face_value,
            "face_value_type": event.face_value_type,
            "coupon_code": coupon,
            "reward_id": event.reward_id,
            "reward_supplier_type": event.reward_supplier_type,
        }
        operations = _operations(notes, user, names, name, time, properties)
        if user.external_id and event.reward_id:
            snapshot = RewardSnapshot(
                reward_id=event.reward_id,
                state=upper,
                face_value=event.face_value,
                face_value_type=event.face_value_type,
                coupon_code=coupon,
                updated_at=at,
            )
            content = ContentUpdate(user.external_id, at, reward=snapshot)
    else:  # pragma: no cover - every ExtoleEvent subclass is handled above
        raise Rejected(f"unknown_shape: no mapping for kind {event.kind}")
    return Mapped(operations=operations, content=content, notes=notes)
