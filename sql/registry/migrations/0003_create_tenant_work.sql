-- The outbound work queue: which tenants have messages to send or schedules coming due.
--
-- One row per tenant that ever had work. `due_at` is the earliest moment a worker should look
-- at the tenant (NULL: nothing known); `dirty` is set by every enqueue so a worker releasing its
-- claim never overwrites a newer due time with the one it computed before the enqueue.
-- A worker claims a due, unclaimed (or expired) row with FOR UPDATE SKIP LOCKED and holds it
-- with a lease (`claimed_by`, `claim_expires_at`) that it renews while it drains the tenant.
-- Writes to tenant databases and to this table cannot share a transaction: enqueue happens
-- after the tenant commit, and a periodic reconciliation (see `work_timers`) re-derives
-- `due_at` from the tenant databases, so a lost enqueue only delays work.

CREATE TABLE tenant_work (
    tenant_id           uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    due_at              timestamptz,
    dirty               boolean NOT NULL DEFAULT true,
    claimed_by          text CHECK (length(claimed_by) <= 200),
    claim_expires_at    timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((claimed_by IS NULL) = (claim_expires_at IS NULL))
);
-- the claim query: due rows in due order
CREATE INDEX tenant_work_due_idx ON tenant_work (due_at) WHERE due_at IS NOT NULL;

-- Periodic jobs shared by every worker process: one process wins each round by moving
-- `next_at` forward (e.g. the reconciliation sweep of every active tenant).
CREATE TABLE work_timers (
    name                text PRIMARY KEY CHECK (name ~ '^[a-z_]{1,50}$'),
    next_at             timestamptz NOT NULL DEFAULT now(),
    last_owner          text CHECK (length(last_owner) <= 200)
);
