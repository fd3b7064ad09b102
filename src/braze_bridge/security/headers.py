"""Which webhook request headers are stored with the raw body (and shown in event detail)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from braze_bridge.domain.redaction import contains_secret, is_secret_name

# The only request headers stored with the raw body (docs/ops.md): what helps an operator
# trace a request. Credentials and the signature are never among them (the signature proves
# nothing later on), and a partner's custom headers may carry anything, so none are kept.
STORED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "user-agent",
        "date",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-real-ip",
    }
)


# The allowlist as applied: a name that reads like a credential is never kept, even if listed.
_KEPT = frozenset(name for name in STORED_HEADERS if not is_secret_name(name))


def stored_headers(headers: Mapping[str, str], secrets: Sequence[str] = ()) -> dict[str, str]:
    """The allowlisted headers, minus any whose value contains one of the connection's secrets."""
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _KEPT and not contains_secret(value, secrets):
            kept[lowered] = value
    return kept
