-- Timestamps as the API writes them, for JSON built by PostgreSQL: list routes pass a page through as text instead of turning every row into a Python dict and back.
--
-- api_ts writes a timestamp as the API always has (RFC 3339, UTC, microseconds, "+00:00"),
-- whatever the session's TimeZone: a SQL function the planner inlines. (A function building a
-- whole member from its row was tried and measured twice as slow: a function with a sub-select
-- is not inlined, so it ran once per row; the list statements build the object themselves.)

CREATE FUNCTION api_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"');
