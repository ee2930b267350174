-- JSON the API answers with, built by PostgreSQL: list routes pass a page through as text instead of turning every row into a Python dict and back.
--
-- api_ts writes a timestamp as the API always has (RFC 3339, UTC, microseconds, "+00:00"),
-- whatever the session's TimeZone. member_json is one member as GET /members shows it, with its
-- group ids in order. Both are SQL functions the planner inlines.

CREATE FUNCTION api_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"');

CREATE FUNCTION member_json(m members) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'id', m.id, 'first_name', m.first_name, 'last_name', m.last_name, 'phone', m.phone,
    'email', m.email, 'branch_id', m.branch_id, 'opt_in', m.opt_in,
    'opt_in_changed_at', api_ts(m.opt_in_changed_at), 'created_at', api_ts(m.created_at),
    'updated_at', api_ts(m.updated_at),
    'group_ids', ARRAY(SELECT gm.group_id FROM group_members gm WHERE gm.member_id = m.id
                       ORDER BY gm.group_id));
