-- name: rc_insert :one
-- Create a recurring rule with its first occurrence.
INSERT INTO recurring_messages (name, body, target, target_kind, frequency, days_of_week,
                                day_of_month, local_time, time_zone, missed_policy,
                                next_run_at, created_by)
VALUES ($1, $2, $3::jsonb, $4, $5, $6::smallint[], $7, $8, $9, $10, $11, $12)
RETURNING *;

-- name: rc_get :one
-- One recurring rule.
SELECT * FROM recurring_messages WHERE id = $1;

-- name: rc_lock :one
-- One recurring rule, locked for a change.
SELECT * FROM recurring_messages WHERE id = $1 FOR UPDATE;

-- name: rc_list :many
-- Every recurring rule of the church, soonest first (a church has tens at most).
SELECT * FROM recurring_messages ORDER BY status, next_run_at, id;

-- name: rc_update :one
-- Replace a rule's definition and next occurrence.
UPDATE recurring_messages
SET name = $2, body = $3, target = $4::jsonb, target_kind = $5, frequency = $6,
    days_of_week = $7::smallint[], day_of_month = $8, local_time = $9, time_zone = $10,
    missed_policy = $11, next_run_at = $12, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: rc_set_status :one
-- Pause or resume a rule; resuming starts again at the next occurrence $3.
UPDATE recurring_messages
SET status = $2, next_run_at = COALESCE($3, next_run_at), updated_at = now()
WHERE id = $1
RETURNING *;

-- name: rc_delete :val
-- Delete a rule (its past broadcasts stay, unlinked).
DELETE FROM recurring_messages WHERE id = $1 RETURNING id;

-- name: rc_claim_due :one
-- Lock one active rule due by $1 (other workers skip it until this transaction ends).
SELECT * FROM recurring_messages
WHERE status = 'active' AND next_run_at <= $1
ORDER BY next_run_at, id
LIMIT 1
FOR UPDATE SKIP LOCKED;

-- name: rc_advance :exec
-- After an occurrence: the rule's next occurrence $2, and the last one materialized $3 (if any).
UPDATE recurring_messages
SET next_run_at = $2, last_run_at = COALESCE($3, last_run_at), updated_at = now()
WHERE id = $1;

-- name: rc_broadcasts :many
-- The broadcasts a rule produced, newest occurrence first (at most $2).
SELECT id, occurrence_at, status, recipient_count, created_at FROM broadcasts
WHERE recurring_id = $1
ORDER BY occurrence_at DESC
LIMIT $2;
