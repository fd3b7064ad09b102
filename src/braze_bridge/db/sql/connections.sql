-- Connection reads and writes of the hot paths. Admin CRUD is ORM (repositories/connections.py).

-- name: live_connections
-- Live (not deleted) connections as ingest, content and preview need them; secrets are still
-- ciphertexts. `settings` as text: orjson parses it faster than the driver's JSON codec.
SELECT id, tenant_id, source, state, braze_app_id, webhook_auth_mode, webhook_username,
       webhook_secret_enc, previous_webhook_secret_enc, previous_secret_expires_at,
       content_token_enc, settings::text AS settings, version
FROM connections
WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL

-- name: delivery_connections
-- What the worker needs to call Braze, deleted connections included (their work settles).
SELECT id, tenant_id, source, state, braze_rest_endpoint, braze_api_key_enc, track_rate_limit,
       track_rate_window_seconds, export_rate_limit, export_rate_window_seconds,
       track_object_cap, version
FROM connections WHERE id = ANY($1::uuid[])

-- name: hold_connection_for_auth
-- $1 connection, $2 message, $3 the auth_error state, $4 the active state.
UPDATE connections
SET state = $3, last_error = $2, last_error_at = now()
WHERE id = $1 AND state = $4

-- name: hold_connection_until
-- Never shortens an existing wait. $1 connection, $2 until, $3 message.
UPDATE connections
SET rate_limited_until = GREATEST(COALESCE(rate_limited_until, $2), $2),
    last_error = $3, last_error_at = now()
WHERE id = $1
