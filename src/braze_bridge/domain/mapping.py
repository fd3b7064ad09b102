"""What every partner implements: normalize raw JSON, map it to Braze operations. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from braze_bridge.domain.content import ContentUpdate
from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import Source


class MappingOutcome(Exception):
    """An event that is stored but not sent; `reason` is shown in the event log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Filtered(MappingOutcome):
    """The connection's settings do not forward this kind or state (status `filtered`)."""


class Rejected(MappingOutcome):
    """Valid JSON we cannot map: unknown shape, no user identifier (status `rejected`)."""


@dataclass(frozen=True, slots=True)
class MappingContext:
    """Values the pure mapping needs from outside: time, connection facts, stored user values."""

    received_at: datetime
    app_id: str | None = None
    # Last values recorded per Braze attribute for this user (Antavo `changed_only`).
    known_values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Mapped:
    """The Braze objects an event produces, plus per-attribute problems (event log notes)."""

    operations: list[Operation]
    notes: list[str] = field(default_factory=list)
    # Attribute writes left out because Braze already has the value (Antavo `changed_only`).
    data_points_saved: int = 0
    # Connected Content projection change (Extole share links and rewards); None for most events.
    content: ContentUpdate | None = None


class Partner(Protocol):
    source: Source
    settings_model: type[BaseModel]

    def normalize(self, body: Any, *, received_at: datetime) -> NormalizedEvent:
        """Raw JSON → typed event; raises Rejected for shapes it cannot read."""
        ...

    def map(self, event: NormalizedEvent, settings: BaseModel, context: MappingContext) -> Mapped:
        """Typed event + the connection's settings → Braze operations; raises Filtered/Rejected."""
        ...

    def tracks_user_values(self, settings: BaseModel) -> bool:
        """Whether ingest must load known values and record enqueued ones (Antavo `changed_only`)."""
        ...
