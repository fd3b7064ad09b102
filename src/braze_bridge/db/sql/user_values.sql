-- What Braze holds per user and attribute, for Antavo `changed_only` (docs/antavo.md).

-- name: known_user_values
-- Per attribute of ($1 connection, $2 user): the newest pending value, else the accepted one.
-- One statement, one snapshot: a settle committing meanwhile is seen wholly or not at all.
SELECT attribute, value FROM (
    SELECT DISTINCT ON (attribute) attribute, value
    FROM user_values_pending
    WHERE connection_id = $1 AND user_key = $2
    ORDER BY attribute, operation_id DESC
) AS newest_pending
UNION ALL
SELECT accepted.attribute, accepted.value
FROM user_values AS accepted
WHERE accepted.connection_id = $1 AND accepted.user_key = $2
  AND NOT EXISTS (
    SELECT 1 FROM user_values_pending AS pending
    WHERE pending.connection_id = accepted.connection_id
      AND pending.user_key = accepted.user_key
      AND pending.attribute = accepted.attribute
  )

-- name: promote_user_values
-- The pending values of the delivered operations $1 become the accepted ones.
WITH settled AS (
    DELETE FROM user_values_pending
    WHERE operation_id = ANY($1::bigint[])
    RETURNING operation_id, attribute, connection_id, user_key, value
), newest AS (
    -- One request may carry several objects for one user: the last enqueued wins.
    SELECT DISTINCT ON (connection_id, user_key, attribute) *
    FROM settled
    ORDER BY connection_id, user_key, attribute, operation_id DESC
)
INSERT INTO user_values AS known
    (connection_id, user_key, attribute, value, sent_at, accepted_operation_id)
SELECT connection_id, user_key, attribute, value, now(), operation_id FROM newest
ON CONFLICT (connection_id, user_key, attribute) DO UPDATE
    SET value = EXCLUDED.value,
        sent_at = EXCLUDED.sent_at,
        accepted_operation_id = EXCLUDED.accepted_operation_id
    -- Per-user order makes settles arrive in enqueue order; never let an older one win.
    WHERE known.accepted_operation_id IS NULL
       OR known.accepted_operation_id < EXCLUDED.accepted_operation_id
