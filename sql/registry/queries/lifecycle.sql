-- name: lc_lock_tenant :one
-- A church's lifecycle columns, locked for a transition.
SELECT id, status, suspended_by, deletion_due_at, deletion_requested_by, teardown_step,
       server_id, db_name, db_role, stripe_subscription_id, deleted_at
FROM tenants WHERE id = $1 FOR UPDATE;

-- name: lc_tenant :one
-- A church's lifecycle columns.
SELECT id, status, status_reason, suspended_by, deletion_due_at, deletion_requested_by,
       teardown_step, deleted_at
FROM tenants WHERE id = $1;

-- name: lc_set_suspended :exec
-- Suspend a church ($2 operator or billing, $3 the reason).
UPDATE tenants SET status = 'suspended', suspended_by = $2, status_reason = $3 WHERE id = $1;

-- name: lc_set_active :exec
-- Resume a suspended church.
UPDATE tenants SET status = 'active', suspended_by = NULL, status_reason = NULL WHERE id = $1;

-- name: lc_record :exec
-- Record one transition of a church's life (who $5, why $6).
INSERT INTO tenant_transitions (tenant_id, action, old_status, new_status, actor, reason)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: lc_transitions :many
-- A church's transitions, oldest first.
SELECT action, old_status, new_status, actor, reason, created_at
FROM tenant_transitions WHERE tenant_id = $1 ORDER BY id;

-- name: lc_schedule_deletion :exec
-- Schedule a church's deletion at $2, requested by $3.
UPDATE tenants SET deletion_due_at = $2, deletion_requested_by = $3 WHERE id = $1;

-- name: lc_cancel_deletion :exec
-- Forget a church's scheduled deletion.
UPDATE tenants SET deletion_due_at = NULL, deletion_requested_by = NULL WHERE id = $1;

-- name: lc_start_teardown :exec
-- Mark a church `deleting`: no lease, login or token works for it from now on.
UPDATE tenants SET status = 'deleting', status_reason = 'deletion', deletion_due_at = now(),
                   teardown_step = COALESCE(teardown_step, 'started')
WHERE id = $1;

-- name: lc_step_done :exec
-- Record the last teardown step finished.
UPDATE tenants SET teardown_step = $2 WHERE id = $1 AND status = 'deleting';

-- name: lc_due_deletions :many
-- Churches whose deletion is due (or whose teardown stopped halfway), oldest first.
SELECT id FROM tenants
WHERE deletion_due_at IS NOT NULL AND deletion_due_at <= $1
  AND status IN ('active', 'suspended', 'deleting')
ORDER BY deletion_due_at, id
LIMIT $2;

-- name: lc_suspend_candidates :many
-- Active churches with no operator hold whose billing may have stopped sending (the Python
-- rule in billing/state.py decides).
SELECT id, plan, billing_cycle, subscription_status, trial_ends_at, current_period_end,
       cancel_at_period_end, past_due_since, stripe_customer_id, stripe_subscription_id,
       stripe_subscription_created
FROM tenants
WHERE status = 'active' AND deletion_due_at IS NULL AND subscription_status <> 'active';

-- name: lc_server :one
-- The database server a church lives on (for dropping its database and role).
SELECT s.* FROM db_servers s JOIN tenants t ON t.server_id = s.id WHERE t.id = $1;

-- name: lc_numbers :many
-- Every number of a church still mapped in the registry (any status).
SELECT e164 FROM phone_numbers WHERE tenant_id = $1 ORDER BY e164;

-- name: lc_drop_number :exec
-- Remove one released number of a church.
DELETE FROM phone_numbers WHERE e164 = $1 AND tenant_id = $2;

-- name: lc_drop_registrations :exec
-- Remove a church's 10DLC registrations.
DELETE FROM tendlc_registrations WHERE tenant_id = $1;

-- name: lc_drop_logins :exec
-- Remove a church's admin logins (their emails may sign up again).
DELETE FROM admin_logins WHERE tenant_id = $1;

-- name: lc_drop_inbox :exec
-- Remove a church's stored webhook events (they hold phone numbers and texts).
DELETE FROM webhook_inbox WHERE tenant_id = $1;

-- name: lc_drop_work :exec
-- Remove a church's queue entry and outbound message index (they would never be used again).
WITH w AS (DELETE FROM tenant_work WHERE tenant_id = $1)
DELETE FROM outbound_message_index WHERE tenant_id = $1;

-- name: lc_tombstone :exec
-- Leave a tombstone: no name, no Stripe ids, no secret; status deleted.
UPDATE tenants SET status = 'deleted', status_reason = 'deleted', name = 'deleted',
                   stripe_customer_id = NULL, stripe_subscription_id = NULL,
                   db_password_enc = '\x'::bytea, deletion_requested_by = NULL,
                   deletion_due_at = NULL, suspended_by = NULL, teardown_step = 'done',
                   deleted_at = now()
WHERE id = $1;

-- name: lc_claim_teardown :val
-- Claim the church's teardown for $2 seconds as owner $3 (NULL: another process holds it).
UPDATE tenants SET teardown_owner = $3, teardown_claimed_until = now() + make_interval(secs => $2)
WHERE id = $1
  AND (teardown_claimed_until IS NULL OR teardown_claimed_until < now() OR teardown_owner = $3)
RETURNING true;

-- name: lc_release_teardown :exec
-- Give the church's teardown claim back.
UPDATE tenants SET teardown_owner = NULL, teardown_claimed_until = NULL
WHERE id = $1 AND teardown_owner = $2;
