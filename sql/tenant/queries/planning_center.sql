-- Planning Center (tenant 0009): the connection row, sync runs and their reports, and the
-- member and group writes of a sync. A sync never changes opt_in: consent stays the church's.

-- name: pco_get_connection :one
-- The church's Planning Center connection (NULL: never started).
SELECT status, organization_id, organization_name, access_sealed, refresh_sealed, expires_at,
       scope, connected_by, connected_at, pending_nonce, pending_verifier, pending_admin,
       pending_until, sync_lists, cursor_updated_at, last_error, updated_at
FROM pco_connection;

-- name: pco_begin :exec
-- Remember a pending authorization: nonce $1, sealed PKCE verifier $2, admin $3, valid until $4.
INSERT INTO pco_connection (pending_nonce, pending_verifier, pending_admin, pending_until)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE
SET pending_nonce = $1, pending_verifier = $2, pending_admin = $3, pending_until = $4,
    updated_at = now();

-- name: pco_take_pending :one
-- Consume the pending authorization whose nonce is $1 (NULL when unknown, used or expired).
WITH old AS (
    SELECT pending_verifier, pending_admin FROM pco_connection
    WHERE pending_nonce = $1 AND pending_until > now()
    FOR UPDATE
)
UPDATE pco_connection
SET pending_nonce = NULL, pending_verifier = NULL, pending_until = NULL, updated_at = now()
FROM old
RETURNING old.pending_verifier, old.pending_admin;

-- name: pco_connected :exec
-- Store the grant: organization $1 ($2), sealed tokens $3/$4 expiring $5, scope $6, by admin $7; a new organization starts from a full sync.
UPDATE pco_connection
SET status = 'connected',
    cursor_updated_at = CASE WHEN organization_id = $1 THEN cursor_updated_at END,
    organization_id = $1, organization_name = $2, access_sealed = $3, refresh_sealed = $4,
    expires_at = $5, scope = $6, connected_by = $7, connected_at = now(), last_error = NULL,
    updated_at = now();

-- name: pco_save_tokens :exec
-- A refreshed token pair (sealed) and its expiry.
UPDATE pco_connection
SET access_sealed = $1, refresh_sealed = $2, expires_at = $3, updated_at = now()
WHERE status = 'connected';

-- name: pco_disconnected :exec
-- Forget the grant (tokens gone); members and groups the syncs made stay.
UPDATE pco_connection
SET status = 'disconnected', access_sealed = NULL, refresh_sealed = NULL, expires_at = NULL,
    pending_nonce = NULL, pending_verifier = NULL, pending_until = NULL, updated_at = now();

-- name: pco_set_options :exec
-- Whether Planning Center lists become groups.
UPDATE pco_connection SET sync_lists = $1, updated_at = now();

-- name: pco_set_error :exec
-- Why the connection stopped working (NULL: it works), e.g. a refused refresh.
UPDATE pco_connection SET last_error = $1, updated_at = now();

-- name: pco_set_cursor :exec
-- The incremental sync's next starting point.
UPDATE pco_connection SET cursor_updated_at = $1, updated_at = now();

-- name: pco_queue_run :one
-- Queue a sync run of kind $1 for trigger $2 by admin $3, or return the one already queued or running.
WITH made AS (
    INSERT INTO pco_sync_runs (kind, trigger, created_by)
    VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
    RETURNING id, kind, trigger, status, fetched, created, updated, skipped, removed, errors,
              requests, created_by, created_at, started_at, finished_at, updated_at
)
SELECT * FROM made
UNION ALL
SELECT id, kind, trigger, status, fetched, created, updated, skipped, removed, errors,
       requests, created_by, created_at, started_at, finished_at, updated_at
FROM pco_sync_runs
WHERE status IN ('queued', 'running') AND NOT EXISTS (SELECT 1 FROM made);

-- name: pco_claim_run :one
-- Start run $1: queued, or running without progress for $2 seconds (its process died).
UPDATE pco_sync_runs
SET status = 'running', started_at = now(), updated_at = now(), fetched = 0, created = 0,
    updated = 0, skipped = 0, removed = 0, errors = '[]'::jsonb, requests = 0
WHERE id = $1
  AND (status = 'queued'
       OR (status = 'running' AND updated_at < now() - make_interval(secs => $2::float8)))
RETURNING id, kind, trigger;

-- name: pco_active_run :one
-- The run queued or running now (NULL: none).
SELECT id, status, updated_at FROM pco_sync_runs WHERE status IN ('queued', 'running');

