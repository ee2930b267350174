-- Initial tenant schema: admins and auth (refresh-token families, jti denylist, MFA, password resets), branches, groups, members, consent, templates, broadcasts + outbox, conversations, recurring messages, inbound dedupe, audit log, settings, NPS, imports.
--
-- One database per church: there is deliberately no tenant id column anywhere.
-- Conventions:
--   * ids are uuid DEFAULT gen_random_uuid() unless noted (audit_log uses bigint identity).
--   * timestamps are timestamptz. updated_at is set by the application (no triggers).
--   * every enumeration is a text column with a CHECK.
--   * token/code hashes are bytea holding a 32-byte digest (SHA-256 or HMAC-SHA256 of the secret).
--     Plain tokens are never stored.
--   * E.164 phone numbers are checked with '^\+[1-9][0-9]{6,14}$'.
--   * Every foreign key states its ON DELETE rule. FKs to admins from history tables are SET NULL
--     (admin deletion is rare, so those columns are not indexed). audit_log.admin_id has no FK.

-- pg_trgm (trigram search indexes) ships with PostgreSQL's contrib package; the embedded
-- development server (the pgserver wheel) lacks it. Search works without it, only unindexed.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Admins and authentication
-- ---------------------------------------------------------------------------------------------

CREATE TABLE admins (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email                       text NOT NULL,
    password_hash               text,                       -- argon2id PHC string. NULL until an invite is accepted.
    first_name                  text NOT NULL,
    last_name                   text NOT NULL,
    role                        text NOT NULL DEFAULT 'admin',
    status                      text NOT NULL DEFAULT 'invited',
    invitation_token_hash       bytea,
    invitation_expires_at       timestamptz,
    last_login_at               timestamptz,
    password_changed_at         timestamptz,
    -- Access/refresh tokens issued before this instant are rejected (password change, MFA reset,
    -- role change, disable). Compared with the JWT iat.
    tokens_valid_after          timestamptz NOT NULL DEFAULT now(),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admins_email_unique UNIQUE (email),
    CONSTRAINT admins_email_lower CHECK (email = lower(email)),
    CONSTRAINT admins_email_format CHECK (char_length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    CONSTRAINT admins_first_name_len CHECK (char_length(first_name) <= 100),
    CONSTRAINT admins_last_name_len CHECK (char_length(last_name) <= 100),
    CONSTRAINT admins_password_hash_len CHECK (password_hash IS NULL OR char_length(password_hash) BETWEEN 1 AND 512),
    CONSTRAINT admins_role_check CHECK (role IN ('owner', 'admin')),
    CONSTRAINT admins_status_check CHECK (status IN ('invited', 'active', 'disabled')),
    CONSTRAINT admins_active_has_password CHECK (status <> 'active' OR password_hash IS NOT NULL),
    CONSTRAINT admins_invitation_hash_len CHECK (invitation_token_hash IS NULL OR octet_length(invitation_token_hash) = 32),
    CONSTRAINT admins_invitation_pair CHECK ((invitation_token_hash IS NULL) = (invitation_expires_at IS NULL))
);
-- Serves: accept-invitation lookup  WHERE invitation_token_hash = $1
CREATE UNIQUE INDEX admins_invitation_token_hash_key
    ON admins (invitation_token_hash) WHERE invitation_token_hash IS NOT NULL;

-- A refresh-token family is one login session. Every refresh rotates the token inside the family.
-- Presenting a token that was already rotated (reuse) revokes the whole family.
CREATE TABLE refresh_token_families (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    admin_id                    uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    last_used_at                timestamptz NOT NULL DEFAULT now(),
    expires_at                  timestamptz NOT NULL,       -- absolute session lifetime cap
    revoked_at                  timestamptz,
    revoked_reason              text,
    user_agent                  text,
    ip                          inet,
    CONSTRAINT refresh_token_families_id_admin_key UNIQUE (id, admin_id),  -- target of the composite FK below
    CONSTRAINT refresh_token_families_revoked_reason_check CHECK (revoked_reason IN
        ('logout', 'logout_all', 'reuse_detected', 'password_changed', 'password_reset',
         'mfa_changed', 'role_changed', 'admin_disabled', 'admin_removed', 'expired', 'security')),
    CONSTRAINT refresh_token_families_revoked_pair CHECK (revoked_reason IS NULL OR revoked_at IS NOT NULL),
    CONSTRAINT refresh_token_families_user_agent_len CHECK (char_length(user_agent) <= 512)
);
-- Serves: list/revoke an admin's sessions  WHERE admin_id = $1 AND revoked_at IS NULL
-- (the UNIQUE (id, admin_id) index leads with id, so it does not serve this)
CREATE INDEX refresh_token_families_admin_idx ON refresh_token_families (admin_id);
-- Serves: cleanup sweep  DELETE ... WHERE expires_at < now()
CREATE INDEX refresh_token_families_expires_idx ON refresh_token_families (expires_at);

CREATE TABLE refresh_tokens (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id                   uuid NOT NULL,
    admin_id                    uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    token_hash                  bytea NOT NULL,
    parent_id                   uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,  -- token this one replaced
    issued_at                   timestamptz NOT NULL DEFAULT now(),
    expires_at                  timestamptz NOT NULL,
    rotated_at                  timestamptz,                -- set when exchanged for a child (reuse after this = theft)
    revoked_at                  timestamptz,
    revoked_reason              text,
    user_agent                  text,
    ip                          inet,
    -- The composite FK guarantees the denormalised admin_id matches the family's admin.
    CONSTRAINT refresh_tokens_family_fk FOREIGN KEY (family_id, admin_id)
        REFERENCES refresh_token_families (id, admin_id) ON DELETE CASCADE,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),  -- serves: refresh lookup WHERE token_hash = $1
    CONSTRAINT refresh_tokens_token_hash_len CHECK (octet_length(token_hash) = 32),
    CONSTRAINT refresh_tokens_revoked_reason_check CHECK (revoked_reason IN
        ('logout', 'logout_all', 'reuse_detected', 'password_changed', 'password_reset',
         'mfa_changed', 'role_changed', 'admin_disabled', 'admin_removed', 'expired', 'security')),
    CONSTRAINT refresh_tokens_revoked_pair CHECK (revoked_reason IS NULL OR revoked_at IS NOT NULL),
    CONSTRAINT refresh_tokens_user_agent_len CHECK (char_length(user_agent) <= 512)
);
-- Serves: revoke a family's tokens  UPDATE ... WHERE family_id = $1 (and the family FK cascade)
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
-- Serves: the parent_id self-FK action when old tokens are pruned
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_id) WHERE parent_id IS NOT NULL;
-- Serves: the admin_id FK cascade and "revoke everything for this admin"
CREATE INDEX refresh_tokens_admin_idx ON refresh_tokens (admin_id);

