-- Database servers beyond servers.sql (`ywm servers`) and moving a tenant between servers
-- (`ywm tenants move`). The last block of queries runs on a tenant database server (its
-- maintenance database or a tenant database as admin), not on the registry; they touch only
-- catalogs, so they prepare on the registry too.

-- name: find_server :one
-- One database server by id (digits) or by name, with its tenant count.
SELECT s.*,
       (SELECT count(*) FROM tenants t
         WHERE t.server_id = s.id AND t.status <> 'deleted') AS tenant_count
FROM db_servers s
WHERE s.name = $1 OR (s.id::text = $1)
ORDER BY (s.id::text = $1) DESC
LIMIT 1;

-- name: delete_empty_server :exec
-- Remove a server row that no tenant references (rollback of `ywm servers add`).
DELETE FROM db_servers s
WHERE s.id = $1 AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.server_id = s.id);

-- name: suspend_tenant_for_move :one
-- Suspend an active tenant for a move (the row trigger NOTIFYs every process to evict it).
UPDATE tenants SET status = 'suspended', status_reason = 'moving'
WHERE id = $1 AND status = 'active' AND server_id = $2
RETURNING *;

-- name: finish_tenant_move :one
-- The flip: point a tenant being moved at its new server and reactivate it, in one UPDATE.
UPDATE tenants SET server_id = $3, status = 'active', status_reason = NULL
WHERE id = $1 AND server_id = $2 AND status = 'suspended' AND status_reason = 'moving'
RETURNING *;

-- name: abort_tenant_move :one
-- Undo the suspension of a failed move: the tenant stays on its server, active again.
UPDATE tenants SET status = 'active', status_reason = NULL
WHERE id = $1 AND server_id = $2 AND status = 'suspended' AND status_reason = 'moving'
RETURNING *;

-- name: server_open_connections :val
-- (Tenant server) Client sessions on this deployment's databases (LIKE pattern $1), registry ($2) excepted; not autovacuum workers.
SELECT count(*) FROM pg_stat_activity
WHERE datname LIKE $1 AND datname <> $2 AND pid <> pg_backend_pid()
  AND backend_type = 'client backend';

-- name: server_version_num :val
-- (Tenant server) The server's version as a number (150004 = 15.4).
SELECT current_setting('server_version_num')::integer;

-- name: server_system_identifier :val
-- (Tenant server) The cluster's unique system identifier (tells two aliases of one cluster apart).
SELECT system_identifier FROM pg_control_system();

-- name: count_role_sessions :val
-- (Tenant server) Sessions of role $2 on database $1.
SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2;

-- name: terminate_role_sessions :val
-- (Tenant server) End every session of role $2 on database $1; how many were signalled.
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity WHERE datname = $1 AND usename = $2;

-- name: table_names :many
-- (Tenant database) Every table in schema public, by name (the move counts rows in each).
SELECT c.relname::text AS table_name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname;

-- name: database_encoding :val
-- (Tenant server) The character encoding of database $1 (the copy is created with the same).
SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = $1;

-- name: database_extensions :many
-- (Tenant database) Extensions installed in the connected database.
SELECT extname::text AS extname FROM pg_extension WHERE extname <> 'plpgsql';

-- name: available_extensions :many
-- (Tenant server) Extensions this server can install.
SELECT name::text AS name FROM pg_available_extensions;
