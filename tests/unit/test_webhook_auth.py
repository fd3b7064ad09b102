"""Webhook verifiers over raw bytes: every mode, good and bad, and the rotation grace period."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from braze_bridge.domain.statuses import WebhookAuthMode
from braze_bridge.security.webhook_auth import (
    WebhookCredentials,
    secrets_valid_at,
    sign_hmac_sha256,
    verify_webhook,
)
from tests.extole_bodies import REWARD_EARNED_RAW

SECRET = "whsec_current-secret-0123456789abcdef"
OLD = "whsec_previous-secret-0123456789abcdef"


def creds(mode: WebhookAuthMode, *secrets: str, username: str | None = None) -> WebhookCredentials:
    return WebhookCredentials(mode=mode, secrets=secrets or (SECRET,), username=username)


def check(credentials: WebhookCredentials, headers: dict[str, str], body: bytes = b"{}") -> bool:
    return verify_webhook(credentials, headers, body).ok


class TestHmac:
    hmac = creds(WebhookAuthMode.HMAC_SHA256)

    def test_lower_hex_over_the_exact_bytes(self) -> None:
        signature = sign_hmac_sha256(SECRET, REWARD_EARNED_RAW)
        assert check(self.hmac, {"x-extole-signature": signature}, REWARD_EARNED_RAW)

    @pytest.mark.parametrize("form", ["sha256={}", "SHA256={}", "  {}  "])
    def test_prefix_and_whitespace(self, form: str) -> None:
        signature = form.format(sign_hmac_sha256(SECRET, REWARD_EARNED_RAW))
        assert check(self.hmac, {"x-extole-signature": signature}, REWARD_EARNED_RAW)

    def test_upper_case_hex(self) -> None:
        signature = sign_hmac_sha256(SECRET, REWARD_EARNED_RAW).upper()
        assert check(self.hmac, {"x-extole-signature": signature}, REWARD_EARNED_RAW)

    def test_signature_over_reserialized_json_fails(self) -> None:
        # What a JSON library in between would send: same data, different bytes.
        reserialized = json.dumps(json.loads(REWARD_EARNED_RAW)).encode()
        signature = sign_hmac_sha256(SECRET, reserialized)
        result = verify_webhook(self.hmac, {"x-extole-signature": signature}, REWARD_EARNED_RAW)
        assert (result.ok, result.reason) == (False, "X-Extole-Signature does not match the body")

    def test_wrong_secret_missing_header_and_garbage(self) -> None:
        wrong = sign_hmac_sha256("whsec_other", REWARD_EARNED_RAW)
        assert not check(self.hmac, {"x-extole-signature": wrong}, REWARD_EARNED_RAW)
        assert not check(self.hmac, {"x-extole-signature": "zz\u00e9\u00ff"}, REWARD_EARNED_RAW)
        result = verify_webhook(self.hmac, {}, REWARD_EARNED_RAW)
        assert result.reason == "missing X-Extole-Signature header"


class TestBearer:
    def test_exact_secret_only(self) -> None:
        bearer = creds(WebhookAuthMode.BEARER)
        assert check(bearer, {"authorization": f"Bearer {SECRET}"})
        assert check(bearer, {"authorization": f"bearer {SECRET}"})
        assert not check(bearer, {"authorization": f"Bearer {SECRET}x"})
        assert not check(bearer, {"authorization": f"Basic {SECRET}"})
        assert not check(bearer, {})


class TestBasic:
    @staticmethod
    def basic(value: str) -> dict[str, str]:
        return {"authorization": "Basic " + base64.b64encode(value.encode()).decode()}

    def test_username_and_secret_must_both_match(self) -> None:
        basic = creds(WebhookAuthMode.BASIC, username="extole")
        assert check(basic, self.basic(f"extole:{SECRET}"))
        assert not check(basic, self.basic(f"someone:{SECRET}"))
        assert not check(basic, self.basic("extole:wrong"))
        assert not check(basic, {"authorization": "Basic !!!not-base64"})
        assert not check(basic, {"authorization": f"Bearer {SECRET}"})

    def test_without_username_the_secret_alone_counts(self) -> None:
        basic = creds(WebhookAuthMode.BASIC)
        assert check(basic, self.basic(SECRET))
        assert check(basic, self.basic(f"anyone:{SECRET}"))
        assert not check(basic, self.basic("anyone:nope"))

    def test_extole_key_alone_is_accepted_even_with_a_colon_in_it(self) -> None:
        """Extole's HTTP_Basic key sends `Authorization:Basic <base64EncodedKey>`, the key alone
        (extole/product-docs `technical/platform-integrations/webhooks/index.mdx`)."""
        key = "abc:def-0123456789"
        basic = creds(WebhookAuthMode.BASIC, key)
        assert check(basic, self.basic(key))
        assert not check(basic, self.basic("def-0123456789"))
        assert not check(basic, self.basic("abc:"))

    def test_with_a_username_the_key_alone_is_not_enough(self) -> None:
        basic = creds(WebhookAuthMode.BASIC, username="hooks")
        assert not check(basic, self.basic(SECRET))
        assert not check(basic, self.basic(f"hooks{SECRET}"))


class TestJwt:
    jwt_creds = creds(WebhookAuthMode.JWT_HS256)

    def test_hs256_signed_with_the_secret(self) -> None:
        token = jwt.encode({"sub": "antavo"}, SECRET, algorithm="HS256")
        assert check(self.jwt_creds, {"authorization": f"Bearer {token}"})

    def test_expired_token_fails_with_the_reason(self) -> None:
        token = jwt.encode({"exp": int(time.time()) - 3600}, SECRET, algorithm="HS256")
        result = verify_webhook(self.jwt_creds, {"authorization": f"Bearer {token}"}, b"{}")
        assert (result.ok, result.reason) == (False, "JWT has expired")

    def test_none_algorithm_and_other_algorithms_are_refused(self) -> None:
        unsigned = jwt.encode({"sub": "x"}, key=None, algorithm="none")
        assert not check(self.jwt_creds, {"authorization": f"Bearer {unsigned}"})
        hs512 = jwt.encode(
            {"sub": "x"}, SECRET + "-long-enough-for-hs512-keys!!!", algorithm="HS512"
        )
        assert not check(
            creds(WebhookAuthMode.JWT_HS256, SECRET + "-long-enough-for-hs512-keys!!!"),
            {"authorization": f"Bearer {hs512}"},
        )

    def test_wrong_secret_and_garbage(self) -> None:
        token = jwt.encode({"sub": "x"}, "whsec_another-secret-0123456789abcdef", algorithm="HS256")
        assert not check(self.jwt_creds, {"authorization": f"Bearer {token}"})
        assert not check(self.jwt_creds, {"authorization": "Bearer not.a.jwt"})


class TestRotation:
    def test_previous_secret_works_until_it_expires(self) -> None:
        now = datetime(2025, 1, 1, tzinfo=UTC)
        expires = now + timedelta(hours=24)
        assert secrets_valid_at(SECRET, OLD, expires, now) == [SECRET, OLD]
        assert secrets_valid_at(SECRET, OLD, expires, expires) == [SECRET]
        assert secrets_valid_at(SECRET, None, expires, now) == [SECRET]

    @pytest.mark.parametrize("mode", list(WebhookAuthMode))
    def test_every_mode_accepts_either_secret_during_grace(self, mode: WebhookAuthMode) -> None:
        both = creds(mode, SECRET, OLD)
        body = b'{"event":"shared"}'
        for secret in (SECRET, OLD):
            headers = {
                WebhookAuthMode.HMAC_SHA256: {"x-extole-signature": sign_hmac_sha256(secret, body)},
                WebhookAuthMode.BEARER: {"authorization": f"Bearer {secret}"},
                WebhookAuthMode.BASIC: {
                    "authorization": "Basic " + base64.b64encode(f"u:{secret}".encode()).decode()
                },
                WebhookAuthMode.JWT_HS256: {
                    "authorization": "Bearer " + jwt.encode({}, secret, algorithm="HS256")
                },
            }[mode]
            assert check(both, headers, body)
            assert not check(creds(mode, "whsec_unrelated-0123456789abcdef"), headers, body)
