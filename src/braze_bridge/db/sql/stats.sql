-- Hourly traffic of one connection (ops/stats.py): counted from the event and attempt logs
-- over indexes they already have, and kept for closed hours in connection_stats_hourly.

-- name: stats_received
-- Webhooks per hour: $2 hour starts, $3 / $4 the UUIDv7 floors of each hour's start and end.
-- Event ids carry their arrival millisecond, so each hour is one range of
-- ix_events_connection_id (connection_id, id), read index-only.
SELECT h.hour,
       (SELECT count(*) FROM events e
        WHERE e.connection_id = $1 AND e.id >= h.lo AND e.id < h.hi) AS received
FROM unnest($2::timestamptz[], $3::uuid[], $4::uuid[]) AS h(hour, lo, hi)

-- name: stats_attempts
-- Braze answers by class and the objects' verdicts per UTC hour in [$2, $3), over
-- ix_delivery_attempts_started_at and the attempt_operations key (attempt_id first).
-- An object counts in the hour of the attempt that gave it its verdict; a replayed object
-- delivered again counts again. A 1xx / 3xx answer counts as 4xx (not accepted, not retried).
WITH attempt AS MATERIALIZED (
    SELECT a.id, date_trunc('hour', a.started_at, 'UTC') AS hour, a.status_code
    FROM delivery_attempts a
    WHERE a.started_at >= $2 AND a.started_at < $3 AND a.connection_id = $1
),
answers AS (
    SELECT hour,
           count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS answers_2xx,
           count(*) FILTER (WHERE status_code IS NOT NULL AND status_code <> 429
                             AND (status_code < 200 OR status_code BETWEEN 300 AND 499))
               AS answers_4xx,
           count(*) FILTER (WHERE status_code = 429) AS answers_429,
           count(*) FILTER (WHERE status_code >= 500) AS answers_5xx,
           count(*) FILTER (WHERE status_code IS NULL) AS answers_network
    FROM attempt GROUP BY hour
),
objects AS (
    SELECT a.hour,
           count(*) FILTER (WHERE ao.outcome = 'delivered') AS delivered,
           count(*) FILTER (WHERE ao.outcome = 'failed') AS failed,
           count(*) FILTER (WHERE ao.outcome = 'dead') AS dead
    FROM attempt a JOIN attempt_operations ao ON ao.attempt_id = a.id
    WHERE ao.outcome IN ('delivered', 'failed', 'dead')
    GROUP BY a.hour
)
SELECT answers.hour,
       coalesce(objects.delivered, 0) AS delivered,
       coalesce(objects.failed, 0) AS failed,
       coalesce(objects.dead, 0) AS dead,
       answers.answers_2xx, answers.answers_4xx, answers.answers_429, answers.answers_5xx,
       answers.answers_network
FROM answers LEFT JOIN objects USING (hour)

-- name: stats_stored_hours
SELECT hour, received, delivered, failed, dead, answers_2xx, answers_4xx, answers_429,
       answers_5xx, answers_network
FROM connection_stats_hourly
WHERE connection_id = $1 AND hour >= $2 AND hour < $3

-- name: stats_store_hours
-- Closed hours, counted once; a concurrent read that counted the same hour wrote the same.
INSERT INTO connection_stats_hourly (connection_id, hour, received, delivered, failed, dead,
                                     answers_2xx, answers_4xx, answers_429, answers_5xx,
                                     answers_network)
SELECT $1, * FROM unnest($2::timestamptz[], $3::int[], $4::int[], $5::int[], $6::int[],
                         $7::int[], $8::int[], $9::int[], $10::int[], $11::int[])
ON CONFLICT (connection_id, hour) DO NOTHING
