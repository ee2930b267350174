-- Full account exports (church/exports.py, export_writer.py): one row per job, at most one
-- queued or running at a time (exports_one_active_key); the ZIP is a file named after the row.

-- name: export_insert :one
-- Queue an export unless one is already queued or running (then no row); expires $3 seconds from now.
INSERT INTO exports (status, tables_total, created_by, expires_at)
VALUES ('queued', $1, $2, now() + make_interval(secs => $3::float8))
ON CONFLICT DO NOTHING
RETURNING id, status, tables_total, tables_done, rows_done, size_bytes, manifest, error,
          created_by, created_at, updated_at, started_at, finished_at, expires_at;

-- name: export_active :one
-- The export queued or running now, if any.
SELECT id, status, tables_total, tables_done, rows_done, size_bytes, manifest, error,
       created_by, created_at, updated_at, started_at, finished_at, expires_at
FROM exports
WHERE status IN ('queued', 'running');

-- name: export_fail_stale :many
-- Fail a queued or running export whose owner stopped updating it $1 seconds ago (the process died).
UPDATE exports
SET status = 'failed', error = 'the export stopped (its process ended)', finished_at = now(),
    updated_at = now()
WHERE status IN ('queued', 'running') AND updated_at < now() - make_interval(secs => $1::float8)
RETURNING id;

-- name: export_claim :one
-- Take a queued export to run it (no row: another process has it, or it ended).
UPDATE exports
SET status = 'running', started_at = now(), updated_at = now()
WHERE id = $1 AND status = 'queued'
RETURNING id, created_by, created_at;

-- name: export_progress :exec
-- Count one table written (and prove the job is alive).
UPDATE exports
SET tables_done = $2, rows_done = $3, updated_at = now()
WHERE id = $1 AND status = 'running';

-- name: export_finish :one
-- End a running export as done: its file's size and manifest; it expires $4 seconds from now.
UPDATE exports
SET status = 'done', size_bytes = $2, manifest = $3::jsonb, tables_done = tables_total,
    rows_done = ($3::jsonb ->> 'total_rows')::bigint, finished_at = now(), updated_at = now(),
    expires_at = now() + make_interval(secs => $4::float8)
WHERE id = $1 AND status = 'running'
RETURNING id;

-- name: export_fail :exec
-- End a queued or running export as failed, with a short reason.
UPDATE exports
SET status = 'failed', error = left($2, 500), finished_at = now(), updated_at = now()
WHERE id = $1 AND status IN ('queued', 'running');

-- name: export_list :many
-- The church's exports, newest first (they expire within a day: a handful at most).
SELECT id, status, tables_total, tables_done, rows_done, size_bytes, manifest, error,
       created_by, created_at, updated_at, started_at, finished_at, expires_at,
       expires_at <= now() AS expired
FROM exports
ORDER BY created_at DESC, id DESC
LIMIT 100;

-- name: export_get :one
-- One export, and whether it has expired.
SELECT id, status, tables_total, tables_done, rows_done, size_bytes, manifest, error,
       created_by, created_at, updated_at, started_at, finished_at, expires_at,
       expires_at <= now() AS expired
FROM exports
WHERE id = $1;

-- name: export_sweep :many
-- Delete expired exports that have ended (or went quiet $1 seconds ago); their ids, so their files go too.
DELETE FROM exports
WHERE expires_at <= now()
  AND (status IN ('done', 'failed') OR updated_at < now() - make_interval(secs => $1::float8))
RETURNING id;

-- name: export_begin_snapshot :one
-- Inside the export's read-only transaction: timestamps in the CSVs in UTC and ISO form; the snapshot's time.
SELECT now() AS snapshot_at, set_config('TimeZone', 'UTC', true) AS time_zone,
       set_config('DateStyle', 'ISO, MDY', true) AS date_style;
