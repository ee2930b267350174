-- Planning Center (registry 0014): which church an organization is connected to, its webhook
-- secrets, and the sync schedule the runners claim from.

-- name: pco_link :exec
-- Church $1 is connected to organization $2 (sealed webhook secrets $3); the connection's own first sync runs now, the schedule's in $4 seconds.
INSERT INTO pco_links (tenant_id, organization_id, webhook_secrets, next_sync_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4::float8))
ON CONFLICT (tenant_id) DO UPDATE
SET organization_id = $2, webhook_secrets = $3,
    next_sync_at = now() + make_interval(secs => $4::float8), claimed_until = NULL,
    removed_ids = '{}';

-- name: pco_unlink :exec
-- Church $1 disconnected: no more syncs or webhooks.
DELETE FROM pco_links WHERE tenant_id = $1;

-- name: pco_route :one
-- The church connected to organization $1 and its sealed webhook secrets (NULL: none).
SELECT tenant_id, webhook_secrets FROM pco_links WHERE organization_id = $1;

-- name: pco_sync_soon :exec
-- Church $1's sync is due now (a webhook); person ids $2 were removed there.
UPDATE pco_links
SET next_sync_at = now(), due_reason = 'webhook',
    removed_ids = ARRAY(SELECT DISTINCT unnest(removed_ids || $2::text[]))
WHERE tenant_id = $1;

-- name: pco_claim_due :many
-- Up to $1 churches whose sync is due and unclaimed, with why (schedule or webhook): held for $2 seconds, next due in $3 seconds.
WITH due AS (
    SELECT tenant_id, due_reason FROM pco_links
    WHERE next_sync_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY next_sync_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE pco_links AS p
SET claimed_until = now() + make_interval(secs => $2::float8),
    next_sync_at = now() + make_interval(secs => $3::float8), due_reason = 'schedule'
FROM due
WHERE p.tenant_id = due.tenant_id
RETURNING p.tenant_id, due.due_reason;

-- name: pco_defer :exec
-- Church $1 was due (for reason $3) while a run was already going: due again in $2 seconds, unclaimed.
UPDATE pco_links
SET next_sync_at = now() + make_interval(secs => $2::float8), claimed_until = NULL,
    due_reason = $3
WHERE tenant_id = $1;

-- name: pco_release :exec
-- Church $1's runner is done with it.
UPDATE pco_links SET claimed_until = NULL WHERE tenant_id = $1;

-- name: pco_removed_ids :val
-- Person ids whose removal church $1's next sync marks.
SELECT removed_ids FROM pco_links WHERE tenant_id = $1;

-- name: pco_forget_removed :exec
-- Person ids $2 of church $1 are marked.
UPDATE pco_links
SET removed_ids = ARRAY(SELECT unnest(removed_ids) EXCEPT SELECT unnest($2::text[]))
WHERE tenant_id = $1;
