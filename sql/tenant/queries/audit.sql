-- name: insert_audit :exec
-- Record who did what to which object.
INSERT INTO audit_log (admin_id, actor_kind, action, target_type, target_id, detail, ip,
                       request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);
