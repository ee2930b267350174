-- name: bc_lock_quota :exec
-- Serialize quota checks of one church (held until the transaction ends).
SELECT pg_advisory_xact_lock(hashtext('ywm_message_quota'));

-- name: bc_month_usage :val
-- Messages counted against the quota since $1 (the church's month start); skipped and cancelled rows are free.
SELECT count(*)::int FROM outbox
WHERE queued_at >= $1 AND state NOT IN ('skipped', 'cancelled');

-- name: bc_count_target_ids :val
-- How many of the ids $2 name a live object of kind $1 (branches, groups or members).
SELECT CASE $1::text
    WHEN 'branches' THEN (SELECT count(*) FROM branches
                          WHERE id = ANY($2::uuid[]) AND deleted_at IS NULL)
    WHEN 'groups' THEN (SELECT count(*) FROM groups WHERE id = ANY($2::uuid[]))
    WHEN 'members' THEN (SELECT count(*) FROM members WHERE id = ANY($2::uuid[]))
    ELSE 0 END::int;

-- name: bc_count_recipients :val
-- Opted-in members a target (kind $1, ids $2) reaches right now.
SELECT count(*)::int FROM members m
WHERE m.opt_in = 'opted_in' AND (
    $1::text = 'all'
    OR ($1 = 'branches' AND m.branch_id = ANY($2::uuid[]))
    OR ($1 = 'groups' AND EXISTS (SELECT 1 FROM group_members gm
                                  WHERE gm.member_id = m.id AND gm.group_id = ANY($2::uuid[])))
    OR ($1 = 'members' AND m.id = ANY($2::uuid[])));

-- name: bc_template_body :one
-- A template's body, counting one more use of it.
UPDATE templates SET usage_count = usage_count + 1, updated_at = now()
WHERE id = $1
RETURNING body;

-- name: bc_peek_template :val
-- A template's body without counting a use (preview).
SELECT body FROM templates WHERE id = $1;

-- name: bc_insert :one
-- Create a broadcast (media URLs $12, NULL: an SMS); a recurring occurrence that already has one is not created twice (no row).
INSERT INTO broadcasts (body, target, target_kind, status, send_at, template_id, created_by,
                        segments, encoding, recurring_id, occurrence_at, media_urls)
VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text[])
ON CONFLICT (recurring_id, occurrence_at) DO NOTHING
RETURNING *;

