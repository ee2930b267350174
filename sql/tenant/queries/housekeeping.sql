-- name: hk_sweep :one
-- Delete up to $3 rows of each kind that outlived its use: denylisted access-token ids past
-- their exp (the token is refused by its exp alone), sessions that expired more than $1 days ago
-- (their refresh tokens cascade), password reset tokens expired more than $1 days ago, and
-- applied carrier event ids older than $2 days (Telnyx redelivers for seconds and webhooks
-- older than 300 s fail verification). How many of each went.
WITH jtis AS (
    DELETE FROM revoked_access_tokens WHERE jti IN (
        SELECT jti FROM revoked_access_tokens WHERE expires_at < now() LIMIT $3)
    RETURNING 1
), sessions AS (
    DELETE FROM refresh_token_families WHERE id IN (
        SELECT id FROM refresh_token_families
        WHERE expires_at < now() - make_interval(days => $1::integer) LIMIT $3)
    RETURNING 1
), resets AS (
    DELETE FROM password_reset_tokens WHERE id IN (
        SELECT id FROM password_reset_tokens
        WHERE expires_at < now() - make_interval(days => $1::integer) LIMIT $3)
    RETURNING 1
), events AS (
    DELETE FROM inbound_events WHERE carrier_event_id IN (
        SELECT carrier_event_id FROM inbound_events
        WHERE received_at < now() - make_interval(days => $2::integer) LIMIT $3)
    RETURNING 1
)
SELECT (SELECT count(*) FROM jtis)::int AS revoked_access_tokens,
       (SELECT count(*) FROM sessions)::int AS sessions,
       (SELECT count(*) FROM resets)::int AS password_reset_tokens,
       (SELECT count(*) FROM events)::int AS inbound_events;
