"""attempt_operations: no per-row foreign-key checks

Revision ID: 0004_attempt_links_without_fk
Revises: 0003_outbox_hot_claims
Create Date: 2026-11-24 06:30:00

Every delivered object writes one `attempt_operations` row, and its two foreign keys ran two
RI trigger lookups (with a row lock) per row: more than the insert. The rows are created in
the same statement as their attempt, for operations the worker holds, so the checks guarded
nothing the writer does not already guarantee. What the keys still did, removing links when
an attempt (retention) or an operation (an event or connection deleted) goes away, is done by
statement-level triggers that cost nothing on insert.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_attempt_links_without_fk"
down_revision: str | None = "0003_outbox_hot_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(
        op.f("fk_attempt_operations_attempt_id_delivery_attempts"),
        "attempt_operations",
        "foreignkey",
    )
    op.drop_constraint(
        op.f("fk_attempt_operations_operation_id_operations"), "attempt_operations", "foreignkey"
    )
    op.execute(
        """
CREATE FUNCTION attempt_operations_of_deleted_attempts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM attempt_operations WHERE attempt_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$
"""
    )
    op.execute(
        """
CREATE FUNCTION attempt_operations_of_deleted_operations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM attempt_operations WHERE operation_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$
"""
    )
    op.execute(
        """
CREATE TRIGGER delete_attempt_operations AFTER DELETE ON delivery_attempts
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
EXECUTE FUNCTION attempt_operations_of_deleted_attempts()
"""
    )
    op.execute(
        """
CREATE TRIGGER delete_attempt_operations AFTER DELETE ON operations
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
EXECUTE FUNCTION attempt_operations_of_deleted_operations()
"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER delete_attempt_operations ON operations")
    op.execute("DROP TRIGGER delete_attempt_operations ON delivery_attempts")
    op.execute("DROP FUNCTION attempt_operations_of_deleted_operations()")
    op.execute("DROP FUNCTION attempt_operations_of_deleted_attempts()")
    # Links whose attempt or operation vanished while no key guarded them.
    op.execute(
        """
DELETE FROM attempt_operations ao
WHERE NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.id = ao.attempt_id)
   OR NOT EXISTS (SELECT 1 FROM operations o WHERE o.id = ao.operation_id)
"""
    )
    op.create_foreign_key(
        op.f("fk_attempt_operations_attempt_id_delivery_attempts"),
        "attempt_operations",
        "delivery_attempts",
        ["attempt_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        op.f("fk_attempt_operations_operation_id_operations"),
        "attempt_operations",
        "operations",
        ["operation_id"],
        ["id"],
        ondelete="CASCADE",
    )
