-- name: ob_expire_leases :one
-- Crash sweep at $1: rows left `sending` past their lease (a carrier call may have started) become `unknown`, never resent; claimed rows never tried (still `queued`) are given back.
WITH lost AS (
    UPDATE outbox
    SET state = 'unknown', error_code = 'lease_expired',
        error_detail = 'the sender stopped during the send; not resent automatically',
        updated_at = now()
    WHERE state = 'sending' AND lease_expires_at < $1
    RETURNING conversation_message_id
), back AS (
    UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE state = 'queued' AND lease_expires_at < $1
    RETURNING 1
), c AS (
    UPDATE conversation_messages cm SET delivery_status = 'unknown'
    FROM lost WHERE cm.id = lost.conversation_message_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM lost)::int AS expired, (SELECT count(*) FROM back)::int AS requeued;

-- name: ob_defer_quiet :val
-- Quiet hours at $1: due broadcast and welcome rows wait until $2 (replies and keyword answers do not).
WITH d AS (
    UPDATE outbox SET next_attempt_at = $2, updated_at = now()
    WHERE state = 'queued' AND (broadcast_id IS NOT NULL OR welcome) AND next_attempt_at <= $1
    RETURNING 1
)
SELECT count(*)::int FROM d;

-- name: ob_claim :many
-- Claim up to $2 due rows for sender $3 until $1 + $4 s: they stay `queued` (nothing sent yet) under the lease; rows whose member opted out become skipped; broadcast and welcome rows are left alone when $5 (quiet hours), broadcast, conversation and welcome rows when $6 (the church may not send: only STOP/START/HELP replies go).
WITH picked AS (
    SELECT o.id,
           COALESCE(m.opt_in = 'opted_out'
                    AND (o.broadcast_id IS NOT NULL OR o.conversation_message_id IS NOT NULL
                         OR o.welcome),
                    false) AS opted_out
    FROM outbox o
    LEFT JOIN members m ON m.id = o.member_id
    WHERE o.state = 'queued' AND o.next_attempt_at <= $1
      AND (o.lease_expires_at IS NULL OR o.lease_expires_at < $1)
      AND NOT ($5::boolean AND (o.broadcast_id IS NOT NULL OR o.welcome))
      AND NOT ($6::boolean AND (o.broadcast_id IS NOT NULL
                                OR o.conversation_message_id IS NOT NULL OR o.welcome))
    ORDER BY o.next_attempt_at, o.id
    LIMIT $2
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox o
SET state = CASE WHEN p.opted_out THEN 'skipped' ELSE 'queued' END,
    lease_owner = $3,
    lease_expires_at = CASE WHEN p.opted_out THEN NULL
                            ELSE $1::timestamptz + $4::float8 * interval '1 second' END,
    error_code = CASE WHEN p.opted_out THEN 'opted_out' ELSE o.error_code END,
    updated_at = now()
FROM picked p
WHERE o.id = p.id
RETURNING o.id, o.state, o.broadcast_id, o.conversation_message_id, o.member_id, o.to_phone,
          o.from_phone, o.body, o.media_urls, o.attempts;

-- name: ob_begin_send :val
-- Just before its carrier call: claimed row $1 of sender $2 becomes `sending` (attempts + 1) while the lease still runs at $3; NULL when it is no longer ours to send.
UPDATE outbox
SET state = 'sending', attempts = attempts + 1, updated_at = now()
WHERE id = $1 AND lease_owner = $2 AND state = 'queued' AND lease_expires_at > $3
RETURNING attempts;

-- name: ob_mark_sent :val
-- The carrier accepted rows $1 as messages $2 (same order): store the ids, state sent (rows sender $3 still owns);
-- look each up at the carrier after $4 seconds unless a receipt settles it first ($4 NULL: never).
WITH u AS (
    SELECT * FROM unnest($1::uuid[], $2::text[]) AS u(id, carrier_id)
), o AS (
    UPDATE outbox
    SET state = 'sent', carrier_message_id = u.carrier_id, sent_at = now(), error_code = NULL,
        error_detail = NULL, lease_expires_at = NULL, updated_at = now(),
        status_check_at = now() + make_interval(secs => $4::double precision)
    FROM u
    WHERE outbox.id = u.id AND outbox.lease_owner = $3 AND outbox.state IN ('sending', 'unknown')
    RETURNING outbox.conversation_message_id, u.carrier_id
), c AS (
    UPDATE conversation_messages cm SET delivery_status = 'sent', carrier_message_id = o.carrier_id
    FROM o WHERE cm.id = o.conversation_message_id
    RETURNING 1
)
SELECT count(*)::int FROM o;

-- name: ob_mark_retry :exec
-- A retryable failure: row $1 is queued again at $2 with the last error ($3 code, $4 detail).
UPDATE outbox
SET state = 'queued', next_attempt_at = $2, error_code = $3, error_detail = left($4, 2000),
    lease_expires_at = NULL, updated_at = now()
WHERE id = $1 AND lease_owner = $5 AND state = 'sending';

-- name: ob_mark_final :val
-- Row $1 ends `failed` or `unknown` ($2) with error $3/$4 (if sender $5 still owns it).
WITH o AS (
    UPDATE outbox
    SET state = $2, error_code = $3, error_detail = left($4, 2000), lease_expires_at = NULL,
        failed_at = CASE WHEN $2 = 'failed' THEN now() END, updated_at = now()
    WHERE id = $1 AND lease_owner = $5 AND state = 'sending'
    RETURNING conversation_message_id
), c AS (
    UPDATE conversation_messages cm SET delivery_status = $2
    FROM o WHERE cm.id = o.conversation_message_id
    RETURNING 1
)
SELECT count(*)::int FROM o;

-- name: ob_release :exec
-- Give claimed rows back unsent (pacing would outlast the lease, or the batch stopped): unclaimed, due at $3.
UPDATE outbox
SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = $3, updated_at = now()
WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND state = 'queued';

-- name: ob_opt_out_member :exec
-- The carrier refused a send because member $1 sent STOP (40300): opt them out as of $2, with a consent event.
WITH m AS (
    UPDATE members
    SET opt_in = 'opted_out', opt_in_changed_at = $2, opted_out_reason = 'carrier_blocked',
        updated_at = now()
    WHERE id = $1 AND opt_in = 'opted_in' AND opt_in_changed_at <= $2
    RETURNING id
)
INSERT INTO consent_events (member_id, kind, source, keyword, occurred_at, detail)
SELECT id, 'opt_out', 'carrier', NULL, $2, '{"carrier_code": "40300"}'::jsonb FROM m;

-- name: ob_next_due :val
-- The earliest moment this church needs a worker again (NULL: nothing pending): a due row, the
-- end of a claim or send lease (rows of a worker that died); carrier lookups of unsettled sends
-- count only when $1 (they are enabled).
SELECT LEAST(
    (SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued' AND lease_expires_at IS NULL),
    (SELECT min(lease_expires_at) FROM outbox WHERE state = 'queued' AND lease_expires_at IS NOT NULL),
    (SELECT min(lease_expires_at) FROM outbox WHERE state = 'sending'),
    (SELECT min(send_at) FROM broadcasts WHERE status = 'scheduled'),
    (SELECT min(next_run_at) FROM recurring_messages WHERE status = 'active'),
    (SELECT min(status_check_at) FROM outbox
     WHERE $1::boolean AND state = 'sent' AND status_check_at IS NOT NULL));

-- name: ob_status_due :many
-- Up to $1 sent rows whose carrier lookup is due (their final receipt never came), oldest first.
SELECT id, carrier_message_id, status_checks
FROM outbox
WHERE state = 'sent' AND status_check_at IS NOT NULL AND status_check_at <= now()
ORDER BY status_check_at
LIMIT $1;

-- name: ob_status_checked :exec
-- Row $1 was looked up and is still unsettled: count it; the next lookup $2 seconds × 2^checks
-- later, none after $3 lookups.
UPDATE outbox
SET status_checks = status_checks + 1,
    status_check_at = CASE WHEN status_checks + 1 < $3
        THEN now() + make_interval(secs => $2::double precision * 2 ^ (status_checks + 1)) END,
    updated_at = now()
WHERE id = $1 AND state = 'sent';

-- name: ob_status_defer :exec
-- The carrier could not be asked now: rows $1 are looked up again in $2 seconds (not counted).
UPDATE outbox
SET status_check_at = now() + make_interval(secs => $2::double precision)
WHERE id = ANY($1::uuid[]) AND state = 'sent' AND status_check_at IS NOT NULL;
