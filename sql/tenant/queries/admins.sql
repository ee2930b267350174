-- name: insert_owner_admin :exec
-- Create the church's first admin (the owner) at sign-up, already active.
INSERT INTO admins (id, email, password_hash, first_name, last_name, role, status,
                    password_changed_at)
VALUES ($1, $2, $3, $4, $5, 'owner', 'active', now());

-- name: get_admin_for_login :one
-- What a login needs about one admin: hash, role, status, MFA on, and tokens_valid_after in microseconds.
SELECT a.id, a.email, a.password_hash, a.role, a.status, COALESCE(m.enabled, false) AS mfa_enabled,
       (extract(epoch FROM a.tokens_valid_after) * 1000000)::bigint AS valid_after_us
FROM admins a LEFT JOIN admin_mfa m ON m.admin_id = a.id
WHERE a.id = $1;

-- name: get_admin_profile :one
-- One admin as the API shows it (no secrets), with MFA state and recovery codes left.
SELECT a.id, a.email, a.first_name, a.last_name, a.role, a.status, a.last_login_at,
       a.created_at, COALESCE(m.enabled, false) AS mfa_enabled,
       (SELECT count(*) FROM mfa_recovery_codes c
        WHERE c.admin_id = a.id AND c.used_at IS NULL) AS recovery_codes_left
FROM admins a LEFT JOIN admin_mfa m ON m.admin_id = a.id
WHERE a.id = $1;

-- name: get_password_hash :val
-- The stored password hash of an active admin (password change, step-up checks).
SELECT password_hash FROM admins WHERE id = $1 AND status = 'active';

-- name: set_password_hash :exec
-- Replace a hash with one made with today's parameters (rehash on login).
UPDATE admins SET password_hash = $2, updated_at = now() WHERE id = $1;

-- name: change_password :exec
-- Store a new password chosen by the admin and invalidate every token issued before now.
UPDATE admins SET password_hash = $2, password_changed_at = now(), tokens_valid_after = now(),
                  updated_at = now()
WHERE id = $1;

-- name: invalidate_admin_tokens :exec
-- Refuse every access and MFA token of an admin issued before now (MFA turned on or off).
UPDATE admins SET tokens_valid_after = now(), updated_at = now() WHERE id = $1;

-- name: reset_password :one
-- Store a new password from a reset link and invalidate every token issued before now.
UPDATE admins SET password_hash = $2, password_changed_at = now(), tokens_valid_after = now(),
                  updated_at = now()
WHERE id = $1 AND status = 'active'
RETURNING email;

-- name: mark_login :val
-- Remember when an admin last logged in; returns tokens_valid_after in microseconds (for new tokens).
UPDATE admins SET last_login_at = now() WHERE id = $1
RETURNING (extract(epoch FROM tokens_valid_after) * 1000000)::bigint;

-- name: admin_valid_after :val
-- An admin's tokens_valid_after in microseconds (pushed to every process when it moves).
SELECT (extract(epoch FROM tokens_valid_after) * 1000000)::bigint FROM admins WHERE id = $1;

-- name: list_admins :many
-- Every admin of the church, owners first, then by name.
SELECT a.id, a.email, a.first_name, a.last_name, a.role, a.status, a.last_login_at,
       a.created_at, COALESCE(m.enabled, false) AS mfa_enabled
FROM admins a LEFT JOIN admin_mfa m ON m.admin_id = a.id
ORDER BY a.role = 'owner' DESC, a.last_name, a.first_name, a.id;

-- name: invite_admin :one
-- Create an invited co-admin holding only the hash of its invitation token.
INSERT INTO admins (id, email, first_name, last_name, role, status, invitation_token_hash,
                    invitation_expires_at)
VALUES ($1, $2, $3, $4, $5, 'invited', $6, now() + make_interval(secs => $7::double precision))
RETURNING id, email, first_name, last_name, role, status, last_login_at, created_at,
          false AS mfa_enabled;

-- name: find_invitation :one
-- A live invitation (looked up before any password is hashed).
SELECT id, email, role FROM admins
WHERE invitation_token_hash = $1 AND invitation_expires_at > now() AND status = 'invited';

-- name: accept_invitation :one
-- Redeem an invitation once: set the password, activate, forget the token.
UPDATE admins SET password_hash = $2, status = 'active', invitation_token_hash = NULL,
                  invitation_expires_at = NULL, password_changed_at = now(), updated_at = now()
WHERE invitation_token_hash = $1 AND invitation_expires_at > now() AND status = 'invited'
RETURNING id, email, role;

-- name: lock_active_owners :many
-- Lock the active owners (in id order) so two concurrent demotions cannot remove the last one.
SELECT id FROM admins WHERE role = 'owner' AND status = 'active' ORDER BY id FOR UPDATE;

-- name: lock_admin :one
-- Lock one admin row for a change.
SELECT id, email, role, status FROM admins WHERE id = $1 FOR UPDATE;

-- name: delete_admin :exec
-- Remove an admin; its sessions, MFA and tokens go with it (cascades).
DELETE FROM admins WHERE id = $1;

-- name: update_admin :one
-- Change an admin's role and names; a role change also invalidates tokens issued before it.
UPDATE admins SET
    role = COALESCE($2::text, role),
    first_name = COALESCE($3::text, first_name),
    last_name = COALESCE($4::text, last_name),
    tokens_valid_after = CASE WHEN $2::text IS NOT NULL AND $2::text <> role
                              THEN now() ELSE tokens_valid_after END,
    updated_at = now()
WHERE id = $1
RETURNING id, email, first_name, last_name, role, status, last_login_at, created_at,
          EXISTS (SELECT 1 FROM admin_mfa m WHERE m.admin_id = admins.id AND m.enabled)
              AS mfa_enabled;
