-- Outbound message index (carrier message id → church) for delivery receipts, and the index the webhook sweeper uses to reclaim events whose processing lease expired.
--
-- Telnyx receipts (message.sent / message.finalized) carry only the carrier's message id, so the
-- sender records which tenant each message belongs to right after POST /v2/messages answers
-- (named query `insert_outbound_index`). A receipt that arrives before that row exists is retried
-- from the webhook inbox with a short backoff. Rows are pruned after their retention period.

CREATE TABLE outbound_message_index (
    carrier_message_id  text PRIMARY KEY CHECK (length(carrier_message_id) BETWEEN 1 AND 128),
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at          timestamptz NOT NULL DEFAULT now()
);
-- the tenants FK cascade
CREATE INDEX outbound_message_index_tenant_idx ON outbound_message_index (tenant_id);
-- retention prune  DELETE ... WHERE created_at < now() - interval
CREATE INDEX outbound_message_index_created_idx ON outbound_message_index (created_at);

-- reclaim events left in 'processing' by a process that died  WHERE state = 'processing' AND next_attempt_at < now()
CREATE INDEX webhook_inbox_processing_idx ON webhook_inbox (next_attempt_at)
    WHERE state = 'processing';
-- retention prune of finished events  WHERE state IN ('done', 'ignored') AND received_at < ...
CREATE INDEX webhook_inbox_finished_idx ON webhook_inbox (received_at)
    WHERE state IN ('done', 'ignored');
