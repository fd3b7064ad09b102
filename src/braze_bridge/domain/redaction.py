"""The one rule for what counts as a secret, wherever a name and its value could be shown:
webhook headers when stored (security/headers.py) and when read back (ops/events.py), and the
keys of log lines (logging.py)."""

from __future__ import annotations

from collections.abc import Sequence

REDACTED = "[redacted]"

# Fragments of a name (lower-case, `-` read as `_`) that mark its value as a credential:
# `Authorization`, `Proxy-Authorization`, `Cookie`, `X-Extole-Signature`, `X-Api-Key`,
# `webhook_secret`, `token_id`, ...
SECRET_NAME_PARTS = (
    "secret",
    "token",
    "signature",
    "password",
    "auth",
    "cookie",
    "api_key",
    "apikey",
)


def is_secret_name(name: str) -> bool:
    """True when a header or field called `name` may carry a credential."""
    lowered = name.lower().replace("-", "_")
    return any(part in lowered for part in SECRET_NAME_PARTS)


def contains_secret(value: str, secrets: Sequence[str]) -> bool:
    """True when `value` holds one of the known `secrets` anywhere (a header that echoes one)."""
    return any(secret and secret in value for secret in secrets)
