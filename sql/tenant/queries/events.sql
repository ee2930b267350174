-- name: ev_broadcast_progress :many
-- Broadcasts among $1 with their status and recipients counted by outbox state (live events).
SELECT b.id, b.status, b.completed_at, b.recipient_count,
       count(o.id) FILTER (WHERE o.state IN ('queued', 'sending'))::int AS pending,
       count(o.id) FILTER (WHERE o.state = 'sent')::int AS sent,
       count(o.id) FILTER (WHERE o.state = 'delivered')::int AS delivered,
       count(o.id) FILTER (WHERE o.state = 'failed')::int AS failed,
       count(o.id) FILTER (WHERE o.state NOT IN ('queued', 'sending', 'sent', 'delivered',
                                                 'failed'))::int AS other
FROM broadcasts b LEFT JOIN outbox o ON o.broadcast_id = b.id
WHERE b.id = ANY($1::uuid[])
GROUP BY b.id;
