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

-- name: unidentified_created
-- Emails braze-bridge created a profile for (alias-only or email-only) that no identify has
-- followed yet, whatever the age of the export/ids answer.
SELECT email, created_as FROM identities
WHERE connection_id = $1 AND email = ANY($2::text[])
  AND created_as IS NOT NULL AND identified_external_id IS NULL

-- name: mark_created
-- A /users/track request that addressed these emails by alias / email identifier was accepted.
-- A row made here carries an already expired "not found" answer: it marks, it answers nothing.
INSERT INTO identities (connection_id, email, status, resolved_at, expires_at, created_as)
SELECT $1, e.email, 'not_found', now(), now(), e.created_as
FROM unnest($2::text[], $3::text[]) AS e(email, created_as)
ON CONFLICT (connection_id, email) DO UPDATE
SET created_as = EXCLUDED.created_as
WHERE identities.created_as IS NULL

-- name: mark_identified
-- Braze accepted the /users/identify that named these emails; once per email.
UPDATE identities AS i SET identified_external_id = e.external_id, identified_at = now()
FROM unnest($2::text[], $3::text[]) AS e(email, external_id)
WHERE i.connection_id = $1 AND i.email = e.email AND i.identified_external_id IS NULL
