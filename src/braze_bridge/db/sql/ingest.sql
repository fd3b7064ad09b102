-- Storing accepted webhooks (repositories/ingest_batch.py).

-- name: ingest_batch
-- A batch of webhooks is ONE statement: new events, their raw bodies, their operations, the
-- Connected Content projection and the outbox wake-up, each step a data-modifying CTE. One
-- statement is atomic on its own, so the group committer needs no BEGIN/COMMIT.
--   $1 events (jsonb array), $2 raw bodies (bytea[], by `n`), $3 operations (jsonb array),
--   $4 Connected Content changes (jsonb array), $5 rewards kept per user, $6 NOTIFY channel,
--   $7 the live feeds' NOTIFY channel.
-- Rows travel as JSON documents (`jsonb_to_recordset`) and bodies as one array: one parameter
-- per kind, whatever the batch size, so the statement stays prepared.
-- Bodies, operations and content join `ins`: a redelivery (ON CONFLICT DO NOTHING) adds
-- nothing. Events and operations are inserted in the order given (`n`), events in key order
-- so concurrent batches lock unique-index entries alike. The NOTIFY subquery runs once.
WITH rows AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
        n bigint, id uuid, tenant_id uuid, connection_id uuid, dedupe_key text,
        source_event_id text, kind text, status text, reason text, user_key text,
        normalized jsonb, received_at timestamptz, occurred_at timestamptz,
        headers jsonb, content_type text)
),
ins AS (
    INSERT INTO events (id, tenant_id, connection_id, dedupe_key, source_event_id, kind, status,
                        reason, user_key, normalized, received_at, occurred_at)
    SELECT id, tenant_id, connection_id, dedupe_key, source_event_id, kind, status,
           reason, user_key, normalized, received_at, occurred_at
    FROM rows
    ORDER BY n
    ON CONFLICT (connection_id, dedupe_key) DO NOTHING
    RETURNING id, tenant_id, connection_id, dedupe_key, received_at
),
bodies AS (
    INSERT INTO event_bodies (event_id, body, headers, content_type, received_at)
    SELECT r.id, b.body, r.headers, r.content_type, r.received_at
    FROM rows AS r
    JOIN unnest($2::bytea[]) WITH ORDINALITY AS b(body, n) ON b.n = r.n
    JOIN ins ON ins.id = r.id
),
ops AS (
    INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key,
                            external_id, email, unknown_user, payload, status, attempts,
                            available_at)
    SELECT o.event_id, ins.tenant_id, ins.connection_id, o.position, o.kind, o.user_key,
           o.external_id, o.email, o.unknown_user, o.payload, 'pending', 0, ins.received_at
    FROM jsonb_to_recordset($3::jsonb) AS o(
        n bigint, event_id uuid, position smallint, kind text, user_key text,
        external_id text, email text, unknown_user text, payload jsonb)
    JOIN ins ON ins.id = o.event_id
    ORDER BY o.n
    RETURNING connection_id
),
-- include: connected_content_projection
woken AS (
    SELECT pg_notify($6, n.connection_id::text)
    FROM (SELECT DISTINCT connection_id FROM ops) AS n
),
-- Live feeds hear of new events on $7, once per batch (filtered ones have no operations).
announced AS (
    SELECT pg_notify($7, '') FROM (SELECT 1 FROM ins LIMIT 1) AS a
)
SELECT id, connection_id, dedupe_key, (SELECT count(*) FROM woken) AS woken,
       (SELECT count(*) FROM announced) AS announced
FROM ins

-- name: connected_content_projection
-- The Connected Content CTEs of `ingest_batch` (docs/connected-content.md), for the events it
-- inserted. Share links and codes are folded per user in batch order (the last one wins). A
-- reward is one row; its upsert applies the merge rules (the newest state wins, equal times
-- included; a state without a coupon keeps the known code unless CANCELED/REVOKED) and takes
-- a new `seq` when it changes, drawn in batch order (a volatile select list is computed after
-- its ORDER BY) while rows are written in key order. A batch holds at most one change per
-- reward (the caller cuts batches): one statement cannot update a row twice. `trim` deletes a
-- user's rewards beyond the newest $5 as this statement found them, never one this batch
-- changes (two CTEs must not touch one row), and only the row version it saw (`ctid`): a
-- concurrent batch that just made that reward newer keeps it.
content AS (
    SELECT c.* FROM jsonb_to_recordset($4::jsonb) AS c(
        n bigint, event_id uuid, connection_id uuid, external_id text, share_link text,
        share_code text, reward_id text, state text, face_value double precision,
        face_value_type text, coupon_code text, reward_at timestamptz)
    JOIN ins ON ins.id = c.event_id
),
profiles AS (
    INSERT INTO content_profiles AS p (connection_id, external_id, share_link, share_code)
    SELECT connection_id, external_id,
           (array_agg(share_link ORDER BY n DESC) FILTER (WHERE share_link IS NOT NULL))[1],
           (array_agg(share_code ORDER BY n DESC) FILTER (WHERE share_code IS NOT NULL))[1]
    FROM content
    WHERE share_link IS NOT NULL OR share_code IS NOT NULL
    GROUP BY connection_id, external_id
    ORDER BY connection_id, external_id
    ON CONFLICT (connection_id, external_id) DO UPDATE SET
        share_link = coalesce(excluded.share_link, p.share_link),
        share_code = coalesce(excluded.share_code, p.share_code),
        updated_at = now()
),
rewards AS (
    INSERT INTO content_rewards AS r (connection_id, external_id, reward_id, state,
                                      face_value, face_value_type, coupon_code, updated_at,
                                      seq)
    SELECT * FROM (
        SELECT connection_id, external_id, reward_id, state, face_value, face_value_type,
               coupon_code, reward_at, nextval('content_rewards_seq_seq')
        FROM content
        WHERE reward_id IS NOT NULL
        ORDER BY n
    ) AS numbered
    ORDER BY connection_id, external_id, reward_id
    ON CONFLICT (connection_id, external_id, reward_id) DO UPDATE SET
        state = excluded.state,
        face_value = excluded.face_value,
        face_value_type = excluded.face_value_type,
        coupon_code = CASE
            WHEN excluded.coupon_code IS NULL AND excluded.state NOT IN ('CANCELED', 'REVOKED')
            THEN r.coupon_code ELSE excluded.coupon_code END,
        updated_at = excluded.updated_at,
        seq = excluded.seq
    WHERE excluded.updated_at >= r.updated_at
),
trim AS (
    DELETE FROM content_rewards
    WHERE ctid = ANY(ARRAY(
        SELECT old.ctid
        FROM (SELECT DISTINCT connection_id, external_id FROM content
              WHERE reward_id IS NOT NULL) AS u
        CROSS JOIN LATERAL (
            SELECT x.ctid, x.reward_id
            FROM content_rewards AS x
            WHERE x.connection_id = u.connection_id AND x.external_id = u.external_id
            ORDER BY x.updated_at DESC, x.seq
            OFFSET $5
        ) AS old
        WHERE NOT EXISTS (
            SELECT 1 FROM content AS c
            WHERE c.connection_id = u.connection_id AND c.external_id = u.external_id
              AND c.reward_id = old.reward_id)
    ))
),

-- name: existing_event_ids
-- The events already stored under ($1 connection, $2 dedupe key) pairs.
SELECT e.id, e.connection_id, e.dedupe_key
FROM events AS e
JOIN unnest($1::uuid[], $2::text[]) AS k(connection_id, dedupe_key)
  ON e.connection_id = k.connection_id AND e.dedupe_key = k.dedupe_key
