"""Antavo `changed_only` against real Postgres: what counts as sent, in flight, failed, restarted.

`ingest()` below does what the ingest service does for a changed_only connection (load known
values under the per-user lock, map, insert operations, record them as enqueued, commit), so
these tests exercise the exact calls the lead wires in.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.engine import create_engine, create_sessionmaker
from braze_bridge.db.models import Event, OutboxOperation, PendingUserValue, UserValue
from braze_bridge.db.repositories import user_values
from braze_bridge.domain.mapping import Filtered, MappingContext
from braze_bridge.domain.statuses import EventStatus, Source
from braze_bridge.partners.antavo import PARTNER, AntavoSettings
from tests.factories import MadeConnection, make_connection, make_tenant

RECEIVED = datetime(2024, 11, 26, 16, 0, tzinfo=UTC)
MEMBER = "280e674c"
USER_KEY = f"id:{MEMBER}"
SETTINGS = AntavoSettings.model_validate(
    {
        "sync_mode": "changed_only",
        "field_mappings": [
            {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"},
            {"loyalty_field": "tier", "braze_attribute": "loyalty_tier", "type": "string"},
            {"loyalty_field": "perks", "braze_attribute": "loyalty_perks", "type": "object"},
            {"loyalty_field": "badge", "braze_attribute": "loyalty_badge", "type": "auto"},
        ],
    }
)


@dataclass
class Enqueued:
    operation_ids: list[int]
    payloads: list[dict[str, Any]]
    saved: int


def identify(**traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": MEMBER, "traits": traits}


async def ingest(
    session: AsyncSession,
    connection: MadeConnection,
    body: dict[str, Any],
    settings: AntavoSettings = SETTINGS,
) -> Enqueued:
    """The ingest service's changed_only steps, in one transaction."""
    event = PARTNER.normalize(body, received_at=RECEIVED)
    user_key = event.user.ref().key
    assert user_key is not None
    known = await user_values.load_known_values(session, connection.id, user_key)
    try:
        mapped = PARTNER.map(event, settings, MappingContext(RECEIVED, known_values=known))
    except Filtered:
        await session.commit()
        return Enqueued([], [], 0)
    row = Event(
        tenant_id=connection.row.tenant_id,
        connection_id=connection.id,
        dedupe_key=uuid.uuid4().hex,
        status=EventStatus.QUEUED,
        kind=event.kind,
        user_key=user_key,
        normalized=event.as_json(),
    )
    session.add(row)
    await session.flush()
    ids = []
    for position, operation in enumerate(mapped.operations):
        op_row = OutboxOperation(
            event_id=row.id,
            tenant_id=connection.row.tenant_id,
            connection_id=connection.id,
            position=position,
            kind=operation.kind,
            user_key=user_key,
            external_id=operation.user.external_id,
            payload=operation.payload,
        )
        session.add(op_row)
        await session.flush()
        ids.append(op_row.id)
    await user_values.record_enqueued(
        session,
        connection.id,
        user_key,
        [(op_id, op.payload) for op_id, op in zip(ids, mapped.operations, strict=True)],
        data_points_saved=mapped.data_points_saved,
    )
    await session.commit()
    return Enqueued(ids, [op.payload for op in mapped.operations], mapped.data_points_saved)


async def settle(
    session: AsyncSession, *, accepted: Sequence[int] = (), failed: Sequence[int] = ()
) -> None:
    """The worker's settle step."""
    await user_values.record_accepted(session, list(accepted))
    await user_values.record_failed(session, list(failed))
    await session.commit()


async def accepted_values(session: AsyncSession, connection: MadeConnection) -> dict[str, Any]:
    rows = await session.execute(
        select(UserValue.attribute, UserValue.value).where(
            UserValue.connection_id == connection.id, UserValue.user_key == USER_KEY
        )
    )
    return {row.attribute: row.value for row in rows}


@pytest.fixture
async def connection(session: AsyncSession) -> MadeConnection:
    tenant = await make_tenant(session)
    return await make_connection(
        session, tenant, source=Source.ANTAVO, settings=SETTINGS.model_dump()
    )


