-- Member CSV imports and the CSV export. An import runs in batches: each batch's upserts and its
-- progress update commit together, so `processed_rows` always says exactly how many data rows are
-- done and a resumed job skips exactly those.

-- name: insert_import :one
-- Create an import job (status queued with its compressed CSV, or running for an inline import).
INSERT INTO imports (status, filename, source_csv, total_rows, created_by, started_at)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $1 = 'running' THEN now() END)
RETURNING id, status, filename, total_rows, processed_rows, created, updated, skipped, errors,
          created_by, created_at, updated_at, started_at, finished_at;

-- name: get_import :one
-- One import job and its report so far (without its source).
SELECT id, status, filename, total_rows, processed_rows, created, updated, skipped, errors,
       created_by, created_at, updated_at, started_at, finished_at
FROM imports
WHERE id = $1;

-- name: claim_import :one
-- Take a queued job, or a running one whose owner stopped updating it $2 seconds ago (resume).
UPDATE imports
SET status = 'running', started_at = COALESCE(started_at, now()), updated_at = now()
WHERE id = $1
  AND source_csv IS NOT NULL
  AND (status = 'queued'
       OR (status = 'running' AND updated_at < now() - make_interval(secs => $2::float8)))
RETURNING id, processed_rows, created, updated, skipped,
          jsonb_array_length(errors) AS error_count, created_by;

-- name: import_source :val
-- The compressed CSV of a job (NULL once the job has ended).
SELECT source_csv FROM imports WHERE id = $1;

-- name: import_progress :exec
-- Count one committed batch: rows done so far, the batch's counts and its row errors.
UPDATE imports
SET processed_rows = $2, created = created + $3, updated = updated + $4,
    skipped = skipped + $5, errors = errors || $6::jsonb, updated_at = now()
WHERE id = $1;

-- name: finish_import :one
-- End a job (done or failed), appending any final errors and dropping its source; a done job's total is its exact row count.
UPDATE imports
SET status = $2, errors = errors || $3::jsonb, source_csv = NULL, finished_at = now(),
    total_rows = CASE WHEN $2 = 'done' THEN processed_rows ELSE total_rows END,
    updated_at = now()
WHERE id = $1
RETURNING id, status, filename, total_rows, processed_rows, created, updated, skipped, errors,
          created_by, created_at, updated_at, started_at, finished_at;

-- name: import_branches :many
-- Live branches by lower-case name (the import's `branch` column names one).
SELECT id, lower(name) AS key FROM branches WHERE deleted_at IS NULL;

-- name: import_upsert_members :many
-- Insert or update a batch of members by phone (NULL/empty cells leave fields as they are); new ones get an import opt-in consent event.
WITH input AS (
    SELECT *
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[])
        AS t(phone, first_name, last_name, email, branch_id, notes)
), upserted AS (
    INSERT INTO members AS m (phone, first_name, last_name, email, branch_id, notes)
    SELECT phone, COALESCE(first_name, ''), COALESCE(last_name, ''), email, branch_id, notes
    FROM input
    ON CONFLICT (phone) DO UPDATE
    SET first_name = COALESCE(NULLIF(EXCLUDED.first_name, ''), m.first_name),
        last_name = COALESCE(NULLIF(EXCLUDED.last_name, ''), m.last_name),
        email = COALESCE(EXCLUDED.email, m.email),
        branch_id = COALESCE(EXCLUDED.branch_id, m.branch_id),
        notes = COALESCE(EXCLUDED.notes, m.notes),
        updated_at = now()
    RETURNING m.id, m.phone, (m.xmax = 0) AS created
), consented AS (
    INSERT INTO consent_events (member_id, kind, source, occurred_at, admin_id, detail)
    SELECT id, 'opt_in', 'import', now(), $7::uuid, jsonb_build_object('import_id', $8::text)
    FROM upserted
    WHERE created
)
SELECT id, phone, created FROM upserted;

-- name: import_ensure_groups :exec
-- Create the groups an import names that do not exist yet (names compared case-insensitively).
INSERT INTO groups (name)
SELECT DISTINCT ON (lower(n)) n FROM unnest($1::text[]) AS t(n) ORDER BY lower(n), n
ON CONFLICT (lower(name)) DO NOTHING;

-- name: import_link_groups :exec
-- Put imported members into groups by name ($1 member ids, $2 group names, pairwise).
INSERT INTO group_members (group_id, member_id)
SELECT DISTINCT g.id, t.member_id
FROM unnest($1::uuid[], $2::text[]) AS t(member_id, group_name)
JOIN groups g ON lower(g.name) = lower(t.group_name)
ON CONFLICT DO NOTHING;

-- name: export_members_page :many
-- A page of members for the CSV export, by creation time and id after the cursor ($1, $2).
SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.opt_in, b.name AS branch,
       (SELECT string_agg(g.name, '; ' ORDER BY lower(g.name))
        FROM group_members gm JOIN groups g ON g.id = gm.group_id
        WHERE gm.member_id = m.id) AS groups,
       m.notes, m.created_at
FROM members m
LEFT JOIN branches b ON b.id = m.branch_id
WHERE (m.created_at, m.id) > (COALESCE($1::timestamptz, '-infinity'), COALESCE($2::uuid, '00000000-0000-0000-0000-000000000000'))
ORDER BY m.created_at, m.id
LIMIT $3;

-- name: import_async_commit :exec
-- Let this transaction's commit return before its WAL is flushed (a lost batch is redone on resume).
SET LOCAL synchronous_commit = off;
