-- Groups: named sets of members (a member may be in many). Names are unique case-insensitively
-- (groups_name_lower_key); inserts and renames hitting it return no row and the caller answers 409.

-- name: list_groups :val
-- Every group with its member count, by name, as the API's JSON array (text).
SELECT COALESCE(json_agg(json_build_object(
           'id', g.id, 'name', g.name, 'description', g.description, 'color', g.color,
           'created_at', g.created_at, 'updated_at', g.updated_at,
           'member_count', (SELECT count(*) FROM group_members gm WHERE gm.group_id = g.id)::int)
         ORDER BY lower(g.name), g.id), '[]')::text
FROM groups g;

-- name: get_group :one
-- One group with its member count.
SELECT g.id, g.name, g.description, g.color, g.created_at, g.updated_at,
       (SELECT count(*) FROM group_members gm WHERE gm.group_id = g.id)::int AS member_count
FROM groups g
WHERE g.id = $1;

-- name: insert_group :val
-- Create a group unless the name is taken (then NULL).
INSERT INTO groups (name, description, color)
VALUES ($1, $2, $3)
ON CONFLICT (lower(name)) DO NOTHING
RETURNING id;

-- name: update_group :val
-- Rename or describe a group: NULL name leaves it; description/color change when their flag ($3, $5) is true.
UPDATE groups
SET name = COALESCE($2, name),
    description = CASE WHEN $3::boolean THEN $4 ELSE description END,
    color = CASE WHEN $5::boolean THEN $6 ELSE color END,
    updated_at = now()
WHERE id = $1
RETURNING id;

-- name: delete_group :val
-- Delete a group (its memberships cascade; the members stay).
DELETE FROM groups WHERE id = $1 RETURNING id;

-- name: lock_group :val
-- Lock a group while its members change (a concurrent delete waits); NULL if none.
SELECT id FROM groups WHERE id = $1 FOR UPDATE;

-- name: count_members :val
-- How many of a set of member ids exist (an add must name only existing members).
SELECT count(*)::int FROM members WHERE id = ANY($1::uuid[]);

-- name: add_group_members :val
-- Put existing members of the set in a group (already there: unchanged); how many were added.
WITH added AS (
    INSERT INTO group_members (group_id, member_id)
    SELECT $1, m.id FROM members m WHERE m.id = ANY($2::uuid[])
    ON CONFLICT DO NOTHING
    RETURNING member_id
)
SELECT count(*)::int FROM added;

-- name: remove_group_members :val
-- Take a set of members out of a group; how many were removed.
WITH removed AS (
    DELETE FROM group_members WHERE group_id = $1 AND member_id = ANY($2::uuid[])
    RETURNING member_id
)
SELECT count(*)::int FROM removed;
