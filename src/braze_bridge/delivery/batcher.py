"""Packing identified objects into `/users/track` requests.

Rules (DESIGN 8): at most 75 objects per request in total (or 75 per array for legacy
accounts), under Braze's 4 MB body cap; a user's attribute objects that follow each other are
merged into one, in order. A user's objects never straddle two requests of one round, because
requests of a round go out concurrently and per-user order must hold; what does not fit the
round waits (is "deferred") until the part that went is settled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from braze_bridge.braze.models import MAX_BODY_BYTES, MAX_TRACK_OBJECTS, TRACK_ARRAYS, TrackArray

_BODY_OVERHEAD = 64  # braces, array names and commas around the objects


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One operation ready to send: its identifier fragment and its payload, both as JSON."""

    op_id: int
    user_key: str
    array: TrackArray
    identifier_json: str  # `"external_id":"u1"` — members without braces
    payload_json: str  # the Braze object without identifier, as a JSON object


@dataclass(frozen=True, slots=True)
class PackedObject:
    """One object of a request; several operations when attribute objects were merged."""

    array: TrackArray
    json: str
    op_ids: tuple[int, ...]
    size: int


@dataclass(frozen=True, slots=True)
class TrackRequest:
    objects: tuple[PackedObject, ...]

    def body_json(self) -> str:
        parts = []
        for array in TRACK_ARRAYS:
            members = [obj.json for obj in self.objects if obj.array == array]
            if members:
                parts.append(f'"{array}":[{",".join(members)}]')
        return "{" + ",".join(parts) + "}"

    def locate(self, array: str, index: int) -> PackedObject | None:
        """The object Braze calls `input_array[index]` in this request's body."""
        position = 0
        for obj in self.objects:
            if obj.array == array:
                if position == index:
                    return obj
                position += 1
        return None

    @property
    def op_ids(self) -> list[int]:
        return [op_id for obj in self.objects for op_id in obj.op_ids]


@dataclass(frozen=True, slots=True)
class Packing:
    requests: list[TrackRequest]
    deferred: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PackLimits:
    max_objects: int = MAX_TRACK_OBJECTS
    per_array: bool = False  # legacy accounts: the limit applies to each array separately
    max_bytes: int = MAX_BODY_BYTES


def object_json(identifier_json: str, payload_json: str) -> str:
    """`{<identifier>, <payload members>}` by splicing text: no parse, no re-serialization."""
    body = payload_json.strip()
    if body in ("{}", ""):
        return "{" + identifier_json + "}"
    return "{" + identifier_json + "," + body[1:]


def _byte_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _is_operation(value: Any) -> bool:
    """Increments, array add/remove, nested objects: not plain assignments, not foldable."""
    return isinstance(value, dict | list)


def _merge_attributes(items: Sequence[Outgoing]) -> tuple[list[Outgoing], list[Outgoing]]:
    """The longest prefix of attribute objects that can be folded into one, and the rest.

    Folding `{a: 1}` then `{a: 2}` into `{a: 2}` is what Braze would end with; folding two
    increments (or array operations, nested objects) on one key is not, so the fold stops there.
    """
    merged_keys: dict[str, Any] = {}
    taken: list[Outgoing] = []
    for item in items:
        values = json.loads(item.payload_json)
        if any(
            key in merged_keys and (_is_operation(merged_keys[key]) or _is_operation(value))
            for key, value in values.items()
        ):
            break
        merged_keys.update(values)
        taken.append(item)
    return taken, list(items[len(taken) :])


@dataclass(slots=True)
class _Segment:
    objects: list[PackedObject]
    deferred: list[int]
    size: int = 0

    def __post_init__(self) -> None:
        self.size = sum(o.size for o in self.objects) + len(self.objects)  # + commas

    def count(self, array: str) -> int:
        return sum(1 for o in self.objects if o.array == array)


def _user_segment(run: Sequence[Outgoing], limits: PackLimits) -> _Segment:
    """What of one user's run goes in this round: leading attributes (merged), then the
    events/purchases after them, stopping at an attribute object that follows an event
    (Braze applies a request's attributes before its events, so that one must wait)."""
    if len(run) == 1:  # the common case: one object for this user in this round
        item = run[0]
        text = object_json(item.identifier_json, item.payload_json)
        return _Segment([PackedObject(item.array, text, (item.op_id,), _byte_size(text))], [])
    lead = 0
    while lead < len(run) and run[lead].array == "attributes":
        lead += 1
    objects: list[PackedObject] = []
    rest_start = lead
    if lead:
        attrs = run[:lead]
        if lead == 1:
            taken, leftover = list(attrs), list[Outgoing]()
        else:
            taken, leftover = _merge_attributes(attrs)
        if len(taken) == 1:
            text = object_json(taken[0].identifier_json, taken[0].payload_json)
        else:
            merged: dict[str, Any] = {}
            for item in taken:
                merged.update(json.loads(item.payload_json))
            text = object_json(taken[0].identifier_json, json.dumps(merged, ensure_ascii=False))
        objects.append(
            PackedObject("attributes", text, tuple(i.op_id for i in taken), _byte_size(text))
        )
        if leftover:
            # A fold stopped early: the rest of the run waits for the next round.
            return _Segment(objects, [i.op_id for i in run[len(taken) :]])
        rest_start = lead
    index = rest_start
    while index < len(run) and run[index].array != "attributes":
        item = run[index]
        if len(objects) >= limits.max_objects:
            break
        text = object_json(item.identifier_json, item.payload_json)
        objects.append(PackedObject(item.array, text, (item.op_id,), _byte_size(text)))
        index += 1
    return _Segment(objects, [i.op_id for i in run[index:]])


def pack_track_requests(items: Iterable[Outgoing], limits: PackLimits | None = None) -> Packing:
    """Pack operations (in claim order) into as few requests as the limits allow."""
    limits = limits or PackLimits()
    runs: dict[str, list[Outgoing]] = {}
    for item in items:
        runs.setdefault(item.user_key, []).append(item)

    requests: list[TrackRequest] = []
    deferred: list[int] = []
    current: list[PackedObject] = []
    counts = dict.fromkeys(TRACK_ARRAYS, 0)
    total = 0
    size = _BODY_OVERHEAD

    def fits(segment: _Segment) -> bool:
        if size + segment.size > limits.max_bytes:
            return False
        if limits.per_array:
            return all(counts[a] + segment.count(a) <= limits.max_objects for a in TRACK_ARRAYS)
        return total + len(segment.objects) <= limits.max_objects

    for run in runs.values():
        segment = _user_segment(run, limits)
        deferred.extend(segment.deferred)
        if not segment.objects:
            continue
        if current and not fits(segment):
            requests.append(TrackRequest(tuple(current)))
            current, counts, total, size = [], dict.fromkeys(TRACK_ARRAYS, 0), 0, _BODY_OVERHEAD
        if not fits(segment):
            # Alone and still too big (a single object near 4 MB): send it anyway, Braze's
            # 413/400 then settles it as failed with Braze's own words.
            requests.append(TrackRequest(tuple(segment.objects)))
            continue
        current.extend(segment.objects)
        for obj in segment.objects:
            counts[obj.array] += 1
        total += len(segment.objects)
        size += segment.size
    if current:
        requests.append(TrackRequest(tuple(current)))
    return Packing(requests, deferred)
