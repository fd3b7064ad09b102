"""Webhook authentication over the raw request: HMAC-SHA256, bearer, basic, HS256 JWT.

Pure functions: the caller passes the headers, the exact body bytes, the secrets that are valid
right now (the current one and, during a rotation grace period, the previous one) and the clock.
Every comparison of a secret-derived value goes through `hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import jwt

from braze_bridge.domain.statuses import WebhookAuthMode

SIGNATURE_HEADER = "x-extole-signature"
_SHA256_PREFIX = "sha256="
_SHA1_PREFIX = "sha1="
SHA1_REFUSED = (
    "X-Extole-Signature is a sha1= signature; SHA-1 is not accepted. In Extole's Security "
    "Center use a Webhook client key with algorithm HS256 (HMAC-SHA256, hex) whose value is "
    "this connection's webhook_secret"
)
# Small allowance for clock drift between Antavo and us when a JWT carries `exp`/`nbf`.
JWT_LEEWAY_SECONDS = 30


@dataclass(frozen=True, slots=True)
class WebhookCredentials:
    """What a connection accepts: its auth mode, username (basic) and the secrets valid now."""

    mode: WebhookAuthMode
    secrets: Sequence[str]
    username: str | None = None


@dataclass(frozen=True, slots=True)
class AuthResult:
    ok: bool
    # Why it failed, safe to show the caller: names the header, never a secret or a digest.
    reason: str = ""

    @classmethod
    def passed(cls) -> AuthResult:
        return cls(True)

    @classmethod
    def failed(cls, reason: str) -> AuthResult:
        return cls(False, reason)


def secrets_valid_at(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The current secret, plus the previous one while its rotation grace period lasts."""
    valid = [current]
    if previous and previous_expires_at is not None and now < previous_expires_at:
        valid.append(previous)
    return valid


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _header_bytes(value: str) -> bytes:
    # Starlette decodes header bytes as latin-1; this gets the original bytes back.
    return value.encode("latin-1", errors="replace")


def _bearer_value(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@lru_cache(maxsize=1024)
def _keyed_sha256(secret: str) -> hmac.HMAC:
    """HMAC-SHA256 with `secret` already keyed in; copy it for each message. Keying hashes two
    blocks, about a third of the work for a typical webhook body."""
    return hmac.new(secret.encode(), digestmod="sha256")


def verify_hmac_sha256(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str]
) -> AuthResult:
    """`X-Extole-Signature` = hex HMAC-SHA256(secret, body); `sha256=` prefix and any case."""
    given = headers.get(SIGNATURE_HEADER)
    if given is None or not given.strip():
        return AuthResult.failed("missing X-Extole-Signature header")
    value = given.strip()
    if value[: len(_SHA1_PREFIX)].lower() == _SHA1_PREFIX:
        return AuthResult.failed(SHA1_REFUSED)
    if value[: len(_SHA256_PREFIX)].lower() == _SHA256_PREFIX:
        value = value[len(_SHA256_PREFIX) :]
    candidate = _header_bytes(value.lower())
    matched = False
    for secret in secrets:
        mac = _keyed_sha256(secret).copy()
        mac.update(body)
        expected = mac.hexdigest().encode()
        # No early exit: the time taken does not tell which secret (if any) matched.
        matched |= _same(candidate, expected)
    if matched:
        return AuthResult.passed()
    return AuthResult.failed("X-Extole-Signature does not match the body")


def verify_bearer(headers: Mapping[str, str], secrets: Sequence[str]) -> AuthResult:
    token = _bearer_value(headers)
    if token is None:
        return AuthResult.failed("missing Authorization: Bearer header")
    candidate = _header_bytes(token)
    matched = False
    for secret in secrets:
        matched |= _same(candidate, secret.encode())
    return AuthResult.passed() if matched else AuthResult.failed("bearer token is not valid")


def verify_basic(
    headers: Mapping[str, str], secrets: Sequence[str], username: str | None
) -> AuthResult:
    """`Authorization: Basic base64(<secret>)`, as Extole's HTTP_Basic key sends it, or
    `base64(user:secret)`.

    With a username configured, the value must be exactly `username:secret`. Without one, the
    whole decoded value or the part after the first `:` must be the secret.
    """
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return AuthResult.failed("missing Authorization: Basic header")
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return AuthResult.failed("Authorization: Basic value is not base64")
    user, sep, password = decoded.partition(b":")
    matched = False
    if username is None:
        for secret in secrets:
            key = secret.encode()
            # Both comparisons every time: the time taken does not tell which form matched.
            whole = _same(decoded, key)
            after_user = _same(password, key) if sep else False
            matched |= whole | after_user
    else:
        user_ok = bool(sep) & _same(user, username.encode())
        for secret in secrets:
            matched |= _same(password, secret.encode())
        matched &= user_ok
    if matched:
        return AuthResult.passed()
    return AuthResult.failed("basic credentials are not valid")


def verify_jwt_hs256(headers: Mapping[str, str], secrets: Sequence[str]) -> AuthResult:
    """`Authorization: Bearer <JWT>` signed HS256 with the secret; `exp`/`nbf` honoured if set.

    Only HS256 is accepted, so `alg: none` and algorithm-confusion tokens fail.
    """
    token = _bearer_value(headers)
    if token is None:
        return AuthResult.failed("missing Authorization: Bearer <JWT> header")
    reason = "JWT is not valid"
    for secret in secrets:
        try:
            jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                leeway=JWT_LEEWAY_SECONDS,
                options={"verify_aud": False, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            reason = "JWT has expired"
        except jwt.ImmatureSignatureError:
            reason = "JWT is not valid yet"
        except jwt.InvalidTokenError:
            continue
        else:
            return AuthResult.passed()
    return AuthResult.failed(reason)


def verify_webhook(
    credentials: WebhookCredentials, headers: Mapping[str, str], body: bytes
) -> AuthResult:
    """Check one request against a connection's credentials. `headers` keys are lower-case."""
    if not credentials.secrets:
        return AuthResult.failed("connection has no webhook secret")
    mode = credentials.mode
    if mode is WebhookAuthMode.HMAC_SHA256:
        return verify_hmac_sha256(headers, body, credentials.secrets)
    if mode is WebhookAuthMode.BEARER:
        return verify_bearer(headers, credentials.secrets)
    if mode is WebhookAuthMode.BASIC:
        return verify_basic(headers, credentials.secrets, credentials.username)
    return verify_jwt_hs256(headers, credentials.secrets)


def sign_hmac_sha256(secret: str, body: bytes) -> str:
    """The signature Extole sends (lower-case hex); for tests, the bench and docs examples."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
