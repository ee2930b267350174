-- A church's life (issue 12 parts 1 and 2): suspension and resumption, deletion with a grace
-- period and a resumable teardown.
--
-- `suspended_by`: who suspended a `suspended` church: `operator` (`ywm tenants suspend`, only
-- an operator resumes it) or `billing` (the housekeeping round, after sending was stopped for
-- billing reasons YWM_BILLING_SUSPEND_AFTER_DAYS; a subscription that becomes active again
-- resumes it). NULL whenever the church is not suspended.
-- `deletion_due_at`, `deletion_requested_by`: a scheduled deletion (the owner's
-- `POST /api/v1/account/deletion`, 30 days ahead); NULL when none is scheduled.
-- `teardown_step`: the last teardown step finished (status `deleting`); the job starts again
-- after it, every step being safe to run twice.
-- `teardown_owner`, `teardown_claimed_until`: one process tears a church down at a time (a
-- claim that a crashed process's loses when it expires).
-- `deleted_at`: when the teardown finished; the row is then a tombstone without personal data.
--
-- `tenant_transitions`: every change of a church's life, who (`operator:<name>`, `billing`,
-- `admin:<id>`, `worker`), when and why.

ALTER TABLE tenants
    ADD COLUMN suspended_by text CHECK (suspended_by IN ('operator', 'billing')),
    ADD COLUMN deletion_due_at timestamptz,
    ADD COLUMN deletion_requested_by text CHECK (length(deletion_requested_by) <= 100),
    ADD COLUMN teardown_step text CHECK (length(teardown_step) <= 40),
    ADD COLUMN teardown_owner text CHECK (length(teardown_owner) <= 200),
    ADD COLUMN teardown_claimed_until timestamptz,
    ADD COLUMN deleted_at timestamptz;

-- the worker's search for deletions due
CREATE INDEX tenants_deletion_due_idx ON tenants (deletion_due_at)
    WHERE deletion_due_at IS NOT NULL;

CREATE TABLE tenant_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('suspend', 'resume', 'deletion_scheduled',
                                                'deletion_canceled', 'teardown_started',
                                                'deleted')),
    old_status  text,
    new_status  text NOT NULL,
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 100),
    reason      text CHECK (length(reason) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- a church's history, oldest first
CREATE INDEX tenant_transitions_tenant_idx ON tenant_transitions (tenant_id, id);
