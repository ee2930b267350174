-- Analytics, computed from the church's own tables on every request: each church's numbers
-- come from its own database, so no figure can be served to another church (there is no cache).
-- Days are the church's local dates (settings.time_zone); a window of $1 days ends today and
-- every day in it is present (zero-filled). Messages count outbox rows by the day they were
-- queued; "sent" means handed to the carrier (sent_at set).

-- name: analytics_messages_by_day :many
-- Outbox rows queued in the last $1 local days, by local day: sent, delivered, failed, unknown, pending.
WITH span AS (
    SELECT time_zone AS zone,
           (now() AT TIME ZONE time_zone)::date - ($1::int - 1) AS first_day,
           (now() AT TIME ZONE time_zone)::date AS last_day
    FROM settings WHERE id
), counted AS (
    SELECT (o.queued_at AT TIME ZONE s.zone)::date AS day,
           count(*) FILTER (WHERE o.sent_at IS NOT NULL) AS sent,
           count(*) FILTER (WHERE o.state = 'delivered') AS delivered,
           count(*) FILTER (WHERE o.state = 'failed') AS failed,
           count(*) FILTER (WHERE o.state = 'unknown') AS unknown,
           count(*) FILTER (WHERE o.state IN ('queued', 'sending')) AS pending
    FROM outbox o CROSS JOIN span s
    WHERE o.queued_at >= (s.first_day::timestamp AT TIME ZONE s.zone)
    GROUP BY 1
)
SELECT d.day::date AS day, s.zone AS time_zone,
       COALESCE(c.sent, 0)::int AS sent, COALESCE(c.delivered, 0)::int AS delivered,
       COALESCE(c.failed, 0)::int AS failed, COALESCE(c.unknown, 0)::int AS unknown,
       COALESCE(c.pending, 0)::int AS pending
FROM span s
CROSS JOIN LATERAL generate_series(s.first_day::timestamp, s.last_day::timestamp,
                                   interval '1 day') AS d(day)
LEFT JOIN counted c ON c.day = d.day::date
ORDER BY d.day;

-- name: analytics_members_by_day :many
-- Members joined, opt-outs and opt-ins in the last $1 local days, by local day, with the running total.
WITH span AS (
    SELECT time_zone AS zone,
           (now() AT TIME ZONE time_zone)::date - ($1::int - 1) AS first_day,
           (now() AT TIME ZONE time_zone)::date AS last_day
    FROM settings WHERE id
), joined AS (
    SELECT (m.created_at AT TIME ZONE s.zone)::date AS day, count(*) AS n
    FROM members m CROSS JOIN span s
    WHERE m.created_at >= (s.first_day::timestamp AT TIME ZONE s.zone)
    GROUP BY 1
), consent AS (
    SELECT (c.occurred_at AT TIME ZONE s.zone)::date AS day,
           count(*) FILTER (WHERE c.kind = 'opt_out') AS opt_outs,
           count(*) FILTER (WHERE c.kind = 'opt_in') AS opt_ins
    FROM consent_events c CROSS JOIN span s
    WHERE c.occurred_at >= (s.first_day::timestamp AT TIME ZONE s.zone)
    GROUP BY 1
), base AS (
    SELECT count(*) AS n
    FROM members m CROSS JOIN span s
    WHERE m.created_at < (s.first_day::timestamp AT TIME ZONE s.zone)
)
SELECT d.day::date AS day, s.zone AS time_zone,
       COALESCE(j.n, 0)::int AS new_members,
       COALESCE(c.opt_outs, 0)::int AS opt_outs,
       COALESCE(c.opt_ins, 0)::int AS opt_ins,
       ((SELECT n FROM base) + sum(COALESCE(j.n, 0)) OVER (ORDER BY d.day))::int AS total_members
FROM span s
CROSS JOIN LATERAL generate_series(s.first_day::timestamp, s.last_day::timestamp,
                                   interval '1 day') AS d(day)
LEFT JOIN joined j ON j.day = d.day::date
LEFT JOIN consent c ON c.day = d.day::date
ORDER BY d.day;

-- name: analytics_summary :one
-- Headline figures: directory sizes, this local month's messages, and the last 30 days' delivery.
WITH span AS (
    SELECT time_zone AS zone,
           date_trunc('month', now() AT TIME ZONE time_zone) AT TIME ZONE time_zone AS month_start
    FROM settings WHERE id
)
SELECT s.zone AS time_zone,
       (SELECT count(*) FROM members)::int AS members_total,
       (SELECT count(*) FROM members WHERE opt_in = 'opted_out')::int AS members_opted_out,
       (SELECT count(*) FROM groups)::int AS groups_total,
       (SELECT count(*) FROM branches WHERE deleted_at IS NULL)::int AS branches_total,
       (SELECT count(*) FROM templates)::int AS templates_total,
       (SELECT count(*) FROM broadcasts WHERE queued_at IS NOT NULL)::int AS broadcasts_sent,
       (SELECT count(*) FROM outbox WHERE sent_at >= s.month_start)::int AS messages_this_month,
       (SELECT COALESCE(sum(segments), 0) FROM outbox
        WHERE sent_at >= s.month_start)::int AS segments_this_month,
       (SELECT count(*) FROM outbox
        WHERE queued_at >= now() - interval '30 days' AND sent_at IS NOT NULL)::int AS sent_30d,
       (SELECT count(*) FROM outbox
        WHERE queued_at >= now() - interval '30 days' AND state = 'delivered')::int
           AS delivered_30d
FROM span s;

-- name: analytics_branches :many
-- Each live branch: its members now, and the last $1 local days' messages to them (sent, delivered).
WITH span AS (
    SELECT ((now() AT TIME ZONE time_zone)::date - ($1::int - 1))::timestamp
               AT TIME ZONE time_zone AS since
    FROM settings WHERE id
), counted AS (
    SELECT branch_id, count(*) AS members
    FROM members WHERE branch_id IS NOT NULL
    GROUP BY branch_id
), sent AS (
    SELECT m.branch_id,
           count(*) FILTER (WHERE o.sent_at IS NOT NULL) AS sent,
           count(*) FILTER (WHERE o.state = 'delivered') AS delivered
    FROM outbox o
    JOIN members m ON m.id = o.member_id
    CROSS JOIN span s
    WHERE o.queued_at >= s.since AND m.branch_id IS NOT NULL
    GROUP BY m.branch_id
)
SELECT b.id, b.name, COALESCE(c.members, 0)::int AS members,
       COALESCE(x.sent, 0)::int AS sent, COALESCE(x.delivered, 0)::int AS delivered
FROM branches b
LEFT JOIN counted c ON c.branch_id = b.id
LEFT JOIN sent x ON x.branch_id = b.id
WHERE b.deleted_at IS NULL
ORDER BY lower(b.name), b.id;
