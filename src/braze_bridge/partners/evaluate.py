"""Normalize + map one parsed body with a connection's settings: the single path that ingest,
preview and replay's re-map all take, so what a preview shows is what ingest stores."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from braze_bridge.domain.content import ContentUpdate
from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.domain.ids import unsendable_identifier_reason
from braze_bridge.domain.mapping import Filtered, MappingContext, Partner, Rejected
from braze_bridge.domain.operations import Operation, UserRef
from braze_bridge.domain.statuses import EventStatus
from braze_bridge.logging import get_logger

log = get_logger(__name__)


@dataclass(slots=True)
class Evaluation:
    """What normalize + map made of one body; the same for ingest, preview and replays."""

    status: EventStatus
    normalized: NormalizedEvent | None = None
    reason: str | None = None
    operations: list[Operation] = field(default_factory=list)
    content: ContentUpdate | None = None
    notes: list[str] = field(default_factory=list)
    data_points_saved: int = 0

    @property
    def user(self) -> UserRef | None:
        if self.operations:
            return self.operations[0].user
        if self.normalized is not None:
            return self.normalized.user.ref()
        return None


class InvalidSettings(Exception):
    """A connection's stored settings do not validate against its partner's model."""

    def __init__(self, error_count: int) -> None:
        super().__init__(f"{error_count} error(s) in the connection settings")
        self.error_count = error_count


# Validating a connection's settings model costs about as much as mapping one event, and the
# settings change rarely: parsed models are kept per (settings model, exact settings JSON). Treat the
# models as read-only (mapping only reads them).
_PARSED_SETTINGS: OrderedDict[tuple[type[BaseModel], bytes], BaseModel | InvalidSettings] = (
    OrderedDict()
)
_PARSED_SETTINGS_MAX = 1024


def parse_settings(partner: Partner, settings: Mapping[str, Any]) -> BaseModel:
    """`partner.settings_model` validated from `settings`; raises InvalidSettings."""
    try:
        key = (partner.settings_model, orjson.dumps(settings, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # not plain JSON: validate without caching
        return _validate(partner, settings)
    cached = _PARSED_SETTINGS.get(key)
    if cached is None:
        try:
            cached = _validate(partner, settings)
        except InvalidSettings as exc:
            cached = exc
        _PARSED_SETTINGS[key] = cached
        if len(_PARSED_SETTINGS) > _PARSED_SETTINGS_MAX:
            _PARSED_SETTINGS.popitem(last=False)
    if isinstance(cached, InvalidSettings):
        raise cached
    return cached


def _validate(partner: Partner, settings: Mapping[str, Any]) -> BaseModel:
    try:
        return partner.settings_model.model_validate(settings)
    except ValidationError as exc:
        raise InvalidSettings(exc.error_count()) from None


def evaluate_body(
    partner: Partner | None,
    settings: Mapping[str, Any],
    body: Any,
    *,
    received_at: datetime,
    app_id: str | None,
    known_values: Mapping[str, Any] | None = None,
    normalized: NormalizedEvent | None = None,
) -> Evaluation:
    """Normalize and map one parsed body with a connection's settings. Pure; never raises.

    Preview calls exactly this; so does ingest. Anything unexpected from a partner is caught and
    recorded as `rejected` (`mapping_error`) so the body is still stored and can be replayed.
    """
    if partner is None:
        return Evaluation(EventStatus.REJECTED, reason="source_not_supported")
    try:
        event = normalized or partner.normalize(body, received_at=received_at)
    except Rejected as outcome:
        return Evaluation(EventStatus.REJECTED, reason=outcome.reason)
    except OverflowError:
        return _out_of_range(partner, "normalize")
    except Exception as exc:  # a partner bug must not lose the body: stored as rejected
        log.exception("ingest.normalize_failed", source=partner.source.value)
        return Evaluation(EventStatus.REJECTED, reason=f"mapping_error: {type(exc).__name__}")
    try:
        parsed_settings = parse_settings(partner, settings)
    except InvalidSettings as exc:
        return Evaluation(EventStatus.REJECTED, normalized=event, reason=f"invalid_settings: {exc}")
    context = MappingContext(
        received_at=received_at, app_id=app_id, known_values=dict(known_values or {})
    )
    try:
        mapped = partner.map(event, parsed_settings, context)
    except Filtered as outcome:
        return Evaluation(EventStatus.FILTERED, normalized=event, reason=outcome.reason)
    except Rejected as outcome:
        return Evaluation(EventStatus.REJECTED, normalized=event, reason=outcome.reason)
    except OverflowError:
        return _out_of_range(partner, "map", event)
    except Exception as exc:
        log.exception("ingest.map_failed", source=partner.source.value)
        return Evaluation(
            EventStatus.REJECTED, normalized=event, reason=f"mapping_error: {type(exc).__name__}"
        )
    if reason := _unsendable_user(mapped.operations):
        return Evaluation(EventStatus.REJECTED, normalized=event, reason=reason)
    if not mapped.operations:
        return Evaluation(
            EventStatus.FILTERED,
            normalized=event,
            reason="; ".join(mapped.notes) or "nothing_to_send",
            content=mapped.content,
            notes=list(mapped.notes),
            data_points_saved=mapped.data_points_saved,
        )
    return Evaluation(
        EventStatus.QUEUED,
        normalized=event,
        operations=list(mapped.operations),
        content=mapped.content,
        notes=list(mapped.notes),
        data_points_saved=mapped.data_points_saved,
    )


# An integer too large for a double (JSON allows any number of digits; Braze reads numbers as
# doubles): the body is valid, the event is not sendable. Not a bug, so no traceback.
NUMBER_OUT_OF_RANGE = (
    "number_out_of_range: a number in the body is too large for Braze (beyond a double's range)"
)


def _out_of_range(partner: Partner, step: str, event: NormalizedEvent | None = None) -> Evaluation:
    log.warning("ingest.number_out_of_range", source=partner.source.value, step=step)
    return Evaluation(EventStatus.REJECTED, normalized=event, reason=NUMBER_OUT_OF_RANGE)


def _unsendable_user(operations: list[Operation]) -> str | None:
    """Whatever the partner read, an identifier Braze cannot receive is refused, never cleaned."""
    for operation in operations:
        user = operation.user
        for name, value in (("external_id", user.external_id), ("email", user.email)):
            if reason := unsendable_identifier_reason(name, value):
                return reason
    return None
