-- Welcome texts (issue 13 part 4): once per member, through the outbox.

-- name: welcome_settings :one
-- Whether the church sends welcome texts, and the text.
SELECT welcome_enabled, welcome_message FROM settings WHERE id;

-- name: welcome_queue :val
-- Queue welcome text $2 ($3 segments) to member $1 if they are opted in and were never welcomed, from their branch's number if it has one (else the default sender at send time); the outbox row id, NULL when nothing was queued.
WITH m AS (
    SELECT m.id, m.phone, nb.e164 AS branch_number
    FROM members m
    LEFT JOIN number_branches nb ON nb.branch_id = m.branch_id
    WHERE m.id = $1 AND m.opt_in = 'opted_in'
), w AS (
    INSERT INTO welcome_texts (member_id)
    SELECT id FROM m
    ON CONFLICT (member_id) DO NOTHING
    RETURNING member_id
)
INSERT INTO outbox (member_id, to_phone, from_phone, body, segments, welcome)
SELECT m.id, m.phone, m.branch_number, $2, $3, true
FROM m JOIN w ON w.member_id = m.id
RETURNING id;
