"""Antavo loyalty → Braze: the Partner object the ingest path calls (docs/antavo.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.domain.mapping import Mapped, MappingContext
from braze_bridge.domain.statuses import Source
from braze_bridge.partners.antavo.mapping import antavo_settings, map_event
from braze_bridge.partners.antavo.normalize import normalize_body
from braze_bridge.partners.antavo.settings import AntavoSettings


class AntavoPartner:
    """Pure: `normalize` reads a body, `map` turns it into Braze operations."""

    source: Source = Source.ANTAVO
    settings_model: type[BaseModel] = AntavoSettings

    def normalize(self, body: Any, *, received_at: datetime) -> NormalizedEvent:
        return normalize_body(body, received_at=received_at)

    def map(self, event: NormalizedEvent, settings: BaseModel, context: MappingContext) -> Mapped:
        return map_event(event, settings, context)

    def tracks_user_values(self, settings: BaseModel) -> bool:
        """Whether ingest must load known values and record enqueued ones (`changed_only`)."""
        return antavo_settings(settings).sync_mode == "changed_only"


PARTNER = AntavoPartner()

__all__ = ["PARTNER", "AntavoPartner", "AntavoSettings"]
