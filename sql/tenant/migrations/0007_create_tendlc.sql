-- 10DLC registration (issue 12 part 5): the church's brand and campaign as registered with
-- Telnyx, one of each. The brand's legal details stay in `settings` (legal name, sealed EIN,
-- address, website, and `brand_status`, kept equal to tendlc_brand.status); what only
-- registration needs is here, with the carrier's answer: status, reasons, ids.
--
-- `status_at` is the carrier's time of the status shown: an event older than it changes
-- nothing (duplicate and out-of-order webhooks). Campaign `suspended` or `expired` holds the
-- church's sending (messaging/compliance.py).

CREATE TABLE tendlc_brand (
    id                 boolean PRIMARY KEY DEFAULT true,
    carrier_brand_id   text UNIQUE,
    tcr_brand_id       text,
    entity_type        text NOT NULL,
    vertical           text NOT NULL,
    display_name       text NOT NULL,
    email              text NOT NULL,
    phone              text NOT NULL,
    status             text NOT NULL DEFAULT 'submitting',
    identity_status    text,
    failure_reasons    text,
    status_at          timestamptz,
    submitted_at       timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tendlc_brand_single_row CHECK (id),
    CONSTRAINT tendlc_brand_status CHECK (status IN
        ('submitting', 'pending', 'approved', 'rejected')),
    CONSTRAINT tendlc_brand_reasons_len CHECK (char_length(failure_reasons) <= 2000)
);

CREATE TABLE tendlc_campaign (
    id                  boolean PRIMARY KEY DEFAULT true,
    carrier_campaign_id text UNIQUE,
    tcr_campaign_id     text,
    usecase             text NOT NULL,
    description         text NOT NULL,
    message_flow        text NOT NULL,
    sample_messages     text[] NOT NULL,
    help_message        text NOT NULL,
    optin_message       text NOT NULL,
    optout_message      text NOT NULL,
    status              text NOT NULL DEFAULT 'submitting',
    carrier_status      text,
    failure_reasons     text,
    assigned_number     text,
    assignment_status   text,
    status_at           timestamptz,
    submitted_at        timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tendlc_campaign_single_row CHECK (id),
    CONSTRAINT tendlc_campaign_status CHECK (status IN
        ('submitting', 'pending', 'approved', 'rejected', 'suspended', 'expired')),
    CONSTRAINT tendlc_campaign_assignment CHECK (assignment_status IN
        ('pending', 'assigned', 'failed')),
    CONSTRAINT tendlc_campaign_reasons_len CHECK (char_length(failure_reasons) <= 2000)
);
