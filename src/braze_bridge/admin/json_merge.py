"""JSON Merge Patch (RFC 7396) for connection settings, and the field paths a change touched.

Hand-written: it is ten lines, and the PyPI packages for it are unmaintained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge member by member, `null` removes a member, anything else replaces it."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = merge_patch({}, value)
        else:
            merged[key] = value
    return merged


def changed_paths(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str) -> list[str]:
    """Dotted paths of the leaves that differ, e.g. `settings.events.shared`; sorted."""
    paths: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        path = f"{prefix}.{key}"
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            paths.extend(changed_paths(old, new, path))
        elif old != new:
            paths.append(path)
    return paths
