-- name: hb_upsert :exec
-- Record that a process is alive, with its weight and its per-server claimed connections.
INSERT INTO process_heartbeats (id, kind, host, pid, weight, claims)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
ON CONFLICT (id) DO UPDATE
SET heartbeat_at = now(), weight = EXCLUDED.weight, claims = EXCLUDED.claims;

-- name: hb_fresh_weight :val
-- Total weight of processes whose heartbeat is younger than $1 seconds (budget shares).
SELECT COALESCE(sum(weight), 0)::bigint
FROM process_heartbeats
WHERE heartbeat_at > now() - make_interval(secs => $1::float8);

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