-- name: bc_queue_recipients :one
-- Resolve the recipients of broadcast $1 once (target kind $2, ids $3; opted-in only), write one outbox row each due at $4 (with the broadcast's media; a branch broadcast from the member's branch's number when it has one, else the default sender), and mark it queued (or sent when nobody is reached).
WITH ins AS (
    INSERT INTO outbox (broadcast_id, member_id, to_phone, body, segments, next_attempt_at,
                        queued_at, media_urls, from_phone)
    SELECT b.id, m.id, m.phone, b.body, b.segments, $4, $4, b.media_urls,
           CASE WHEN $2 = 'branches' THEN nb.e164 END
    FROM broadcasts b
    JOIN members m ON m.opt_in = 'opted_in' AND (
        $2::text = 'all'
        OR ($2 = 'branches' AND m.branch_id = ANY($3::uuid[]))
        OR ($2 = 'groups' AND EXISTS (SELECT 1 FROM group_members gm
                                      WHERE gm.member_id = m.id
                                        AND gm.group_id = ANY($3::uuid[])))
        OR ($2 = 'members' AND m.id = ANY($3::uuid[])))
    LEFT JOIN number_branches nb ON nb.branch_id = m.branch_id
    WHERE b.id = $1
    ON CONFLICT (broadcast_id, member_id) DO NOTHING
    RETURNING 1
), n AS (SELECT count(*)::int AS n FROM ins)
UPDATE broadcasts b
SET recipient_count = n.n, status = CASE WHEN n.n = 0 THEN 'sent' ELSE 'queued' END,
    queued_at = $4, completed_at = CASE WHEN n.n = 0 THEN $4 END, updated_at = now()
FROM n
WHERE b.id = $1
RETURNING b.*;

-- name: bc_get :one
-- One broadcast with its outbox rows counted per state.
SELECT b.*, (SELECT COALESCE(jsonb_object_agg(s.state, s.n), '{}'::jsonb)
             FROM (SELECT state, count(*) AS n FROM outbox
                   WHERE broadcast_id = b.id GROUP BY state) s) AS counts
FROM broadcasts b
WHERE b.id = $1;

-- name: bc_list :many
-- Broadcast history, newest first, keyset after ($2 created_at, $3 id), optionally of status $1.
SELECT b.*, (SELECT COALESCE(jsonb_object_agg(s.state, s.n), '{}'::jsonb)
             FROM (SELECT state, count(*) AS n FROM outbox
                   WHERE broadcast_id = b.id GROUP BY state) s) AS counts
FROM broadcasts b
WHERE ($1::text IS NULL OR b.status = $1)
  AND (b.created_at, b.id) < (COALESCE($2::timestamptz, 'infinity'), COALESCE($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
ORDER BY b.created_at DESC, b.id DESC
LIMIT $4;

-- name: bc_recipients :many
-- A broadcast's recipients with their send state, keyset by outbox id after $3, optionally of state $2.
SELECT o.id, o.member_id, m.first_name, m.last_name, o.to_phone, o.state, o.attempts,
       o.error_code, o.error_detail, o.sent_at, o.delivered_at, o.failed_at, o.updated_at
FROM outbox o
LEFT JOIN members m ON m.id = o.member_id
WHERE o.broadcast_id = $1
  AND ($2::text IS NULL OR o.state = $2)
  AND o.id > COALESCE($3::uuid, '00000000-0000-0000-0000-000000000000')
ORDER BY o.id
LIMIT $4;

-- name: bc_status :val
-- A broadcast's status (NULL: no such broadcast).
SELECT status FROM broadcasts WHERE id = $1;

-- name: bc_cancel :one
-- Cancel a broadcast that is still only scheduled (no row: not scheduled).
UPDATE broadcasts SET status = 'cancelled', updated_at = now()
WHERE id = $1 AND status = 'scheduled'
RETURNING id;

-- name: bc_count_retryable :val
-- Rows of broadcast $1 that retry-failed would queue again (failed, and unknown when $2).
SELECT count(*)::int FROM outbox
WHERE broadcast_id = $1 AND (state = 'failed' OR ($2::boolean AND state = 'unknown'));

-- name: bc_retry_failed :val
-- Queue broadcast $1's failed rows (and unknown ones when $2) again at $3; the broadcast is queued again.
WITH r AS (
    UPDATE outbox
    SET state = 'queued', attempts = 0, next_attempt_at = $3, carrier_message_id = NULL,
        error_code = NULL, error_detail = NULL, sent_at = NULL, delivered_at = NULL,
        failed_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
    WHERE broadcast_id = $1 AND (state = 'failed' OR ($2::boolean AND state = 'unknown'))
    RETURNING 1
), n AS (SELECT count(*)::int AS n FROM r)
UPDATE broadcasts b
SET status = CASE WHEN n.n > 0 THEN 'queued' ELSE b.status END,
    completed_at = CASE WHEN n.n > 0 THEN NULL ELSE b.completed_at END, updated_at = now()
FROM n
WHERE b.id = $1
RETURNING n.n;

-- name: bc_claim_scheduled :one
-- Lock one scheduled broadcast due by $1 for queueing (other workers skip it).
SELECT * FROM broadcasts
WHERE status = 'scheduled' AND send_at <= $1
ORDER BY send_at, id
LIMIT 1
FOR UPDATE SKIP LOCKED;

-- name: bc_fail :exec
-- Mark a broadcast that could not be queued (e.g. over quota at send time) as failed.
UPDATE broadcasts SET status = 'failed', completed_at = $2, updated_at = now()
WHERE id = $1;

-- name: bc_mark_sending :exec
-- Broadcasts whose rows a worker started sending.
UPDATE broadcasts SET status = 'sending', updated_at = now()
WHERE id = ANY($1::uuid[]) AND status = 'queued';

-- name: bc_finish_settled :val
-- Broadcasts left `sending` with no row left to send (a crash sweep settled their last rows, or a worker died before finishing them) are sent, completed at $1; how many.
WITH f AS (
    UPDATE broadcasts b SET status = 'sent', completed_at = $1, updated_at = now()
    WHERE b.status = 'sending'
      AND NOT EXISTS (SELECT 1 FROM outbox o
                      WHERE o.broadcast_id = b.id AND o.state IN ('queued', 'sending'))
    RETURNING 1
)
SELECT count(*)::int FROM f;

-- name: bc_finish :many
-- Broadcasts among $1 with no row left to send are sent (completed at $2); their ids.
UPDATE broadcasts b SET status = 'sent', completed_at = $2, updated_at = now()
WHERE b.id = ANY($1::uuid[]) AND b.status IN ('queued', 'sending')
  AND NOT EXISTS (SELECT 1 FROM outbox o
                  WHERE o.broadcast_id = b.id AND o.state IN ('queued', 'sending'))
RETURNING b.id;
