-- name: throttle_counters :many
-- Failure counters of some throttle keys with their attempts still in flight, and the database clock (one clock for every process).
SELECT t.key, t.failures, t.last_failure_at, t.locked_until, now() AS now,
       (SELECT count(*) FROM login_attempts_in_flight f
         WHERE f.key = t.key AND f.expires_at > now())::integer AS in_flight
FROM login_throttle t
WHERE t.key = ANY($1::text[]);

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

-- name: hold_login_attempt :exec
-- Mark a reserved attempt in flight on some keys until it is decided or $3 seconds pass.
INSERT INTO login_attempts_in_flight (attempt, key, expires_at)
SELECT $1::uuid, k, now() + make_interval(secs => $3::double precision)
FROM unnest($2::text[]) AS k;

-- name: drop_login_attempt :exec
-- An attempt is decided: it is no longer in flight on any key.
DELETE FROM login_attempts_in_flight WHERE attempt = $1;

-- name: keep_login_attempts_in_flight :exec
-- A successful login (its mark dropped, the key locked): forget a key's failures and lock, but keep one per attempt still in flight (none: the row goes).
WITH live AS (
    SELECT count(*)::integer AS n FROM login_attempts_in_flight
    WHERE key = $1 AND expires_at > now()
), gone AS (
    DELETE FROM login_throttle WHERE key = $1 AND (SELECT n FROM live) = 0
)
UPDATE login_throttle
SET failures = (SELECT n FROM live), locked_until = NULL
WHERE key = $1 AND (SELECT n FROM live) > 0;

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

-- name: sweep_login_attempts_in_flight :val
-- Drop in-flight marks left by crashed processes (expired more than $1 seconds ago); returns how many went.
WITH gone AS (
    DELETE FROM login_attempts_in_flight
    WHERE expires_at < now() - make_interval(secs => $1::double precision)
    RETURNING 1
)
SELECT count(*) FROM gone;
