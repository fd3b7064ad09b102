-- The outbox: claim due operations, settle or release them, roll events up.
-- Batch inputs are `unnest` of typed arrays, so a statement's text never changes with the
-- batch size and asyncpg keeps it prepared.

-- name: claim_due_operations
-- Pick per-user heads with SKIP LOCKED, add each head's run of following due operations of
-- the same user, lease them all. $1 heads, $2 run cap, $3 owner, $4 lease seconds.
--
-- * Per-user order: a head is an operation with no earlier unsettled operation of the same
--   (connection, user). That check reads committed state, so two concurrent claimers can never
--   both take operations of one user: whoever locks the head owns the user's whole run, and
--   the run is only ever taken together with its head.
-- * Followers: the head's next $2 unsettled operations, cut at the first one that is not due
--   (a retry scheduled later) or still leased, so nothing jumps the queue.
-- * Held connections (paused, auth_error, rate limited after a 429) are skipped here, so
--   their work stays `pending` untouched.
-- * The final UPDATE takes its ids as one array (an InitPlan evaluated once), so a fresh
--   table without statistics cannot talk the planner into re-running the CTEs per row.
-- * An expired lease (a killed worker) needs no recovery: an `in_flight` row whose lease has
--   run out is claimable like a pending one, and only the new lease owner's settle applies.
-- * The UPDATE changes no indexed column (see models.OutboxOperation), so it is a HOT update:
--   the unsettled-set indexes are partial on the generated column `unsettled`, which a claim
--   (pending → in_flight) leaves true.
WITH heads AS (
    SELECT o.id, o.connection_id, o.user_key
    FROM operations o
    JOIN connections c ON c.id = o.connection_id
    WHERE o.unsettled AND o.available_at <= now()
      AND (o.status = 'pending' OR o.lease_expires_at < now())
      AND c.state = 'active' AND c.deleted_at IS NULL
      AND (c.rate_limited_until IS NULL OR c.rate_limited_until <= now())
      AND NOT EXISTS (
          SELECT 1 FROM operations e
          WHERE e.connection_id = o.connection_id AND e.user_key = o.user_key
            AND e.unsettled AND e.id < o.id
      )
    ORDER BY o.available_at, o.id
    LIMIT $1
    FOR UPDATE OF o SKIP LOCKED
),
followers AS MATERIALIZED (
    SELECT f.id
    FROM heads h
    CROSS JOIN LATERAL (
        SELECT n.id,
               bool_and((n.status = 'pending' OR n.lease_expires_at < now())
                        AND n.available_at <= now())
                   OVER (ORDER BY n.id) AS in_run
        FROM operations n
        WHERE n.connection_id = h.connection_id AND n.user_key = h.user_key
          AND n.unsettled AND n.id > h.id
        ORDER BY n.id
        LIMIT $2
    ) f
    WHERE f.in_run
)
UPDATE operations o
SET status = 'in_flight', lease_owner = $3,
    lease_expires_at = now() + make_interval(secs => $4::float8)
WHERE o.id = ANY(ARRAY(SELECT id FROM heads UNION ALL SELECT id FROM followers))
  AND (o.status = 'pending' OR o.lease_expires_at < now())
RETURNING o.id, o.event_id, o.tenant_id, o.connection_id, o.kind, o.user_key, o.external_id,
          o.email, o.unknown_user, o.payload::text AS payload_json, o.attempts

-- name: settle_operations
-- Only rows still leased by $7 change: a lost lease (expired, taken by another worker) is the
-- new owner's to settle.
UPDATE operations o
SET status = v.status,
    reason = v.reason,
    sent_object = COALESCE(v.sent::jsonb, o.sent_object),
    attempts = o.attempts + v.bump,
    available_at = COALESCE(v.available_at, o.available_at),
    lease_owner = NULL,
    lease_expires_at = NULL,
    settled_at = CASE WHEN v.status IN ('delivered', 'failed', 'dead', 'skipped')
                      THEN now() END
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[])
     AS v(id, status, reason, sent, available_at, bump)
WHERE o.id = v.id AND o.status = 'in_flight' AND o.lease_owner = $7
RETURNING o.event_id, o.id, o.status, extract(epoch FROM now() - o.created_at)::float8

-- name: roll_up_events
-- Event roll-up once every operation of the event is settled:
--   all delivered                           → delivered
--   some delivered, the rest not            → partially_delivered
--   none delivered, any dead                → dead (retries ran out: replayable)
--   none delivered, every one skipped       → filtered (unknown users, `unknown_user: skip`)
--   none delivered, Braze refused the rest  → rejected (Braze said the objects are invalid;
--                                             a replay after fixing the mapping can deliver)
-- Events that changed are announced on $3 (db/notify.py EVENTS_CHANNEL: live feeds), once.
WITH tally AS (
    SELECT o.event_id,
           count(*) FILTER (WHERE o.status IN ('pending', 'in_flight')) AS open,
           count(*) FILTER (WHERE o.status = 'delivered') AS delivered,
           count(*) FILTER (WHERE o.status = 'dead') AS dead,
           count(*) FILTER (WHERE o.status = 'skipped') AS skipped,
           count(*) AS total,
           min(o.reason) FILTER (WHERE o.status IN ('failed', 'dead', 'skipped')) AS why
    FROM operations o
    WHERE o.event_id = ANY($1::uuid[])
      -- objects a replay re-mapped away no longer count towards the event's outcome
      AND NOT (o.status = 'skipped' AND coalesce(o.reason, '') LIKE $2)
    GROUP BY o.event_id
),
rolled AS (
UPDATE events e
SET status = CASE
        WHEN t.delivered = t.total THEN 'delivered'
        WHEN t.delivered > 0 THEN 'partially_delivered'
        WHEN t.dead > 0 THEN 'dead'
        WHEN t.skipped = t.total THEN 'filtered'
        ELSE 'rejected' END,
    reason = CASE
        WHEN t.delivered = t.total THEN NULL
        WHEN t.delivered > 0 THEN
            format('%s of %s objects not delivered: %s', t.total - t.delivered, t.total, t.why)
        ELSE t.why END,
    settled_at = now()
FROM tally t
WHERE e.id = t.event_id AND t.open = 0
RETURNING e.id
)
SELECT pg_notify($3, '') FROM (SELECT 1 FROM rolled LIMIT 1) AS changed

-- name: release_all_leases
-- No index names the lease (claims stay HOT), so this walks the unsettled set once; it runs
-- once per worker life, at a graceful stop.
UPDATE operations SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
WHERE unsettled AND status = 'in_flight' AND lease_owner = $1

-- name: renew_leases
UPDATE operations SET lease_expires_at = now() + make_interval(secs => $3::float8)
WHERE id = ANY($2::bigint[]) AND status = 'in_flight' AND lease_owner = $1

-- name: seconds_until_next_due
SELECT EXTRACT(EPOCH FROM (LEAST(
    (SELECT min(available_at) FROM operations
     WHERE unsettled AND status = 'pending' AND available_at > now()),
    (SELECT min(rate_limited_until) FROM connections WHERE rate_limited_until > now())
) - now()))::float8

-- name: cancel_operations
-- Settle the unsettled objects of $1 as `skipped` with reason $2, whoever holds them: a
-- worker's later settle of one of them changes nothing (it no longer holds an in_flight row).
UPDATE operations
SET status = 'skipped', reason = $2, lease_owner = NULL, lease_expires_at = NULL,
    settled_at = now()
WHERE id = ANY($1::bigint[]) AND unsettled
RETURNING event_id
