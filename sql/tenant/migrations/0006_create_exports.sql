-- Full account exports (issue #12): one row per export job; the ZIP itself is a file under
-- YWM_EXPORT_DIR named after the church and this row's id, removed with the row once expired.
-- The row lives in the church's own database, so no other church can ever name it.
CREATE TABLE exports (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status                      text NOT NULL DEFAULT 'queued',
    tables_total                integer NOT NULL DEFAULT 0,
    tables_done                 integer NOT NULL DEFAULT 0,
    rows_done                   bigint NOT NULL DEFAULT 0,
    size_bytes                  bigint,
    manifest                    jsonb,                      -- the manifest.json of a done export
    error                       text,
    created_by                  uuid REFERENCES admins (id) ON DELETE SET NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),  -- heartbeat of a running job
    started_at                  timestamptz,
    finished_at                 timestamptz,
    expires_at                  timestamptz NOT NULL,
    CONSTRAINT exports_status_check CHECK (status IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT exports_counts_nonneg CHECK (
        tables_total >= 0 AND tables_done >= 0 AND rows_done >= 0 AND size_bytes >= 0),
    CONSTRAINT exports_error_len CHECK (char_length(error) <= 500),
    CONSTRAINT exports_manifest_object CHECK (jsonb_typeof(manifest) = 'object')
);
-- At most one export queued or running per church: a second start conflicts (409).
CREATE UNIQUE INDEX exports_one_active_key ON exports ((true)) WHERE status IN ('queued', 'running');
-- Serves: the list, newest first  ORDER BY created_at DESC, id DESC (the expiry sweep reads the
-- few rows a church has whole).
CREATE INDEX exports_recent_idx ON exports (created_at DESC, id DESC);
