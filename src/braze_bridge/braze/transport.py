"""The outbound HTTP client for Braze: `create_http_client()` is the only factory.

Why a transport of our own: httpcore's connection pool re-examines every connection and every
queued request on each request state change (encode/httpcore#1035, `_assign_requests_to_
connections`, quadratic in pool and queue size). `OneConnectionPools` sidesteps it with one pool
per connection, and the worker keeps no more requests in flight than there are pools (it
holds one of `HTTP_CONNECTIONS` slots per request). It uses httpx's documented transport seam,
so `BrazeClient`, `httpx.MockTransport` and respx work unchanged.

Remove `OneConnectionPools` (and give `create_http_client` httpx's default transport with
`max_connections=HTTP_CONNECTIONS`) once an httpcore release fixes encode/httpcore#1035 and the
delivery bench (`bench/delivery.py`) shows no difference between the two.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator

import httpx

# Braze requests one worker has in flight at most (the pools, and the worker's own cap).
HTTP_CONNECTIONS = 8
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class OneConnectionPools(httpx.AsyncBaseTransport):
    """`size` keep-alive connections, as `size` httpx transports of one connection each.

    A pool of one connection has nothing to rescan (encode/httpcore#1035). Each request goes to
    the least busy pool: a free one while the caller keeps no more requests in flight than
    there are pools, else it queues inside that pool as it would have in a shared one.
    """

    def __init__(self, size: int) -> None:
        # One TLS context for all pools (each transport would otherwise load the CA bundle).
        tls = httpx.create_ssl_context()
        self._pools = [
            httpx.AsyncHTTPTransport(
                verify=tls, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
            )
            for _ in range(size)
        ]
        self.in_flight = [0] * size

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)  # noqa: S101 - an async transport's
        except BaseException:
            self.in_flight[index] -= 1
            raise
        response.stream = _ReleasingStream(stream, self.in_flight, index)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that marks its pool free again once closed (httpx always closes it)."""

    def __init__(self, stream: httpx.AsyncByteStream, in_flight: list[int], index: int) -> None:
        self._stream = stream
        self._in_flight = in_flight
        self._index: int | None = index

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._index is not None:
                self._in_flight[self._index] -= 1
                self._index = None


def create_http_client() -> httpx.AsyncClient:
    """The client every process uses to call Braze (worker, `serve`, the API's checks)."""
    timeout = TIMEOUT
    if urllib.request.getproxies():
        # HTTP(S)_PROXY & co: httpx routes through them only with its own default transport.
        return httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=HTTP_CONNECTIONS, max_keepalive_connections=HTTP_CONNECTIONS
            ),
            follow_redirects=False,
        )
    return httpx.AsyncClient(
        transport=OneConnectionPools(HTTP_CONNECTIONS), timeout=timeout, follow_redirects=False
    )
