-- Token buckets shared by every worker: $1 key, $2 wanted, $3 capacity, $4 refill per second.

-- name: take_tokens
-- Refill by elapsed time, then grant what is there, in one locked row update. The inner
-- SELECT ... FOR UPDATE reads the latest committed row after any concurrent taker commits, so
-- concurrent takes serialize on the row and never grant more than the bucket held.
UPDATE rate_buckets AS b
SET tokens = s.avail - s.granted, updated_at = s.at,
    capacity = $3::float8, refill_per_second = $4::float8
FROM (
    SELECT r.key, r.at, r.avail, r.blocked_until,
           CASE WHEN r.blocked_until > r.at THEN 0
                ELSE LEAST($2::int, floor(r.avail))::int END AS granted
    FROM (
        SELECT key, clock_timestamp() AS at, blocked_until,
               LEAST($3::float8,
                     tokens + GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - updated_at))
                              * $4::float8) AS avail
        FROM rate_buckets WHERE key = $1
        FOR UPDATE
    ) r
) s
WHERE b.key = s.key
RETURNING s.granted, s.avail - s.granted, s.blocked_until, s.at

-- name: create_bucket
INSERT INTO rate_buckets (key, tokens, capacity, refill_per_second, updated_at)
VALUES ($1, $2::float8, $2::float8, $3::float8, clock_timestamp())
ON CONFLICT (key) DO NOTHING

-- name: block_bucket
UPDATE rate_buckets
SET blocked_until = GREATEST(COALESCE(blocked_until, $2), $2)
WHERE key = $1
