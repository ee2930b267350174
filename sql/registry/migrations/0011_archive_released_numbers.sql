-- A released number is archived for a recovery window before it is given back (issue 12).
--
-- `DELETE /api/v1/numbers/{e164}` no longer releases at the carrier: the number turns
-- `archived` with `archived_at` and `release_after` (archived_at + YWM_NUMBER_RECOVERY_DAYS).
-- It stays on the carrier account (still billed), stays mapped to its church (inbound STOP,
-- START and HELP are honoured; other texts reach the church's conversations), no other church
-- can buy it, it no longer counts toward the church's number limit and it is not the sending
-- number. `POST /api/v1/numbers/{e164}/recover` turns it `active` again before release_after.
-- After release_after the worker's sweep claims it (`releasing`), releases it at the carrier
-- and deletes the row; `release_next_at` is when the sweep may take it (again): a claim hold,
-- or the backoff after a carrier fault (`release_attempts`, `release_error`).
--
-- Lifecycle: pending → active → archived → (recover) active | (window over) releasing →
-- (row deleted). Rows left `releasing` by the old immediate release (a process that died
-- mid-release) get release_after now(), so the sweep finishes them.

ALTER TABLE phone_numbers DROP CONSTRAINT phone_numbers_status_check;
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_status_check
    CHECK (status IN ('pending', 'active', 'archived', 'releasing'));
ALTER TABLE phone_numbers
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN release_after timestamptz,
    ADD COLUMN release_next_at timestamptz,
    ADD COLUMN release_attempts integer NOT NULL DEFAULT 0 CHECK (release_attempts >= 0),
    ADD COLUMN release_error text CHECK (length(release_error) <= 200);

UPDATE phone_numbers SET release_after = now() WHERE status = 'releasing';

ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_release_after_check
    CHECK ((status IN ('archived', 'releasing')) = (release_after IS NOT NULL));

-- the worker's sweep  WHERE release_after IS NOT NULL AND coalesce(release_next_at,
-- release_after) <= now() ORDER BY release_after
CREATE INDEX phone_numbers_release_idx ON phone_numbers (release_after)
    WHERE release_after IS NOT NULL;
