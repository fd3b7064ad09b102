"""outbox: HOT claims, fewer indexes on the delivery path

Revision ID: 0003_outbox_hot_claims
Revises: 0002_content_merge_function
Create Date: 2026-11-24 06:20:00

A claim (pending → in_flight with a lease) used to rewrite every index of `operations`:
`status` was in the predicates of four partial indexes and the lease columns had one of
their own. The partial indexes now select the unsettled set with a stored generated column
`unsettled` (status pending or in_flight), which a claim does not change, so the claim is a
HOT update; the lease index is gone (an expired lease is simply claimable again),
`ix_operations_event_id` was a prefix of `uq_operations_event_position`, and a fillfactor
leaves room on each page for the claimed versions of rows claimed together.

The column is added with a table rewrite (ACCESS EXCLUSIVE for its duration). See bench/RESULTS.md,
"Postgres cost per object".
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_outbox_hot_claims"
down_revision: str | None = "0002_content_merge_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSETTLED_OLD = "status IN ('pending', 'in_flight')"


def upgrade() -> None:
    # Set first: adding a stored generated column rewrites the table with the new fillfactor.
    op.execute("ALTER TABLE operations SET (fillfactor = 50)")
    op.add_column(
        "operations",
        sa.Column(
            "unsettled",
            sa.Boolean(),
            sa.Computed(UNSETTLED_OLD, persisted=True),
            nullable=False,
        ),
    )
    op.drop_index("ix_operations_leases", table_name="operations")
    op.drop_index("ix_operations_event_id", table_name="operations")
    _replace_partial_indexes("unsettled", due="unsettled")


def downgrade() -> None:
    _replace_partial_indexes(UNSETTLED_OLD, due="status = 'pending'")
    op.create_index("ix_operations_event_id", "operations", ["event_id"], unique=False)
    op.create_index(
        "ix_operations_leases",
        "operations",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'in_flight'"),
    )
    op.drop_column("operations", "unsettled")
    op.execute("ALTER TABLE operations RESET (fillfactor)")


def _replace_partial_indexes(unsettled: str, *, due: str) -> None:
    for name, columns, where in (
        ("ix_operations_due", ["available_at", "id"], due),
        ("ix_operations_user_unsettled", ["connection_id", "user_key", "id"], unsettled),
        ("ix_operations_connection_pending", ["connection_id", "created_at"], unsettled),
    ):
        op.drop_index(name, table_name="operations")
        op.create_index(name, "operations", columns, unique=False, postgresql_where=sa.text(where))
