"""Hostile strings in webhook bodies (NUL, lone surrogates, huge numbers) at ingest and replay.

Postgres text and jsonb cannot hold U+0000 or a lone surrogate, and Braze cannot receive them
in an identifier. Ingest and replay store other strings cleaned the same way
(`clean_text`); an identifier that holds one is never rewritten: the event ends `rejected`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.domain.events import NormalizedEvent
from braze_bridge.domain.mapping import Mapped, MappingContext, Partner, Rejected
from braze_bridge.domain.operations import Operation
from braze_bridge.domain.statuses import EventStatus, ObjectKind, OperationStatus, Source
from braze_bridge.ops.replay_jobs import run_next_replay_job
from braze_bridge.partners.antavo.normalize import normalize_body
from tests.delivery_support import drain, make_worker
from tests.factories import SANDBOX_ENDPOINT, make_connection, make_tenant
from tests.fake_partner import FakePartner
from tests.integration.hooks_helpers import post_signed, stored_event, stored_operations
from tests.ops_factories import Tenancy, make_event, make_tenancy, operations_of, reload_event

RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# As JSON text: the escapes reach Python as NUL and lone surrogates when the body is parsed.
HOSTILE_NAMES = (
    b'{"type": "reward_fulfilled", "event_id": "evt-h1", "reward_id": "r-1",'
    b' "partner_user_id": "u-1", "email": "ada@example.com",'
    b' "first_name": "Ada\\u0000", "last_name": "\\udfffX\\ud800"}'
)


async def replay(client: httpx.AsyncClient, tenancy: Tenancy, event_id: object) -> httpx.Response:
    return await client.post(f"/v1/events/{event_id}/replay", headers=tenancy.headers_a())


class TestReplayCleansStoredText:
    async def test_a_remap_of_names_with_nul_and_lone_surrogates_is_stored_cleaned(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tenancy = await make_tenancy(session)
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.REJECTED,
            reason="unknown shape",
            user=None,
            received_at=RECEIVED,
            body=HOSTILE_NAMES,
        )

        response = await replay(client, tenancy, event.id)

        assert response.status_code == 200
        assert response.json() == {
            "event_id": str(event.id),
            "status": "queued",
            "requeued": 2,
            "remapped": True,
        }
        refreshed = await reload_event(session, event)
        assert (refreshed.status, refreshed.user_key) == (EventStatus.QUEUED, "id:u-1")
        assert refreshed.normalized is not None
        assert (refreshed.normalized["first_name"], refreshed.normalized["last_name"]) == (
            "Ada",
            "?X?",
        )
        attributes, custom_event = await operations_of(session, event)
        assert (attributes.kind, attributes.external_id) == (ObjectKind.ATTRIBUTES, "u-1")
        assert attributes.payload == {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "?X?",
        }
        assert custom_event.kind == ObjectKind.EVENTS


def reward_with(**fields: str) -> bytes:
    """An Extole reward body; `fields` are JSON string contents, escapes kept as written."""
    values = {
        "event_id": "evt-id-1",
        "type": "reward_fulfilled",
        "reward_id": "r-1",
        "partner_user_id": "u-1",
        "email": "ada@example.com",
        **fields,
    }
    pairs = ", ".join(f'"{key}": "{value}"' for key, value in values.items())
    return ("{" + pairs + "}").encode()


def id_reason(field: str, character: str) -> str:
    return f"invalid_user_identifier: {field} holds a character Braze cannot receive ({character})"


async def braze_calls(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Run a worker over the outbox against a mocked Braze; how many requests Braze got."""
    with respx.mock(base_url=SANDBOX_ENDPOINT, assert_all_called=False) as braze:
        braze.post("/users/track").respond(201, json={"message": "success"})
        async with httpx.AsyncClient(base_url=SANDBOX_ENDPOINT) as http:
            await drain(make_worker(sessionmaker, http))
        return len(braze.calls)


ID_CASES = [
    pytest.param({"partner_user_id": "a\\u0000b"}, "partner_user_id", "U+0000", id="nul-id"),
    pytest.param({"partner_user_id": "x\\ud800y"}, "partner_user_id", "U+D800", id="surrogate"),
    pytest.param(
        {"partner_user_id": "", "external_id": "\\udfffz"}, "external_id", "U+DFFF", id="ext-id"
    ),
    pytest.param(
        {"partner_user_id": "", "email": "a\\u0000@example.com"}, "email", "U+0000", id="email"
    ),
]


