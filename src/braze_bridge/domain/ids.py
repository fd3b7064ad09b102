"""Time-ordered UUIDs (version 7) so event ids sort by arrival and index append-only.

Python 3.11 has no `uuid.uuid7` (it arrives in 3.14); the layout is RFC 9562 section 5.7.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime

_MS_MASK = (1 << 48) - 1
_VERSION_7 = 0x7 << 76
_RFC_VARIANT = 0b10 << 62


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """48-bit Unix milliseconds, version 7, 12 + 62 random bits, RFC variant."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68 & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & _MS_MASK) << 80 | _VERSION_7 | rand_a << 64 | _RFC_VARIANT | rand_b
    return uuid.UUID(int=value)


def uuid7_floor(at: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of the millisecond `at` (random bits zero): every id `uuid7` makes in
    that millisecond or later compares greater or equal, every earlier one less."""
    ms = max(int(at.timestamp() * 1000), 0)
    return uuid.UUID(int=(ms & _MS_MASK) << 80 | _VERSION_7 | _RFC_VARIANT)


def unsendable_character(value: str) -> str | None:
    """The first character of `value` that Braze cannot receive, as `U+XXXX`; None if none.

    U+0000 and lone surrogates (`\\ud800` in JSON parses to one) cannot be stored or sent as
    UTF-8. An identifier holding one is refused, never rewritten: removing or replacing the
    character would name another Braze profile.
    """
    if "\x00" in value:
        return "U+0000"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"U+{ord(value[exc.start]):04X}"
    return None


def unsendable_identifier_reason(field: str, value: str | None) -> str | None:
    """The reason an event is rejected for `field` (an identifier), or None when it can be sent."""
    if value is None:
        return None
    character = unsendable_character(value)
    if character is None:
        return None
    return f"invalid_user_identifier: {field} holds a character Braze cannot receive ({character})"
