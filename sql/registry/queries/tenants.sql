-- name: insert_tenant :one
-- Create a tenant row in `provisioning` state, trialing plan $9 until $8.
INSERT INTO tenants (id, name, server_id, db_name, db_role, db_password_enc, time_zone,
                     trial_ends_at, plan, subscription_status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'trialing')
RETURNING *;

-- name: get_tenant :one
-- One tenant by id with its server's connection facts.
SELECT t.*, s.host AS server_host, s.port AS server_port, s.state AS server_state,
       s.name AS server_name
FROM tenants t JOIN db_servers s ON s.id = t.server_id
WHERE t.id = $1;

-- name: activate_tenant :one
-- Mark a provisioned tenant active at the schema version it reached.
UPDATE tenants SET status = 'active', schema_version = $2, status_reason = NULL
WHERE id = $1 AND status = 'provisioning'
RETURNING *;

-- name: set_tenant_status :one
-- Move a tenant to another lifecycle status with a reason.
UPDATE tenants SET status = $2, status_reason = $3 WHERE id = $1 RETURNING *;

-- name: set_tenant_schema_version :exec
-- Record the schema version a tenant database reached.
UPDATE tenants SET schema_version = $2 WHERE id = $1 AND schema_version IS DISTINCT FROM $2;

-- name: delete_tenant_row :exec
-- Remove a tenant row (provisioning rollback only).
DELETE FROM tenants WHERE id = $1;

-- name: list_tenants :many
-- Tenants in creation order, optionally of one status and one server.
SELECT t.id, t.name, t.status, t.server_id, s.name AS server_name, t.db_name, t.db_role,
       t.schema_version, t.plan, t.created_at
FROM tenants t JOIN db_servers s ON s.id = t.server_id
WHERE ($1::text IS NULL OR t.status = $1)
  AND ($2::integer IS NULL OR t.server_id = $2)
ORDER BY t.created_at, t.id;

-- name: tenants_for_migration :many
-- Tenants whose database exists (not provisioning or deleted), with their server.
SELECT t.id, t.name, t.status, t.server_id, t.db_name, t.db_role, t.schema_version
FROM tenants t
WHERE t.status IN ('active', 'suspended')
  AND ($1::uuid[] IS NULL OR t.id = ANY($1::uuid[]))
ORDER BY t.server_id, t.created_at, t.id;

-- name: sync_tenant_profile :exec
-- Mirror the church's name and time zone from its own settings into the registry.
UPDATE tenants SET name = $2, time_zone = $3
WHERE id = $1 AND (name IS DISTINCT FROM $2 OR time_zone IS DISTINCT FROM $3);
