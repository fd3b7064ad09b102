"""events, event_bodies, operations: no per-row foreign-key checks on ingest

Revision ID: 0006_ingest_without_fk_checks
Revises: 0005_drop_ix_events_user
Create Date: 2026-11-24 07:00:00

A webhook inserted one event, its raw body and two operations, and their foreign keys ran five
RI trigger lookups, each with a row lock (on a freshly inserted event row, or on the
connection row every concurrent batch shares): about 16 % of Postgres's CPU under
bench/ingest.py. What they checked, the ingest statement guarantees itself: bodies and
operations are inserted joined to the events it just inserted, with that event's tenant and
connection. `events.connection_id` keeps its key: the connection row may be deleted while a
batch is on its way, and then the batch must fail rather than store orphans.

What the keys still did is kept: deleting events (a connection or tenant deleted) deletes
their bodies and operations through one statement-level trigger, as ON DELETE CASCADE did;
deleting a tenant reaches events through its connections.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_ingest_without_fk_checks"
down_revision: str | None = "0005_drop_ix_events_user"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (constraint, table, column, referred table)
DROPPED_KEYS = (
    ("fk_events_tenant_id_tenants", "events", "tenant_id", "tenants"),
    ("fk_event_bodies_event_id_events", "event_bodies", "event_id", "events"),
    ("fk_operations_event_id_events", "operations", "event_id", "events"),
    ("fk_operations_connection_id_connections", "operations", "connection_id", "connections"),
)


def upgrade() -> None:
    for name, table, _, _ in DROPPED_KEYS:
        op.drop_constraint(name, table, "foreignkey")
    op.execute(
        """
CREATE FUNCTION rows_of_deleted_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_bodies WHERE event_id IN (SELECT id FROM gone);
    DELETE FROM operations WHERE event_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$
"""
    )
    op.execute(
        """
CREATE TRIGGER delete_event_rows AFTER DELETE ON events
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
EXECUTE FUNCTION rows_of_deleted_events()
"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER delete_event_rows ON events")
    op.execute("DROP FUNCTION rows_of_deleted_events()")
    # Rows whose parent vanished while no key guarded them.
    op.execute(
        "DELETE FROM events e WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id)"
    )
    op.execute(
        "DELETE FROM event_bodies b WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = b.event_id)"
    )
    op.execute(
        """
DELETE FROM operations o
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = o.event_id)
   OR NOT EXISTS (SELECT 1 FROM connections c WHERE c.id = o.connection_id)
"""
    )
    for name, table, column, referred in DROPPED_KEYS:
        op.create_foreign_key(name, table, referred, [column], ["id"], ondelete="CASCADE")
