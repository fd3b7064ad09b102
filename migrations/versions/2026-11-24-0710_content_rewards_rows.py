"""Connected Content rewards: one row per reward instead of a list in the profile row

Revision ID: 0007_content_rewards_rows
Revises: 0006_ingest_without_fk_checks
Create Date: 2026-11-24 07:10:00

Every reward webhook rewrote its user's whole profile row, a JSON list of up to 20 rewards
(about 4 KB), through the plpgsql merge of migration 0002: Postgres's CPU per webhook grew from
about 150 to 270 µs as users' lists filled. Now a reward is one small row keyed by
(connection, user, reward): a new reward is an insert, a state change an upsert whose rules
(the newest state wins; a state without a coupon keeps the known code unless CANCELED or
REVOKED) are the ON CONFLICT clause. The endpoint reads the newest 20; ingest deletes a user's
older ones. `seq` orders rewards of equal time by when their state last changed, as the list
did. The profile row keeps the share link and code only.

No foreign key: a statement trigger on connections deletes a connection's rewards.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0007_content_rewards_rows"
down_revision: str | None = "0006_ingest_without_fk_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "content_rewards",
        sa.Column("connection_id", UUID(as_uuid=True), nullable=False),
        sa.Column("external_id", sa.String(length=1024), nullable=False),
        sa.Column("reward_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("face_value", sa.Float(), nullable=True),
        sa.Column("face_value_type", sa.String(length=255), nullable=True),
        sa.Column("coupon_code", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.PrimaryKeyConstraint(
            "connection_id", "external_id", "reward_id", name=op.f("pk_content_rewards")
        ),
    )
    # Existing lists, in their order: `seq` is assigned in list order, so within a user equal
    # times keep the order they had (the list was newest first, equal times oldest first).
    op.execute(
        """
INSERT INTO content_rewards (connection_id, external_id, reward_id, state, face_value,
                             face_value_type, coupon_code, updated_at)
SELECT connection_id, external_id, reward_id, state, face_value, face_value_type, coupon_code,
       updated_at
FROM (
    SELECT DISTINCT ON (p.connection_id, p.external_id, left(r.value->>'reward_id', 255))
           p.connection_id, p.external_id, left(r.value->>'reward_id', 255) AS reward_id,
           left(coalesce(r.value->>'state', ''), 32) AS state,
           (r.value->>'face_value')::double precision AS face_value,
           left(r.value->>'face_value_type', 255) AS face_value_type,
           r.value->>'coupon_code' AS coupon_code,
           coalesce((r.value->>'updated_at')::timestamptz, p.updated_at) AS updated_at,
           r.ord
    FROM content_profiles AS p
    CROSS JOIN LATERAL jsonb_array_elements(p.rewards) WITH ORDINALITY AS r(value, ord)
    WHERE r.value->>'reward_id' IS NOT NULL
    ORDER BY p.connection_id, p.external_id, left(r.value->>'reward_id', 255), r.ord
) AS listed
ORDER BY connection_id, external_id, ord
"""
    )
    op.drop_column("content_profiles", "rewards")
    op.execute("ALTER TABLE content_profiles RESET (toast_tuple_target, fillfactor)")
    op.execute("DROP FUNCTION braze_bridge_merge_rewards(jsonb, jsonb, integer)")
    op.execute(
        """
CREATE FUNCTION content_rewards_of_deleted_connections() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM content_rewards WHERE connection_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$
"""
    )
    op.execute(
        """
CREATE TRIGGER delete_content_rewards AFTER DELETE ON connections
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
EXECUTE FUNCTION content_rewards_of_deleted_connections()
"""
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER delete_content_rewards ON connections")
    op.execute("DROP FUNCTION content_rewards_of_deleted_connections()")
    merge_function = context.script.get_revision("0002_content_merge_function")
    if merge_function is None:
        raise RuntimeError("revision 0002_content_merge_function is missing")
    op.execute(merge_function.module.MERGE_REWARDS)
    op.execute("ALTER TABLE content_profiles SET (toast_tuple_target = 8160, fillfactor = 60)")
    op.add_column(
        "content_profiles",
        sa.Column(
            "rewards",
            sa.dialects.postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
    )
    # Users with rewards but no share link had no profile row of their own.
    op.execute(
        """
INSERT INTO content_profiles (connection_id, external_id)
SELECT DISTINCT connection_id, external_id FROM content_rewards
ON CONFLICT DO NOTHING
"""
    )
    op.execute(
        """
UPDATE content_profiles AS p SET rewards = l.rewards
FROM (
    SELECT connection_id, external_id,
           jsonb_agg(jsonb_build_object(
               'reward_id', reward_id, 'state', state, 'face_value', face_value,
               'face_value_type', face_value_type, 'coupon_code', coupon_code,
               'updated_at', to_char(updated_at AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))
               ORDER BY updated_at DESC, seq) AS rewards
    FROM (
        SELECT *, row_number() OVER (PARTITION BY connection_id, external_id
                                     ORDER BY updated_at DESC, seq) AS rank
        FROM content_rewards
    ) AS ranked
    WHERE rank <= 20 -- MAX_REWARDS_KEPT
    GROUP BY connection_id, external_id
) AS l
WHERE (p.connection_id, p.external_id) = (l.connection_id, l.external_id)
"""
    )
    op.alter_column("content_profiles", "rewards", server_default=None)
    op.drop_table("content_rewards")
