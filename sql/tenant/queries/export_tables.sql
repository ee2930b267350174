-- The full export's allow-lists: one query per exported table, `export_table_<table>`, naming
-- every column that goes into `<table>.csv` (church/export_tables.py streams each through
-- COPY ... TO STDOUT). A column is exported only if it is named here, so a secret column added
-- later stays out until someone decides otherwise; a new table fails test_exports until it is
-- exported here or excluded (with its reason) in church/export_tables.py.
-- Left out on purpose: admins.password_hash, invitation_token_hash (secrets), their expiry,
-- password_changed_at and tokens_valid_after (session plumbing); settings.ein_encrypted (sealed;
-- ein_last4 is exported);
-- outbox lease and status-check columns (the send worker's bookkeeping); imports.source_csv (the
-- raw upload, cleared when a job ends).

-- name: export_table_settings :many
-- The church's settings (the one row), without the sealed EIN.
SELECT church_name, time_zone, default_region, quiet_hours_start, quiet_hours_end, help_reply,
       stop_reply, start_reply, sender_number, legal_name, ein_last4, website, address_line1,
       address_line2, city, state, postal_code, brand_status, welcome_enabled, welcome_message,
       updated_at
FROM settings;

-- name: export_table_admins :many
-- The church's admins: who they are, never a password hash or token.
SELECT id, email, first_name, last_name, role, status, last_login_at,
       created_at, updated_at
FROM admins;

-- name: export_table_branches :many
-- Branches, the deleted ones included (deleted_at says so).
SELECT id, name, address, phone, description, is_active, deleted_at, created_at, updated_at
FROM branches;

-- name: export_table_groups :many
-- Groups.
SELECT id, name, description, color, created_at, updated_at
FROM groups;

-- name: export_table_members :many
-- Members with their opt-in state.
SELECT id, first_name, last_name, phone, email, branch_id, opt_in, opt_in_changed_at,
       opted_out_reason, notes, created_at, updated_at
FROM members;

-- name: export_table_group_members :many
-- Who is in which group.
SELECT group_id, member_id, added_at
FROM group_members;

-- name: export_table_consent_events :many
-- Every opt-in and opt-out with its source (the consent record carriers may ask for).
SELECT id, member_id, kind, source, keyword, occurred_at, recorded_at, admin_id, detail
FROM consent_events;

-- name: export_table_templates :many
-- Message templates.
SELECT id, name, body, category, is_default, usage_count, created_by, created_at, updated_at
FROM templates;

-- name: export_table_recurring_messages :many
-- Recurring message rules.
SELECT id, name, body, target, target_kind, frequency, days_of_week, day_of_month, local_time,
       time_zone, status, missed_policy, next_run_at, last_run_at, created_by, created_at,
       updated_at
FROM recurring_messages;

-- name: export_table_broadcasts :many
-- Broadcasts.
SELECT id, body, target, target_kind, status, send_at, template_id, created_by, recipient_count,
       segments, encoding, recurring_id, occurrence_at, created_at, updated_at, queued_at,
       completed_at, media_urls
FROM broadcasts;

-- name: export_table_outbox :many
-- Every outbound message per recipient and its delivery state (without the worker's lease bookkeeping).
SELECT id, broadcast_id, conversation_message_id, member_id, to_phone, from_phone, body, segments,
       state, attempts, carrier_message_id, error_code, error_detail, queued_at, sent_at,
       delivered_at, failed_at, updated_at, media_urls, welcome
FROM outbox;

-- name: export_table_conversations :many
-- One-to-one conversations.
SELECT id, member_id, status, last_message_at, last_message_preview, unread_count, created_at,
       updated_at, church_number
FROM conversations;

-- name: export_table_conversation_messages :many
-- The messages of conversations, both directions.
SELECT id, conversation_id, direction, body, carrier_message_id, delivery_status, sent_by,
       created_at, media, church_number
FROM conversation_messages;

-- name: export_table_number_branches :many
-- Which branch each phone number is assigned to.
SELECT e164, branch_id, assigned_at
FROM number_branches;

-- name: export_table_welcome_texts :many
-- Members who were sent the welcome text, and when it was queued.
SELECT member_id, queued_at
FROM welcome_texts;

-- name: export_table_audit_log :many
-- The audit log.
SELECT id, admin_id, actor_kind, action, target_type, target_id, detail, ip, request_id,
       created_at
FROM audit_log;

-- name: export_table_nps_responses :many
-- Feedback the church's admins gave.
SELECT id, score, category, comment, admin_id, created_at
FROM nps_responses;

-- name: export_table_imports :many
-- Member import jobs and their reports (not the uploaded files).
SELECT id, status, filename, total_rows, processed_rows, created, updated, skipped, errors,
       created_by, created_at, updated_at, started_at, finished_at
FROM imports;

-- name: export_table_tendlc_brand :many
-- The church's 10DLC brand as registered with the carrier (the EIN stays sealed in settings).
SELECT carrier_brand_id, tcr_brand_id, entity_type, vertical, display_name, email, phone,
       status, identity_status, failure_reasons, status_at, submitted_at, updated_at
FROM tendlc_brand;

-- name: export_table_tendlc_campaign :many
-- The church's 10DLC campaign: its use case, texts, status and assigned number.
SELECT carrier_campaign_id, tcr_campaign_id, usecase, description, message_flow,
       sample_messages, help_message, optin_message, optout_message, status, carrier_status,
       failure_reasons, assigned_number, assignment_status, status_at, submitted_at, updated_at
FROM tendlc_campaign;
