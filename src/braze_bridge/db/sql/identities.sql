-- The per-connection cache of Braze's `/users/export/ids` answers about emails.

-- name: cached_identities
SELECT email, status, external_id, braze_id FROM identities
WHERE connection_id = $1 AND email = ANY($2::text[]) AND expires_at > now()

-- name: store_identity
INSERT INTO identities (connection_id, email, status, external_id, braze_id, resolved_at,
                        expires_at)
VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6::float8))
ON CONFLICT (connection_id, email) DO UPDATE
SET status = EXCLUDED.status, external_id = EXCLUDED.external_id,
    braze_id = EXCLUDED.braze_id, resolved_at = EXCLUDED.resolved_at,
    expires_at = EXCLUDED.expires_at