class TestIdentifiersAreNeverRewritten:
    """Extole sends `partner_user_id` as the advocate's id (extole/product-docs
    `technical/platform-integrations/webhooks/index.mdx`); Braze's `external_id` is the profile
    it writes to (braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_track.md`). An
    id changed on the way would write onto another profile, so it is refused instead."""

    @pytest.mark.parametrize(("fields", "field", "character"), ID_CASES)
    async def test_a_webhook_whose_id_braze_cannot_receive_is_stored_rejected_and_never_sent(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
        fields: dict[str, str],
        field: str,
        character: str,
    ) -> None:
        connection = await make_connection(session, await make_tenant(session))

        response = await post_signed(client, connection, reward_with(**fields))

        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
        event = await stored_event(session, response.json()["event_id"])
        assert (event.status, event.reason) == ("rejected", id_reason(field, character))
        assert await stored_operations(session, response.json()["event_id"]) == []
        assert await braze_calls(sessionmaker) == 0

    async def test_a_replay_of_a_stored_event_with_such_an_id_ends_rejected_and_sends_nothing(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        tenancy = await make_tenancy(session)
        # As an older version stored it: the raw body keeps the escape; it was never mapped.
        event = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.REJECTED,
            user=None,
            body=reward_with(partner_user_id="x\\ud800y"),
            operations=[OperationStatus.DEAD],
        )

        response = await replay(client, tenancy, event.id)

        assert response.status_code == 200
        assert response.json() == {
            "event_id": str(event.id),
            "status": "rejected",
            "requeued": 0,
            "remapped": True,
        }
        refreshed = await reload_event(session, event)
        assert (refreshed.status, refreshed.reason) == (
            EventStatus.REJECTED,
            id_reason("partner_user_id", "U+D800"),
        )
        assert [op.status for op in await operations_of(session, event)] == [
            OperationStatus.SKIPPED
        ]
        assert await braze_calls(sessionmaker) == 0

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"type": "identify", "userId": "m\x001", "traits": {"tier": "gold"}}, "userId"),
            ({"customer": "m\ud8001", "action": "spend", "data": {}}, "customer"),
        ],
    )
    def test_an_antavo_member_id_braze_cannot_receive_is_rejected(
        self, body: dict[str, object], field: str
    ) -> None:
        with pytest.raises(Rejected) as rejected:
            normalize_body(body, received_at=RECEIVED)
        character = "U+0000" if field == "userId" else "U+D800"
        assert rejected.value.reason == id_reason(field, character)


class PartnerWithABug(FakePartner):
    """Maps like the fake partner, but the user `boom` gets an object the database refuses
    (a set is no JSON): the kind of bug that made one stored event fail a whole job, whose
    error then carried the SQL and its parameters (this payload's email and coupon)."""

    def map(self, event: NormalizedEvent, settings: BaseModel, context: MappingContext) -> Mapped:
        mapped = super().map(event, settings, context)
        if event.user.external_id != "boom":
            return mapped
        payload = {"email": "secret@example.com", "coupon_code": "CODE5", "tags": {"x"}}
        return Mapped([Operation.attributes(event.user.ref(), payload)])


def partner_with_a_bug(source: Source) -> Partner | None:
    return PartnerWithABug() if source == Source.EXTOLE else None


