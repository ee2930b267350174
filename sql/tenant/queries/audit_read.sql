-- Reading the audit log (auth/audit.py and church/__init__.py write it with insert_audit).

-- name: list_audit_log :many
-- A page of the audit log, newest first, after the cursor ($1 created_at, $2 id), filtered by action or action family ($3) and admin ($4).
SELECT id, admin_id, actor_kind, action, target_type, target_id, detail, host(ip) AS ip,
       request_id, created_at
FROM audit_log
WHERE (created_at, id) < (COALESCE($1::timestamptz, 'infinity'),
                         COALESCE($2::bigint, 9223372036854775807))
  AND ($3::text IS NULL OR action = $3 OR starts_with(action, $3 || '.'))
  AND ($4::uuid IS NULL OR admin_id = $4)
ORDER BY created_at DESC, id DESC
LIMIT $5;
