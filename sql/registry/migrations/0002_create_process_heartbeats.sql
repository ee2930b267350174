-- Live service processes and what each may claim of every database server's connection budget.
-- A process (api, worker, cli) upserts its row every YWM_HEARTBEAT_INTERVAL seconds; a server's
-- conn_budget is split among processes with a fresh heartbeat in proportion to their weight
-- (see tenants/budget.py). Rows of dead processes go stale and are pruned.

CREATE TABLE process_heartbeats (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('api', 'worker', 'cli')),
    host            text NOT NULL CHECK (length(host) BETWEEN 1 AND 255),
    pid             integer NOT NULL CHECK (pid > 0),
    weight          integer NOT NULL DEFAULT 1 CHECK (weight > 0),
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    -- {"<server id>": connections this process's open tenant pools may use on that server}
    claims          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(claims) = 'object')
);
-- the fresh-weight sum and the pruning of stale rows
CREATE INDEX process_heartbeats_heartbeat_idx ON process_heartbeats (heartbeat_at);
