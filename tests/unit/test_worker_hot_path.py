"""Hot-path shortcuts keep the wire and process behaviour: Braze requests, garbage collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest

from braze_bridge.braze.client import BrazeClient
from braze_bridge.delivery import worker


async def test_prebuilt_requests_match_what_httpx_request_would_send() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"message": "success"}, headers={"X-Request-Id": "r1"})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(answer), timeout=httpx.Timeout(30.0, connect=10.0)
    ) as http:
        client = BrazeClient(http, "https://rest.iad-01.braze.com/", "key-1")
        reply = await client.post_encoded("/users/track", b'{"events":[]}')
        await client.post("/users/track", {"attributes": []}, deadline_s=5.0)
        await client.list_events()
        expected = http.build_request(
            "POST",
            "https://rest.iad-01.braze.com/users/track",
            content=b'{"events":[]}',
            headers={"Authorization": "Bearer key-1", "Content-Type": "application/json"},
        )

    first, second, third = seen
    assert str(first.url) == str(expected.url)
    assert first.headers.multi_items() == expected.headers.multi_items()
    assert first.content == b'{"events":[]}'
    assert first.extensions["timeout"] == expected.extensions["timeout"]
    assert second.extensions["timeout"] == httpx.Timeout(5.0).as_dict()
    assert (third.method, "content-type" in third.headers) == ("GET", False)
    assert third.headers["authorization"] == "Bearer key-1"
    assert reply.status_code == 201
    assert reply.headers == {"x-request-id": "r1", "content-type": "application/json"}


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_worker_process_freezes_its_start_up_heap_and_collects_young_objects_later() -> None:
    worker._settle_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == worker.YOUNG_GC_THRESHOLD
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # cycles are still collected
