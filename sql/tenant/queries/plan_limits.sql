-- name: limit_lock :exec
-- Serialize creations counted against plan limit $1 (held until the transaction ends).
SELECT pg_advisory_xact_lock(hashtext('ywm_plan_limit:' || $1::text));

-- name: limit_count_members :val
-- Members of the church (the members limit).
SELECT count(*)::int FROM members;

-- name: limit_count_branches :val
-- Branches not deleted (the branches limit).
SELECT count(*)::int FROM branches WHERE deleted_at IS NULL;

-- name: limit_count_co_admins :val
-- Admins besides the church's owner, invited or active (the co-admins limit).
SELECT greatest(count(*) - 1, 0)::int FROM admins WHERE status <> 'disabled';

-- name: limit_existing_phones :many
-- Which of the phones $1 already belong to members (an import updates those, creating none).
SELECT phone FROM members WHERE phone = ANY($1::text[]);

-- name: plan_usage :one
-- Everything a plan limits, counted now; messages since $1 (the church's month start).
SELECT (SELECT count(*) FROM members)::int AS members,
       (SELECT count(*) FROM branches WHERE deleted_at IS NULL)::int AS branches,
       (SELECT greatest(count(*) - 1, 0) FROM admins WHERE status <> 'disabled')::int
           AS co_admins,
       (SELECT count(*) FROM outbox
        WHERE queued_at >= $1 AND state NOT IN ('skipped', 'cancelled'))::int
           AS messages_per_month;

-- name: usage_by_day :many
-- Messages, segments and estimated cost per day in time zone $3 from $1 up to $2 (outbox rows queued; skipped and cancelled ones are free).
SELECT (queued_at AT TIME ZONE $3)::date AS day, count(*)::int AS messages,
       coalesce(sum(segments), 0)::int AS segments
FROM outbox
WHERE queued_at >= $1 AND queued_at < $2 AND state NOT IN ('skipped', 'cancelled')
GROUP BY 1 ORDER BY 1;

-- name: billing_owner_emails :many
-- Where billing notices go: the email of every active owner.
SELECT email FROM admins WHERE role = 'owner' AND status = 'active' ORDER BY created_at;
