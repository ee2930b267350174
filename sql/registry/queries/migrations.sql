-- name: insert_migration_run :one
-- Start a `ywm migrate` run in state running (resumed_from: the run it continues, if any).
INSERT INTO migration_runs (target_version, options, resumed_from, host, pid)
VALUES ($1, $2::jsonb, $3, $4, $5)
RETURNING *;

-- name: get_migration_run :one
-- One migration run by id.
SELECT * FROM migration_runs WHERE id = $1;

-- name: latest_migration_run :one
-- The most recent migration run (what --retry-failed looks at).
SELECT * FROM migration_runs ORDER BY id DESC LIMIT 1;

-- name: tenants_to_migrate :many
-- Tenants with a database (active or suspended), optionally only some ids, optionally only
-- those whose result in an earlier run has one of some statuses (--resume, --retry-failed).
SELECT t.id, t.name, t.server_id, t.db_name, t.db_role, t.schema_version
FROM tenants t
WHERE t.status IN ('active', 'suspended')
  AND ($1::uuid[] IS NULL OR t.id = ANY($1::uuid[]))
  AND ($2::bigint IS NULL OR EXISTS (
        SELECT 1 FROM migration_results r
        WHERE r.run_id = $2 AND r.tenant_id = t.id AND r.status = ANY($3::text[])))
ORDER BY t.server_id, t.created_at, t.id;

-- name: insert_run_results :many
-- Add one pending result row per tenant to a run in one statement, set the run's total, and
-- return the tenants added (tenants deleted since they were selected are left out).
WITH added AS (
    INSERT INTO migration_results (run_id, tenant_id, server_id)
    SELECT $1, t.id, t.server_id
    FROM tenants t
    WHERE t.id = ANY($2::uuid[]) AND t.status IN ('active', 'suspended')
    RETURNING tenant_id
), total AS (
    UPDATE migration_runs SET tenants_total = (SELECT count(*) FROM added)
    WHERE id = $1
)
SELECT tenant_id FROM added;

-- name: finish_tenant_result :exec
-- Record how one tenant's migration ended in a run (ok, failed or skipped).
UPDATE migration_results
SET status = $3, from_version = $4, to_version = $5, error = $6,
    started_at = $7, finished_at = now(), duration_ms = $8
WHERE run_id = $1 AND tenant_id = $2;

-- name: finish_migration_run :one
-- Close a run (done, failed or interrupted) with its ok and failed counts.
UPDATE migration_runs r
SET status = $2, finished_at = now(),
    tenants_ok = (SELECT count(*) FROM migration_results m
                  WHERE m.run_id = r.id AND m.status = 'ok'),
    tenants_failed = (SELECT count(*) FROM migration_results m
                      WHERE m.run_id = r.id AND m.status = 'failed')
WHERE r.id = $1
RETURNING *;
