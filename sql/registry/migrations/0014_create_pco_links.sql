-- Planning Center (issue 14): which church a Planning Center organization is connected to,
-- the authenticity secrets of its webhook subscriptions (sealed JSON {event name: secret},
-- SecretBox purpose `pco_webhooks`), and the sync schedule the runners claim from.
--
-- `next_sync_at` is when the church's next sync is due (a webhook or `POST …/sync` sets it to
-- now, `due_reason` says which); `claimed_until` is a runner's hold on it. `removed_ids` are Planning Center person ids
-- whose `person.destroyed` webhook arrived: kept here before the webhook is answered, marked
-- by the next sync.

CREATE TABLE pco_links (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    organization_id    text NOT NULL,
    webhook_secrets    bytea,
    next_sync_at       timestamptz NOT NULL DEFAULT now(),
    claimed_until      timestamptz,
    removed_ids        text[] NOT NULL DEFAULT '{}',
    due_reason         text NOT NULL DEFAULT 'schedule',
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pco_links_organization_key UNIQUE (organization_id),
    CONSTRAINT pco_links_due_reason CHECK (due_reason IN ('schedule', 'webhook'))
);
-- Serves: the runners' claim  WHERE next_sync_at <= now()
CREATE INDEX pco_links_due_idx ON pco_links (next_sync_at);
