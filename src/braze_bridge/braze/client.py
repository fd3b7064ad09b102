"""A thin Braze REST client over an injected httpx.AsyncClient.

It builds requests, times them and returns what Braze answered. It does not retry, sleep,
log payloads or know about tenants: policy lives in `delivery/`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx

from braze_bridge.braze.errors import Unreachable

TRACK_PATH = "/users/track"
EXPORT_IDS_PATH = "/users/export/ids"
IDENTIFY_PATH = "/users/identify"
EVENTS_LIST_PATH = "/events/list"
DELETE_USERS_PATH = "/users/delete"
# braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_delete.md`: up to 50
# identifiers of one kind per request.
MAX_DELETE_IDENTIFIERS = 50


def _package_version() -> str:
    try:
        return version("braze-bridge")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


# Braze asks partners to name themselves as `partner-OrganizationName-ProductName/Version`
# (braze-inc/braze-docs `_docs/_partners/isv_partners/api_partner.md`), on every call.
USER_AGENT = f"partner-BrazeBridge-BrazeBridge/{_package_version()}"

# Headers worth keeping with an attempt (rate limits, request ids); never Authorization.
KEPT_RESPONSE_HEADERS = (
    "retry-after",
    "x-ratelimit-retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-request-id",
    "content-type",
)


@dataclass(frozen=True, slots=True)
class BrazeReply:
    """One HTTP answer from Braze, as received."""

    status_code: int
    text: str
    headers: dict[str, str]
    duration_ms: float

    def json(self) -> Any:
        """Parsed body, or None when Braze did not send JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class BrazeClient:
    """Calls one Braze workspace (REST endpoint + API key)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        rest_endpoint: str,
        api_key: str,
        *,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._http = http
        self._base = rest_endpoint.rstrip("/")
        self._api_key = api_key
        # Built once per client, not per request: parsing the URL and merging headers and the
        # timeout were ~15 % of httpx's CPU per request on the delivery hot path.
        self._headers = httpx.Headers(
            {"Authorization": f"Bearer {api_key}", "User-Agent": user_agent}
        )
        self._json_headers = httpx.Headers(
            {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "User-Agent": user_agent,
            }
        )
        self._urls: dict[str, httpx.URL] = {}
        self._client_timeout = {"timeout": http.timeout.as_dict()}

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self._base + path)
        return url

    async def post(self, path: str, body: Any, *, deadline_s: float | None = None) -> BrazeReply:
        """POST JSON to `path`; raises Unreachable when no HTTP answer arrives."""
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return await self._send("POST", path, content, deadline_s)

    async def post_encoded(
        self, path: str, content: bytes, *, deadline_s: float | None = None
    ) -> BrazeReply:
        """POST an already serialized JSON body (the delivery hot path builds it once)."""
        return await self._send("POST", path, content, deadline_s)

    async def get(self, path: str, *, deadline_s: float | None = None) -> BrazeReply:
        return await self._send("GET", path, None, deadline_s)

    async def _send(
        self, method: str, path: str, content: bytes | None, deadline_s: float | None
    ) -> BrazeReply:
        extensions = (
            self._client_timeout
            if deadline_s is None
            else {"timeout": httpx.Timeout(deadline_s).as_dict()}
        )
        started = time.perf_counter()
        try:
            # `build_request` + `send` is what `request` does; with the URL, headers and
            # timeout prebuilt it skips re-parsing them (same request on the wire).
            request = self._http.build_request(
                method,
                self._url(path),
                content=content,
                headers=self._json_headers if content is not None else self._headers,
                extensions=extensions,
            )
            response = await self._http.send(request)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"timeout calling Braze {path}", timeout=True) from exc
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach Braze {path}: {type(exc).__name__}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        kept = {k: v for k, v in response.headers.items() if k.lower() in KEPT_RESPONSE_HEADERS}
        return BrazeReply(response.status_code, response.text, kept, elapsed)

    async def export_ids_by_email(self, email: str, fields: list[str]) -> BrazeReply:
        """`POST /users/export/ids` for one email address."""
        return await self.post(
            EXPORT_IDS_PATH, {"email_address": email, "fields_to_export": fields}
        )

    async def list_events(self) -> BrazeReply:
        """`GET /events/list`: cheap and read-only; proves the `events.list` permission."""
        return await self.get(EVENTS_LIST_PATH)

    async def delete_users(self, identifiers: dict[str, list[Any]]) -> BrazeReply:
        """`POST /users/delete` with one kind of identifier (`external_ids`, `user_aliases`,
        `email_addresses`), at most MAX_DELETE_IDENTIFIERS of them."""
        return await self.post(DELETE_USERS_PATH, identifiers)
