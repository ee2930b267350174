-- name: numbers_clear_sender :exec
-- Forget the church's sending number if it is $1 (the number was released).
UPDATE settings SET sender_number = NULL, updated_at = now() WHERE id AND sender_number = $1;

-- name: numbers_audit :exec
-- An audit-log line for a number bought or released by an admin.
INSERT INTO audit_log (admin_id, actor_kind, action, target_type, target_id, detail)
VALUES ($1, 'admin', $2, 'phone_number', $3, $4::jsonb);

-- name: numbers_adopt_sender :val
-- Make number $1 the sending number (its order completed); NULL when it already was.
UPDATE settings SET sender_number = $1, updated_at = now()
WHERE id AND sender_number IS DISTINCT FROM $1
RETURNING id;

-- name: numbers_carrier_audit :exec
-- An audit-log line for what the carrier did to a number (its order completed or failed).
INSERT INTO audit_log (admin_id, actor_kind, action, target_type, target_id, detail)
VALUES (NULL, 'carrier', $1, 'phone_number', $2, $3::jsonb);

-- name: numbers_released_audit :exec
-- The audit-log line for number $1 released at the carrier after its recovery window, once
-- per archiving ($2 holds its archived_at; a sweep that runs again after a crash adds none).
INSERT INTO audit_log (admin_id, actor_kind, action, target_type, target_id, detail)
SELECT NULL, 'system', 'number.released', 'phone_number', $1, $2::jsonb
WHERE NOT EXISTS (SELECT 1 FROM audit_log
                  WHERE action = 'number.released' AND target_type = 'phone_number'
                    AND target_id = $1 AND detail->'archived_at' = $2::jsonb->'archived_at');
