-- 10DLC routing: which church a Telnyx brand or campaign id belongs to (registry 0010), and
-- what the worker still asks the carrier about (polling fallback, number assignment).

-- name: tendlc_register :exec
-- Carrier id $1 (kind $2) is church $3's, pending at the carrier (again, on a resubmission).
INSERT INTO tendlc_registrations (carrier_id, kind, tenant_id)
VALUES ($1, $2, $3)
ON CONFLICT (carrier_id) DO UPDATE
SET status = 'pending', checked_at = NULL, updated_at = now()
WHERE tendlc_registrations.tenant_id = $3;

-- name: tendlc_route :one
-- The church and kind of carrier id $1 (NULL: none of ours).
SELECT tenant_id, kind, status FROM tendlc_registrations WHERE carrier_id = $1;

-- name: tendlc_set_status :exec
-- Church $2's carrier id $1 is now $3 (mirrors the church's own row); a newly approved one is due at the worker's next round (its number is assigned then).
UPDATE tendlc_registrations
SET status = $3, updated_at = now(),
    checked_at = CASE WHEN $3 = 'approved' AND status <> 'approved' THEN NULL
                      ELSE checked_at END
WHERE carrier_id = $1 AND tenant_id = $2;

-- name: tendlc_replace_campaigns :exec
-- Church $1's earlier campaigns other than $2 are replaced (a rejected one resubmitted).
UPDATE tendlc_registrations SET status = 'replaced', updated_at = now()
WHERE tenant_id = $1 AND kind = 'campaign' AND carrier_id <> $2;

-- name: tendlc_set_assigned :exec
-- The carrier was asked to put number $2 on church $3's campaign $1.
UPDATE tendlc_registrations SET assigned_number = $2, updated_at = now()
WHERE carrier_id = $1 AND tenant_id = $3;

-- name: tendlc_claim_due :many
-- Up to $2 registrations to ask the carrier about, not asked for $1 seconds, marked asked now (one poller each): pending ones, and live campaigns (a suspension or reinstatement whose webhook was lost; a number to assign).
UPDATE tendlc_registrations r SET checked_at = now()
FROM (SELECT t.carrier_id FROM tendlc_registrations t
      WHERE (t.status = 'pending'
             OR (t.kind = 'campaign' AND t.status IN ('approved', 'suspended', 'expired')))
        AND (t.checked_at IS NULL OR t.checked_at <= now() - make_interval(secs => $1))
      ORDER BY t.checked_at NULLS FIRST
      LIMIT $2
      FOR UPDATE SKIP LOCKED) due
WHERE r.carrier_id = due.carrier_id
RETURNING r.carrier_id, r.kind, r.tenant_id, r.status, r.assigned_number,
          (SELECT p.e164 FROM phone_numbers p
           WHERE p.tenant_id = r.tenant_id AND p.status = 'active'
           ORDER BY p.assigned_at LIMIT 1) AS active_number;
