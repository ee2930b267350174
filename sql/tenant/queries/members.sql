-- Members: the church's people. Search uses exactly the expressions of the trigram indexes in
-- 0001_init.sql; callers escape LIKE wildcards.
--
-- Lists are keyset-paginated, one statement per (sort, direction), so every ORDER BY walks an
-- index (members_name_keyset_idx, members_created_keyset_idx) forwards or backwards, and each
-- answers in one row: the page as JSON text built here (`items`), whether more follow (`more`),
-- and the sort key of the page's last row when they do. The page is read first (its limit + 1
-- rows tell whether more follow), then the group ids of its members in one index scan.
-- `list_members_*` serve the unfiltered list, the common case: the first page and the pages
-- after a cursor are two branches of one UNION ALL, the first switched off by a one-time filter
-- once a cursor is given, so that a cached generic plan still starts its index scan at the
-- cursor (an `$1 IS NULL OR (...) > (...)` test would make it read from the start of the index
-- on every page). `filter_members_*` take the filters ($1 name fragment, escaped, or NULL, $2
-- phone digits, escaped, or NULL, $3 group id, $4 branch id, $5 opt-in state; NULL = no
-- filter), then the cursor values (NULL = first page), then the page size.

-- name: list_members_name_asc :one
-- A page of $4 members by last name, first name, id (ascending) after the cursor ($1..$3; NULL: the first page), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE $1::text IS NULL
     ORDER BY m.last_name, m.first_name, m.id
     LIMIT $4 + 1)
    UNION ALL
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE (m.last_name, m.first_name, m.id) > ($1, $2::text, $3::uuid)
     ORDER BY m.last_name, m.first_name, m.id
     LIMIT $4 + 1)
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.last_name, page.first_name, page.id
    LIMIT $4
)
SELECT i.items, c.more, k.last_name, k.first_name, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.last_name, items.first_name, items.id), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $4 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.last_name, items.first_name, items.id FROM items WHERE c.more
                        ORDER BY items.last_name DESC, items.first_name DESC, items.id DESC LIMIT 1) k ON true;

-- name: list_members_name_desc :one
-- A page of $4 members by last name, first name, id (descending) after the cursor ($1..$3; NULL: the first page), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE $1::text IS NULL
     ORDER BY m.last_name DESC, m.first_name DESC, m.id DESC
     LIMIT $4 + 1)
    UNION ALL
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE (m.last_name, m.first_name, m.id) < ($1, $2::text, $3::uuid)
     ORDER BY m.last_name DESC, m.first_name DESC, m.id DESC
     LIMIT $4 + 1)
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.last_name DESC, page.first_name DESC, page.id DESC
    LIMIT $4
)
SELECT i.items, c.more, k.last_name, k.first_name, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.last_name DESC, items.first_name DESC, items.id DESC), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $4 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.last_name, items.first_name, items.id FROM items WHERE c.more
                        ORDER BY items.last_name, items.first_name, items.id LIMIT 1) k ON true;

-- name: list_members_created_asc :one
-- A page of $3 members by creation time, id (ascending) after the cursor ($1..$2; NULL: the first page), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE $1::timestamptz IS NULL
     ORDER BY m.created_at, m.id
     LIMIT $3 + 1)
    UNION ALL
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE (m.created_at, m.id) > ($1, $2::uuid)
     ORDER BY m.created_at, m.id
     LIMIT $3 + 1)
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.created_at, page.id
    LIMIT $3
)
SELECT i.items, c.more, k.created_at, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.created_at, items.id), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $3 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.created_at, items.id FROM items WHERE c.more
                        ORDER BY items.created_at DESC, items.id DESC LIMIT 1) k ON true;

-- name: list_members_created_desc :one
-- A page of $3 members by creation time, id (descending) after the cursor ($1..$2; NULL: the first page), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE $1::timestamptz IS NULL
     ORDER BY m.created_at DESC, m.id DESC
     LIMIT $3 + 1)
    UNION ALL
    (SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
     FROM members m
     WHERE (m.created_at, m.id) < ($1, $2::uuid)
     ORDER BY m.created_at DESC, m.id DESC
     LIMIT $3 + 1)
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.created_at DESC, page.id DESC
    LIMIT $3
)
SELECT i.items, c.more, k.created_at, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.created_at DESC, items.id DESC), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $3 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.created_at, items.id FROM items WHERE c.more
                        ORDER BY items.created_at, items.id LIMIT 1) k ON true;

