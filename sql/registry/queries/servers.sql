-- name: count_servers :val
-- How many database servers are registered.
SELECT count(*) FROM db_servers;

-- name: insert_server :one
-- Register a database server.
INSERT INTO db_servers (name, host, port, admin_user, admin_password_enc, maintenance_db,
                        template_db, max_tenants, conn_budget, max_connections, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING *;

-- name: get_server :one
-- One database server by id.
SELECT * FROM db_servers WHERE id = $1;

-- name: list_servers :many
-- Every database server with its tenant count (tenants not deleted).
SELECT s.*,
       (SELECT count(*) FROM tenants t
         WHERE t.server_id = s.id AND t.status <> 'deleted') AS tenant_count
FROM db_servers s
ORDER BY s.id;

-- name: set_server_template_version :exec
-- Record the schema version of a server's template database.
UPDATE db_servers SET template_version = $2, updated_at = now() WHERE id = $1;

-- name: set_server_state :one
-- Change a server's state (active, draining, down).
UPDATE db_servers SET state = $2, updated_at = now() WHERE id = $1 RETURNING *;

-- name: set_server_sizing :one
-- Change a server's tenant cap, connection budget and max_connections as read from it (NULL keeps a value).
UPDATE db_servers
SET max_tenants = coalesce($2::integer, max_tenants),
    conn_budget = coalesce($3::integer, conn_budget),
    max_connections = coalesce($4::integer, max_connections),
    updated_at = now()
WHERE id = $1
RETURNING *;

-- name: pick_server_for_tenant :one
-- Least-loaded active server with a free slot (tenants / max_tenants, then weight), locked
-- so that concurrent provisioning counts each placement once.
SELECT s.*
FROM db_servers s
WHERE s.state = 'active'
  AND (SELECT count(*) FROM tenants t
        WHERE t.server_id = s.id AND t.status <> 'deleted') < s.max_tenants
ORDER BY (SELECT count(*) FROM tenants t
           WHERE t.server_id = s.id AND t.status <> 'deleted')::float8 / s.max_tenants,
         s.weight DESC, s.id
LIMIT 1;
