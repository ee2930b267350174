-- A church's billing state (issue 11): its plan, cycle and subscription status on its tenants
-- row (plan, subscription_status, the Stripe ids, trial_ends_at and current_period_end exist
-- since 0001), and every change in `billing_history`.
--
-- `plan` is a catalogue code (billing/catalogue.py, replaceable per deployment) instead of a
-- fixed list; the old `trial` plan is `starter` while `trialing` (a trial has starter limits).
-- `billing_version` counts billing changes (each has a history row with the same version);
-- `stripe_subscription_created` and `current_period_end` order Stripe snapshots, so an older
-- one is never applied over a newer (billing/state.py, apply_subscription).
--
-- Existing churches never paid (the old system charged nothing): each church still trialing
-- gets a trial of 14 days from this migration, or its own if that ends later, so no church
-- stops sending the moment this release lands.

ALTER TABLE tenants DROP CONSTRAINT tenants_plan_check;
UPDATE tenants SET plan = 'starter' WHERE plan = 'trial';
ALTER TABLE tenants
    ALTER COLUMN plan SET DEFAULT 'starter',
    ADD CONSTRAINT tenants_plan_code CHECK (plan ~ '^[a-z][a-z0-9_]{0,31}$'),
    ADD COLUMN billing_cycle text CHECK (billing_cycle IN ('monthly', 'annual')),
    ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false,
    ADD COLUMN past_due_since timestamptz,
    ADD COLUMN stripe_subscription_created timestamptz,
    ADD COLUMN trial_email_sent_at timestamptz,
    ADD COLUMN billing_version bigint NOT NULL DEFAULT 1 CHECK (billing_version >= 1);

UPDATE tenants
SET trial_ends_at = GREATEST(COALESCE(trial_ends_at, now()), now() + interval '14 days')
WHERE subscription_status = 'trialing' AND stripe_subscription_id IS NULL
  AND status NOT IN ('deleting', 'deleted');

CREATE TABLE billing_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version         bigint NOT NULL,           -- tenants.billing_version after the change
    source          text NOT NULL CHECK (source IN ('signup', 'migration', 'stripe',
                                                    'operator', 'housekeeping')),
    event_id        text CHECK (length(event_id) BETWEEN 1 AND 255),   -- the Stripe event
    old_state       jsonb,                     -- NULL for the first row
    new_state       jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, version)
);

INSERT INTO billing_history (tenant_id, version, source, new_state)
SELECT id, billing_version, 'migration',
       jsonb_build_object('plan', plan, 'status', subscription_status,
                          'trial_ends_at', trial_ends_at)
FROM tenants;

-- Serves: the housekeeping round's trial-ending emails (trials ending soon, not yet told)
CREATE INDEX tenants_trial_email_idx ON tenants (trial_ends_at)
    WHERE subscription_status = 'trialing' AND trial_email_sent_at IS NULL;
