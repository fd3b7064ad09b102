-- What a settled round says about its connection (delivery/health_signal.py, docs/ops.md
-- "Connection health"). Each statement changes the row only when it has something to say, so a
-- healthy connection's rounds write nothing here.

-- name: record_connection_error
-- A failed attempt: the connection reads `degraded` until an attempt succeeds.
-- $1 connection, $2 message (a failure class, never Braze's text).
UPDATE connections SET last_error = $2, last_error_at = now()
WHERE id = $1

-- name: clear_connection_error
-- An attempt succeeded: the error it follows no longer describes the connection. A connection
-- held in auth_error keeps its message (only a fix or a passing test lifts the hold).
-- $1 connection, $2 the active state.
UPDATE connections SET last_error = NULL, last_error_at = NULL
WHERE id = $1 AND state = $2 AND last_error IS NOT NULL

-- name: count_dead_objects
-- $1 connection, $2 objects this round settled as dead (alerts compare the total).
UPDATE connections SET dead_objects = dead_objects + $2
WHERE id = $1
