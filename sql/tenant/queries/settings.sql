-- name: get_settings :one
-- The church's single settings row.
SELECT * FROM settings WHERE id;

-- name: init_settings :exec
-- Set the church name and time zone at provisioning.
UPDATE settings SET church_name = $1, time_zone = $2, updated_at = now() WHERE id;
