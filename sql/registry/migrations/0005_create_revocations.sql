-- Token revocations pushed to every API process, so that no request has to ask a church's database whether its access token still stands.
--
-- A row says either "session S is revoked" (logout, refresh-token reuse, a revoked family) or
-- "admin A's access tokens issued while A's tokens_valid_after was below V are refused"
-- (password change or reset, MFA turned on or off, a role change, the admin removed). The row is
-- written inside the church-database transaction that makes the change, before it commits, and
-- its insert notifies `ywm_revoked` with the row as JSON; every process keeps the live rows in
-- an in-memory deny-list and re-reads recent rows after a reconnect (auth/revocations.py). A row
-- matters only while a token issued before it can still be alive, so it expires after the
-- access-token lifetime plus the clock leeway, and expired rows are deleted.

CREATE TABLE revocations (
    id              bigserial PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('session', 'admin')),
    subject         uuid NOT NULL,                 -- the session (refresh family) or the admin
    valid_after_us  bigint,                        -- admin: the new tokens_valid_after, epoch µs
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    CHECK ((kind = 'admin') = (valid_after_us IS NOT NULL))
);
-- the catch-up read  WHERE created_at >= $1 AND expires_at > now()
CREATE INDEX revocations_created_idx ON revocations (created_at);
-- the sweep  DELETE ... WHERE expires_at < now()
CREATE INDEX revocations_expires_idx ON revocations (expires_at);
