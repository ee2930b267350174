-- Initial registry schema: database servers, tenants, phone and login directories, login
-- throttling, the durable webhook inbox, and migration runs with one result row per tenant.

CREATE TABLE db_servers (
    id                  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    host                text NOT NULL CHECK (length(host) BETWEEN 1 AND 255),
    port                integer NOT NULL DEFAULT 5432 CHECK (port BETWEEN 1 AND 65535),
    admin_user          text NOT NULL CHECK (length(admin_user) BETWEEN 1 AND 63),
    admin_password_enc  bytea,                      -- sealed with YWM_SECRET_KEY; NULL = none
    maintenance_db      text NOT NULL DEFAULT 'postgres',
    template_db         text NOT NULL CHECK (template_db ~ '^[a-z_][a-z0-9_]{0,62}$'),
    template_version    integer NOT NULL DEFAULT 0 CHECK (template_version >= 0),
    state               text NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'draining', 'down')),
    max_tenants         integer NOT NULL DEFAULT 500 CHECK (max_tenants > 0),
    conn_budget         integer NOT NULL CHECK (conn_budget > 0),
    max_connections     integer CHECK (max_connections > 0),  -- as read from the server
    weight              integer NOT NULL DEFAULT 100 CHECK (weight > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (host, port)
);

CREATE TABLE tenants (
    id                      uuid PRIMARY KEY,
    name                    text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    status                  text NOT NULL DEFAULT 'provisioning'
                            CHECK (status IN ('provisioning', 'active', 'suspended',
                                              'deleting', 'deleted')),
    status_reason           text,
    server_id               integer NOT NULL REFERENCES db_servers (id) ON DELETE RESTRICT,
    db_name                 text NOT NULL CHECK (db_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    db_role                 text NOT NULL UNIQUE CHECK (db_role ~ '^[a-z_][a-z0-9_]{0,62}$'),
    db_password_enc         bytea NOT NULL,
    schema_version          integer NOT NULL DEFAULT 0 CHECK (schema_version >= 0),
    plan                    text NOT NULL DEFAULT 'trial'
                            CHECK (plan IN ('trial', 'starter', 'growth', 'pro')),
    subscription_status     text NOT NULL DEFAULT 'trialing'
                            CHECK (subscription_status IN ('trialing', 'active', 'past_due',
                                   'canceled', 'unpaid', 'incomplete', 'incomplete_expired',
                                   'paused')),
    stripe_customer_id      text UNIQUE,
    stripe_subscription_id  text UNIQUE,
    trial_ends_at           timestamptz,
    current_period_end      timestamptz,
    time_zone               text NOT NULL DEFAULT 'America/New_York',
    row_version             bigint NOT NULL DEFAULT 1,   -- bumped on every change (cache keys)
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (server_id, db_name)
);
-- placement (count per server) and `ywm migrate` (tenants of a server)
CREATE INDEX tenants_server_status_idx ON tenants (server_id, status);
-- `ywm tenants list` ordered by creation
CREATE INDEX tenants_created_idx ON tenants (created_at, id);

-- Every change to a tenant row bumps its version and tells listening processes (cache
-- invalidation, see tenants/supervisor.py).
CREATE FUNCTION tenants_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.row_version := OLD.row_version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER tenants_touch BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_touch();

CREATE FUNCTION tenants_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ywm_tenant_changed', COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_notify AFTER UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_notify();

CREATE TABLE phone_numbers (
    e164                text PRIMARY KEY CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    carrier_number_id   text UNIQUE,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'releasing')),
    assigned_at         timestamptz NOT NULL DEFAULT now()
);
-- a church's numbers
CREATE INDEX phone_numbers_tenant_idx ON phone_numbers (tenant_id);

CREATE TABLE admin_logins (
    email       text PRIMARY KEY CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    admin_id    uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, admin_id)
);

-- Failed-login counters shared by every process; key is 'email:<normalized>' or 'ip:<addr>'.
CREATE TABLE login_throttle (
    key                 text PRIMARY KEY CHECK (length(key) <= 300),
    failures            integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    first_failure_at    timestamptz NOT NULL DEFAULT now(),
    last_failure_at     timestamptz NOT NULL DEFAULT now(),
    locked_until        timestamptz
);
-- sweeping old counters
CREATE INDEX login_throttle_last_idx ON login_throttle (last_failure_at);

-- Webhooks are stored here before they are acknowledged, then processed.
CREATE TABLE webhook_inbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider        text NOT NULL CHECK (provider IN ('telnyx', 'stripe')),
    event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    event_type      text NOT NULL,
    tenant_id       uuid REFERENCES tenants (id) ON DELETE SET NULL,
    occurred_at     timestamptz,
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'received'
                    CHECK (state IN ('received', 'processing', 'done', 'failed', 'ignored')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    UNIQUE (provider, event_id)
);
-- the processor's claim query: due events not yet done
CREATE INDEX webhook_inbox_due_idx ON webhook_inbox (next_attempt_at, id)
    WHERE state IN ('received', 'failed');

CREATE TABLE migration_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    target_version  integer NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    resumed_from    bigint REFERENCES migration_runs (id) ON DELETE SET NULL,
    host            text,
    pid             integer,
    tenants_total   integer NOT NULL DEFAULT 0,
    tenants_ok      integer NOT NULL DEFAULT 0,
    tenants_failed  integer NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

CREATE TABLE migration_results (
    run_id          bigint NOT NULL REFERENCES migration_runs (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    server_id       integer NOT NULL REFERENCES db_servers (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'ok', 'failed', 'skipped')),
    from_version    integer,
    to_version      integer,
    error           text,
    started_at      timestamptz,
    finished_at     timestamptz,
    duration_ms     integer,
    PRIMARY KEY (run_id, tenant_id)
);
-- --resume / --retry-failed: a run's rows by status
CREATE INDEX migration_results_status_idx ON migration_results (run_id, status);
-- a tenant's history
CREATE INDEX migration_results_tenant_idx ON migration_results (tenant_id);
