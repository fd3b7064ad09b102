"""The keyset cursor codec every paginated list uses: opaque to clients, checked on the way in.

A cursor is the sort key of the last row of a page (never an OFFSET), tagged with the list it
belongs to, as URL-safe base64. A cursor from another list or of another shape is refused.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

KeyPart = datetime | uuid.UUID


class KeysetCursor:
    """Encode and decode the sort key `(kinds...)` of one list, tagged `tag`."""

    def __init__(self, tag: str, *kinds: type[datetime] | type[uuid.UUID]) -> None:
        if "|" in tag or not kinds:
            raise ValueError("a tag without '|' and at least one key part")
        self._tag = tag
        self._kinds = kinds

    def encode(self, *key: KeyPart) -> str:
        if len(key) != len(self._kinds):
            raise ValueError(f"{len(self._kinds)} key parts expected")
        parts = [self._tag, *(v.isoformat() if isinstance(v, datetime) else str(v) for v in key)]
        return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple[KeyPart, ...]:
        """The key `encode` was given; ValueError for anything it did not produce."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError("not base64") from exc
        tag, *parts = raw.split("|")
        if tag != self._tag or len(parts) != len(self._kinds):
            raise ValueError("unknown cursor format")
        key: list[KeyPart] = []
        for kind, part in zip(self._kinds, parts, strict=True):
            try:
                value: KeyPart = (
                    datetime.fromisoformat(part) if kind is datetime else uuid.UUID(part)
                )
            except ValueError as exc:
                raise ValueError("unknown cursor format") from exc
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError("unknown cursor format: time without a zone")
            key.append(value)
        return tuple(key)
