-- name: receipt_claim_event :val
-- Mark receipt event $1 applied in this database; NULL when it was applied before (replay).
INSERT INTO inbound_events (carrier_event_id, kind)
VALUES ($1, $2)
ON CONFLICT (carrier_event_id) DO NOTHING
RETURNING true;

-- name: receipt_advance_outbox :one
-- Move the row of carrier message $1 forward to $2 (sent/delivered/failed) at time $3; never back.
-- The time of the carrier may be earlier than the sent_at the sender stored (it stamps the
-- receipt when it accepts the message, and clocks differ): delivered_at and failed_at are never
-- before sent_at.
UPDATE outbox
SET state = $2,
    sent_at = CASE WHEN $2 IN ('sent', 'delivered') THEN coalesce(sent_at, $3) ELSE sent_at END,
    delivered_at = CASE WHEN $2 = 'delivered' THEN greatest($3, sent_at) ELSE delivered_at END,
    failed_at = CASE WHEN $2 = 'failed' THEN greatest($3, sent_at) ELSE failed_at END,
    error_code = CASE WHEN $2 = 'failed' THEN $4 ELSE error_code END,
    error_detail = CASE WHEN $2 = 'failed' THEN $5 ELSE error_detail END,
    status_check_at = CASE WHEN $2 = 'sent' THEN status_check_at END,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
WHERE carrier_message_id = $1
  AND (state IN ('queued', 'sending', 'unknown')
       OR (state = 'sent' AND $2 IN ('delivered', 'failed')))
RETURNING id, state, conversation_message_id, broadcast_id, member_id;

-- name: receipt_outbox_state :val
-- The state of the outbox row of carrier message $1 (NULL: no such row yet).
SELECT state FROM outbox WHERE carrier_message_id = $1;

-- name: receipt_mirror_conversation :exec
-- Mirror a reply's new delivery state onto its conversation message.
UPDATE conversation_messages SET delivery_status = $2
WHERE id = $1 AND (delivery_status IS NULL
                   OR delivery_status NOT IN ('delivered', 'failed', 'cancelled', 'skipped'));
