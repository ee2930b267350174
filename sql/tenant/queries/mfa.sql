-- name: lock_mfa :one
-- An admin's MFA row, locked so code checks and their counters cannot race.
SELECT admin_id, totp_secret_encrypted, enabled, last_used_step, failed_attempts, locked_until,
       now() AS now
FROM admin_mfa
WHERE admin_id = $1
FOR UPDATE;

-- name: start_mfa_setup :val
-- Store a new, not yet enabled TOTP secret (refused while MFA is enabled); true if stored.
INSERT INTO admin_mfa (admin_id, totp_secret_encrypted) VALUES ($1, $2)
ON CONFLICT (admin_id) DO UPDATE SET
    totp_secret_encrypted = EXCLUDED.totp_secret_encrypted, last_used_step = NULL,
    failed_attempts = 0, locked_until = NULL, updated_at = now()
WHERE admin_mfa.enabled = false
RETURNING true;

-- name: enable_mfa :exec
-- Turn MFA on after a valid code, remembering that code's time step.
UPDATE admin_mfa SET enabled = true, enabled_at = now(), last_used_step = $2,
                     failed_attempts = 0, locked_until = NULL, updated_at = now()
WHERE admin_id = $1;

-- name: accept_totp_step :val
-- Record an accepted TOTP time step, only if newer than the last one (replay guard); true if so.
UPDATE admin_mfa SET last_used_step = $2, failed_attempts = 0, locked_until = NULL,
                     updated_at = now()
WHERE admin_id = $1 AND (last_used_step IS NULL OR last_used_step < $2)
RETURNING true;

-- name: record_mfa_failure :one
-- Count a wrong code; at the threshold lock MFA for a while and start the count over.
UPDATE admin_mfa SET
    failed_attempts = CASE WHEN failed_attempts + 1 >= $2::integer THEN 0
                           ELSE failed_attempts + 1 END,
    locked_until = CASE WHEN failed_attempts + 1 >= $2::integer
                        THEN now() + make_interval(secs => $3::double precision)
                        ELSE locked_until END,
    updated_at = now()
WHERE admin_id = $1
RETURNING failed_attempts, locked_until, locked_until > now() AS locked;

-- name: clear_mfa_failures :exec
-- Forget wrong codes after a successful recovery code.
UPDATE admin_mfa SET failed_attempts = 0, locked_until = NULL, updated_at = now()
WHERE admin_id = $1;

-- name: delete_mfa :exec
-- Turn MFA off: drop the secret.
DELETE FROM admin_mfa WHERE admin_id = $1;

-- name: delete_recovery_codes :exec
-- Drop an admin's recovery codes (regenerate, MFA off).
DELETE FROM mfa_recovery_codes WHERE admin_id = $1;

-- name: insert_recovery_codes :exec
-- Store the hashes of a new set of recovery codes.
INSERT INTO mfa_recovery_codes (admin_id, code_hash) SELECT $1, unnest($2::bytea[]);

-- name: use_recovery_code :val
-- Spend one unused recovery code; true if it existed and was unused.
UPDATE mfa_recovery_codes SET used_at = now()
WHERE admin_id = $1 AND code_hash = $2 AND used_at IS NULL
RETURNING true;
