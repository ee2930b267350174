-- name: numbers_set_sender :exec
-- Make number $1 the church's sending number.
UPDATE settings SET sender_number = $1, updated_at = now() WHERE id;

-- name: numbers_clear_sender :exec
-- Forget the church's sending number if it is $1 (the number was released).
UPDATE settings SET sender_number = NULL, updated_at = now() WHERE id AND sender_number = $1;

-- name: numbers_audit :exec
-- An audit-log line for a number bought or released by an admin.
INSERT INTO audit_log (admin_id, actor_kind, action, target_type, target_id, detail)
VALUES ($1, 'admin', $2, 'phone_number', $3, $4::jsonb);
