-- name: enqueue_tenant_work :exec
-- Say a tenant has work due at $2 (keeps an earlier due time; marks the row dirty).
INSERT INTO tenant_work (tenant_id, due_at, dirty)
VALUES ($1, $2, true)
ON CONFLICT (tenant_id) DO UPDATE
SET due_at = LEAST(tenant_work.due_at, EXCLUDED.due_at), dirty = true, updated_at = now();

-- name: claim_tenant_work :val
-- Claim the most overdue unclaimed (or abandoned) tenant for worker $2 until $1 + $3 seconds.
UPDATE tenant_work w
SET claimed_by = $2, claim_expires_at = $1::timestamptz + $3::float8 * interval '1 second', dirty = false,
    updated_at = now()
FROM (
    SELECT tenant_id FROM tenant_work
    WHERE due_at <= $1 AND (claimed_by IS NULL OR claim_expires_at < $1)
    ORDER BY due_at, tenant_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
) picked
WHERE w.tenant_id = picked.tenant_id
RETURNING w.tenant_id;

-- name: renew_tenant_work :val
-- Extend worker $2's claim on tenant $1 to $3 + $4 seconds (NULL: the claim was lost).
UPDATE tenant_work
SET claim_expires_at = $3::timestamptz + $4::float8 * interval '1 second', updated_at = now()
WHERE tenant_id = $1 AND claimed_by = $2
RETURNING tenant_id;

-- name: release_tenant_work :exec
-- Worker $2 gives tenant $1 back, next due at $3 (or earlier if an enqueue came meanwhile).
UPDATE tenant_work
SET claimed_by = NULL, claim_expires_at = NULL, updated_at = now(),
    due_at = CASE WHEN dirty THEN LEAST(due_at, $3) ELSE $3 END
WHERE tenant_id = $1 AND claimed_by = $2;

-- name: release_all_tenant_work :exec
-- Drop every claim worker $1 still holds, leaving them due at once (shutdown).
UPDATE tenant_work
SET claimed_by = NULL, claim_expires_at = NULL, due_at = COALESCE(due_at, now()),
    updated_at = now()
WHERE claimed_by = $1;

-- name: get_tenant_work :one
-- A tenant's queue row (tests and `ywm doctor`-style inspection).
SELECT tenant_id, due_at, dirty, claimed_by, claim_expires_at FROM tenant_work
WHERE tenant_id = $1;

-- name: active_tenant_ids :many
-- Every active tenant (the reconciliation sweep looks at each).
SELECT id FROM tenants WHERE status = 'active' ORDER BY id;

-- name: take_work_timer :val
-- Win this round of timer $1 for worker $3 if it is due at $2; the next round is $4 s later.
INSERT INTO work_timers AS t (name, next_at, last_owner)
VALUES ($1, $2::timestamptz + $4::float8 * interval '1 second', $3)
ON CONFLICT (name) DO UPDATE
SET next_at = EXCLUDED.next_at, last_owner = EXCLUDED.last_owner
WHERE t.next_at <= $2
RETURNING name;
