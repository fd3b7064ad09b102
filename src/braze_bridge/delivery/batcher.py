"""Packing identified objects into `/users/track` requests.

Rules (docs/delivery.md, "Order and packing"): at most 75 objects per request in total (or 50 in total, or 75 per array,
as the connection's `track_object_cap` says), under Braze's 4 MB body cap; a user's attribute objects that follow each other are
merged into one, in order. A user's objects never straddle two requests of one round, because
requests of a round go out concurrently and per-user order must hold; what does not fit the
round waits (is "deferred") until the part that went is settled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from braze_bridge.braze.models import (
    MAX_BODY_BYTES,
    MAX_TRACK_OBJECTS,
    MERGE_OBJECTS,
    TRACK_ARRAYS,
    TRACK_OBJECT_CAPS,
    TrackArray,
)

_BODY_OVERHEAD = 64  # braces, array names and commas around the objects


# Outgoing and PackedObject are named tuples rather than frozen dataclasses: just as immutable,
# and cheaper to build for every object of a round.
class Outgoing(NamedTuple):
    """One operation ready to send: its identifier fragment and its payload, both as JSON."""

    op_id: int
    user_key: str
    array: TrackArray
    identifier_json: str  # `"external_id":"u1"` — members without braces
    payload_json: str  # the Braze object without identifier, as a JSON object


class PackedObject(NamedTuple):
    """One object of a request; several operations when attribute objects were merged."""

    array: TrackArray
    json: str
    op_ids: tuple[int, ...]
    size: int


@dataclass(frozen=True, slots=True)
class TrackRequest:
    objects: tuple[PackedObject, ...]

    def body_json(self) -> str:
        """`{"attributes":[...],"events":[...],"purchases":[...]}`, empty arrays left out."""
        members: dict[str, list[str]] = {}
        for obj in self.objects:
            texts = members.get(obj.array)
            if texts is None:
                members[obj.array] = [obj.json]
            else:
                texts.append(obj.json)
        return (
            "{"
            + ",".join(
                f'"{array}":[{",".join(members[array])}]'
                for array in TRACK_ARRAYS
                if array in members
            )
            + "}"
        )

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
    users: int = 0  # distinct users among the packed operations


@dataclass(frozen=True, slots=True)
class PackLimits:
    max_objects: int = MAX_TRACK_OBJECTS
    per_array: bool = False  # legacy accounts: the limit applies to each array separately
    max_bytes: int = MAX_BODY_BYTES

    @classmethod
    def for_cap(cls, cap: str) -> PackLimits:
        """Limits for a connection's `track_object_cap` (unknown values: Braze's default)."""
        max_objects, per_array = TRACK_OBJECT_CAPS.get(cap, (MAX_TRACK_OBJECTS, False))
        return cls(max_objects=max_objects, per_array=per_array)


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
        if taken and bool(values.get(MERGE_OBJECTS)) != bool(merged_keys.get(MERGE_OBJECTS)):
            # The flag applies to every nested value of its attributes object: folding would
            # merge what was meant to be overwritten, or the reverse.
            break
        merged_keys.update(values)
        taken.append(item)
    return taken, list(items[len(taken) :])


_NOTHING_DEFERRED: list[int] = []  # shared, never mutated: most segments defer nothing


def _single(item: Outgoing) -> PackedObject:
    text = object_json(item.identifier_json, item.payload_json)
    return PackedObject(item.array, text, (item.op_id,), _byte_size(text))


def _user_segment(
    run: Sequence[Outgoing], limits: PackLimits
) -> tuple[list[PackedObject], list[int]]:
    """What of one user's run goes in this round, and the operation ids that wait.

    Leading attributes (merged), then the events/purchases after them, stopping at an attribute
    object that follows an event (Braze applies a request's attributes before its events, so
    that one must wait).
    """
    if len(run) == 1:  # the common case: one object for this user in this round
        return [_single(run[0])], _NOTHING_DEFERRED
    lead = 0
    while lead < len(run) and run[lead].array == "attributes":
        lead += 1
    objects: list[PackedObject] = []
    if lead == 1:
        objects.append(_single(run[0]))
    elif lead:
        taken, leftover = _merge_attributes(run[:lead])
        if len(taken) == 1:
            objects.append(_single(taken[0]))
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
            return objects, [i.op_id for i in run[len(taken) :]]
    index = lead
    end = len(run)
    max_objects = limits.max_objects
    while index < end and run[index].array != "attributes":
        if len(objects) >= max_objects:
            break
        objects.append(_single(run[index]))
        index += 1
    if index == end:
        return objects, _NOTHING_DEFERRED
    return objects, [i.op_id for i in run[index:]]


class _Request:
    """The request being filled: its objects, their count per array and the body size."""

    __slots__ = ("counts", "objects", "size")

    def __init__(self) -> None:
        self.objects: list[PackedObject] = []
        self.counts: dict[str, int] = dict.fromkeys(TRACK_ARRAYS, 0)
        self.size = _BODY_OVERHEAD

    def fits(self, objects: list[PackedObject], size: int, limits: PackLimits) -> bool:
        if self.size + size > limits.max_bytes:
            return False
        if limits.per_array:
            added = dict.fromkeys(TRACK_ARRAYS, 0)
            for obj in objects:
                added[obj.array] += 1
            return all(self.counts[a] + added[a] <= limits.max_objects for a in TRACK_ARRAYS)
        return len(self.objects) + len(objects) <= limits.max_objects

    def add(self, objects: list[PackedObject], size: int) -> None:
        self.objects += objects
        for obj in objects:
            self.counts[obj.array] += 1
        self.size += size


def pack_track_requests(items: Iterable[Outgoing], limits: PackLimits | None = None) -> Packing:
    """Pack operations (in claim order) into as few requests as the limits allow."""
    limits = limits or PackLimits()
    runs: dict[str, list[Outgoing]] = {}
    for item in items:
        run = runs.get(item.user_key)
        if run is None:
            runs[item.user_key] = [item]
        else:
            run.append(item)

    requests: list[TrackRequest] = []
    deferred: list[int] = []
    current = _Request()
    for run in runs.values():
        objects, waiting = _user_segment(run, limits)
        if waiting:
            deferred += waiting
        if not objects:
            continue
        # Each object's bytes plus the comma before it.
        size = (
            objects[0].size + 1
            if len(objects) == 1
            else sum(o.size for o in objects) + len(objects)
        )
        if current.objects and not current.fits(objects, size, limits):
            requests.append(TrackRequest(tuple(current.objects)))
            current = _Request()
        if not current.fits(objects, size, limits):
            # Alone and still too big (a single object near 4 MB): send it anyway, Braze's
            # 413/400 then settles it as failed with Braze's own words.
            requests.append(TrackRequest(tuple(objects)))
            continue
        current.add(objects, size)
    if current.objects:
        requests.append(TrackRequest(tuple(current.objects)))
    return Packing(requests, deferred, len(runs))
