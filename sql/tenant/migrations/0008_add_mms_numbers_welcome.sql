-- Issue 13 parts 2-4: MMS media, several numbers per church, staff-started conversations,
-- welcome texts.
--
-- Media: an inbound message keeps what Telnyx sent (`media`: [{url, content_type, size,
-- hash_sha256}]); an outbound one the URLs it was sent with (same shape, only `url` known).
-- The outbox row carries `media_urls` to the carrier (NULL: an SMS), a broadcast the URLs it
-- was created with. An MMS is one message whatever its text.
--
-- Numbers: `church_number` is the church's number a conversation runs on (set by the first
-- inbound text's `to`, or by staff starting it; NULL: the church's default sender) and the
-- number each message went from or came to. `number_branches` assigns a number to a branch
-- (at most one each way); a branch's broadcast goes from it. The registry's phone_numbers
-- stays the owner of the numbers themselves.
--
-- Welcome: `welcome_texts` is the once-per-member record of a queued welcome text; outbox
-- rows with `welcome` honour quiet hours and billing holds like broadcast rows.

ALTER TABLE conversation_messages
    ADD COLUMN media jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN church_number text,
    ADD CONSTRAINT conversation_messages_media_array CHECK (
        jsonb_typeof(media) = 'array' AND jsonb_array_length(media) <= 10),
    ADD CONSTRAINT conversation_messages_church_number_e164 CHECK (
        church_number ~ '^\+[1-9][0-9]{6,14}$');

ALTER TABLE conversations
    ADD COLUMN church_number text,
    ADD CONSTRAINT conversations_church_number_e164 CHECK (
        church_number ~ '^\+[1-9][0-9]{6,14}$');
-- Serves: releasing a number  UPDATE conversations SET church_number = NULL WHERE church_number = $1
CREATE INDEX conversations_church_number_idx ON conversations (church_number)
    WHERE church_number IS NOT NULL;

ALTER TABLE outbox
    ADD COLUMN media_urls text[],
    ADD COLUMN welcome boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT outbox_media_count CHECK (cardinality(media_urls) BETWEEN 1 AND 10);

ALTER TABLE broadcasts
    ADD COLUMN media_urls text[],
    ADD CONSTRAINT broadcasts_media_count CHECK (cardinality(media_urls) BETWEEN 1 AND 10);

CREATE TABLE number_branches (
    e164        text PRIMARY KEY,
    branch_id   uuid NOT NULL UNIQUE REFERENCES branches (id) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT number_branches_e164 CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$')
);

-- The primary key is the once-per-member guarantee: the welcome's outbox row is written in the
-- same statement as this row, and only when this row is new.
CREATE TABLE welcome_texts (
    member_id   uuid PRIMARY KEY REFERENCES members (id) ON DELETE CASCADE,
    queued_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE settings
    ADD COLUMN welcome_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN welcome_message text NOT NULL DEFAULT
        'Welcome! You will now get text messages from your church. Msg & data rates may apply. Reply HELP for help, STOP to opt out.',
    ADD CONSTRAINT settings_welcome_message_len CHECK (char_length(welcome_message) BETWEEN 1 AND 320);

-- Serves: GET /api/v1/nps, keyset  ORDER BY created_at DESC, id DESC
CREATE INDEX nps_responses_recent_idx ON nps_responses (created_at DESC, id DESC);
