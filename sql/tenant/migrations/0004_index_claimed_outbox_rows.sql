-- Claimed rows stay `queued` until just before their own carrier call (then `sending`): a row
-- with a lease but still `queued` was claimed and never tried, so a dead worker's batch goes
-- back to the queue instead of becoming `unknown`.
-- Serves: the worker's next due time  min(lease_expires_at) WHERE state = 'queued' AND lease_expires_at IS NOT NULL
--         and the crash sweep  WHERE state = 'queued' AND lease_expires_at < $1
CREATE INDEX outbox_claimed_lease_idx ON outbox (lease_expires_at)
    WHERE state = 'queued' AND lease_expires_at IS NOT NULL;
-- Serves: the end of every drain  UPDATE broadcasts ... WHERE status = 'sending' AND no row left
CREATE INDEX broadcasts_sending_idx ON broadcasts (id) WHERE status = 'sending';