-- name: filter_members_name_asc :one
-- A page of $9 members matching the filters ($1..$5) by last name, first name, id (ascending) after the cursor ($6..$8), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
    FROM members m
    WHERE ($1::text IS NULL
           OR (m.first_name || ' ' || m.last_name) ILIKE '%' || $1 || '%'
           OR m.phone LIKE '%' || $2::text || '%')
      AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM group_members gm
                                       WHERE gm.group_id = $3 AND gm.member_id = m.id))
      AND ($4::uuid IS NULL OR m.branch_id = $4)
      AND ($5::text IS NULL OR m.opt_in = $5)
      AND ($6::text IS NULL OR (m.last_name, m.first_name, m.id) > ($6::text, $7::text, $8::uuid))
    ORDER BY m.last_name, m.first_name, m.id
    LIMIT $9 + 1
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.last_name, page.first_name, page.id
    LIMIT $9
)
SELECT i.items, c.more, k.last_name, k.first_name, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.last_name, items.first_name, items.id), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $9 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.last_name, items.first_name, items.id FROM items WHERE c.more
                        ORDER BY items.last_name DESC, items.first_name DESC, items.id DESC LIMIT 1) k ON true;

-- name: filter_members_name_desc :one
-- A page of $9 members matching the filters ($1..$5) by last name, first name, id (descending) after the cursor ($6..$8), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
    FROM members m
    WHERE ($1::text IS NULL
           OR (m.first_name || ' ' || m.last_name) ILIKE '%' || $1 || '%'
           OR m.phone LIKE '%' || $2::text || '%')
      AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM group_members gm
                                       WHERE gm.group_id = $3 AND gm.member_id = m.id))
      AND ($4::uuid IS NULL OR m.branch_id = $4)
      AND ($5::text IS NULL OR m.opt_in = $5)
      AND ($6::text IS NULL OR (m.last_name, m.first_name, m.id) < ($6::text, $7::text, $8::uuid))
    ORDER BY m.last_name DESC, m.first_name DESC, m.id DESC
    LIMIT $9 + 1
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.last_name DESC, page.first_name DESC, page.id DESC
    LIMIT $9
)
SELECT i.items, c.more, k.last_name, k.first_name, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.last_name DESC, items.first_name DESC, items.id DESC), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $9 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.last_name, items.first_name, items.id FROM items WHERE c.more
                        ORDER BY items.last_name, items.first_name, items.id LIMIT 1) k ON true;

-- name: filter_members_created_asc :one
-- A page of $8 members matching the filters ($1..$5) by creation time, id (ascending) after the cursor ($6..$7), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
    FROM members m
    WHERE ($1::text IS NULL
           OR (m.first_name || ' ' || m.last_name) ILIKE '%' || $1 || '%'
           OR m.phone LIKE '%' || $2::text || '%')
      AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM group_members gm
                                       WHERE gm.group_id = $3 AND gm.member_id = m.id))
      AND ($4::uuid IS NULL OR m.branch_id = $4)
      AND ($5::text IS NULL OR m.opt_in = $5)
      AND ($6::timestamptz IS NULL OR (m.created_at, m.id) > ($6::timestamptz, $7::uuid))
    ORDER BY m.created_at, m.id
    LIMIT $8 + 1
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.created_at, page.id
    LIMIT $8
)
SELECT i.items, c.more, k.created_at, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.created_at, items.id), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $8 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.created_at, items.id FROM items WHERE c.more
                        ORDER BY items.created_at DESC, items.id DESC LIMIT 1) k ON true;

-- name: filter_members_created_desc :one
-- A page of $8 members matching the filters ($1..$5) by creation time, id (descending) after the cursor ($6..$7), as JSON text, with the sort key of its last row when more follow.
WITH page AS (
    SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
           m.opt_in_changed_at, m.created_at, m.updated_at
    FROM members m
    WHERE ($1::text IS NULL
           OR (m.first_name || ' ' || m.last_name) ILIKE '%' || $1 || '%'
           OR m.phone LIKE '%' || $2::text || '%')
      AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM group_members gm
                                       WHERE gm.group_id = $3 AND gm.member_id = m.id))
      AND ($4::uuid IS NULL OR m.branch_id = $4)
      AND ($5::text IS NULL OR m.opt_in = $5)
      AND ($6::timestamptz IS NULL OR (m.created_at, m.id) < ($6::timestamptz, $7::uuid))
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT $8 + 1
), member_groups AS (
    SELECT gm.member_id, array_agg(gm.group_id ORDER BY gm.group_id) AS group_ids
    FROM group_members gm
    WHERE gm.member_id = ANY (ARRAY(SELECT page.id FROM page))
    GROUP BY gm.member_id
), items AS (
    SELECT page.*, COALESCE(g.group_ids, '{}') AS group_ids
    FROM page LEFT JOIN member_groups g ON g.member_id = page.id
    ORDER BY page.created_at DESC, page.id DESC
    LIMIT $8
)
SELECT i.items, c.more, k.created_at, k.id
FROM (SELECT COALESCE(json_agg(items ORDER BY items.created_at DESC, items.id DESC), '[]')::text AS items
      FROM items) i
     CROSS JOIN (SELECT count(*) > $8 AS more FROM page) c
     LEFT JOIN LATERAL (SELECT items.created_at, items.id FROM items WHERE c.more
                        ORDER BY items.created_at, items.id LIMIT 1) k ON true;

