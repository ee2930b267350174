-- name: publish_event :val
-- Number one church event, store it and notify every process (in one statement); its id.
WITH seq AS (
    INSERT INTO church_event_seqs AS s (tenant_id, last_id) VALUES ($1, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET last_id = s.last_id + 1
    RETURNING last_id
), ev AS (
    INSERT INTO church_events (tenant_id, id, type, frame)
    SELECT $1, seq.last_id, $2, json_build_object(
        'id', seq.last_id, 'type', $2::text, 'occurred_at', $3::timestamptz,
        'data', $4::jsonb)::text
    FROM seq
    RETURNING id, frame
)
SELECT ev.id FROM ev,
    LATERAL (SELECT pg_notify('ywm_events', $1::text || ' ' ||
        CASE WHEN octet_length(ev.frame) <= 7900 THEN ev.frame ELSE ev.id::text END)) AS n;

-- name: events_after :many
-- A church's events after id $2 still inside the replay window ($3 seconds), oldest first.
SELECT id, frame FROM church_events
WHERE tenant_id = $1 AND id > $2
  AND created_at > now() - make_interval(secs => $3::float8)
ORDER BY id
LIMIT $4;

-- name: event_last_id :val
-- The id of a church's newest event (0: none yet).
SELECT coalesce((SELECT last_id FROM church_event_seqs WHERE tenant_id = $1), 0);

-- name: prune_events :val
-- Delete events older than the replay window ($1 seconds) and expired tickets; how many events.
WITH gone AS (
    DELETE FROM church_events WHERE created_at < now() - make_interval(secs => $1::float8)
    RETURNING 1
), tickets AS (
    DELETE FROM event_tickets WHERE expires_at < now() RETURNING 1
)
SELECT (SELECT count(*) FROM gone)::int + 0 * (SELECT count(*) FROM tickets)::int;

-- name: insert_event_ticket :exec
-- Record a ticket (its hash) bound to one admin's session, usable for $8 seconds.
INSERT INTO event_tickets (ticket_hash, tenant_id, admin_id, session_id, role, valid_after_us,
                           token_exp, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8::float8));

-- name: use_event_ticket :one
-- Use a ticket once: delete it and return what it was bound to (None: unknown or expired).
DELETE FROM event_tickets
WHERE ticket_hash = $1 AND expires_at > now()
RETURNING tenant_id, admin_id, session_id, role, valid_after_us, token_exp;
