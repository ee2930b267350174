-- name: insert_inbox_event :val
-- Store a verified webhook before acknowledging it; NULL when this event id was stored before.
INSERT INTO webhook_inbox (provider, event_id, event_type, occurred_at, payload)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (provider, event_id) DO NOTHING
RETURNING id;

-- name: claim_inbox_event :one
-- Take one stored event for processing (lease: next_attempt_at moves $2 seconds ahead).
UPDATE webhook_inbox
SET state = 'processing', attempts = attempts + 1,
    next_attempt_at = now() + make_interval(secs => $2::double precision)
WHERE id = $1 AND state IN ('received', 'failed')
RETURNING id, provider, event_id, event_type, occurred_at, payload, attempts, tenant_id;

-- name: claim_due_inbox_events :many
-- Take up to $2 due events of provider $1 (received, or failed whose backoff has passed).
UPDATE webhook_inbox w
SET state = 'processing', attempts = w.attempts + 1,
    next_attempt_at = now() + make_interval(secs => $3::double precision)
WHERE w.id IN (
    SELECT id FROM webhook_inbox
    WHERE state IN ('received', 'failed') AND next_attempt_at <= now() AND provider = $1
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING w.id, w.provider, w.event_id, w.event_type, w.occurred_at, w.payload, w.attempts,
          w.tenant_id;

-- name: requeue_stale_inbox_events :val
-- Events left in 'processing' past their lease (the process died) become due again.
WITH stale AS (
    UPDATE webhook_inbox
    SET state = 'failed', next_attempt_at = now(), last_error = 'processing_lease_expired'
    WHERE state = 'processing' AND next_attempt_at < now() AND provider = $1
    RETURNING 1)
SELECT count(*) FROM stale;

-- name: finish_inbox_event :exec
-- Record the end of processing: $2 is 'done' or 'ignored' (with the reason in $4).
UPDATE webhook_inbox
SET state = $2, tenant_id = coalesce($3, tenant_id), last_error = $4, processed_at = now()
WHERE id = $1 AND state = 'processing';

-- name: retry_inbox_event :exec
-- Processing failed for now: due again in $4 seconds (tenant down, receipt not yet indexed).
UPDATE webhook_inbox
SET state = 'failed', tenant_id = coalesce($2, tenant_id), last_error = $3,
    next_attempt_at = now() + make_interval(secs => $4::double precision)
WHERE id = $1 AND state = 'processing';

-- name: get_inbox_event :one
-- One stored event by provider and event id (operators and tests).
SELECT id, provider, event_id, event_type, tenant_id, occurred_at, state, attempts,
       next_attempt_at, last_error, received_at, processed_at
FROM webhook_inbox
WHERE provider = $1 AND event_id = $2;

-- name: inbox_backlog :many
-- Events of every provider not finished yet, per state, plus those given up (`gave_up`), and how long the oldest due one has waited.
SELECT state, count(*)::int AS events,
       coalesce(extract(epoch FROM now() - min(next_attempt_at)
                FILTER (WHERE next_attempt_at <= now())), 0)::float8 AS oldest_due_s
FROM webhook_inbox
WHERE state IN ('received', 'failed', 'processing')
GROUP BY state
UNION ALL
SELECT 'gave_up', count(*)::int, 0::float8
FROM webhook_inbox
WHERE state = 'ignored' AND last_error LIKE 'gave\_up:%';

-- name: list_inbox_events :many
-- Operators: the newest $2 stored events, only failed ones (waiting for a retry, or given up) when $1.
SELECT id, provider, event_id, event_type, tenant_id, state, attempts, next_attempt_at,
       last_error, received_at, processed_at
FROM webhook_inbox
WHERE NOT $1::boolean OR state = 'failed'
      OR (state = 'ignored' AND last_error LIKE 'gave\_up:%')
ORDER BY received_at DESC, id DESC
LIMIT $2;

-- name: requeue_inbox_events :many
-- Operators: events $1 (failed or ignored), or every failed one when $2, are due again now with a fresh count of attempts.
UPDATE webhook_inbox
SET state = 'received', attempts = 0, next_attempt_at = now(), processed_at = NULL
WHERE (id = ANY($1::bigint[]) AND state IN ('failed', 'ignored'))
   OR ($2::boolean AND (state = 'failed'
                        OR (state = 'ignored' AND last_error LIKE 'gave\_up:%')))
RETURNING id, provider, event_id, event_type;

-- name: prune_inbox_events :val
-- Delete finished events received more than $1 days ago.
WITH gone AS (
    DELETE FROM webhook_inbox
    WHERE state IN ('done', 'ignored')
      AND received_at < now() - make_interval(days => $1::integer)
    RETURNING 1)
SELECT count(*) FROM gone;

-- name: insert_outbound_index :exec
-- Remember which church sent carrier message $1 (called by the sender right after the send).
INSERT INTO outbound_message_index (carrier_message_id, tenant_id)
VALUES ($1, $2)
ON CONFLICT (carrier_message_id) DO NOTHING;

-- name: insert_outbound_index_many :exec
-- Remember which church sent each carrier message in $1 (a batch from one tenant $2).
INSERT INTO outbound_message_index (carrier_message_id, tenant_id)
SELECT id, $2 FROM unnest($1::text[]) AS id
ON CONFLICT (carrier_message_id) DO NOTHING;

-- name: tenant_for_carrier_message :val
-- The church that sent carrier message $1 (delivery receipt routing).
SELECT tenant_id FROM outbound_message_index WHERE carrier_message_id = $1;

-- name: prune_outbound_index :val
-- Delete index rows older than $1 days (receipts come within hours).
WITH gone AS (
    DELETE FROM outbound_message_index
    WHERE created_at < now() - make_interval(days => $1::integer)
    RETURNING 1)
SELECT count(*) FROM gone;
