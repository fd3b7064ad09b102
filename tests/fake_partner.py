"""A partner that maps like a real one, for replay and re-map tests (the real ones live on
other branches; the lead wires `braze_bridge.partners.PARTNERS`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from braze_bridge.domain.events import NormalizedEvent, NormalizedUser
from braze_bridge.domain.mapping import Filtered, Mapped, MappingContext, Partner, Rejected
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import Source


class FakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_name: str = "extole_reward_fulfilled"
    loyalty_attribute: str | None = None
    enabled: bool = True


class FakePartner:
    """Maps `{"type", "partner_user_id", "points"}` like a real partner would."""

    source = Source.EXTOLE
    settings_model: type[BaseModel] = FakeSettings

    def normalize(self, body: Any, *, received_at: datetime) -> NormalizedEvent:
        if not body.get("partner_user_id"):
            raise Rejected("no user identifier")
        return NormalizedEvent(
            kind=body["type"],
            source_event_id=body.get("event_id"),
            user=NormalizedUser(external_id=body["partner_user_id"]),
        )

    def map(self, event: NormalizedEvent, settings: BaseModel, context: MappingContext) -> Mapped:
        assert isinstance(settings, FakeSettings)
        if not settings.enabled:
            raise Filtered(f"{event.kind} is not enabled")
        user = event.user.ref()
        ops = [
            Operation.custom_event(user, settings.event_name, time=context.received_at.isoformat())
        ]
        if settings.loyalty_attribute:
            ops.append(Operation.attributes(user, {settings.loyalty_attribute: 10}))
        return Mapped(ops)


def fake_partners(source: Source) -> Partner | None:
    return FakePartner() if source == Source.EXTOLE else None
