-- 10DLC registration: the church's brand and campaign rows (tenant 0007). A change of the
-- brand's status also sets settings.brand_status (what GET /church shows) in one statement.
-- A carrier status applies only when it is not older than the one shown (`status_at`).

-- name: cp_brand :one
-- The church's 10DLC brand (NULL: never registered).
SELECT * FROM tendlc_brand WHERE id;

-- name: cp_campaign :one
-- The church's 10DLC campaign (NULL: never submitted).
SELECT * FROM tendlc_campaign WHERE id;

-- name: cp_lock_brand :one
-- The brand row, locked until the transaction ends (one registration at a time).
SELECT * FROM tendlc_brand WHERE id FOR UPDATE;

-- name: cp_lock_campaign :one
-- The campaign row, locked until the transaction ends (one submission at a time).
SELECT * FROM tendlc_campaign WHERE id FOR UPDATE;

-- name: cp_begin_brand :one
-- Brand details $1..$5 (entity type, vertical, display name, email, phone) saved and marked `submitting` (the carrier is being asked); the carrier's id is kept for a resubmission.
WITH b AS (
    INSERT INTO tendlc_brand (id, entity_type, vertical, display_name, email, phone, status)
    VALUES (true, $1, $2, $3, $4, $5, 'submitting')
    ON CONFLICT (id) DO UPDATE
    SET entity_type = $1, vertical = $2, display_name = $3, email = $4, phone = $5,
        status = 'submitting', failure_reasons = NULL, submitted_at = now(), updated_at = now()
    RETURNING *
), s AS (
    UPDATE settings SET brand_status = 'pending', updated_at = now() WHERE id
)
SELECT * FROM b;

-- name: cp_brand_submitted :one
-- The carrier took the brand as $1 (TCR id $2) with status $3, identity $4, reasons $5 at $6.
WITH b AS (
    UPDATE tendlc_brand
    SET carrier_brand_id = $1, tcr_brand_id = coalesce($2, tcr_brand_id), status = $3,
        identity_status = $4, failure_reasons = $5, status_at = $6, updated_at = now()
    WHERE id
    RETURNING *
), s AS (
    UPDATE settings SET brand_status = (SELECT status FROM b), updated_at = now() WHERE id
)
SELECT * FROM b;

-- name: cp_brand_restore :exec
-- The carrier refused or did not answer: back to status $1 (the brand's status before), or no row when there was none ($1 NULL).
WITH d AS (
    DELETE FROM tendlc_brand WHERE id AND $1::text IS NULL AND carrier_brand_id IS NULL
), u AS (
    UPDATE tendlc_brand SET status = $1, updated_at = now() WHERE id AND $1::text IS NOT NULL
)
UPDATE settings SET brand_status = coalesce($1, 'not_registered'), updated_at = now() WHERE id;

-- name: cp_apply_brand :val
-- Carrier status $2 (identity $3, reasons $4, TCR id $5) of brand $1 at $6, unless a newer one is shown; the status now (NULL: not ours or older).
WITH b AS (
    UPDATE tendlc_brand
    SET status = $2, identity_status = coalesce($3, identity_status), failure_reasons = $4,
        tcr_brand_id = coalesce($5, tcr_brand_id), status_at = $6, updated_at = now()
    WHERE carrier_brand_id = $1 AND status <> 'submitting'
      AND (status_at IS NULL OR status_at <= $6)
    RETURNING status
), s AS (
    UPDATE settings SET brand_status = (SELECT status FROM b), updated_at = now()
    WHERE id AND EXISTS (SELECT 1 FROM b)
)
SELECT status FROM b;

-- name: cp_begin_campaign :one
-- Campaign details $1..$7 (use case, description, message flow, samples, help, opt-in, opt-out texts) saved as `submitting`; a rejected campaign's carrier id is dropped (a new one is made).
INSERT INTO tendlc_campaign (id, usecase, description, message_flow, sample_messages,
                             help_message, optin_message, optout_message, status)
VALUES (true, $1, $2, $3, $4, $5, $6, $7, 'submitting')
ON CONFLICT (id) DO UPDATE
SET usecase = $1, description = $2, message_flow = $3, sample_messages = $4,
    help_message = $5, optin_message = $6, optout_message = $7, status = 'submitting',
    carrier_campaign_id = NULL, tcr_campaign_id = NULL, carrier_status = NULL,
    failure_reasons = NULL, assigned_number = NULL, assignment_status = NULL,
    status_at = NULL, submitted_at = now(), updated_at = now()
RETURNING *;

-- name: cp_campaign_submitted :one
-- The carrier took the campaign as $1 (TCR id $2) with our status $3, its status $4, reasons $5 at $6.
UPDATE tendlc_campaign
SET carrier_campaign_id = $1, tcr_campaign_id = $2, status = $3, carrier_status = $4,
    failure_reasons = $5, status_at = $6, updated_at = now()
WHERE id
RETURNING *;

-- name: cp_campaign_restore :exec
-- The carrier refused or did not answer: drop the campaign being submitted.
DELETE FROM tendlc_campaign WHERE id AND status = 'submitting';

-- name: cp_apply_campaign :val
-- Our status $2 (carrier's $3, reasons $4, TCR id $5) of campaign $1 at $6 unless a newer one is shown; the status now (NULL: not ours or older).
UPDATE tendlc_campaign
SET status = $2, carrier_status = $3, failure_reasons = $4,
    tcr_campaign_id = coalesce($5, tcr_campaign_id), status_at = $6, updated_at = now()
WHERE carrier_campaign_id = $1 AND status <> 'submitting'
  AND (status_at IS NULL OR status_at <= $6)
RETURNING status;

-- name: cp_set_assignment :val
-- Number $2 of campaign $1 is now `pending`, `assigned` or `failed` ($3; reasons $4 when failed).
UPDATE tendlc_campaign
SET assigned_number = $2, assignment_status = $3,
    failure_reasons = CASE WHEN $3 = 'failed' THEN $4 ELSE failure_reasons END,
    updated_at = now()
WHERE carrier_campaign_id = $1
RETURNING assignment_status;

-- name: cp_sending_hold :val
-- Why the church may not send now because of its campaign (`suspended`, `expired`), or NULL.
SELECT status FROM tendlc_campaign WHERE id AND status IN ('suspended', 'expired');
