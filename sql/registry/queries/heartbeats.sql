-- name: hb_upsert :exec
-- Record that a process is alive, with its weight and the connections it reserves per server.
INSERT INTO process_heartbeats (id, kind, host, pid, weight, claims)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
ON CONFLICT (id) DO UPDATE
SET heartbeat_at = now(), weight = EXCLUDED.weight, claims = EXCLUDED.claims;

-- name: hb_lock :exec
-- Serialize heartbeats: held to the end of the transaction that reads claims and writes its own.
SELECT pg_advisory_xact_lock(hashtext('ywm_process_heartbeats'));

-- name: hb_fresh_peers :many
-- The other processes whose heartbeat is younger than $1 seconds: weight and claimed connections.
SELECT id, weight, claims
FROM process_heartbeats
WHERE heartbeat_at > now() - make_interval(secs => $1::float8) AND id <> $2::uuid;

-- name: hb_notify :exec
-- Tell every process that shares changed; $1 = '<sender id>:want|freed|left', or 'ops:budget' (`ywm servers set`).
SELECT pg_notify('ywm_budget_changed', $1::text);

-- name: hb_delete :exec
-- Remove a process's heartbeat when it stops (its share goes back to the others at once).
DELETE FROM process_heartbeats WHERE id = $1;

-- name: hb_prune :exec
-- Remove heartbeats older than $1 seconds (processes that died without saying so).
DELETE FROM process_heartbeats WHERE heartbeat_at < now() - make_interval(secs => $1::float8);

-- name: hb_list :many
-- Every recorded process, newest heartbeat first, with its age in seconds.
SELECT id, kind, host, pid, weight, started_at, heartbeat_at, claims,
       extract(epoch FROM now() - heartbeat_at)::float8 AS age_s
FROM process_heartbeats
ORDER BY heartbeat_at DESC, id;
