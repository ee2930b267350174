-- name: push_revocation :val
-- Record a revocation and notify every process of it (the row as JSON); returns its id.
WITH r AS (
    INSERT INTO revocations (tenant_id, kind, subject, valid_after_us, expires_at)
    VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8))
    RETURNING id, tenant_id, kind, subject, valid_after_us, created_at, expires_at
)
SELECT r.id FROM r,
    LATERAL (SELECT pg_notify('ywm_revoked', json_build_object(
        'id', r.id, 'tenant_id', r.tenant_id, 'kind', r.kind, 'subject', r.subject,
        'valid_after_us', r.valid_after_us,
        'expires_at', extract(epoch FROM r.expires_at))::text)) AS n;

-- name: recent_revocations :many
-- Live revocations recorded at or after $1 (the catch-up read), as the notifications carry them.
SELECT id, tenant_id, kind, subject, valid_after_us,
       extract(epoch FROM expires_at)::float8 AS expires_at, created_at
FROM revocations
WHERE created_at >= $1 AND expires_at > now()
ORDER BY id;

-- name: sweep_revocations :val
-- Delete revocations no token can outlive any more; returns how many.
WITH gone AS (DELETE FROM revocations WHERE expires_at < now() - interval '1 minute' RETURNING 1)
SELECT count(*)::int FROM gone;
