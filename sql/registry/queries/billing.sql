-- name: billing_state :one
-- A church's billing state (plan, cycle, subscription status and dates) and its time zone.
SELECT id, plan, billing_cycle, subscription_status, trial_ends_at, current_period_end,
       cancel_at_period_end, past_due_since, stripe_customer_id, stripe_subscription_id,
       stripe_subscription_created, billing_version, time_zone, status AS tenant_status
FROM tenants WHERE id = $1;

-- name: billing_lock_state :one
-- A church's billing state, locked until the transaction ends (one change at a time).
SELECT id, plan, billing_cycle, subscription_status, trial_ends_at, current_period_end,
       cancel_at_period_end, past_due_since, stripe_customer_id, stripe_subscription_id,
       stripe_subscription_created, billing_version, time_zone, status AS tenant_status
FROM tenants WHERE id = $1 FOR UPDATE;

-- name: billing_set_state :val
-- Store a church's new billing state and bump its billing version; the new version.
UPDATE tenants
SET plan = $2, billing_cycle = $3, subscription_status = $4, trial_ends_at = $5,
    current_period_end = $6, cancel_at_period_end = $7, past_due_since = $8,
    stripe_customer_id = $9, stripe_subscription_id = $10, stripe_subscription_created = $11,
    billing_version = billing_version + 1
WHERE id = $1
RETURNING billing_version;

-- name: billing_record :exec
-- Record one billing change: version reached, its source and Stripe event, old and new state.
INSERT INTO billing_history (tenant_id, version, source, event_id, old_state, new_state)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb);

-- name: billing_history :many
-- A church's billing changes, oldest first.
SELECT version, source, event_id, old_state, new_state, created_at
FROM billing_history WHERE tenant_id = $1 ORDER BY version, id;

-- name: billing_trials_ending :many
-- Active churches whose trial ends after $2 (now) but by $1 and who were not yet told.
SELECT id, trial_ends_at FROM tenants
WHERE subscription_status = 'trialing' AND trial_email_sent_at IS NULL
  AND trial_ends_at <= $1 AND trial_ends_at > $2 AND status = 'active'
ORDER BY trial_ends_at
LIMIT 500;

-- name: billing_claim_trial_email :val
-- Mark church $1 told that its trial ends (once per trial); NULL when already told.
UPDATE tenants SET trial_email_sent_at = now()
WHERE id = $1 AND trial_email_sent_at IS NULL
RETURNING id;

-- name: billing_unclaim_trial_email :exec
-- Forget that church $1 was told (its email could not be sent; the next round tries again).
UPDATE tenants SET trial_email_sent_at = NULL WHERE id = $1;

-- name: billing_tenant_for_customer :val
-- The church whose Stripe customer is $1 (Stripe webhooks are routed by it).
SELECT id FROM tenants WHERE stripe_customer_id = $1;