-- name: pco_run_progress :exec
-- Count one applied page into run $1 (fetched, created, updated, skipped, removed, errors, requests so far).
UPDATE pco_sync_runs
SET fetched = fetched + $2, created = created + $3, updated = updated + $4,
    skipped = skipped + $5, removed = removed + $6, errors = errors || $7::jsonb,
    requests = $8, updated_at = now()
WHERE id = $1;

-- name: pco_finish_run :one
-- End run $1 as done or failed ($2), with any last errors $3.
UPDATE pco_sync_runs
SET status = $2, errors = errors || $3::jsonb, finished_at = now(), updated_at = now()
WHERE id = $1
RETURNING id, kind, trigger, status, fetched, created, updated, skipped, removed, errors,
          requests, created_by, created_at, started_at, finished_at, updated_at;

-- name: pco_last_run :one
-- The latest run, its report and progress.
SELECT id, kind, trigger, status, fetched, created, updated, skipped, removed, errors,
       requests, created_by, created_at, started_at, finished_at, updated_at
FROM pco_sync_runs
ORDER BY created_at DESC
LIMIT 1;

-- name: pco_last_full_at :val
-- When the last full sync finished (NULL: never).
SELECT max(finished_at) FROM pco_sync_runs WHERE kind = 'full' AND status = 'done';

-- name: pco_match_members :many
-- Members a page's people may be: by Planning Center id ($1) or by mobile number ($2).
SELECT id, phone, pco_person_id, lower(first_name) AS first_key, lower(last_name) AS last_key
FROM members
WHERE pco_person_id = ANY($1::text[]) OR phone = ANY($2::text[]);

-- name: pco_insert_members :many
-- Create members from Planning Center people (opted in, with a `planning_center` consent event by run $6).
WITH made AS (
    INSERT INTO members (phone, first_name, last_name, email, pco_person_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
    RETURNING id, pco_person_id
), consented AS (
    INSERT INTO consent_events (member_id, kind, source, occurred_at, detail)
    SELECT id, 'opt_in', 'planning_center', now(),
           jsonb_build_object('sync_run_id', $6::text, 'person_id', pco_person_id)
    FROM made
)
SELECT id FROM made;

-- name: pco_update_members :exec
-- Update members from their Planning Center people (never opt_in); a person seen again is no longer marked removed.
UPDATE members AS m
SET phone = t.phone, first_name = t.first_name, last_name = t.last_name,
    email = COALESCE(t.email, m.email), pco_person_id = t.pco_person_id,
    pco_removed_at = NULL, updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
    AS t(id, phone, first_name, last_name, email, pco_person_id)
WHERE m.id = t.id;

-- name: pco_mark_removed :many
-- Mark the members of removed Planning Center people (kept, with their consent history).
UPDATE members
SET pco_removed_at = now(), updated_at = now()
WHERE pco_person_id = ANY($1::text[]) AND pco_removed_at IS NULL
RETURNING id;

-- name: pco_unseen :many
-- Linked members a full sync did not see (candidates for removal, checked one by one).
SELECT pco_person_id FROM members
WHERE pco_person_id IS NOT NULL AND pco_removed_at IS NULL
  AND NOT (pco_person_id = ANY($1::text[]));

-- name: pco_list_group :val
-- The group Planning Center list $1 maps to (NULL: none yet).
SELECT id FROM groups WHERE pco_list_id = $1;

-- name: pco_make_list_group :val
-- A group for list $1 named $2: a new one, or the unlinked group of that name (NULL: that name belongs to another list's group).
INSERT INTO groups AS g (name, pco_list_id)
VALUES (left(btrim($2), 100), $1)
ON CONFLICT (lower(name)) DO UPDATE
SET pco_list_id = EXCLUDED.pco_list_id, updated_at = now()
WHERE g.pco_list_id IS NULL
RETURNING id;

-- name: pco_set_list_members :exec
-- Make group $1's members exactly the synced members among Planning Center people $2 (others added by hand to a list group are removed too).
WITH wanted AS (
    SELECT id FROM members WHERE pco_person_id = ANY($2::text[])
), gone AS (
    DELETE FROM group_members
    WHERE group_id = $1 AND member_id NOT IN (SELECT id FROM wanted)
)
INSERT INTO group_members (group_id, member_id)
SELECT $1, id FROM wanted
ON CONFLICT DO NOTHING;
