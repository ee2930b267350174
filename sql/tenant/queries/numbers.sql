-- name: numbers_clear_sender :exec
-- Forget the church's sending number if it is $1 (the number was released).
UPDATE settings SET sender_number = NULL, updated_at = now() WHERE id AND sender_number = $1;

-- name: numbers_forget :exec
-- Number $1 was released: its branch (if any) and its conversations fall back to the default sender.
WITH b AS (DELETE FROM number_branches WHERE e164 = $1 RETURNING 1)
UPDATE conversations SET church_number = NULL, updated_at = now() WHERE church_number = $1;

-- name: numbers_branch_map :many
-- Every number assigned to a branch.
SELECT e164, branch_id FROM number_branches;

-- name: numbers_branch_live :val
-- Branch $1 locked while a number is assigned to it; NULL when there is no such live branch.
SELECT id FROM branches WHERE id = $1 AND deleted_at IS NULL FOR UPDATE;

-- name: numbers_unassign_branch :exec
-- Number $1 belongs to no branch, and branch $2 has no number (either may be NULL).
DELETE FROM number_branches WHERE e164 = $1 OR branch_id = $2;

-- name: numbers_assign_branch :exec
-- Assign number $1 to branch $2 (after numbers_unassign_branch of both).
INSERT INTO number_branches (e164, branch_id) VALUES ($1, $2);

-- name: numbers_make_default :exec
-- Number $1 becomes the church's default sending number.
UPDATE settings SET sender_number = $1, updated_at = now() WHERE id;

-- name: numbers_audit :exec
-- An audit-log line for a number bought or released by an admin.
INSERT INTO audit_log (admin_id, actor_kind, action, target_type, target_id, detail)
VALUES ($1, 'admin', $2, 'phone_number', $3, $4::jsonb);

-- name: numbers_adopt_sender :val
-- Make number $1 the default sending number if the church has none; NULL when it had one.
UPDATE settings SET sender_number = $1, updated_at = now()
WHERE id AND sender_number IS NULL
RETURNING id;

-- name: numbers_active_audit :exec
-- The audit-log line for number $1 whose carrier order completed, once per order ($2 holds carrier_order_id).
INSERT INTO audit_log (admin_id, actor_kind, action, target_type, target_id, detail)
SELECT NULL, 'carrier', 'number.active', 'phone_number', $1, $2::jsonb
WHERE NOT EXISTS (SELECT 1 FROM audit_log
                  WHERE action = 'number.active' AND target_type = 'phone_number'
                    AND target_id = $1
                    AND detail->'carrier_order_id' = $2::jsonb->'carrier_order_id');

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