class TestBulkReplayOfABadEvent:
    async def test_one_event_that_cannot_be_replayed_fails_alone_and_the_job_holds_no_pii(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        tenancy = await make_tenancy(session)
        good = [
            await make_event(
                session,
                tenancy.conn_a,
                status=EventStatus.REJECTED,
                user=None,
                body={"type": "reward_fulfilled", "partner_user_id": f"u-{n}"},
            )
            for n in range(3)
        ]
        bad = await make_event(
            session,
            tenancy.conn_a,
            status=EventStatus.REJECTED,
            user=None,
            body={"type": "reward_fulfilled", "partner_user_id": "boom"},
        )
        created = await client.post(
            "/v1/events/replay", json={"status": "rejected"}, headers=tenancy.headers_a()
        )
        assert created.status_code == 202

        assert await run_next_replay_job(sessionmaker, partner_with_a_bug, owner="t", batch_size=10)

        job = (
            await client.get(f"/v1/replays/{created.json()['id']}", headers=tenancy.headers_a())
        ).json()
        assert {k: job[k] for k in ("status", "total", "done", "requeued", "skipped")} == {
            "status": "done",
            "total": 4,
            "done": 3,
            "requeued": 3,
            "skipped": 1,
        }
        assert job["error"] == (
            "events that could not be replayed (replay.event_failed in the logs): "
            f"{bad.id} (StatementError)"
        )
        for event in good:
            assert (await reload_event(session, event)).status == EventStatus.QUEUED
        refreshed = await reload_event(session, bad)
        assert (refreshed.status, await operations_of(session, bad)) == (EventStatus.REJECTED, [])


class TestHugeNumbers:
    async def test_a_face_value_beyond_a_double_is_stored_rejected_with_a_plain_reason(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        """Braze reads numbers as doubles (braze-inc/braze-docs
        `_docs/_api/endpoints/user_data/post_user_track.md`); 400 digits cannot be one."""
        connection = await make_connection(session, await make_tenant(session))
        body = reward_with()[:-1] + b', "face_value": ' + b"9" * 400 + b"}"

        with structlog.testing.capture_logs() as logged:
            response = await post_signed(client, connection, body)

        assert response.status_code == 200
        event = await stored_event(session, response.json()["event_id"])
        assert (event.status, event.reason) == (
            "rejected",
            "number_out_of_range: a number in the body is too large for Braze"
            " (beyond a double's range)",
        )
        assert [entry for entry in logged if entry["log_level"] in ("warning", "error")] == [
            {
                "event": "ingest.number_out_of_range",
                "source": "extole",
                "step": "normalize",
                "log_level": "warning",
            }
        ]
        assert await braze_calls(sessionmaker) == 0


# The hostile corpus: every path that reads a body must answer it without a 5xx.
ODD = ["\x00", "\ud800", "\udfff", "\ud83d", "\u202e", "\ufeff", "\uffff", "e\u0301", "\U0001f600"]
hostile_text = st.lists(st.one_of(st.sampled_from(ODD), st.text(max_size=8)), max_size=5).map(
    "".join
)
hostile_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet="0123456789.-e", max_size=20),
)
leaf = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_text)


def nested(depth: int, value: Any) -> Any:
    for n in range(depth):
        value = [value] if n % 2 else {"value": value}
    return value


known_fields = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["reward_fulfilled", "REWARD_EARNED", "shared", "share_link_created", "converted"]
        ),
        "event_id": hostile_text,
        "reward_id": hostile_text,
        "partner_user_id": st.one_of(hostile_text, hostile_numbers),
        "email": hostile_text.map(lambda t: t + "@example.com"),
        "first_name": hostile_text,
        "face_value": hostile_numbers,
        "data": st.builds(
            nested,
            st.integers(min_value=0, max_value=400),
            st.dictionaries(hostile_text, leaf, max_size=4),
        ),
    },
)
# Extra keys first: the known fields win, so every body names a kind.
hostile_bodies = st.tuples(st.dictionaries(hostile_text, leaf, max_size=3), known_fields).map(
    lambda parts: {**parts[0], **parts[1]}
)


class TestHostileCorpus:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=hostile_bodies)
    async def test_ingest_preview_and_replay_never_answer_5xx(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        operator_headers: dict[str, str],
        body: dict[str, Any],
    ) -> None:
        tenancy = await make_tenancy(session)
        connection = tenancy.conn_a
        content = json.dumps(body).encode()  # lone surrogates and NUL travel as \\u escapes

        ingested = await post_signed(client, connection, content)
        assert ingested.status_code in (200, 400), ingested.text
        preview = await client.post(
            f"/v1/connections/{connection.id}/preview", content=content, headers=operator_headers
        )
        # Preview is an admin route: text it cannot store is a 422 naming the field.
        assert preview.status_code in (200, 400, 422), preview.text
        # As an older version may have stored it: never mapped, so a replay re-maps it.
        stored = await make_event(
            session, connection, status=EventStatus.REJECTED, user=None, body=content
        )
        replayed = await replay(client, tenancy, stored.id)
        assert replayed.status_code in (200, 409), replayed.text
        if ingested.status_code == 200:
            again = await replay(client, tenancy, ingested.json()["event_id"])
            assert again.status_code in (200, 409), again.text
