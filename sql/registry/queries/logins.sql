-- name: find_admin_login :one
-- The tenant and admin a normalized email logs in to, with the tenant's status.
SELECT l.tenant_id, l.admin_id, t.status AS tenant_status
FROM admin_logins l JOIN tenants t ON t.id = l.tenant_id
WHERE l.email = $1;

-- name: insert_admin_login :exec
-- Reserve a normalized email for one admin of one tenant (unique across every church).
INSERT INTO admin_logins (email, tenant_id, admin_id) VALUES ($1, $2, $3);

-- name: delete_admin_login :exec
-- Release the login email of an admin who was removed.
DELETE FROM admin_logins WHERE tenant_id = $1 AND admin_id = $2;