-- Denylist of access-token jti values revoked before their exp (logout). Rows can be pruned after expires_at.
CREATE TABLE revoked_access_tokens (
    jti                         text PRIMARY KEY,           -- serves: auth check WHERE jti = $1
    expires_at                  timestamptz NOT NULL,       -- the token's exp
    revoked_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT revoked_access_tokens_jti_len CHECK (char_length(jti) BETWEEN 1 AND 128)
);
-- Serves: TTL sweep  DELETE ... WHERE expires_at < now()
CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens (expires_at);

-- TOTP MFA, one row per admin. The row exists from enrolment start. enabled only after a valid code.
CREATE TABLE admin_mfa (
    admin_id                    uuid PRIMARY KEY REFERENCES admins (id) ON DELETE CASCADE,
    totp_secret_encrypted       bytea NOT NULL,             -- AEAD ciphertext (key from the environment), never hashed
    enabled                     boolean NOT NULL DEFAULT false,
    enabled_at                  timestamptz,
    -- Last accepted RFC 6238 time-step counter. Codes whose counter is <= this are rejected (replay).
    last_used_step              bigint,
    failed_attempts             integer NOT NULL DEFAULT 0,
    locked_until                timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admin_mfa_secret_len CHECK (octet_length(totp_secret_encrypted) BETWEEN 16 AND 1024),
    CONSTRAINT admin_mfa_enabled_at CHECK (NOT enabled OR enabled_at IS NOT NULL),
    CONSTRAINT admin_mfa_last_used_step_nonneg CHECK (last_used_step IS NULL OR last_used_step >= 0),
    CONSTRAINT admin_mfa_failed_attempts_nonneg CHECK (failed_attempts >= 0)
);

-- Single-use recovery codes (about 10 per admin). Regenerating deletes the old set.
CREATE TABLE mfa_recovery_codes (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    admin_id                    uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    code_hash                   bytea NOT NULL,
    used_at                     timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mfa_recovery_codes_hash_len CHECK (octet_length(code_hash) = 32),
    -- Serves: redeem  WHERE admin_id = $1 AND code_hash = $2 AND used_at IS NULL,
    -- count remaining / delete set  WHERE admin_id = $1, and the admin FK cascade.
    CONSTRAINT mfa_recovery_codes_admin_hash_key UNIQUE (admin_id, code_hash)
);

