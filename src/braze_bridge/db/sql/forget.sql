-- Forgetting a person in one connection (docs/privacy.md). Cold path: these walk the
-- connection's retained history (events, bodies, objects, attempts), which is what finding
-- every copy of a person in free-form JSON takes. Arguments: $1 the connection, then the
-- person's user keys, external ids, lower-cased emails or text needles (`Person.needles`).

-- name: forget_linked_identifiers
-- Every (external id, email) pair stored with any of the person's identifiers.
SELECT e.normalized -> 'user' ->> 'external_id' AS external_id,
       e.normalized -> 'user' ->> 'email' AS email
FROM events e
WHERE e.connection_id = $1
  AND (e.user_key = ANY($2::text[])
       OR e.normalized -> 'user' ->> 'external_id' = ANY($3::text[])
       OR lower(e.normalized -> 'user' ->> 'email') = ANY($4::text[]))
UNION
SELECT o.external_id, o.email FROM operations o
WHERE o.connection_id = $1
  AND (o.user_key = ANY($2::text[]) OR o.external_id = ANY($3::text[])
       OR lower(o.email) = ANY($4::text[]))
UNION
SELECT i.external_id, i.email FROM identities i
WHERE i.connection_id = $1
  AND (i.external_id = ANY($3::text[]) OR lower(i.email) = ANY($4::text[]))

-- name: forget_person_operations
SELECT o.id, o.event_id FROM operations o
WHERE o.connection_id = $1
  AND (o.user_key = ANY($2::text[]) OR o.external_id = ANY($3::text[])
       OR lower(o.email) = ANY($4::text[]))

-- name: forget_person_events
-- The person's events: by their user key (every identifier is linked by now, so an event's
-- key is among them; ix_events_user_key), by their objects ($3), or a userless event
-- (rejected before a user was read) whose raw body mentions them ($4: `Person.body_patterns`).
SELECT e.id FROM events e
WHERE e.user_key = ANY($2::text[]) AND e.connection_id = $1
UNION
SELECT e.id FROM events e WHERE e.id = ANY($3::uuid[]) AND e.connection_id = $1
UNION
SELECT e.id FROM events e
WHERE e.connection_id = $1 AND e.user_key IS NULL
  AND EXISTS (SELECT 1 FROM event_bodies b, unnest($4::text[]) AS p(pattern)
              WHERE b.event_id = e.id AND encode(b.body, 'escape') ~* p.pattern)

-- name: forget_delete_bodies
-- The raw bodies of the person's events ($2), and any other body of the connection that
-- mentions them ($3: `Person.body_patterns`; `escape` shows non-ASCII bytes as octal, so
-- these match ASCII identifiers in any body, UTF-8 or not) (e.g. a referral naming the forgotten friend): raw bytes cannot be redacted
-- in place without re-encoding them, and a replay already copes with a purged body.
DELETE FROM event_bodies b
USING events e
WHERE e.id = b.event_id AND e.connection_id = $1
  AND (b.event_id = ANY($2::uuid[])
       OR EXISTS (SELECT 1 FROM unnest($3::text[]) AS p(pattern)
                  WHERE encode(b.body, 'escape') ~* p.pattern))

-- name: forget_redact_events
-- The person's events keep their audit trail (kind, status, times, the partner's dedupe key:
-- a resent webhook stays a duplicate) and lose what they said about the person. A dedupe key
-- that is the raw body's hash goes too: hashing guessed bodies would find the person again.
UPDATE events
SET user_key = NULL,
    normalized = jsonb_build_object('kind', kind, 'forgotten', true),
    dedupe_key = CASE WHEN dedupe_key LIKE 'sha256:%' THEN 'forgotten:' || id::text
                      ELSE dedupe_key END
WHERE connection_id = $1 AND id = ANY($2::uuid[])

-- name: forget_mentioning_events
-- Other events of the connection whose normalized form or reason still mentions the person.
SELECT id, normalized::text AS normalized_json, reason FROM events
WHERE connection_id = $1
  AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS n(needle)
              WHERE strpos(lower(coalesce(normalized::text, '') || ' ' || coalesce(reason, '')),
                           lower(n.needle)) > 0)

