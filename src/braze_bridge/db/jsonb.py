"""Text and JSON as Postgres stores them: no NUL, no lone surrogates, no NaN in JSONB.

Every path that writes webhook-derived text or JSON uses these: ingest (`jsonb_text`), replay's
re-map (`jsonb_safe`, `clean_text`), preview (`jsonb_safe`).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from typing import Any

import orjson


def clean_text(value: str, limit: int | None = None) -> str:
    """Postgres text cannot hold NUL or lone surrogates (JSON `\\ud800` parses to one)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    return value if limit is None else value[:limit]


def jsonb_safe(value: Any) -> Any:
    """The same cleaning for every string (keys too) inside a JSON value bound for JSONB."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): jsonb_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonb_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # as orjson writes it: Postgres JSON has no NaN or infinity
    return value


def _uuid_like(value: Any) -> str:
    # asyncpg returns its own UUID subclass, which orjson only serializes through `default`.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonb_text(value: Any) -> str:
    """`value` as JSON text Postgres accepts (as jsonb, or typed columns via jsonb_to_recordset).

    The common case goes straight through orjson (UUIDs and datetimes included). orjson refuses
    lone surrogates (TypeError) and writes NUL as `\\u0000`, which Postgres refuses: only those
    rare values take the cleaning walk. Numbers beyond double range are written as null
    (Postgres has no infinity in JSON).
    """
    try:
        text = orjson.dumps(value, default=_uuid_like).decode()
    except TypeError:
        pass
    else:
        if "\\u0000" not in text:
            return text
    cleaned = jsonb_safe(value)
    try:
        return orjson.dumps(cleaned, default=_uuid_like).decode()
    except TypeError:  # an integer beyond 64 bits: the standard library writes those
        return json.dumps(cleaned, default=str)


def safe_dedupe_key(key: str) -> str:
    """Keys that would not survive storage unchanged are hashed instead (never merged)."""
    if len(key) <= 255 and clean_text(key) == key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()