class TestRecordedOnlyAfterBrazeAccepted:
    async def test_first_change_sends_every_mapped_field_and_records_nothing_yet(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        sent = await ingest(session, connection, identify(score=1100, tier="Gold"))

        assert sent.payloads == [{"loyalty_points": 1100, "loyalty_tier": "Gold"}]
        assert await accepted_values(session, connection) == {}

    async def test_acceptance_records_the_values_and_an_unchanged_repeat_sends_nothing(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        first = await ingest(session, connection, identify(score=1100, tier="Gold"))
        await settle(session, accepted=first.operation_ids)

        assert await accepted_values(session, connection) == {
            "loyalty_points": 1100,
            "loyalty_tier": "Gold",
        }
        again = await ingest(session, connection, identify(score=1100, tier="Gold"))
        assert again.payloads == []
        assert again.saved == 2

    async def test_only_the_changed_field_goes(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        first = await ingest(session, connection, identify(score=1100, tier="Gold"))
        await settle(session, accepted=first.operation_ids)

        second = await ingest(session, connection, identify(score=1250, tier="Gold"))

        assert second.payloads == [{"loyalty_points": 1250}]
        assert second.saved == 1

    async def test_a_value_in_flight_is_not_resent_by_the_next_event(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        await ingest(session, connection, identify(score=1100, tier="Gold"))
        # Not settled yet: the same values again are already on their way.
        second = await ingest(session, connection, identify(score=1100, tier="Gold"))

        assert second.payloads == []
        assert await accepted_values(session, connection) == {}


class TestFailedDeliveries:
    async def test_a_failed_operation_does_not_advance_the_value_and_the_next_event_resends(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        first = await ingest(session, connection, identify(score=1100, tier="Gold"))
        await settle(session, accepted=first.operation_ids)
        second = await ingest(session, connection, identify(score=1250, tier="Gold"))
        await settle(session, failed=second.operation_ids)

        assert (await accepted_values(session, connection))["loyalty_points"] == 1100
        third = await ingest(session, connection, identify(score=1250, tier="Gold"))
        assert third.payloads == [{"loyalty_points": 1250}]

    async def test_a_failure_after_a_newer_enqueue_keeps_comparing_with_the_newer_value(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        b = await ingest(session, connection, identify(tier="Silver"))
        c = await ingest(session, connection, identify(tier="Gold"))
        await settle(session, failed=b.operation_ids)

        # "Gold" is still on its way: sending it again would be a wasted write.
        repeat = await ingest(session, connection, identify(tier="Gold"))
        assert repeat.payloads == []
        await settle(session, accepted=c.operation_ids)
        assert await accepted_values(session, connection) == {"loyalty_tier": "Gold"}


class TestInFlightSequences:
    async def test_a_b_a_while_b_is_in_flight_ends_with_a_in_braze(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        a = await ingest(session, connection, identify(tier="Gold"))
        await settle(session, accepted=a.operation_ids)
        b = await ingest(session, connection, identify(tier="Silver"))
        back_to_a = await ingest(session, connection, identify(tier="Gold"))

        # Compared with the in-flight "Silver", not the accepted "Gold": A must be sent again.
        assert back_to_a.payloads == [{"loyalty_tier": "Gold"}]
        await settle(session, accepted=b.operation_ids)
        await settle(session, accepted=back_to_a.operation_ids)
        assert await accepted_values(session, connection) == {"loyalty_tier": "Gold"}

    async def test_a_b_a_where_b_fails_still_records_a(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        a = await ingest(session, connection, identify(tier="Gold"))
        await settle(session, accepted=a.operation_ids)
        b = await ingest(session, connection, identify(tier="Silver"))
        back_to_a = await ingest(session, connection, identify(tier="Gold"))
        await settle(session, failed=b.operation_ids)
        await settle(session, accepted=back_to_a.operation_ids)

        assert await accepted_values(session, connection) == {"loyalty_tier": "Gold"}
        pending = await session.scalar(select(func.count()).select_from(PendingUserValue))
        assert pending == 0

    async def test_one_settle_carrying_two_objects_for_a_user_records_the_newest(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        b = await ingest(session, connection, identify(tier="Silver"))
        c = await ingest(session, connection, identify(tier="Platinum"))

        await settle(session, accepted=[*c.operation_ids, *b.operation_ids])

        assert await accepted_values(session, connection) == {"loyalty_tier": "Platinum"}

    async def test_an_older_operation_settling_late_never_overwrites_a_newer_value(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        b = await ingest(session, connection, identify(tier="Silver"))
        c = await ingest(session, connection, identify(tier="Platinum"))
        await settle(session, accepted=c.operation_ids)
        await settle(session, accepted=b.operation_ids)

        assert await accepted_values(session, connection) == {"loyalty_tier": "Platinum"}


class TestAcrossRestarts:
    async def test_a_new_engine_sees_the_recorded_values(
        self, session: AsyncSession, connection: MadeConnection, database_url: str
    ) -> None:
        first = await ingest(session, connection, identify(score=1100, tier="Gold"))
        await settle(session, accepted=first.operation_ids)
        in_flight = await ingest(session, connection, identify(score=1300, tier="Gold"))

        engine = create_engine(database_url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as fresh:
                known = await user_values.load_known_values(fresh, connection.id, USER_KEY)
                assert known == {"loyalty_points": 1300, "loyalty_tier": "Gold"}
                after_restart = await ingest(
                    fresh, connection, identify(score=1300, tier="Platinum")
                )
                assert after_restart.payloads == [{"loyalty_tier": "Platinum"}]
                await settle(fresh, failed=in_flight.operation_ids)
                resend = await ingest(fresh, connection, identify(score=1300, tier="Platinum"))
                assert resend.payloads == [{"loyalty_points": 1300}]
        finally:
            await engine.dispose()


class TestStoredShapes:
    async def test_a_nested_object_survives_the_jsonb_round_trip_as_unchanged(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        perks = {"z_last": 1, "a_first": {"since": "2024-01-02T03:04:05Z", "level": 2.0}}
        first = await ingest(session, connection, identify(perks=perks))
        await settle(session, accepted=first.operation_ids)

        # JSONB reorders keys and may print 2.0 as 2.0 or 2; neither is a change for Braze.
        reordered = {"a_first": {"level": 2, "since": "2024-01-02T03:04:05Z"}, "z_last": 1}
        again = await ingest(session, connection, identify(perks=reordered))
        assert again.payloads == []

    async def test_a_removed_attribute_is_recorded_as_null_and_not_removed_twice(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        first = await ingest(session, connection, identify(badge="early bird"))
        await settle(session, accepted=first.operation_ids)
        removal = await ingest(session, connection, identify(badge=None))
        assert removal.payloads == [{"loyalty_badge": None}]
        await settle(session, accepted=removal.operation_ids)

        assert await accepted_values(session, connection) == {"loyalty_badge": None}
        again = await ingest(session, connection, identify(badge=None))
        assert again.payloads == []

    async def test_true_and_one_are_different_values(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        first = await ingest(session, connection, identify(badge=True))
        await settle(session, accepted=first.operation_ids)

        changed = await ingest(session, connection, identify(badge=1))
        assert changed.payloads == [{"loyalty_badge": 1}]


class TestDataPointsSaved:
    async def test_savings_are_counted_per_connection(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        other = await make_connection(
            session,
            await make_tenant(session),
            source=Source.ANTAVO,
            settings=SETTINGS.model_dump(),
        )
        first = await ingest(session, connection, identify(score=1, tier="Gold"))
        await settle(session, accepted=first.operation_ids)
        for score in (2, 3, 4):  # tier unchanged three times
            sent = await ingest(session, connection, identify(score=score, tier="Gold"))
            await settle(session, accepted=sent.operation_ids)
        other_body = {"type": "identify", "userId": "someone-else", "traits": {"tier": "Gold"}}
        await ingest(session, other, other_body)

        assert await user_values.data_points_saved(session, connection.id) == 3
        assert await user_values.data_points_saved(session, other.id) == 0


class TestForget:
    async def test_forgetting_a_connection_makes_the_next_event_send_every_field(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        first = await ingest(session, connection, identify(score=1100, tier="Gold"))
        await settle(session, accepted=first.operation_ids)

        assert await user_values.forget_user_values(session, connection.id) == 2
        await session.commit()
        again = await ingest(session, connection, identify(score=1100, tier="Gold"))
        assert again.payloads == [{"loyalty_points": 1100, "loyalty_tier": "Gold"}]

    async def test_settling_operations_without_pending_values_changes_nothing(
        self, session: AsyncSession, connection: MadeConnection
    ) -> None:
        assert await user_values.record_accepted(session, [987654321]) == 0
        assert await user_values.record_failed(session, [987654321]) == 0
        assert await user_values.record_accepted(session, []) == 0


class TestConcurrentIngest:
    async def test_a_second_webhook_for_the_member_waits_and_sees_the_first_ones_values(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        connection: MadeConnection,
    ) -> None:
        async with sessionmaker() as first, sessionmaker() as second, sessionmaker() as observer:
            known = await user_values.load_known_values(first, connection.id, USER_KEY)
            assert known == {}
            first_pid = await first.scalar(text("SELECT pg_backend_pid()"))
            second_pid = await second.scalar(text("SELECT pg_backend_pid()"))
            waiting = asyncio.create_task(
                user_values.load_known_values(second, connection.id, USER_KEY)
            )
            # Each query of the observer lets the task run; bounded by time, not by sleeps.
            blockers: list[int] = []
            deadline = time.monotonic() + 10
            while first_pid not in blockers and time.monotonic() < deadline:
                blockers = await observer.scalar(
                    text("SELECT pg_blocking_pids(:pid)"), {"pid": second_pid}
                )
            assert blockers == [first_pid]
            assert not waiting.done()

            sent = await ingest(first, connection, identify(score=5, tier="Gold"))

            assert await waiting == {"loyalty_points": 5, "loyalty_tier": "Gold"}
            assert sent.payloads == [{"loyalty_points": 5, "loyalty_tier": "Gold"}]
            await second.commit()


async def test_switching_a_connection_into_changed_only_starts_from_a_full_sync(
    client: httpx.AsyncClient, session: AsyncSession, operator_headers: dict[str, str]
) -> None:
    tenant = await make_tenant(session)
    made = await make_connection(
        session,
        tenant,
        source=Source.ANTAVO,
        settings={
            "sync_mode": "all_mapped",
            "field_mappings": [
                {"loyalty_field": "score", "braze_attribute": "loyalty_points", "type": "integer"}
            ],
        },
    )
    session.add(
        UserValue(connection_id=made.id, user_key="id:m-1", attribute="loyalty_points", value=10)
    )
    await session.commit()

    response = await client.patch(
        f"/v1/connections/{made.id}",
        json={"settings": {"sync_mode": "changed_only"}},
        headers=operator_headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["settings"]["sync_mode"] == "changed_only"
    remaining = await session.scalar(
        select(func.count()).select_from(UserValue).where(UserValue.connection_id == made.id)
    )
    assert remaining == 0
