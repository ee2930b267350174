-- name: cv_list :many
-- The inbox: conversations by last activity (newest first) with member and last message, keyset after ($2, $3), optionally of status $1.
SELECT c.id, c.member_id, c.status, c.unread_count, c.last_message_at,
       c.last_message_preview, c.created_at, c.church_number, m.first_name, m.last_name,
       m.phone, m.opt_in,
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
-- One conversation with its member and last message (as the inbox lists it).
SELECT c.id, c.member_id, c.status, c.unread_count, c.last_message_at,
       c.last_message_preview, c.created_at, c.church_number, m.first_name, m.last_name,
       m.phone, m.opt_in,
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
WHERE c.id = $1;

-- name: cv_lock :one
-- A conversation locked for a reply, with what the reply needs of its member and its number.
SELECT c.id, c.member_id, c.church_number, m.phone, m.opt_in
FROM conversations c
JOIN members m ON m.id = c.member_id
WHERE c.id = $1
FOR UPDATE OF c;

-- name: cv_messages :many
-- A thread, newest first, keyset after ($2, $3); outbound messages show their outbox state.
SELECT cm.id, cm.direction, cm.body, cm.carrier_message_id, cm.sent_by, cm.created_at,
       COALESCE(o.state, cm.delivery_status) AS delivery_status, o.error_code, cm.media,
       cm.church_number
FROM conversation_messages cm
LEFT JOIN outbox o ON o.conversation_message_id = cm.id
WHERE cm.conversation_id = $1
  AND (cm.created_at, cm.id) < (COALESCE($2::timestamptz, 'infinity'),
                                COALESCE($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
ORDER BY cm.created_at DESC, cm.id DESC
LIMIT $4;

-- name: cv_reply :one
-- A one-to-one reply: the outbound message (by admin $3, $4 segments, media $7 / URLs $8), its outbox row to member $5 at $6 from number $9 (NULL: the default sender), and the conversation's last activity.
WITH msg AS (
    INSERT INTO conversation_messages (conversation_id, direction, body, delivery_status,
                                       sent_by, media, church_number)
    VALUES ($1, 'outbound', $2, 'queued', $3, $7::jsonb, $9)
    RETURNING *
), ob AS (
    INSERT INTO outbox (conversation_message_id, member_id, to_phone, body, segments,
                        media_urls, from_phone)
    SELECT msg.id, $5, $6, $2, $4, $8::text[], $9 FROM msg
    RETURNING id
), up AS (
    UPDATE conversations
    SET last_message_at = now(), last_message_preview = left($2, 160), updated_at = now()
    WHERE id = $1
    RETURNING id
)
SELECT msg.id, msg.direction, msg.body, msg.carrier_message_id, msg.sent_by, msg.created_at,
       msg.delivery_status, NULL::text AS error_code, msg.media, msg.church_number,
       (SELECT id FROM ob) AS outbox_id,
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

-- name: cv_member_for_start :one
-- Member $1 locked for a staff-started conversation: phone, consent, and their branch's number.
SELECT m.id, m.phone, m.opt_in, nb.e164 AS branch_number
FROM members m
LEFT JOIN number_branches nb ON nb.branch_id = m.branch_id
WHERE m.id = $1
FOR UPDATE OF m;

-- name: cv_start :one
-- Member $1's conversation, made if they have none (running on number $2, else $3), reopened; a given number $2 becomes its number.
INSERT INTO conversations (member_id, status, church_number)
VALUES ($1, 'open', COALESCE($2, $3))
ON CONFLICT (member_id) DO UPDATE
SET status = 'open', church_number = COALESCE($2, conversations.church_number),
    updated_at = now()
RETURNING id, church_number, (xmax = 0) AS created;
