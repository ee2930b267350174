-- name: tenant_for_number :val
-- The church that owns E.164 number $1 (inbound routing by the `to` number).
SELECT tenant_id FROM phone_numbers WHERE e164 = $1;

-- name: numbers_of_tenant :many
-- A church's numbers, oldest first.
SELECT e164, tenant_id, carrier_number_id, status, assigned_at
FROM phone_numbers
WHERE tenant_id = $1
ORDER BY assigned_at, e164;

-- name: lock_tenant_numbers :exec
-- Serialise number purchases of one church for the rest of the transaction.
SELECT pg_advisory_xact_lock(hashtextextended('ywm.numbers:' || $1::uuid::text, 0));

-- name: count_tenant_numbers :val
-- How many numbers a church has (the number limit).
SELECT count(*) FROM phone_numbers WHERE tenant_id = $1;

-- name: reserve_number :val
-- Assign number $1 to church $2 before ordering it; NULL when any church already has it.
INSERT INTO phone_numbers (e164, tenant_id, status)
VALUES ($1, $2, 'active')
ON CONFLICT (e164) DO NOTHING
RETURNING e164;

-- name: set_number_carrier_id :exec
-- Record the carrier's id of number $1 once the order went through.
UPDATE phone_numbers SET carrier_number_id = $3 WHERE e164 = $1 AND tenant_id = $2;

-- name: set_number_status :one
-- Mark a church's number active or releasing; returns it (NULL: not this church's number).
UPDATE phone_numbers SET status = $3 WHERE e164 = $1 AND tenant_id = $2
RETURNING e164, carrier_number_id, status, assigned_at;

-- name: delete_tenant_number :exec
-- Remove a church's number (after the carrier released it, or when the order failed).
DELETE FROM phone_numbers WHERE e164 = $1 AND tenant_id = $2;

-- name: all_numbers :many
-- Every assigned number (the development carrier simulator adopts them when it starts).
SELECT e164, tenant_id, status FROM phone_numbers ORDER BY assigned_at, e164;
