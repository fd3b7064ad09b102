"""Admin bearer tokens: random, shown once, stored as SHA-256; the prefix says what they are."""

from __future__ import annotations

import hashlib
import secrets

OPERATOR_PREFIX = "bbo_"
TENANT_PREFIX = "bbt_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
CONTENT_TOKEN_PREFIX = "bbc_"  # noqa: S105


def generate_token(*, operator: bool) -> str:
    return (OPERATOR_PREFIX if operator else TENANT_PREFIX) + secrets.token_urlsafe(32)


def generate_secret(prefix: str = WEBHOOK_SECRET_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """Tokens are 256-bit random, so a plain SHA-256 is enough (no password stretching)."""
    return hashlib.sha256(token.encode()).digest()


def display_prefix(token: str) -> str:
    return token[:8]
