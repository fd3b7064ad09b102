-- The outbox: claim due operations, settle or release them, roll events up.
-- Batch inputs are `unnest` of typed arrays, so a statement's text never changes with the
-- batch size and asyncpg keeps it prepared.

-- name: claim_due_operations
-- Claim whole requests from a few due lanes (connections), round robin; lease them all.
-- $1 heads per lane, $2 run cap, $3 owner, $4 lease seconds, $5 objects per lane at most,
-- $6 lanes per claim.
--
-- * Flush policy (docs/delivery.md, "Batching"): a lane is due when its oldest claimable
--   object has waited the connection's `max_batch_wait_ms` (then everything up to $5 goes),
--   or else it holds at least one full request (then only whole requests go: due objects
--   rounded down to the object cap). A half-full request therefore waits in the table, not
--   in a worker, and every worker applies the same rule to the same committed rows.
-- * One claimer per lane at a time: a transaction-scoped advisory lock on the connection
--   (pg_try_advisory_xact_lock; a busy lane is skipped, not waited for), so two workers
--   cannot split one lane's due objects into two half-full requests.
-- * Fair lanes: at most $6 lanes per claim, the longest-waiting first, each bringing at most
--   $1 heads and $5 objects: one connection's backlog cannot fill a claim another's object
--   is waiting for.
-- * Per-user order: a head is an operation with no earlier unsettled operation of the same
--   (connection, user). That check reads committed state, so two concurrent claimers can never
--   both take operations of one user: whoever locks the head owns the user's whole run, and
--   the run is only ever taken from its head on (a lane's cut keeps a prefix of each run).
-- * Followers: the head's next $2 unsettled operations, cut at the first one that is not due
--   (a retry scheduled later) or still leased, so nothing jumps the queue.
-- * Held connections (paused, auth_error, rate limited after a 429) are no lanes, so their
--   work stays `pending` untouched.
-- * The final UPDATE takes its ids as one array (an InitPlan evaluated once), so a fresh
--   table without statistics cannot talk the planner into re-running the CTEs per row.
-- * An expired lease (a killed worker) needs no recovery: an `in_flight` row whose lease has
--   run out is claimable like a pending one, and only the new lease owner's settle applies.
-- * The UPDATE changes no indexed column (see models.OutboxOperation), so it is a HOT update:
--   the unsettled-set indexes are partial on the generated column `unsettled`, which a claim
--   (pending → in_flight) leaves true.
WITH lanes AS MATERIALIZED (
    SELECT c.id,
           CASE c.track_object_cap WHEN 'combined_50' THEN 50 ELSE 75 END AS cap,
           make_interval(secs => c.max_batch_wait_ms / 1000.0) AS budget
    FROM connections c
    WHERE c.state = 'active' AND c.deleted_at IS NULL
      AND (c.rate_limited_until IS NULL OR c.rate_limited_until <= now())
),
due AS MATERIALIZED (
    SELECT l.id,
           CASE WHEN d.oldest <= now() - l.budget THEN $5::int
                ELSE (d.n / l.cap) * l.cap END AS keep,
           d.oldest
    FROM lanes l
    CROSS JOIN LATERAL (
        -- the lane's oldest claimable objects, by ix_operations_connection_pending
        SELECT count(*)::int AS n, min(x.available_at) AS oldest
        FROM (
            SELECT o.available_at
            FROM operations o
            WHERE o.connection_id = l.id AND o.unsettled AND o.available_at <= now()
              AND (o.status = 'pending' OR o.lease_expires_at < now())
            ORDER BY o.created_at
            LIMIT $5
        ) x
    ) d
    WHERE d.n > 0
),
chosen AS MATERIALIZED (
    SELECT d.id, d.keep
    FROM (SELECT * FROM due WHERE keep > 0 ORDER BY oldest LIMIT $6) d
    WHERE pg_try_advisory_xact_lock(1281453669, hashtext(d.id::text))
),
heads AS (
    SELECT h.id, h.connection_id, h.user_key, ch.keep
    FROM chosen ch
    CROSS JOIN LATERAL (
        SELECT o.id, o.connection_id, o.user_key
        FROM operations o
        WHERE o.connection_id = ch.id AND o.unsettled AND o.available_at <= now()
          AND (o.status = 'pending' OR o.lease_expires_at < now())
          AND NOT EXISTS (
              SELECT 1 FROM operations e
              WHERE e.connection_id = o.connection_id AND e.user_key = o.user_key
                AND e.unsettled AND e.id < o.id
          )
        -- created_at alone: ix_operations_connection_pending's order, so the scan stops at the
        -- limit instead of sorting the lane's whole backlog (ties: any order; per-user order
        -- is the NOT EXISTS above)
        ORDER BY o.created_at
        LIMIT least($1, ch.keep)
        FOR UPDATE OF o SKIP LOCKED
    ) h
),
followers AS MATERIALIZED (
    SELECT f.id, h.id AS head, h.connection_id, h.keep
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
),
picked AS MATERIALIZED (
    -- each lane keeps `keep` objects: whole runs from their heads on, heads in id order
    SELECT p.id
    FROM (
        SELECT a.id, a.keep,
               row_number() OVER (PARTITION BY a.connection_id ORDER BY a.head, a.id) AS rn
        FROM (
            SELECT id, id AS head, connection_id, keep FROM heads
            UNION ALL
            SELECT id, head, connection_id, keep FROM followers
        ) a
    ) p
    WHERE p.rn <= p.keep
)
UPDATE operations o
SET status = 'in_flight', lease_owner = $3,
    lease_expires_at = now() + make_interval(secs => $4::float8)
WHERE o.id = ANY(ARRAY(SELECT id FROM picked))
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
-- The next scheduled retry, the next lane whose oldest object reaches its batch budget, or the
-- end of a 429 wait.
SELECT EXTRACT(EPOCH FROM (LEAST(
    (SELECT min(available_at) FROM operations
     WHERE unsettled AND status = 'pending' AND available_at > now()),
    -- a lane already past its budget was skipped (another claimer held it, or its users wait
    -- on objects in flight): look again shortly rather than at the poll cap
    (SELECT min(greatest(f.at, now() + interval '50 milliseconds'))
     FROM connections c
     CROSS JOIN LATERAL (
         SELECT o.available_at + make_interval(secs => c.max_batch_wait_ms / 1000.0) AS at
         FROM operations o
         WHERE o.connection_id = c.id AND o.unsettled AND o.status = 'pending'
           AND o.available_at <= now()
         ORDER BY o.created_at
         LIMIT 1
     ) f
     WHERE c.state = 'active' AND c.deleted_at IS NULL
       AND (c.rate_limited_until IS NULL OR c.rate_limited_until <= now())),
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

-- name: claim_plan_mode
-- The claim's plan depends on how many objects each lane holds right now; a generic plan made
-- once (asyncpg prepares, Postgres switches to a generic plan after five runs) was seen
-- running for minutes against a growing backlog. Planned per run, in the claim transaction.
SET LOCAL plan_cache_mode = force_custom_plan
