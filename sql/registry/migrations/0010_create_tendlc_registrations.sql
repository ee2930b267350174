-- 10DLC (issue 12 part 5): which church a Telnyx 10DLC brand or campaign belongs to, so a
-- signed `10dlc.*` webhook (it names a brandId or campaignId, never a number) is routed to its
-- church, and the worker can find what is still pending at the carrier without opening every
-- church database. The details and the reasons live in the church's own database
-- (tenant 0007); `status` here mirrors the church's copy after each change.
--
-- `checked_at`: when the worker last asked the carrier (polling fallback, one poller per row:
-- pending brands and campaigns, and live campaigns, whose suspension may come without its
-- webhook).
-- `assigned_number`: for an approved campaign, the number the carrier was asked to put on it.

CREATE TABLE tendlc_registrations (
    carrier_id       text PRIMARY KEY,
    kind             text NOT NULL,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'pending',
    assigned_number  text,
    checked_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tendlc_registrations_kind CHECK (kind IN ('brand', 'campaign')),
    CONSTRAINT tendlc_registrations_id_len CHECK (char_length(carrier_id) BETWEEN 1 AND 128),
    CONSTRAINT tendlc_registrations_status CHECK (status IN
        ('pending', 'approved', 'rejected', 'suspended', 'expired', 'replaced')),
    CONSTRAINT tendlc_registrations_number CHECK (assigned_number ~ '^\+[1-9][0-9]{6,14}$')
);

CREATE INDEX tendlc_registrations_tenant ON tendlc_registrations (tenant_id);
CREATE INDEX tendlc_registrations_due ON tendlc_registrations (checked_at NULLS FIRST)
    WHERE status IN ('pending', 'approved', 'suspended', 'expired');
