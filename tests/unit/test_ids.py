"""UUIDv7 layout (RFC 9562 section 5.7) and the floor used to bound id range scans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from braze_bridge.domain.ids import uuid7, uuid7_floor

# hypothesis takes naive bounds and attaches the zone itself
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class TestUuid7Floor:
    @given(MOMENTS)
    def test_the_floor_is_a_version_7_rfc_uuid_of_that_millisecond(self, at: datetime) -> None:
        floor = uuid7_floor(at)
        assert floor.version == 7
        assert floor.variant == "specified in RFC 4122"
        assert floor.int >> 80 == _ms(at)

    @given(MOMENTS)
    def test_ids_of_that_millisecond_or_later_sort_at_or_above_it(self, at: datetime) -> None:
        floor = uuid7_floor(at)
        assert uuid7(_ms(at)) >= floor
        assert uuid7(_ms(at) + 1) > floor
        assert uuid7(_ms(at) - 1) < floor

    def test_a_later_floor_is_greater(self) -> None:
        at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
        assert uuid7_floor(at) < uuid7_floor(at + timedelta(milliseconds=1))

    def test_ids_carry_version_and_variant(self) -> None:
        made = uuid7()
        assert (made.version, made.variant) == (7, "specified in RFC 4122")
