-- name: tenant_for_number :val
-- The church that owns E.164 number $1 (inbound routing; a pending number is nobody's yet).
SELECT tenant_id FROM phone_numbers WHERE e164 = $1 AND status <> 'pending';

-- name: numbers_of_tenant :many
-- A church's numbers (archived ones with their release_after), oldest first; $2: one status.
SELECT e164, tenant_id, carrier_order_id, status, assigned_at, archived_at, release_after
FROM phone_numbers
WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
ORDER BY assigned_at, e164;

-- name: number_of_tenant :one
-- Church $2's number $1 in any state (NULL: not this church's number).
SELECT e164, tenant_id, carrier_order_id, status, assigned_at, archived_at, release_after,
       now() - assigned_at AS age, release_after <= now() AS window_over
FROM phone_numbers
WHERE e164 = $1 AND tenant_id = $2;

-- name: lock_tenant_numbers :exec
-- Serialise number purchases of one church for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtextextended('ywm.numbers:' || $1::uuid::text, 0));

-- name: count_tenant_numbers :val
-- How many numbers a church has, pending ones included, archived ones not (the number limit).
SELECT count(*) FROM phone_numbers WHERE tenant_id = $1 AND release_after IS NULL;

-- name: reserve_number :val
-- Assign number $1 to church $2, `pending`, before ordering it; NULL when any church has it.
INSERT INTO phone_numbers (e164, tenant_id, status)
VALUES ($1, $2, 'pending')
ON CONFLICT (e164) DO NOTHING
RETURNING e164;

-- name: set_number_order :exec
-- Record the carrier's order $3 of church $2's pending number $1 (its completion finds it so).
UPDATE phone_numbers SET carrier_order_id = $3
WHERE e164 = $1 AND tenant_id = $2 AND status = 'pending';

-- name: number_for_order :one
-- The number carrier order $1 is for (NULL: no number waits for that order).
SELECT e164, tenant_id, carrier_order_id, status, assigned_at
FROM phone_numbers
WHERE carrier_order_id = $1;

-- name: activate_number :one
-- Order $2 of pending number $1 succeeded: make it active (NULL: not pending on that order).
UPDATE phone_numbers SET status = 'active'
WHERE e164 = $1 AND carrier_order_id = $2 AND status = 'pending'
RETURNING e164, tenant_id, carrier_order_id, status, assigned_at;

-- name: drop_failed_order :one
-- Order $2 of pending number $1 failed: free the number (NULL: not pending on that order).
DELETE FROM phone_numbers
WHERE e164 = $1 AND carrier_order_id = $2 AND status = 'pending'
RETURNING e164, tenant_id;

-- name: claim_pending_orders :many
-- Up to $2 pending orders not checked for $1 seconds, marked checked now (one poller each).
UPDATE phone_numbers p SET order_checked_at = now()
FROM (SELECT e164 FROM phone_numbers
      WHERE status = 'pending' AND carrier_order_id IS NOT NULL
        AND coalesce(order_checked_at, assigned_at) <= now() - make_interval(secs => $1)
      ORDER BY assigned_at
      LIMIT $2
      FOR UPDATE SKIP LOCKED) due
WHERE p.e164 = due.e164
RETURNING p.e164, p.tenant_id, p.carrier_order_id, p.assigned_at;

-- name: archive_number :one
-- Archive church $2's active number $1 until now() + $3 days (the recovery window); NULL if
-- it is not theirs or not active.
UPDATE phone_numbers
SET status = 'archived', archived_at = now(),
    release_after = now() + make_interval(secs => $3 * 86400.0),
    release_next_at = NULL, release_attempts = 0, release_error = NULL
WHERE e164 = $1 AND tenant_id = $2 AND status = 'active'
RETURNING e164, tenant_id, carrier_order_id, status, assigned_at, archived_at, release_after;

-- name: release_reservation :one
-- Church $2's pending number $1 whose order's answer was lost: released by the next sweep.
UPDATE phone_numbers
SET status = 'releasing', archived_at = now(), release_after = now(), release_next_at = NULL
WHERE e164 = $1 AND tenant_id = $2 AND status = 'pending'
RETURNING e164, tenant_id, carrier_order_id, status, assigned_at, archived_at, release_after;

-- name: recover_number :one
-- Church $2's archived number $1 back to active while its window lasts (NULL: not so).
UPDATE phone_numbers
SET status = 'active', archived_at = NULL, release_after = NULL, release_next_at = NULL,
    release_attempts = 0, release_error = NULL
WHERE e164 = $1 AND tenant_id = $2 AND status = 'archived' AND release_after > now()
RETURNING e164, tenant_id, carrier_order_id, status, assigned_at, archived_at, release_after;

-- name: end_recovery_window :exec
-- Close the window of church $2's archived number $1 now (the carrier no longer lists it).
UPDATE phone_numbers SET release_after = least(release_after, now())
WHERE e164 = $1 AND tenant_id = $2 AND status = 'archived';

-- name: claim_due_releases :many
-- Up to $2 numbers whose window is over and that are due, marked `releasing` and held $1 s
-- (one sweeper each; a sweeper that dies lets them go after that).
UPDATE phone_numbers p
SET status = 'releasing', release_next_at = now() + make_interval(secs => $1)
FROM (SELECT e164 FROM phone_numbers
      WHERE release_after IS NOT NULL AND release_after <= now()
        AND coalesce(release_next_at, release_after) <= now()
      ORDER BY release_after
      LIMIT $2
      FOR UPDATE SKIP LOCKED) due
WHERE p.e164 = due.e164
RETURNING p.e164, p.tenant_id, p.archived_at, p.release_after, p.release_attempts;

-- name: release_failed :exec
-- The carrier (or the church's database) failed releasing number $1: try again in $2 s.
UPDATE phone_numbers
SET release_attempts = release_attempts + 1, release_error = left($3, 200),
    release_next_at = now() + make_interval(secs => $2)
WHERE e164 = $1 AND status = 'releasing';

-- name: drop_released_number :exec
-- Number $1 is released at the carrier: remove its mapping.
DELETE FROM phone_numbers WHERE e164 = $1 AND status = 'releasing';

-- name: delete_tenant_number :exec
-- Remove a church's number (after the carrier released it, or when the order was refused).
DELETE FROM phone_numbers WHERE e164 = $1 AND tenant_id = $2;

-- name: all_numbers :many
-- Every assigned number (the development carrier simulator adopts them when it starts).
SELECT e164, tenant_id, carrier_order_id, status FROM phone_numbers ORDER BY assigned_at, e164;
