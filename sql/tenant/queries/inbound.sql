-- name: inbound_claim_event :val
-- Mark carrier event $1 applied in this database; NULL when it was applied before (replay).
INSERT INTO inbound_events (carrier_event_id, kind)
VALUES ($1, $2)
ON CONFLICT (carrier_event_id) DO NOTHING
RETURNING true;

-- name: inbound_member_by_phone :one
-- The member texting from E.164 number $1, with their consent state.
SELECT id, opt_in, opt_in_changed_at FROM members WHERE phone = $1;

-- name: inbound_create_member :one
-- Record an unknown sender as a member with only a phone, in the branch of the number they texted ($4) if it has one; consent starts just before $2.
INSERT INTO members (phone, opt_in, opt_in_changed_at, notes, branch_id)
VALUES ($1, 'opted_in', $2::timestamptz - interval '1 millisecond', $3,
        (SELECT branch_id FROM number_branches WHERE e164 = $4))
ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone
RETURNING id, opt_in, opt_in_changed_at, (xmax = 0) AS created;

-- name: inbound_apply_opt_in :val
-- Opt in when event time $2 is newer than the last consent change (any source); the old state.
WITH old AS (SELECT id, opt_in FROM members WHERE id = $1 FOR UPDATE)
UPDATE members m
SET opt_in = 'opted_in', opt_in_changed_at = $2, opted_out_reason = NULL, updated_at = now()
FROM old
WHERE m.id = old.id AND m.opt_in_changed_at < $2
RETURNING old.opt_in AS previous;

-- name: inbound_apply_opt_out :val
-- Opt out unless the member texted an applied START after event time $2; the old state.
-- Only a later START texted by the member (carrier clock) outranks a STOP; a change made in
-- the app (our clock, possibly skewed) never makes a STOP look stale.
WITH old AS (SELECT id, opt_in FROM members WHERE id = $1 FOR UPDATE)
UPDATE members m
SET opt_in = 'opted_out', opt_in_changed_at = greatest(m.opt_in_changed_at, $2),
    opted_out_reason = $3, updated_at = now()
FROM old
WHERE m.id = old.id
  AND NOT EXISTS (
      SELECT 1 FROM consent_events c
      WHERE c.member_id = $1 AND c.kind = 'opt_in' AND c.source = 'sms_keyword'
        AND c.occurred_at > $2 AND c.detail @> '{"applied": true}')
RETURNING old.opt_in AS previous;

-- name: inbound_insert_consent_event :exec
-- Append to the member's consent trail (kind opt_in/opt_out/help, source sms_keyword).
INSERT INTO consent_events (member_id, kind, source, keyword, occurred_at, detail)
VALUES ($1, $2, 'sms_keyword', $3, $4, $5::jsonb);

-- name: inbound_reply_settings :one
-- The church's auto-reply texts and sending number.
SELECT help_reply, stop_reply, start_reply, sender_number FROM settings WHERE id;

-- name: inbound_queue_reply :one
-- Queue an automatic keyword reply (no broadcast, no conversation message) for the worker.
INSERT INTO outbox (member_id, to_phone, from_phone, body, segments)
VALUES ($1, $2, $3, $4, $5)
RETURNING id;

-- name: inbound_upsert_conversation :one
-- The member's conversation with one more unread inbound message (reopened if closed); a new one runs on the number texted ($4), an existing one keeps its number.
INSERT INTO conversations (member_id, status, last_message_at, last_message_preview, unread_count,
                           church_number)
VALUES ($1, 'open', $2, $3, 1, $4)
ON CONFLICT (member_id) DO UPDATE
SET unread_count = conversations.unread_count + 1,
    church_number = COALESCE(conversations.church_number, EXCLUDED.church_number),
    status = 'open',
    last_message_preview = CASE WHEN EXCLUDED.last_message_at >= conversations.last_message_at
                                THEN EXCLUDED.last_message_preview
                                ELSE conversations.last_message_preview END,
    last_message_at = greatest(conversations.last_message_at, EXCLUDED.last_message_at),
    updated_at = now()
RETURNING id, unread_count;

-- name: inbound_insert_message :val
-- Append an inbound message (media $5, texted to number $6) to a conversation; NULL when this carrier message was stored before.
INSERT INTO conversation_messages (conversation_id, direction, body, carrier_message_id,
                                   delivery_status, created_at, media, church_number)
VALUES ($1, 'inbound', $2, $3, 'received', $4, $5::jsonb, $6)
ON CONFLICT (carrier_message_id) WHERE carrier_message_id IS NOT NULL DO NOTHING
RETURNING id;

-- name: inbound_audit :exec
-- An audit-log line for an inbound event that staff may need to review.
INSERT INTO audit_log (actor_kind, action, target_type, target_id, detail)
VALUES ('member', $1, 'member', $2, $3::jsonb);
