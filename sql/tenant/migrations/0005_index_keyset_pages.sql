-- Indexes for two keyset lists that had none in their order, so that every page reads its own
-- rows and no more, however deep (tests/integration/test_keyset_plans.py checks each list).
-- Serves: a broadcast's recipients  WHERE broadcast_id = $1 AND id > $cursor ORDER BY id
CREATE INDEX outbox_broadcast_recipients_idx ON outbox (broadcast_id, id)
    WHERE broadcast_id IS NOT NULL;
-- Serves: the inbox of every status  ORDER BY last_message_at DESC, id DESC  (the status filter
-- alone is served by conversations_inbox_idx)
CREATE INDEX conversations_recent_idx ON conversations (last_message_at DESC, id DESC);
