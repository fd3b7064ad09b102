"""Extole referral webhooks: the Partner object the ingest path looks up by source."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.domain.mapping import Mapped, MappingContext, Rejected
from braze_bridge.domain.statuses import Source
from braze_bridge.partners.extole.events import ExtoleEvent
from braze_bridge.partners.extole.mapping import map_extole
from braze_bridge.partners.extole.normalize import normalize_extole
from braze_bridge.partners.extole.settings import ExtoleSettings


class ExtolePartner:
    source = Source.EXTOLE
    settings_model: type[BaseModel] = ExtoleSettings

    def normalize(self, body: Any, *, received_at: datetime) -> NormalizedEvent:
        return normalize_extole(body, received_at=received_at)

    def map(self, event: NormalizedEvent, settings: BaseModel, context: MappingContext) -> Mapped:
        if not isinstance(event, ExtoleEvent) or not isinstance(settings, ExtoleSettings):
            raise Rejected(f"unknown_shape: not an Extole event ({type(event).__name__})")
        return map_extole(event, settings, context)

    def tracks_user_values(self, settings: BaseModel) -> bool:
        """Extole mappings never compare against stored values."""
        del settings
        return False


EXTOLE = ExtolePartner()

__all__ = ["EXTOLE", "ExtolePartner"]