-- name: get_member :one
-- One member with its group ids.
SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
       m.opt_in_changed_at, m.created_at, m.updated_at,
       ARRAY(SELECT gm.group_id FROM group_members gm WHERE gm.member_id = m.id
             ORDER BY gm.group_id) AS group_ids
FROM members m
WHERE m.id = $1;

-- name: lock_member :one
-- Lock one member for a change of its consent state or groups (NULL when it does not exist).
SELECT id, opt_in, opt_in_changed_at FROM members WHERE id = $1 FOR UPDATE;

-- name: member_id_by_phone :val
-- The id of the member holding an E.164 number (names the existing member on a 409).
SELECT id FROM members WHERE phone = $1;

-- name: insert_member :val
-- Create a member unless the phone is taken (then no row: the caller answers 409).
INSERT INTO members (first_name, last_name, phone, email, branch_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (phone) DO NOTHING
RETURNING id;

-- name: update_member :val
-- Change a member's fields: NULL leaves names and phone alone; email and branch_id change
-- only when their flag ($5, $7) is true (so they can be cleared).
UPDATE members
SET first_name = COALESCE($2, first_name),
    last_name = COALESCE($3, last_name),
    phone = COALESCE($4, phone),
    email = CASE WHEN $5::boolean THEN $6 ELSE email END,
    branch_id = CASE WHEN $7::boolean THEN $8::uuid ELSE branch_id END,
    updated_at = now()
WHERE id = $1
RETURNING id;

-- name: delete_member :val
-- Delete a member for good (consent events, memberships and conversations cascade).
DELETE FROM members WHERE id = $1 RETURNING id;

-- name: lock_live_branch :val
-- Hold a live branch while a member is put in it (a concurrent delete waits); NULL if none.
SELECT id FROM branches WHERE id = $1 AND deleted_at IS NULL FOR SHARE;

-- name: add_member_to_groups :val
-- Put one member in every existing group of the set; the count tells whether all existed.
WITH added AS (
    INSERT INTO group_members (group_id, member_id)
    SELECT g.id, $2 FROM groups g WHERE g.id = ANY($1::uuid[])
    ON CONFLICT DO NOTHING
    RETURNING group_id
)
SELECT (SELECT count(*) FROM groups WHERE id = ANY($1::uuid[]))::int;

-- name: remove_member_from_other_groups :exec
-- Take one member out of every group not in the set (replacing its groups).
DELETE FROM group_members WHERE member_id = $1 AND NOT (group_id = ANY($2::uuid[]));

-- name: insert_consent_event :val
-- Append a consent event (opt_in / opt_out) and return when it happened.
INSERT INTO consent_events (member_id, kind, source, occurred_at, admin_id, detail)
VALUES ($1, $2, $3, now(), $4, $5::jsonb)
RETURNING occurred_at;

-- name: apply_consent :exec
-- Set the member's opt-in state from an event, only when the event is newer than the last one applied.
UPDATE members
SET opt_in = $2, opt_in_changed_at = $3,
    opted_out_reason = CASE WHEN $2 = 'opted_out' THEN $4 ELSE NULL END,
    updated_at = now()
WHERE id = $1 AND opt_in_changed_at < $3;

-- name: list_consent_events :many
-- A page of a member's consent history, newest first, after the cursor ($2, $3).
SELECT id, kind, source, keyword, occurred_at, recorded_at, admin_id, detail
FROM consent_events
WHERE member_id = $1
  AND (occurred_at, id) < (COALESCE($2::timestamptz, 'infinity'), COALESCE($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
ORDER BY occurred_at DESC, id DESC
LIMIT $4;
