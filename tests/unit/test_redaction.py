"""The one secret-name rule, shared by stored headers, event detail and log lines."""

from __future__ import annotations

import pytest

from braze_bridge.domain.redaction import contains_secret, is_secret_name
from braze_bridge.security.headers import STORED_HEADERS, stored_headers


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "X-Extole-Signature",
        "X-Api-Key",
        "x_apikey",
        "webhook_secret",
        "secret_key",
        "token_id",
        "X-Auth",
        "password",
    ],
)
def test_credential_names_are_secret_whatever_the_case_or_separator(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["Content-Type", "User-Agent", "connection_id", "event", "count"])
def test_ordinary_names_are_not(name: str) -> None:
    assert not is_secret_name(name)


def test_no_stored_header_name_reads_like_a_credential() -> None:
    assert [name for name in STORED_HEADERS if is_secret_name(name)] == []


def test_a_stored_header_echoing_a_secret_is_dropped() -> None:
    headers = {"user-agent": "partner (whsec_abc)", "content-type": "application/json"}

    assert stored_headers(headers, ["whsec_abc", ""]) == {"content-type": "application/json"}
    assert contains_secret("x whsec_abc y", ["whsec_abc"])
    assert not contains_secret("anything", [""])  # an empty secret matches nothing
