-- name: throttle_counters :many
-- Failure counters of some throttle keys, with the database clock (one clock for every process).
SELECT key, failures, last_failure_at, locked_until, now() AS now
FROM login_throttle
WHERE key = ANY($1::text[]);

-- name: lock_throttle_keys :exec
-- Serialize attempts on some throttle keys until the transaction ends (pass the keys sorted).
SELECT pg_advisory_xact_lock(2037804404, hashtext(k))
FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS keys;

-- name: record_login_failure :one
-- Count one failed (or reserved) login on a key (starting over after a quiet window) and lock it at the threshold.
INSERT INTO login_throttle AS t (key, failures, first_failure_at, last_failure_at, locked_until)
VALUES ($1, 1, now(), now(),
        CASE WHEN 1 >= $2::integer THEN now() + make_interval(secs => $3::double precision) END)
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN t.last_failure_at < now() - make_interval(secs => $4::double precision)
                    THEN 1 ELSE t.failures + 1 END,
    first_failure_at = CASE WHEN t.last_failure_at < now() - make_interval(secs => $4::double precision)
                            THEN now() ELSE t.first_failure_at END,
    last_failure_at = now(),
    locked_until = CASE
        WHEN t.last_failure_at >= now() - make_interval(secs => $4::double precision)
             AND t.failures + 1 >= $2::integer
        THEN now() + make_interval(secs => $3::double precision)
        ELSE t.locked_until END
RETURNING failures, locked_until;

-- name: release_login_attempt :exec
-- Take back one reserved attempt that was not a failure; lift a lock that is no longer earned ($2: lock threshold).
UPDATE login_throttle
SET failures = failures - 1,
    locked_until = CASE WHEN failures - 1 < $2::integer THEN NULL ELSE locked_until END
WHERE key = $1 AND failures > 0;

-- name: count_rate_limited :one
-- Count one attempt on a rate-limit key within a fixed window ($2 s) and say when the window ends.
INSERT INTO login_throttle AS t (key, failures, first_failure_at, last_failure_at)
VALUES ($1, 1, now(), now())
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN t.first_failure_at <= now() - make_interval(secs => $2::double precision)
                    THEN 1 ELSE t.failures + 1 END,
    first_failure_at = CASE WHEN t.first_failure_at <= now() - make_interval(secs => $2::double precision)
                            THEN now() ELSE t.first_failure_at END,
    last_failure_at = now()
RETURNING failures AS attempts,
          extract(epoch FROM first_failure_at + make_interval(secs => $2::double precision) - now())::double precision
              AS retry_after_s;

-- name: clear_login_failures :exec
-- Forget a throttle key (successful login, password reset, operator unlock).
DELETE FROM login_throttle WHERE key = $1;

-- name: sweep_login_throttle :val
-- Drop counters quiet for longer than the window and not locked; returns how many went.
WITH gone AS (
    DELETE FROM login_throttle
    WHERE last_failure_at < now() - make_interval(secs => $1::double precision)
      AND (locked_until IS NULL OR locked_until < now())
    RETURNING 1
)
SELECT count(*) FROM gone;