-- name: forget_set_event_text
UPDATE events e SET normalized = v.normalized::jsonb, reason = v.reason
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v(id, normalized, reason)
WHERE e.id = v.id

-- name: forget_redact_operations
-- The person's objects keep kind, status and times; what they carried about the person goes.
-- `user_key` is NOT NULL (the claim's ordering key): every forgotten object shares one, and
-- they are all settled by then.
UPDATE operations
SET payload = '{}'::jsonb, sent_object = NULL, external_id = NULL, email = NULL,
    user_key = 'forgotten'
WHERE connection_id = $1 AND id = ANY($2::bigint[])

-- name: forget_mentioning_operations
SELECT id, payload::text AS payload_json, sent_object::text AS sent_json, reason
FROM operations
WHERE connection_id = $1
  AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS n(needle)
              WHERE strpos(lower(payload::text || ' ' || coalesce(sent_object::text, '') || ' '
                                 || coalesce(reason, '')),
                           lower(n.needle)) > 0)

-- name: forget_set_operation_text
UPDATE operations o
SET payload = v.payload::jsonb, sent_object = v.sent::jsonb, reason = v.reason
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS v(id, payload, sent, reason)
WHERE o.id = v.id

-- name: forget_mentioning_attempts
-- Attempts that carried the person's objects ($2), or whose bodies mention them ($3).
SELECT a.id, a.request_body::text AS request_json, a.response_body,
       a.response_headers::text AS headers_json, a.error
FROM delivery_attempts a
WHERE a.connection_id = $1
  AND (a.id IN (SELECT ao.attempt_id FROM attempt_operations ao
                WHERE ao.operation_id = ANY($2::bigint[]))
       OR EXISTS (SELECT 1 FROM unnest($3::text[]) AS n(needle)
                  WHERE strpos(lower(coalesce(a.request_body::text, '') || ' '
                                     || coalesce(a.response_body, '') || ' '
                                     || coalesce(a.response_headers::text, '') || ' '
                                     || coalesce(a.error, '')),
                               lower(n.needle)) > 0))

-- name: forget_set_attempt_text
UPDATE delivery_attempts a
SET request_body = v.request::jsonb, response_body = v.response,
    response_headers = v.headers::jsonb, error = v.error
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS v(id, request, response, headers, error)
WHERE a.id = v.id

-- name: forget_delete_identities
DELETE FROM identities
WHERE connection_id = $1 AND (external_id = ANY($2::text[]) OR lower(email) = ANY($3::text[]))

-- name: forget_delete_pending_values
DELETE FROM user_values_pending
WHERE connection_id = $1 AND (user_key = ANY($2::text[]) OR operation_id = ANY($3::bigint[]))

-- name: forget_delete_values
DELETE FROM user_values WHERE connection_id = $1 AND user_key = ANY($2::text[])

-- name: forget_delete_content_rewards
DELETE FROM content_rewards WHERE connection_id = $1 AND external_id = ANY($2::text[])

-- name: forget_delete_content_profiles
DELETE FROM content_profiles WHERE connection_id = $1 AND external_id = ANY($2::text[])

-- name: forget_mentioning_replay_jobs
-- Bulk replays whose filters name the person (a `user` filter): the connection's tenant's,
-- and operator jobs filtered on this connection ($3).
SELECT id, filters::text AS filters_json FROM replay_jobs
WHERE (tenant_id = $1 OR (tenant_id IS NULL AND filters ->> 'connection_id' = $3))
  AND EXISTS (SELECT 1 FROM unnest($2::text[]) AS n(needle)
              WHERE strpos(lower(filters::text), lower(n.needle)) > 0)

-- name: forget_set_replay_filters
UPDATE replay_jobs j SET filters = v.filters::jsonb
FROM unnest($1::uuid[], $2::text[]) AS v(id, filters)
WHERE j.id = v.id
