-- Message templates: reusable texts with a category. A church has tens of them, listed whole.
-- is_default marks the seeded ones (0002_seed_default_templates.sql); clients never set it.

-- name: list_templates :many
-- Every template (of one category when $1 is not NULL): defaults first, then newest.
SELECT id, name, body, category, is_default, usage_count, created_by, created_at, updated_at
FROM templates
WHERE ($1::text IS NULL OR category = $1)
ORDER BY is_default DESC, created_at DESC, lower(name), id;

-- name: get_template :one
-- One template by id.
SELECT id, name, body, category, is_default, usage_count, created_by, created_at, updated_at
FROM templates
WHERE id = $1;

-- name: count_templates :val
-- How many templates the church has (the cap on creating more).
SELECT count(*)::int FROM templates;

-- name: insert_template :one
-- Create a template.
INSERT INTO templates (name, body, category, created_by)
VALUES ($1, $2, $3, $4)
RETURNING id, name, body, category, is_default, usage_count, created_by, created_at, updated_at;

-- name: update_template :one
-- Change a template's name, body and category (NULL leaves a field as it is).
UPDATE templates
SET name = COALESCE($2, name),
    body = COALESCE($3, body),
    category = COALESCE($4, category),
    updated_at = now()
WHERE id = $1
RETURNING id, name, body, category, is_default, usage_count, created_by, created_at, updated_at;

-- name: delete_template :val
-- Delete a template (broadcasts keep their text; their template_id becomes NULL); its id or NULL.
DELETE FROM templates WHERE id = $1 RETURNING id;