CREATE TABLE password_reset_tokens (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    admin_id                    uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    token_hash                  bytea NOT NULL,
    expires_at                  timestamptz NOT NULL,
    used_at                     timestamptz,
    requested_ip                inet,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT password_reset_tokens_hash_key UNIQUE (token_hash),   -- serves: reset lookup WHERE token_hash = $1
    CONSTRAINT password_reset_tokens_hash_len CHECK (octet_length(token_hash) = 32)
);
-- Serves: invalidate outstanding tokens on reset  UPDATE ... WHERE admin_id = $1 AND used_at IS NULL, and the FK cascade
CREATE INDEX password_reset_tokens_admin_idx ON password_reset_tokens (admin_id);

-- ---------------------------------------------------------------------------------------------
-- Directory: branches, groups, members
-- ---------------------------------------------------------------------------------------------

CREATE TABLE branches (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                        text NOT NULL,
    address                     text,
    phone                       text,
    description                 text,
    is_active                   boolean NOT NULL DEFAULT true,
    deleted_at                  timestamptz,                -- soft delete. The name is free again once deleted.
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT branches_name_len CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT branches_address_len CHECK (char_length(address) <= 300),
    CONSTRAINT branches_phone_len CHECK (char_length(phone) <= 32),
    CONSTRAINT branches_description_len CHECK (char_length(description) <= 1000)
);
-- Serves: duplicate-name check on create/rename (409) and lookup by name  WHERE lower(name) = lower($1) AND deleted_at IS NULL
CREATE UNIQUE INDEX branches_name_lower_key ON branches (lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE groups (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                        text NOT NULL,
    description                 text,
    color                       text,                       -- '#RRGGBB'
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_name_len CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT groups_description_len CHECK (char_length(description) <= 1000),
    CONSTRAINT groups_color_format CHECK (color ~ '^#[0-9A-Fa-f]{6}$')
);
-- Serves: duplicate-name check on create/rename (409)  WHERE lower(name) = lower($1)
CREATE UNIQUE INDEX groups_name_lower_key ON groups (lower(name));

CREATE TABLE members (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Names may be empty: an unknown sender who texts in is recorded as a member with only a phone.
    first_name                  text NOT NULL DEFAULT '',
    last_name                   text NOT NULL DEFAULT '',
    phone                       text NOT NULL,
    email                       text,
    branch_id                   uuid REFERENCES branches (id) ON DELETE SET NULL,
    opt_in                      text NOT NULL DEFAULT 'opted_in',
    -- occurred_at of the consent event that set the current opt_in. Apply STOP/START only when the
    -- event is newer:  UPDATE ... WHERE opt_in_changed_at < $occurred_at  (out-of-order webhooks).
    opt_in_changed_at           timestamptz NOT NULL DEFAULT now(),
    opted_out_reason            text,
    notes                       text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT members_phone_key UNIQUE (phone),            -- serves: inbound routing / import upsert WHERE phone = $1
    CONSTRAINT members_phone_e164 CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    CONSTRAINT members_first_name_len CHECK (char_length(first_name) <= 100),
    CONSTRAINT members_last_name_len CHECK (char_length(last_name) <= 100),
    CONSTRAINT members_email_format CHECK (char_length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
    CONSTRAINT members_opt_in_check CHECK (opt_in IN ('opted_in', 'opted_out')),
    CONSTRAINT members_opted_out_reason_len CHECK (char_length(opted_out_reason) <= 500),
    CONSTRAINT members_notes_len CHECK (char_length(notes) <= 2000)
);
-- Serves: member list sorted by name, keyset  ORDER BY last_name, first_name, id  WHERE (last_name, first_name, id) > ($1, $2, $3)
CREATE INDEX members_name_keyset_idx ON members (last_name, first_name, id);
-- Serves: member list sorted by newest/oldest, keyset  ORDER BY created_at, id  (scanned backwards for DESC)
CREATE INDEX members_created_keyset_idx ON members (created_at, id);
-- Serves: search  WHERE (first_name || ' ' || last_name) ILIKE '%' || $1 || '%'   (use exactly this expression)
-- Serves: search by partial number  WHERE phone LIKE '%' || $1 || '%'
-- Both only where pg_trgm is installed (see the top of this file).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX members_name_trgm_idx ON members
            USING gin ((first_name || ' ' || last_name) gin_trgm_ops);
        CREATE INDEX members_phone_trgm_idx ON members USING gin (phone gin_trgm_ops);
    END IF;
END $$;
-- Serves: filter by branch  WHERE branch_id = $1 (list + broadcast target 'branches'), and the branch FK SET NULL
CREATE INDEX members_branch_idx ON members (branch_id, last_name, first_name, id) WHERE branch_id IS NOT NULL;
-- Serves: filter by opt-in state sorted by name  WHERE opt_in = $1 ORDER BY last_name, first_name, id
CREATE INDEX members_opt_in_name_idx ON members (opt_in, last_name, first_name, id);

CREATE TABLE group_members (
    group_id                    uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id                   uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    added_at                    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, member_id)                       -- serves: members of a group, broadcast target 'groups'
);
-- Serves: groups of a member  WHERE member_id = $1, and the member FK cascade
CREATE INDEX group_members_member_idx ON group_members (member_id);

-- Append-only consent trail per member (opt-in, opt-out, HELP).
CREATE TABLE consent_events (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_id                   uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    kind                        text NOT NULL,
    source                      text NOT NULL,
    keyword                     text,                       -- normalised keyword that triggered it, e.g. 'STOP'
    occurred_at                 timestamptz NOT NULL,       -- when it happened (carrier timestamp for SMS)
    recorded_at                 timestamptz NOT NULL DEFAULT now(),
    admin_id                    uuid REFERENCES admins (id) ON DELETE SET NULL,
    detail                      jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT consent_events_kind_check CHECK (kind IN ('opt_in', 'opt_out', 'help')),
    CONSTRAINT consent_events_source_check CHECK (source IN ('sms_keyword', 'admin', 'import', 'api', 'carrier')),
    CONSTRAINT consent_events_keyword_len CHECK (char_length(keyword) <= 50),
    CONSTRAINT consent_events_detail_object CHECK (jsonb_typeof(detail) = 'object')
);
-- Serves: a member's consent history  WHERE member_id = $1 ORDER BY occurred_at DESC, id DESC, and the FK cascade
CREATE INDEX consent_events_member_idx ON consent_events (member_id, occurred_at DESC, id DESC);

-- ---------------------------------------------------------------------------------------------
-- Messaging
-- ---------------------------------------------------------------------------------------------

CREATE TABLE templates (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                        text NOT NULL,
    body                        text NOT NULL,
    category                    text NOT NULL DEFAULT 'general',
    is_default                  boolean NOT NULL DEFAULT false,
    usage_count                 integer NOT NULL DEFAULT 0,
    created_by                  uuid REFERENCES admins (id) ON DELETE SET NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT templates_name_len CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT templates_body_len CHECK (char_length(body) BETWEEN 1 AND 1600),
    CONSTRAINT templates_category_check CHECK (category IN
        ('service_reminder', 'event', 'prayer', 'thank_you', 'welcome', 'offering', 'general')),
    CONSTRAINT templates_usage_count_nonneg CHECK (usage_count >= 0)
);
-- No index beyond the PK: a church has tens of templates, listed whole.

-- Recurring rules (created before broadcasts, which reference them).
CREATE TABLE recurring_messages (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                        text NOT NULL,
    body                        text NOT NULL,
    target                      jsonb NOT NULL DEFAULT '{}'::jsonb,   -- e.g. {"branch_ids": [...]} / {"group_ids": [...]} / {"member_ids": [...]}
    target_kind                 text NOT NULL,
    frequency                   text NOT NULL,
    days_of_week                smallint[] NOT NULL DEFAULT '{}',    -- ISO-like: 0 = Monday .. 6 = Sunday
    day_of_month                smallint,                   -- 1..31. Months without that day use their last day.
    local_time                  time NOT NULL,              -- wall-clock time in time_zone
    time_zone                   text NOT NULL DEFAULT 'America/New_York',  -- IANA name, validated by the app
    status                      text NOT NULL DEFAULT 'active',
    missed_policy               text NOT NULL DEFAULT 'send_late',
    next_run_at                 timestamptz NOT NULL,       -- next occurrence (UTC instant), computed by the app
    last_run_at                 timestamptz,
    created_by                  uuid REFERENCES admins (id) ON DELETE SET NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT recurring_messages_name_len CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT recurring_messages_body_len CHECK (char_length(body) BETWEEN 1 AND 1600),
    CONSTRAINT recurring_messages_target_object CHECK (jsonb_typeof(target) = 'object'),
    CONSTRAINT recurring_messages_target_kind_check CHECK (target_kind IN ('all', 'branches', 'groups', 'members')),
    CONSTRAINT recurring_messages_frequency_check CHECK (frequency IN ('daily', 'weekly', 'monthly')),
    CONSTRAINT recurring_messages_days_of_week_range CHECK (
        days_of_week <@ ARRAY[0, 1, 2, 3, 4, 5, 6]::smallint[] AND array_position(days_of_week, NULL) IS NULL),
    CONSTRAINT recurring_messages_weekly_days CHECK (frequency <> 'weekly' OR cardinality(days_of_week) >= 1),
    CONSTRAINT recurring_messages_day_of_month_range CHECK (day_of_month BETWEEN 1 AND 31),
    CONSTRAINT recurring_messages_monthly_day CHECK (frequency <> 'monthly' OR day_of_month IS NOT NULL),
    CONSTRAINT recurring_messages_time_zone_len CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    CONSTRAINT recurring_messages_status_check CHECK (status IN ('active', 'paused')),
    CONSTRAINT recurring_messages_missed_policy_check CHECK (missed_policy IN ('send_late', 'skip'))
);
-- Serves: scheduler due scan  WHERE status = 'active' AND next_run_at <= now() ORDER BY next_run_at
CREATE INDEX recurring_messages_due_idx ON recurring_messages (next_run_at) WHERE status = 'active';

CREATE TABLE broadcasts (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    body                        text NOT NULL,
    target                      jsonb NOT NULL DEFAULT '{}'::jsonb,   -- same shape as recurring_messages.target
    target_kind                 text NOT NULL,
    status                      text NOT NULL DEFAULT 'draft',
    send_at                     timestamptz,                -- scheduled one-off send time
    template_id                 uuid REFERENCES templates (id) ON DELETE SET NULL,
    created_by                  uuid REFERENCES admins (id) ON DELETE SET NULL,
    recipient_count             integer NOT NULL DEFAULT 0, -- outbox rows written when queued
    segments                    smallint NOT NULL DEFAULT 1,-- per recipient
    encoding                    text NOT NULL DEFAULT 'gsm7',
    recurring_id                uuid REFERENCES recurring_messages (id) ON DELETE SET NULL,
    occurrence_at               timestamptz,                -- the rule occurrence this broadcast realises
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    queued_at                   timestamptz,
    completed_at                timestamptz,
    -- One broadcast per recurring occurrence: INSERT ... ON CONFLICT DO NOTHING makes the scheduler idempotent.
    -- Also serves the recurring FK SET NULL and "broadcasts of this rule".
    CONSTRAINT broadcasts_recurring_occurrence_key UNIQUE (recurring_id, occurrence_at),
    CONSTRAINT broadcasts_recurring_occurrence CHECK (recurring_id IS NULL OR occurrence_at IS NOT NULL),
    CONSTRAINT broadcasts_body_len CHECK (char_length(body) BETWEEN 1 AND 1600),
    CONSTRAINT broadcasts_target_object CHECK (jsonb_typeof(target) = 'object'),
    CONSTRAINT broadcasts_target_kind_check CHECK (target_kind IN ('all', 'branches', 'groups', 'members')),
    CONSTRAINT broadcasts_status_check CHECK (status IN
        ('draft', 'scheduled', 'queued', 'sending', 'sent', 'cancelled', 'failed')),
    CONSTRAINT broadcasts_scheduled_has_send_at CHECK (status <> 'scheduled' OR send_at IS NOT NULL),
    CONSTRAINT broadcasts_recipient_count_nonneg CHECK (recipient_count >= 0),
    CONSTRAINT broadcasts_segments_range CHECK (segments BETWEEN 1 AND 24),
    CONSTRAINT broadcasts_encoding_check CHECK (encoding IN ('gsm7', 'ucs2'))
);
-- Serves: history list, keyset  ORDER BY created_at DESC, id DESC
CREATE INDEX broadcasts_history_idx ON broadcasts (created_at DESC, id DESC);
-- Serves: scheduler due scan for one-off sends  WHERE status = 'scheduled' AND send_at <= now()
CREATE INDEX broadcasts_scheduled_due_idx ON broadcasts (send_at) WHERE status = 'scheduled';

CREATE TABLE conversations (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_id                   uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    status                      text NOT NULL DEFAULT 'open',
    last_message_at             timestamptz NOT NULL DEFAULT now(),  -- NOT NULL so keyset ordering has no NULLs
    last_message_preview        text,
    unread_count                integer NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_member_key UNIQUE (member_id), -- one per member. Serves: inbound append WHERE member_id = $1
    CONSTRAINT conversations_status_check CHECK (status IN ('open', 'closed', 'archived')),
    CONSTRAINT conversations_preview_len CHECK (char_length(last_message_preview) <= 160),
    CONSTRAINT conversations_unread_nonneg CHECK (unread_count >= 0)
);
-- Serves: inbox list, keyset  WHERE status = $1 ORDER BY last_message_at DESC, id DESC
CREATE INDEX conversations_inbox_idx ON conversations (status, last_message_at DESC, id DESC);

CREATE TABLE conversation_messages (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id             uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    direction                   text NOT NULL,
    body                        text NOT NULL,
    carrier_message_id          text,
    -- Outbound: mirrors the outbox row's state. Inbound: 'received'.
    delivery_status             text,
    sent_by                     uuid REFERENCES admins (id) ON DELETE SET NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversation_messages_direction_check CHECK (direction IN ('inbound', 'outbound')),
    -- Outbound text is ours (1..1600). Inbound text comes from the carrier and must never be
    -- rejected (it may carry a STOP), so it is allowed to be empty and longer.
    CONSTRAINT conversation_messages_outbound_body_len CHECK (direction <> 'outbound' OR char_length(body) BETWEEN 1 AND 1600),
    CONSTRAINT conversation_messages_inbound_body_len CHECK (direction <> 'inbound' OR char_length(body) <= 10000),
    CONSTRAINT conversation_messages_carrier_id_len CHECK (char_length(carrier_message_id) <= 128),
    CONSTRAINT conversation_messages_delivery_status_check CHECK (delivery_status IN
        ('queued', 'sending', 'sent', 'delivered', 'failed', 'unknown', 'cancelled', 'skipped', 'received'))
);
-- Serves: thread view, keyset  WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC, and the FK cascade
CREATE INDEX conversation_messages_thread_idx ON conversation_messages (conversation_id, created_at DESC, id DESC);
-- Serves: delivery receipt / inbound lookup  WHERE carrier_message_id = $1
CREATE UNIQUE INDEX conversation_messages_carrier_id_key
    ON conversation_messages (carrier_message_id) WHERE carrier_message_id IS NOT NULL;

-- Per-recipient send queue. One row per (broadcast, member), per conversation reply, or per
-- automatic reply (HELP/STOP/START confirmation: both broadcast_id and conversation_message_id NULL).
-- States: queued -> sending (leased) -> sent -> delivered | failed. A 'sending' row whose lease
-- expired becomes 'unknown' (never silently resent). Opted-out at claim time -> 'skipped'.
-- Receipts only move rows forward, never out of delivered/failed/unknown/cancelled/skipped.
CREATE TABLE outbox (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    broadcast_id                uuid REFERENCES broadcasts (id) ON DELETE CASCADE,
    conversation_message_id     uuid REFERENCES conversation_messages (id) ON DELETE SET NULL,
    member_id                   uuid REFERENCES members (id) ON DELETE SET NULL,  -- SET NULL keeps send history/usage
    to_phone                    text NOT NULL,
    from_phone                  text,                       -- NULL = use settings.sender_number at send time
    body                        text NOT NULL,              -- frozen snapshot
    segments                    smallint NOT NULL DEFAULT 1,
    state                       text NOT NULL DEFAULT 'queued',
    attempts                    integer NOT NULL DEFAULT 0,
    next_attempt_at             timestamptz NOT NULL DEFAULT now(),  -- backoff / quiet-hours deferral
    lease_owner                 text,
    lease_expires_at            timestamptz,
    carrier_message_id          text,
    error_code                  text,
    error_detail                text,
    queued_at                   timestamptz NOT NULL DEFAULT now(),
    sent_at                     timestamptz,
    delivered_at                timestamptz,
    failed_at                   timestamptz,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    -- At most one row per recipient per broadcast. Also serves the broadcast FK cascade.
    CONSTRAINT outbox_broadcast_member_key UNIQUE (broadcast_id, member_id),
    CONSTRAINT outbox_single_source CHECK (broadcast_id IS NULL OR conversation_message_id IS NULL),
    CONSTRAINT outbox_to_phone_e164 CHECK (to_phone ~ '^\+[1-9][0-9]{6,14}$'),
    CONSTRAINT outbox_from_phone_e164 CHECK (from_phone ~ '^\+[1-9][0-9]{6,14}$'),
    CONSTRAINT outbox_body_len CHECK (char_length(body) BETWEEN 1 AND 1600),
    CONSTRAINT outbox_segments_range CHECK (segments BETWEEN 1 AND 24),
    CONSTRAINT outbox_state_check CHECK (state IN
        ('queued', 'sending', 'sent', 'delivered', 'failed', 'unknown', 'cancelled', 'skipped')),
    CONSTRAINT outbox_attempts_nonneg CHECK (attempts >= 0),
    CONSTRAINT outbox_sending_has_lease CHECK (state <> 'sending' OR lease_expires_at IS NOT NULL),
    CONSTRAINT outbox_lease_owner_len CHECK (char_length(lease_owner) <= 200),
    CONSTRAINT outbox_carrier_id_len CHECK (char_length(carrier_message_id) <= 128),
    CONSTRAINT outbox_error_code_len CHECK (char_length(error_code) <= 64),
    CONSTRAINT outbox_error_detail_len CHECK (char_length(error_detail) <= 2000)
);
-- Serves: worker claim  WHERE state = 'queued' AND next_attempt_at <= now()
--         ORDER BY next_attempt_at, id LIMIT $n FOR UPDATE SKIP LOCKED
CREATE INDEX outbox_claim_idx ON outbox (next_attempt_at, id) WHERE state = 'queued';
-- Serves: crash recovery  WHERE state = 'sending' AND lease_expires_at < now()  (-> 'unknown')
CREATE INDEX outbox_expired_lease_idx ON outbox (lease_expires_at) WHERE state = 'sending';
-- Serves: delivery receipts  WHERE carrier_message_id = $1
CREATE UNIQUE INDEX outbox_carrier_message_id_key ON outbox (carrier_message_id) WHERE carrier_message_id IS NOT NULL;
-- Serves: per-broadcast progress/stats  WHERE broadcast_id = $1 GROUP BY state, and cancel  WHERE broadcast_id = $1 AND state = 'queued'
CREATE INDEX outbox_broadcast_state_idx ON outbox (broadcast_id, state) WHERE broadcast_id IS NOT NULL;
-- Serves: the member FK SET NULL on member deletion (outbox is the largest table) and a member's send history
CREATE INDEX outbox_member_idx ON outbox (member_id) WHERE member_id IS NOT NULL;
-- Serves: the conversation_message FK SET NULL and reply status lookup  WHERE conversation_message_id = $1
CREATE INDEX outbox_conversation_message_idx ON outbox (conversation_message_id) WHERE conversation_message_id IS NOT NULL;

-- Carrier webhook event ids already applied to this tenant: INSERT ... ON CONFLICT DO NOTHING in
-- the same transaction as the side effect, so a redelivered event changes nothing twice.
CREATE TABLE inbound_events (
    carrier_event_id            text PRIMARY KEY,
    kind                        text NOT NULL,              -- carrier event type, e.g. 'message.received'
    received_at                 timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbound_events_id_len CHECK (char_length(carrier_event_id) BETWEEN 1 AND 128),
    -- Carrier-defined label (not our enumeration), so only its shape is checked.
    CONSTRAINT inbound_events_kind_format CHECK (kind ~ '^[a-z0-9_.]{1,64}$')
);
-- Serves: retention prune  DELETE ... WHERE received_at < now() - interval
CREATE INDEX inbound_events_received_idx ON inbound_events (received_at);

-- ---------------------------------------------------------------------------------------------
-- Audit, settings, feedback, imports
-- ---------------------------------------------------------------------------------------------

CREATE TABLE audit_log (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_id                    uuid,                       -- no FK: history survives admin deletion
    actor_kind                  text NOT NULL,
    action                      text NOT NULL,              -- e.g. 'member.delete', 'auth.login', 'mfa.recovery_code_used'
    target_type                 text,
    target_id                   text,
    detail                      jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip                          inet,
    request_id                  text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_log_actor_kind_check CHECK (actor_kind IN ('admin', 'system', 'carrier', 'member', 'operator')),
    CONSTRAINT audit_log_action_format CHECK (action ~ '^[a-z0-9_.]{1,100}$'),
    CONSTRAINT audit_log_target_type_len CHECK (char_length(target_type) <= 50),
    CONSTRAINT audit_log_target_id_len CHECK (char_length(target_id) <= 100),
    CONSTRAINT audit_log_detail_object CHECK (jsonb_typeof(detail) = 'object'),
    CONSTRAINT audit_log_request_id_len CHECK (char_length(request_id) <= 100)
);
-- Serves: activity log, keyset  ORDER BY created_at DESC, id DESC
CREATE INDEX audit_log_recent_idx ON audit_log (created_at DESC, id DESC);

-- Church-wide settings: exactly one row (id is always true).
CREATE TABLE settings (
    id                          boolean PRIMARY KEY DEFAULT true,
    church_name                 text NOT NULL DEFAULT '',   -- set by provisioning/signup
    time_zone                   text NOT NULL DEFAULT 'America/New_York',  -- IANA name, validated by the app
    default_region              text NOT NULL DEFAULT 'US', -- region for parsing national-format phone numbers
    -- Send window guard (church-local time). NULL/NULL = off. Start > end wraps midnight (e.g. 20:00-08:00).
    quiet_hours_start           time,
    quiet_hours_end             time,
    -- Auto-replies (CTIA: program name, frequency, rates, HELP/STOP instructions, one confirmation).
    help_reply                  text NOT NULL DEFAULT
        'Church text messages. Msg frequency varies. Msg & data rates may apply. For help contact the church office. Reply STOP to opt out.',
    stop_reply                  text NOT NULL DEFAULT
        'You are unsubscribed from church text messages and will receive no more messages. Reply START to resubscribe.',
    start_reply                 text NOT NULL DEFAULT
        'You are subscribed to church text messages. Msg frequency varies. Msg & data rates may apply. Reply HELP for help, STOP to opt out.',
    sender_number               text,                       -- the church's E.164 sending number (mirrors registry phone_numbers)
    -- 10DLC brand registration
    legal_name                  text,
    ein_encrypted               bytea,                      -- AEAD ciphertext, key from the environment
    ein_last4                   text,
    website                     text,
    address_line1               text,
    address_line2               text,
    city                        text,
    state                       text,
    postal_code                 text,
    brand_status                text NOT NULL DEFAULT 'not_registered',
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT settings_single_row CHECK (id),
    CONSTRAINT settings_church_name_len CHECK (char_length(church_name) <= 100),
    CONSTRAINT settings_time_zone_len CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    CONSTRAINT settings_default_region_format CHECK (default_region ~ '^[A-Z]{2}$'),
    CONSTRAINT settings_quiet_hours_pair CHECK (
        (quiet_hours_start IS NULL AND quiet_hours_end IS NULL)
        OR (quiet_hours_start IS NOT NULL AND quiet_hours_end IS NOT NULL AND quiet_hours_start <> quiet_hours_end)),
    CONSTRAINT settings_help_reply_len CHECK (char_length(help_reply) BETWEEN 1 AND 320),
    CONSTRAINT settings_stop_reply_len CHECK (char_length(stop_reply) BETWEEN 1 AND 320),
    CONSTRAINT settings_start_reply_len CHECK (char_length(start_reply) BETWEEN 1 AND 320),
    CONSTRAINT settings_sender_number_e164 CHECK (sender_number ~ '^\+[1-9][0-9]{6,14}$'),
    CONSTRAINT settings_legal_name_len CHECK (char_length(legal_name) <= 200),
    CONSTRAINT settings_ein_len CHECK (octet_length(ein_encrypted) <= 1024),
    CONSTRAINT settings_ein_last4_format CHECK (ein_last4 ~ '^[0-9]{4}$'),
    CONSTRAINT settings_ein_pair CHECK ((ein_encrypted IS NULL) = (ein_last4 IS NULL)),
    CONSTRAINT settings_website_len CHECK (char_length(website) <= 200),
    CONSTRAINT settings_address_line1_len CHECK (char_length(address_line1) <= 200),
    CONSTRAINT settings_address_line2_len CHECK (char_length(address_line2) <= 200),
    CONSTRAINT settings_city_len CHECK (char_length(city) <= 100),
    CONSTRAINT settings_state_len CHECK (char_length(state) <= 50),
    CONSTRAINT settings_postal_code_len CHECK (char_length(postal_code) <= 20),
    CONSTRAINT settings_brand_status_check CHECK (brand_status IN
        ('not_registered', 'pending', 'approved', 'rejected', 'shared_brand'))
);

INSERT INTO settings (id) VALUES (true);

CREATE TABLE nps_responses (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    score                       smallint NOT NULL,
    category                    text NOT NULL DEFAULT 'general',
    comment                     text,
    admin_id                    uuid REFERENCES admins (id) ON DELETE SET NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT nps_responses_score_range CHECK (score BETWEEN 0 AND 10),
    CONSTRAINT nps_responses_category_check CHECK (category IN
        ('feedback', 'feature_request', 'bug', 'general', 'other')),
    CONSTRAINT nps_responses_comment_len CHECK (char_length(comment) <= 2000)
);
-- No index beyond the PK: a handful of rows per church, read whole.

-- Member CSV import jobs. The worker reads source_csv and clears it when the job ends.
-- No index beyond the PK: a church runs few imports, listed whole.
CREATE TABLE imports (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status                      text NOT NULL DEFAULT 'queued',
    filename                    text NOT NULL,
    source_csv                  bytea,
    total_rows                  integer NOT NULL DEFAULT 0,
    processed_rows              integer NOT NULL DEFAULT 0,
    created                     integer NOT NULL DEFAULT 0, -- members inserted
    updated                     integer NOT NULL DEFAULT 0, -- existing members (same phone) updated
    skipped                     integer NOT NULL DEFAULT 0, -- rows skipped (duplicates, invalid)
    errors                      jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{"row": n, "field": ..., "message": ...}]
    created_by                  uuid REFERENCES admins (id) ON DELETE SET NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    started_at                  timestamptz,
    finished_at                 timestamptz,
    CONSTRAINT imports_status_check CHECK (status IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT imports_filename_len CHECK (char_length(filename) BETWEEN 1 AND 255),
    CONSTRAINT imports_source_csv_size CHECK (octet_length(source_csv) <= 10485760),
    CONSTRAINT imports_counts_nonneg CHECK (
        total_rows >= 0 AND processed_rows >= 0 AND created >= 0 AND updated >= 0 AND skipped >= 0),
    CONSTRAINT imports_errors_array CHECK (jsonb_typeof(errors) = 'array')
);
