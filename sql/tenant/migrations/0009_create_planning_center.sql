-- Planning Center (issue 14): the church's OAuth connection, its sync runs, and the members
-- and groups a sync brought in.
--
-- `pco_connection` is one row: tokens sealed with SecretBox (purpose `pco_access` /
-- `pco_refresh`), the pending authorization (state nonce, sealed PKCE verifier, the admin who
-- asked, until when) and the incremental cursor (`cursor_updated_at`: the largest updated_at
-- a finished sync saw). `pco_sync_runs` is the report of each run (like `imports`).
-- A person removed in Planning Center marks the member (`pco_removed_at`), never deletes it.

CREATE TABLE pco_connection (
    id                    boolean PRIMARY KEY DEFAULT true,
    status                text NOT NULL DEFAULT 'pending',
    organization_id       text,
    organization_name     text,
    access_sealed         bytea,
    refresh_sealed        bytea,
    expires_at            timestamptz,
    scope                 text,
    connected_by          uuid REFERENCES admins (id) ON DELETE SET NULL,
    connected_at          timestamptz,
    pending_nonce         text,
    pending_verifier      bytea,
    pending_admin         uuid REFERENCES admins (id) ON DELETE SET NULL,
    pending_until         timestamptz,
    sync_lists            boolean NOT NULL DEFAULT false,
    cursor_updated_at     timestamptz,
    last_error            text,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pco_connection_single_row CHECK (id),
    CONSTRAINT pco_connection_status CHECK (status IN ('pending', 'connected', 'disconnected')),
    CONSTRAINT pco_connection_error_len CHECK (char_length(last_error) <= 1000)
);

CREATE TABLE pco_sync_runs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL,
    trigger         text NOT NULL,
    status          text NOT NULL DEFAULT 'queued',
    fetched         integer NOT NULL DEFAULT 0,
    created         integer NOT NULL DEFAULT 0,
    updated         integer NOT NULL DEFAULT 0,
    skipped         integer NOT NULL DEFAULT 0,
    removed         integer NOT NULL DEFAULT 0,
    errors          jsonb NOT NULL DEFAULT '[]'::jsonb,
    requests        integer NOT NULL DEFAULT 0,
    created_by      uuid REFERENCES admins (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pco_sync_runs_kind CHECK (kind IN ('full', 'incremental')),
    CONSTRAINT pco_sync_runs_trigger CHECK (trigger IN ('connect', 'schedule', 'manual', 'webhook')),
    CONSTRAINT pco_sync_runs_status CHECK (status IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT pco_sync_runs_errors_array CHECK (jsonb_typeof(errors) = 'array')
);
-- Serves: the latest run  ORDER BY created_at DESC LIMIT 1; the queued/running one
CREATE INDEX pco_sync_runs_created_idx ON pco_sync_runs (created_at);

ALTER TABLE members ADD COLUMN pco_person_id text;
ALTER TABLE members ADD COLUMN pco_removed_at timestamptz;
-- Serves: the sync's match  WHERE pco_person_id = ANY($1); removal  WHERE pco_person_id = $1
CREATE UNIQUE INDEX members_pco_person_key ON members (pco_person_id);

ALTER TABLE groups ADD COLUMN pco_list_id text;
-- Serves: lists mapped to groups  WHERE pco_list_id = ANY($1)
CREATE UNIQUE INDEX groups_pco_list_key ON groups (pco_list_id);

ALTER TABLE consent_events DROP CONSTRAINT consent_events_source_check;
ALTER TABLE consent_events ADD CONSTRAINT consent_events_source_check
    CHECK (source IN ('sms_keyword', 'admin', 'import', 'api', 'carrier', 'planning_center'));

-- Serves: one run at a time  (pco_queue_run's ON CONFLICT)
CREATE UNIQUE INDEX pco_sync_runs_one_active ON pco_sync_runs ((true))
    WHERE status IN ('queued', 'running');
