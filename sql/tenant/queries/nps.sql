-- NPS: admins' 0-10 answers to "how likely are you to recommend us". A handful per church.

-- name: insert_nps :one
-- Record one answer.
INSERT INTO nps_responses (score, category, comment, admin_id)
VALUES ($1, $2, $3, $4)
RETURNING id, score, category, comment, admin_id, created_at;

-- name: nps_summary :many
-- Answers of the last $1 days by category, with a totals row (category NULL): promoters 9-10, passives 7-8, detractors 0-6.
SELECT category,
       count(*)::int AS responses,
       count(*) FILTER (WHERE score >= 9)::int AS promoters,
       count(*) FILTER (WHERE score BETWEEN 7 AND 8)::int AS passives,
       count(*) FILTER (WHERE score <= 6)::int AS detractors,
       round(avg(score), 2)::float8 AS average
FROM nps_responses
WHERE created_at >= now() - make_interval(days => $1::int)
GROUP BY ROLLUP (category)
ORDER BY category NULLS FIRST;

-- name: nps_page :many
-- Answers newest first, keyset after ($1 created_at, $2 id), up to $3 rows, optionally of category $4.
SELECT id, score, category, comment, admin_id, created_at
FROM nps_responses
WHERE (created_at, id) < (COALESCE($1::timestamptz, 'infinity'),
                          COALESCE($2::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
  AND ($4::text IS NULL OR category = $4)
ORDER BY created_at DESC, id DESC
LIMIT $3;
