"""events: drop ix_events_user, served by ix_events_user_key

Revision ID: 0005_drop_ix_events_user
Revises: 0004_attempt_links_without_fk
Create Date: 2026-11-24 06:40:00

Every event status roll-up is a non-HOT update (status is indexed), so each index on `events`
costs an entry per delivered event, and one per ingested event. `(connection_id, user_key, id)`
duplicated `(user_key, id)` for the event log's user filter within one connection: a user key's
events are few, so reading them by key and checking the connection on the row costs about the
same (0.06 vs 0.10 ms for a page on 800k events; bench/RESULTS.md).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_drop_ix_events_user"
down_revision: str | None = "0004_attempt_links_without_fk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_user", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_user", "events", ["connection_id", "user_key", "id"], unique=False)
