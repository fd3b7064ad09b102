-- Every HTTP call to Braze and the objects it carried.

-- name: record_attempts
-- All attempts of a round in one statement: ids are drawn from the identity sequence first,
-- so each attempt's operations can name their attempt by its position in the input arrays.
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[],
                         $7::text[], $8::text[], $9::text[], $10::float8[], $11::timestamptz[])
        WITH ORDINALITY AS t(tenant_id, connection_id, endpoint, worker_id, request_body,
                             status_code, response_body, response_headers, error, duration_ms,
                             started_at, n)
),
ids AS MATERIALIZED (
    SELECT n, nextval(pg_get_serial_sequence('delivery_attempts', 'id')) AS id FROM input
),
attempt AS (
    INSERT INTO delivery_attempts (id, tenant_id, connection_id, endpoint, worker_id,
                                   request_body, status_code, response_body, response_headers,
                                   error, duration_ms, started_at)
    SELECT ids.id, i.tenant_id, i.connection_id, i.endpoint, i.worker_id, i.request_body::jsonb,
           i.status_code, i.response_body, i.response_headers::jsonb, i.error, i.duration_ms,
           i.started_at
    FROM input i JOIN ids USING (n)
)
INSERT INTO attempt_operations (attempt_id, operation_id, outcome)
SELECT ids.id, u.operation_id, u.outcome
FROM unnest($12::bigint[], $13::text[], $14::bigint[]) AS u(operation_id, outcome, n)
JOIN ids USING (n)

-- name: first_retry_times
-- When each of $1 first failed in a retryable way ($2: the retry outcomes).
SELECT ao.operation_id, min(a.started_at) AS first_at
FROM attempt_operations ao JOIN delivery_attempts a ON a.id = ao.attempt_id
WHERE ao.operation_id = ANY($1::bigint[])
  AND ao.outcome = ANY($2::text[])
GROUP BY ao.operation_id
