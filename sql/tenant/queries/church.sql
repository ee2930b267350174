-- The church profile (the single settings row) and what onboarding derives from real data.
-- A PATCH reads the row FOR UPDATE, merges the change in the application (so a JSON null can
-- clear a field) and writes every editable column back in the same transaction.

-- name: lock_settings :one
-- The settings row, locked until the transaction ends (read-merge-write of PATCH /church).
SELECT * FROM settings WHERE id FOR UPDATE;

-- name: update_settings :one
-- Write every editable column of the settings row.
UPDATE settings
SET church_name = $1, time_zone = $2, default_region = $3,
    quiet_hours_start = $4, quiet_hours_end = $5,
    help_reply = $6, stop_reply = $7, start_reply = $8,
    legal_name = $9, ein_encrypted = $10, ein_last4 = $11, website = $12,
    address_line1 = $13, address_line2 = $14, city = $15, state = $16, postal_code = $17,
    welcome_enabled = $18, welcome_message = $19, updated_at = now()
WHERE id
RETURNING *;

-- name: onboarding_state :one
-- Which setup steps the church's data shows as done, and since when (the audit log dates the brand details and the number).
SELECT
    (SELECT CASE WHEN s.legal_name IS NOT NULL AND s.ein_encrypted IS NOT NULL THEN
                coalesce((SELECT max(a.created_at) FROM audit_log a
                          WHERE a.action = 'church.update'
                            AND a.detail -> 'brand_fields' ?| ARRAY['legal_name', 'ein']),
                         s.updated_at)
            END
     FROM settings s WHERE s.id) AS church_profile_at,
    (SELECT min(created_at) FROM branches WHERE deleted_at IS NULL) AS create_branch_at,
    (SELECT min(created_at) FROM members) AS add_members_at,
    (SELECT min(created_at) FROM groups) AS create_group_at,
    (SELECT CASE WHEN s.sender_number IS NOT NULL THEN
                coalesce((SELECT max(a.created_at) FROM audit_log a
                          WHERE a.action = 'number.buy' AND a.target_id = s.sender_number),
                         s.updated_at)
            END
     FROM settings s WHERE s.id) AS get_phone_number_at,
    least((SELECT min(queued_at) FROM broadcasts WHERE queued_at IS NOT NULL),
          (SELECT min(sent_at) FROM outbox)) AS send_message_at;

-- name: time_zone_known :val
-- Whether PostgreSQL knows the time zone (analytics group by it with AT TIME ZONE).
SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1);
