"""Connected Content rewards merged in Postgres; profile rows kept uncompressed

Revision ID: 0002_content_merge_function
Revises: 0001_create_schema
Create Date: 2026-11-24 06:00:00

Ingest writes a whole batch of webhooks in one statement (no BEGIN/COMMIT round trips); the
Connected Content projection's reward merge runs in that statement, so it lives here.
`braze_bridge_merge_rewards(stored, news, keep)` folds each snapshot of `news` (in order) into
`stored`: a reward's newest state wins (late older deliveries change nothing), a state without a
coupon keeps the known code except CANCELED/REVOKED, newest first, at most `keep` entries.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_content_merge_function"
down_revision: str | None = "0001_create_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MERGE_REWARDS = """
CREATE FUNCTION braze_bridge_merge_rewards(stored jsonb, news jsonb, keep integer)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    merged jsonb := coalesce(stored, '[]'::jsonb);
    snapshot jsonb;
    held jsonb;
    entry jsonb;
    at text;
    size integer;
BEGIN
    FOR snapshot IN SELECT value FROM jsonb_array_elements(coalesce(news, '[]'::jsonb)) LOOP
        -- Fast paths: a reward not in the list whose time sorts before all (the usual live
        -- event) or after all of it (`merged` is always newest first): no re-sort needed.
        size := jsonb_array_length(merged);
        at := coalesce(snapshot->>'updated_at', '');
        IF NOT merged @> jsonb_build_array(jsonb_build_object('reward_id', snapshot->'reward_id'))
        THEN
            IF size = 0 OR at COLLATE "C" > coalesce(merged->0->>'updated_at', '') COLLATE "C"
            THEN
                merged := jsonb_build_array(snapshot) || merged;
            ELSIF at COLLATE "C" <= coalesce(merged->(size - 1)->>'updated_at', '') COLLATE "C"
            THEN
                merged := merged || jsonb_build_array(snapshot);
            END IF;
            IF jsonb_array_length(merged) > size THEN
                WHILE jsonb_array_length(merged) > keep LOOP
                    merged := merged - (-1);
                END LOOP;
                CONTINUE;
            END IF;
        END IF;
        held := snapshot;
        FOR entry IN
            SELECT value FROM jsonb_array_elements(merged) WITH ORDINALITY AS t(value, ord)
            WHERE value->>'reward_id' = snapshot->>'reward_id' ORDER BY ord
        LOOP
            IF coalesce(entry->>'updated_at', '') COLLATE "C"
               > coalesce(held->>'updated_at', '') COLLATE "C" THEN
                held := entry;
            ELSIF coalesce(held->'coupon_code', 'null'::jsonb) = 'null'::jsonb
                  AND coalesce(snapshot->>'state', '') NOT IN ('CANCELED', 'REVOKED') THEN
                held := held || jsonb_build_object(
                    'coupon_code', coalesce(entry->'coupon_code', 'null'::jsonb)
                );
            END IF;
        END LOOP;
        SELECT coalesce(jsonb_agg(k.value ORDER BY k.at COLLATE "C" DESC, k.ord), '[]'::jsonb)
        INTO merged
        FROM (
            SELECT a.value, a.at, a.ord FROM (
                SELECT t.value, coalesce(t.value->>'updated_at', '') AS at, t.ord
                FROM jsonb_array_elements(merged) WITH ORDINALITY AS t(value, ord)
                WHERE (t.value->>'reward_id' = snapshot->>'reward_id') IS NOT TRUE
                UNION ALL
                SELECT held, coalesce(held->>'updated_at', ''), 9223372036854775807
            ) a
            ORDER BY a.at COLLATE "C" DESC, a.ord
            LIMIT keep
        ) k;
    END LOOP;
    RETURN merged;
END
$fn$;
"""


def upgrade() -> None:
    op.execute(MERGE_REWARDS)
    # Each reward webhook rewrites its user's profile row: keep it inline and uncompressed up
    # to a page, with free space on the page for the new version.
    op.execute("ALTER TABLE content_profiles SET (toast_tuple_target = 8160, fillfactor = 60)")


def downgrade() -> None:
    op.execute("ALTER TABLE content_profiles RESET (toast_tuple_target, fillfactor)")
    op.execute("DROP FUNCTION braze_bridge_merge_rewards(jsonb, jsonb, integer)")
