-- name: sup_tenant :one
-- What the pool supervisor needs to gate and open one tenant: status, schema, placement, role.
SELECT t.id, t.status, t.schema_version, t.server_id, t.db_name, t.db_role,
       t.db_password_enc, t.row_version,
       s.name AS server_name, s.host AS server_host, s.port AS server_port,
       s.state AS server_state, s.conn_budget
FROM tenants t JOIN db_servers s ON s.id = t.server_id
WHERE t.id = $1;

-- name: sup_server_budgets :many
-- Every database server's connection budget and state (recomputing this process's shares).
SELECT id, name, conn_budget, state FROM db_servers ORDER BY id;
