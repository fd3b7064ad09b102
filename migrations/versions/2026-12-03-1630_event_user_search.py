"""Event log: `user` matches the email an event carries, `user_prefix` searches, reward states

Revision ID: 0006_event_user_search
Revises: 0005_connection_stats
Create Date: 2026-12-03 16:50:00

- `ix_events_user_key` is rebuilt with `text_pattern_ops`: the same equality lookups as
  before, plus prefix ranges (`user_prefix=`) whatever the database's collation.
- `ix_events_user_email` indexes the email the normalized event carries (lower-cased), so
  `user=<email>` finds the events of a user that has an external id too (their `user_key` is
  `id:…`), by equality or prefix. Rows without an email are left out of it.
- Extole reward events are logged with their state (`reward_fulfilled`, …) instead of `reward`
  (only a reward whose body named no state stays `reward`).

Downgrade: the reward kinds go back to `reward` and the indexes to the baseline's.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_event_user_search"
down_revision: str | None = "0005_connection_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("EARNED", "FULFILLED", "SENT", "REDEEMED", "FAILED", "CANCELED", "REVOKED")


def upgrade() -> None:
    op.drop_index("ix_events_user_key", table_name="events")
    op.execute("CREATE INDEX ix_events_user_key ON events (user_key text_pattern_ops, id)")
    op.execute(
        "CREATE INDEX ix_events_user_email ON events "
        "(lower(normalized #>> '{user,email}') text_pattern_ops, id) "
        "WHERE (normalized #>> '{user,email}') IS NOT NULL"
    )
    states = ", ".join(f"'{state}'" for state in STATES)
    op.execute(
        "UPDATE events SET kind = 'reward_' || lower(normalized ->> 'state') "  # noqa: S608 - constants
        f"WHERE kind = 'reward' AND normalized ->> 'state' IN ({states})"
    )


def downgrade() -> None:
    kinds = ", ".join(f"'reward_{state.lower()}'" for state in STATES)
    op.execute(f"UPDATE events SET kind = 'reward' WHERE kind IN ({kinds})")  # noqa: S608 - constants
    op.drop_index("ix_events_user_email", table_name="events")
    op.drop_index("ix_events_user_key", table_name="events")
    op.create_index("ix_events_user_key", "events", ["user_key", "id"])
