-- name: tenant_for_number :val
-- The church that owns E.164 number $1 (inbound routing; a pending number is nobody's yet).
SELECT tenant_id FROM phone_numbers WHERE e164 = $1 AND status <> 'pending';

-- name: numbers_of_tenant :many
-- A church's numbers, oldest first.
SELECT e164, tenant_id, carrier_order_id, status, assigned_at
FROM phone_numbers
WHERE tenant_id = $1
ORDER BY assigned_at, e164;

-- name: number_of_tenant :one
-- Church $2's number $1 in any state (NULL: not this church's number).
SELECT e164, tenant_id, carrier_order_id, status, assigned_at,
       now() - assigned_at AS age
FROM phone_numbers
WHERE e164 = $1 AND tenant_id = $2;

-- name: lock_tenant_numbers :exec
-- Serialise number purchases of one church for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtextextended('ywm.numbers:' || $1::uuid::text, 0));

-- name: count_tenant_numbers :val
-- How many numbers a church has, pending ones included (the number limit).
SELECT count(*) FROM phone_numbers WHERE tenant_id = $1;

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

-- name: begin_release :one
-- Mark church $2's active (or half-released) number $1 releasing; NULL if not theirs or pending.
UPDATE phone_numbers SET status = 'releasing'
WHERE e164 = $1 AND tenant_id = $2 AND status IN ('active', 'releasing')
RETURNING e164, tenant_id, carrier_order_id, status, assigned_at;

-- name: set_number_status :one
-- Set the status of church $2's number $1 (back after a failed release); NULL: not theirs.
UPDATE phone_numbers SET status = $3 WHERE e164 = $1 AND tenant_id = $2
RETURNING e164, tenant_id, carrier_order_id, status, assigned_at;

-- name: delete_tenant_number :exec
-- Remove a church's number (after the carrier released it, or when the order was refused).
DELETE FROM phone_numbers WHERE e164 = $1 AND tenant_id = $2;

-- name: all_numbers :many
-- Every assigned number (the development carrier simulator adopts them when it starts).
SELECT e164, tenant_id, carrier_order_id, status FROM phone_numbers ORDER BY assigned_at, e164;
