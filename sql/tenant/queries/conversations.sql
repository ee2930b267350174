-- name: cv_list :many
-- The inbox: conversations by last activity (newest first) with member and last message, keyset after ($2, $3), optionally of status $1.
SELECT c.id, c.member_id, c.status, c.unread_count, c.last_message_at,
       c.last_message_preview, c.created_at, m.first_name, m.last_name, m.phone, m.opt_in,
       lm.id AS last_id, lm.direction AS last_direction, lm.body AS last_body,
       lm.created_at AS last_created_at
FROM conversations c
JOIN members m ON m.id = c.member_id
LEFT JOIN LATERAL (
    SELECT id, direction, body, created_at FROM conversation_messages
    WHERE conversation_id = c.id
    ORDER BY created_at DESC, id DESC
    LIMIT 1
) lm ON true
WHERE ($1::text IS NULL OR c.status = $1)
  AND (c.last_message_at, c.id) < (COALESCE($2::timestamptz, 'infinity'),
                                    COALESCE($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
ORDER BY c.last_message_at DESC, c.id DESC
LIMIT $4;

-- name: cv_get :one
-- One conversation with its member.
SELECT c.id, c.member_id, c.status, c.unread_count, c.last_message_at,
       c.last_message_preview, c.created_at, m.first_name, m.last_name, m.phone, m.opt_in
FROM conversations c
JOIN members m ON m.id = c.member_id
WHERE c.id = $1;

-- name: cv_lock :one
-- A conversation locked for a reply, with what the reply needs of its member.
SELECT c.id, c.member_id, m.phone, m.opt_in
FROM conversations c
JOIN members m ON m.id = c.member_id
WHERE c.id = $1
FOR UPDATE OF c;

-- name: cv_messages :many
-- A thread, newest first, keyset after ($2, $3); outbound messages show their outbox state.
SELECT cm.id, cm.direction, cm.body, cm.carrier_message_id, cm.sent_by, cm.created_at,
       COALESCE(o.state, cm.delivery_status) AS delivery_status, o.error_code
FROM conversation_messages cm
LEFT JOIN outbox o ON o.conversation_message_id = cm.id
WHERE cm.conversation_id = $1
  AND (cm.created_at, cm.id) < (COALESCE($2::timestamptz, 'infinity'),
                                COALESCE($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
ORDER BY cm.created_at DESC, cm.id DESC
LIMIT $4;

-- name: cv_reply :one
-- A one-to-one reply: the outbound message (by admin $3, $4 segments), its outbox row to member $5 at $6, and the conversation's last activity.
WITH msg AS (
    INSERT INTO conversation_messages (conversation_id, direction, body, delivery_status,
                                       sent_by)
    VALUES ($1, 'outbound', $2, 'queued', $3)
    RETURNING *
), ob AS (
    INSERT INTO outbox (conversation_message_id, member_id, to_phone, body, segments)
    SELECT msg.id, $5, $6, $2, $4 FROM msg
    RETURNING id
), up AS (
    UPDATE conversations
    SET last_message_at = now(), last_message_preview = left($2, 160), updated_at = now()
    WHERE id = $1
    RETURNING id
)
SELECT msg.id, msg.direction, msg.body, msg.carrier_message_id, msg.sent_by, msg.created_at,
       msg.delivery_status, NULL::text AS error_code, (SELECT id FROM ob) AS outbox_id,
       (SELECT id FROM up) AS conversation_id
FROM msg;

-- name: cv_mark_read :one
-- Everything in the conversation has been read.
UPDATE conversations SET unread_count = 0, updated_at = now()
WHERE id = $1
RETURNING id;

-- name: cv_set_status :one
-- Open, close or archive a conversation.
UPDATE conversations SET status = $2, updated_at = now()
WHERE id = $1
RETURNING id;
