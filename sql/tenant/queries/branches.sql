-- Branches: a church's campuses. A member is in at most one (members.branch_id). Deleting is
-- soft (deleted_at; the name is free again) and clears the members' branch in the same
-- transaction. Names are unique case-insensitively among live branches (branches_name_lower_key).

-- name: list_branches :val
-- Every live branch with its member count, by name, as the API's JSON array (text).
SELECT COALESCE(json_agg(json_build_object(
           'id', b.id, 'name', b.name, 'address', b.address, 'phone', b.phone,
           'description', b.description, 'is_active', b.is_active,
           'created_at', b.created_at, 'updated_at', b.updated_at,
           'member_count', (SELECT count(*) FROM members m WHERE m.branch_id = b.id)::int)
         ORDER BY lower(b.name), b.id), '[]')::text
FROM branches b
WHERE b.deleted_at IS NULL;

-- name: get_branch :one
-- One live branch with its member count.
SELECT b.id, b.name, b.address, b.phone, b.description, b.is_active, b.created_at, b.updated_at,
       (SELECT count(*) FROM members m WHERE m.branch_id = b.id)::int AS member_count
FROM branches b
WHERE b.id = $1 AND b.deleted_at IS NULL;

-- name: insert_branch :val
-- Create a branch unless a live one has the name (then NULL).
INSERT INTO branches (name, address, phone, description, is_active)
VALUES ($1, $2, $3, $4, COALESCE($5, true))
ON CONFLICT (lower(name)) WHERE deleted_at IS NULL DO NOTHING
RETURNING id;

-- name: update_branch :val
-- Change a live branch: NULL name/is_active leave them; address, phone and description change
-- when their flag ($3, $5, $7) is true (so they can be cleared).
UPDATE branches
SET name = COALESCE($2, name),
    address = CASE WHEN $3::boolean THEN $4 ELSE address END,
    phone = CASE WHEN $5::boolean THEN $6 ELSE phone END,
    description = CASE WHEN $7::boolean THEN $8 ELSE description END,
    is_active = COALESCE($9, is_active),
    updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
RETURNING id;

-- name: soft_delete_branch :val
-- Mark a live branch deleted, its phone number no longer assigned to it (NULL if there is none).
WITH b AS (
    UPDATE branches SET deleted_at = now(), updated_at = now()
    WHERE id = $1 AND deleted_at IS NULL
    RETURNING id
), n AS (
    DELETE FROM number_branches WHERE branch_id IN (SELECT id FROM b)
)
SELECT id FROM b;

-- name: clear_branch_members :val
-- Take every member out of a deleted branch; how many there were.
WITH cleared AS (
    UPDATE members SET branch_id = NULL, updated_at = now() WHERE branch_id = $1 RETURNING id
)
SELECT count(*)::int FROM cleared;
