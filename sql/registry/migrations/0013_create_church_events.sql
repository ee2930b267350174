-- Live events of every church for `/api/v1/events` (issue 13): a short replay window.
--
-- Each church's events are numbered 1, 2, 3, … by `church_event_seqs`: publishing one upserts
-- the church's row there (a row lock held until the publishing statement commits), so one
-- church's events commit in id order and a client's `last_event_id` leaves no gap behind it.
-- The insert notifies `ywm_events` with `<tenant id> <frame>` (the frame is the JSON the
-- socket sends; only `<tenant id> <id>` when the frame is too large for a notification), so
-- every API process fans it out to its own sockets without reading it back. Rows older than
-- the replay window are deleted by the events housekeeping (events/plugins.py); the sequence
-- rows stay (one per church that ever had an event).

CREATE TABLE church_event_seqs (
    tenant_id  uuid PRIMARY KEY,
    last_id    bigint NOT NULL
);

CREATE TABLE church_events (
    tenant_id   uuid NOT NULL,
    id          bigint NOT NULL,
    type        text NOT NULL,
    frame       text NOT NULL,        -- {"id","type","occurred_at","data"} as sent
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- the prune  DELETE ... WHERE created_at < now() - window
CREATE INDEX church_events_created_idx ON church_events (created_at);

-- Single-use tickets for opening a socket without a cookie (`POST /api/v1/events/ticket`):
-- only the SHA-256 of the ticket is kept; using it deletes the row.
CREATE TABLE event_tickets (
    ticket_hash     bytea PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    admin_id        uuid NOT NULL,
    session_id      uuid NOT NULL,
    role            text NOT NULL,
    valid_after_us  bigint NOT NULL,
    token_exp       bigint NOT NULL,  -- the access token's exp: the socket closes then
    expires_at      timestamptz NOT NULL
);
CREATE INDEX event_tickets_expires_idx ON event_tickets (expires_at);
