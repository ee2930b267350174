-- Webhook event ids: 1..128 characters, as in every church database's inbound_events and the
-- API contract. An id of 129..255 characters used to be stored and acknowledged, then failed
-- the church database's check on every retry: such ids are now refused at the endpoint (400).
-- Events already stored with one can never be applied: they end `ignored` (event_id_too_long)
-- instead of being retried for a week. NOT VALID keeps those rows (history) without a rewrite.
UPDATE webhook_inbox
SET state = 'ignored', last_error = 'event_id_too_long', processed_at = now()
WHERE length(event_id) > 128 AND state IN ('received', 'failed');

ALTER TABLE webhook_inbox
    DROP CONSTRAINT webhook_inbox_event_id_check,
    ADD CONSTRAINT webhook_inbox_event_id_len CHECK (length(event_id) BETWEEN 1 AND 128) NOT VALID;

-- Serves: the `gave_up` inbox gauge and `ywm inbox list --failed`: events whose retries ran out
CREATE INDEX webhook_inbox_gave_up_idx ON webhook_inbox (provider, received_at)
    WHERE state = 'ignored' AND last_error LIKE 'gave\_up:%';
