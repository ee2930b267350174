-- name: create_session :val
-- Start a login session (a refresh-token family) with an absolute lifetime.
INSERT INTO refresh_token_families (admin_id, expires_at, user_agent, ip)
VALUES ($1, now() + make_interval(secs => $2::double precision), $3, $4)
RETURNING id;

-- name: insert_refresh_token :exec
-- Store the hash of a refresh token in its family, expiring no later than the family.
INSERT INTO refresh_tokens (family_id, admin_id, token_hash, parent_id, expires_at, user_agent, ip)
SELECT f.id, f.admin_id, $2, $3,
       LEAST(now() + make_interval(secs => $4::double precision), f.expires_at), $5, $6
FROM refresh_token_families f
WHERE f.id = $1;

-- name: lock_refresh_token :one
-- A refresh token and its family, both locked: refreshes of one session run one at a time and see each other's rotation.
SELECT t.id, t.family_id, t.admin_id, t.expires_at, t.rotated_at, t.revoked_at,
       f.revoked_at AS family_revoked_at, f.expires_at AS family_expires_at, now() AS now
FROM refresh_tokens t JOIN refresh_token_families f ON f.id = t.family_id
WHERE t.token_hash = $1
FOR UPDATE OF f, t;

-- name: rotate_refresh_token :val
-- Mark a not yet exchanged refresh token as exchanged and touch its family; true if this call did it.
WITH t AS (
    UPDATE refresh_tokens SET rotated_at = now()
    WHERE id = $1 AND rotated_at IS NULL
    RETURNING family_id
), f AS (
    UPDATE refresh_token_families SET last_used_at = now()
    WHERE id = (SELECT family_id FROM t)
)
SELECT EXISTS (SELECT 1 FROM t);

-- name: revoke_session :val
-- Revoke one session of an admin (logout, reuse detected); true if it was live.
UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = $3
WHERE id = $1 AND admin_id = $2 AND revoked_at IS NULL
RETURNING true;

-- name: revoke_admin_sessions :val
-- Revoke every live session of an admin except one (or none); returns how many.
WITH gone AS (
    UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = $2
    WHERE admin_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3::uuid)
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: deny_jti :val
-- Put a token id on the denylist until its expiry; true only the first time (single use).
INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, to_timestamp($2::double precision))
ON CONFLICT (jti) DO NOTHING
RETURNING true;

-- name: insert_reset_token :exec
-- Store the hash of a password-reset token for an admin.
INSERT INTO password_reset_tokens (admin_id, token_hash, expires_at, requested_ip)
VALUES ($1, $2, now() + make_interval(secs => $3::double precision), $4);

-- name: count_recent_resets :val
-- How many reset tokens an admin was sent in the last hour (a cap against mail flooding).
SELECT count(*) FROM password_reset_tokens
WHERE admin_id = $1 AND created_at > now() - interval '1 hour';

-- name: find_reset_token :one
-- A live, unused reset token of an active admin (looked up before any password is hashed).
SELECT p.admin_id, a.email
FROM password_reset_tokens p JOIN admins a ON a.id = p.admin_id
WHERE p.token_hash = $1 AND p.used_at IS NULL AND p.expires_at > now() AND a.status = 'active';

-- name: consume_reset_token :one
-- Use a live reset token once, for an active admin.
UPDATE password_reset_tokens p SET used_at = now()
FROM admins a
WHERE a.id = p.admin_id AND a.status = 'active'
  AND p.token_hash = $1 AND p.used_at IS NULL AND p.expires_at > now()
RETURNING p.admin_id, a.email;

-- name: void_reset_tokens :exec
-- Invalidate an admin's outstanding reset tokens.
UPDATE password_reset_tokens SET used_at = now() WHERE admin_id = $1 AND used_at IS NULL;
