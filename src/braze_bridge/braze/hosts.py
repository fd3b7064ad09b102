"""Braze REST hosts and the endpoint check that keeps us from calling arbitrary hosts (SSRF)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Braze instances (braze-inc/braze-docs `_docs/_api/basics.md`, REST endpoints): US-01..08 `rest.iad-NN.braze.com`,
# US-10 `rest.us-10.braze.com`, EU `rest.fra-NN.braze.eu`, AU/ID/JP/KR `rest.xx-NN.braze.com`.
# New numbered instances appear over time, so the pattern allows any two digits per region.
BRAZE_REST_HOST = re.compile(
    r"^rest\.(?:iad-\d{2}\.braze\.com|us-\d{2}\.braze\.com|fra-\d{2}\.braze\.eu"
    r"|(?:au|id|jp|kr)-\d{2}\.braze\.com)$"
)


class InvalidBrazeEndpoint(ValueError):
    """The URL is not an https Braze REST endpoint."""


def normalize_rest_endpoint(url: str, *, allow_any: bool = False) -> str:
    """Return `scheme://host[:port]` without a trailing slash, or raise InvalidBrazeEndpoint.

    With `allow_any` (BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL=1) any http(s) URL is accepted, for the
    local sandbox and tests; a path prefix is then kept.
    """
    raw = url.strip()
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise InvalidBrazeEndpoint("must not contain spaces or control characters")
    try:
        parts = urlsplit(raw)
        port = parts.port  # a non-numeric or out-of-range port raises here
    except ValueError as exc:
        # urlsplit refuses a broken IPv6 literal; `.port` a port that is not 0-65535.
        raise InvalidBrazeEndpoint(
            "is not a valid URL: the port must be a number from 0 to 65535 and an IPv6 "
            "address must be in matching brackets"
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidBrazeEndpoint("must be an absolute URL like https://rest.iad-01.braze.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidBrazeEndpoint("must not carry credentials, a query or a fragment")
    host = parts.hostname.lower()
    if allow_any:
        netloc = host if port is None else f"{host}:{port}"
        return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    if parts.scheme != "https":
        raise InvalidBrazeEndpoint("must use https")
    if port not in (None, 443):
        raise InvalidBrazeEndpoint("must not name a port")
    if parts.path not in ("", "/"):
        raise InvalidBrazeEndpoint("must be the bare REST endpoint, without a path")
    if not BRAZE_REST_HOST.match(host):
        raise InvalidBrazeEndpoint(
            f"{host} is not a Braze REST host; use the REST endpoint shown in Braze under "
            "Settings > APIs and Identifiers (e.g. https://rest.iad-01.braze.com, "
            "https://rest.fra-01.braze.eu)"
        )
    return f"https://{host}"
