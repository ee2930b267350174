-- Delivery receipts can be lost (the carrier retries a webhook for seconds only), so a message
-- left `sent` is looked up at the carrier later: status_check_at is when the next lookup is due
-- (NULL: none planned), status_checks how many were made. Set when the send is recorded,
-- cleared when a receipt or a lookup settles the row.
ALTER TABLE outbox
    ADD COLUMN status_check_at timestamptz,
    ADD COLUMN status_checks smallint NOT NULL DEFAULT 0,
    ADD CONSTRAINT outbox_status_checks_range CHECK (status_checks BETWEEN 0 AND 100);

-- Serves: lookups due  WHERE state = 'sent' AND status_check_at <= $1 ORDER BY status_check_at
--         and the worker's next due time  min(status_check_at)
CREATE INDEX outbox_status_check_idx ON outbox (status_check_at)
    WHERE state = 'sent' AND status_check_at IS NOT NULL;
