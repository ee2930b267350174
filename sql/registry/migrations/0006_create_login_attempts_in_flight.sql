-- Login attempts whose password check is still running: reserved on a throttle key, not decided.
--
-- A reservation is counted as a failure in login_throttle at once (so a burst cannot outrun the
-- lock) and leaves one row here per key until it is decided (success, failure, never checked).
-- An attempt refused only while others on its keys are in flight waits for them to be decided
-- instead of answering 429 (auth/throttle.py). A row outlives a crashed process only until
-- expires_at: after that its attempt counts as the failure it was reserved as.

CREATE TABLE login_attempts_in_flight (
    attempt     uuid NOT NULL,
    key         text NOT NULL CHECK (length(key) <= 300),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (attempt, key)
);
-- attempts in flight on some keys  WHERE key = ANY($1) AND expires_at > now()
CREATE INDEX login_attempts_in_flight_key_idx ON login_attempts_in_flight (key, expires_at);
-- the sweep of rows left by crashed processes  WHERE expires_at < now() - ...
CREATE INDEX login_attempts_in_flight_expires_idx ON login_attempts_in_flight (expires_at);
