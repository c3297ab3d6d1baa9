-- `/learn` approves only what a moderator answered and has seen.
--
-- The customer message a question case was opened for. The contact task
-- handles one message at a time and opens a question case while handling
-- it, so when the case is inserted the newest customer message of its
-- conversation is the one the case is about (store::outbox::insert_card
-- writes it in the same transaction). `/learn` on the case learns this
-- question, never a message the customer sent later. NULL for cases about
-- anything else, and for question cases opened before this migration
-- (`/learn` then takes the newest customer message stored before the case
-- was opened).
ALTER TABLE cases ADD COLUMN question_message_id INTEGER REFERENCES conversation_messages (id);

-- A `/learn` preview in the moderator chat: exactly the pair (redacted)
-- that confirming it (`/learn yes` in reply to the preview) stores as an
-- approved pair. Nothing reaches `approved_pairs` without one.
CREATE TABLE learn_previews (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id),
    -- what it approves: a case (`/learn` on its card) or a content gap (`/learn G<turn>`)
    case_id          INTEGER REFERENCES cases (id),
    gap_turn_id      INTEGER REFERENCES agent_turns (id),
    question         TEXT    NOT NULL,   -- redacted
    answer           TEXT    NOT NULL,   -- redacted
    language         TEXT,
    asked_by         INTEGER NOT NULL,   -- the moderator who sent /learn
    created_at       INTEGER NOT NULL,   -- unix ms
    -- the preview message in the moderator chat, once Telegram took it
    chat_id          INTEGER,
    message_id       INTEGER,
    -- set when a moderator confirmed it
    approved_pair_id INTEGER REFERENCES approved_pairs (id),
    CHECK ((case_id IS NULL) <> (gap_turn_id IS NULL))
);
CREATE UNIQUE INDEX learn_previews_by_message ON learn_previews (chat_id, message_id) WHERE message_id IS NOT NULL;

-- Content gaps the report listed with a `/learn G<turn>` command (the
-- report's text, HTML or JSON, `/report`, the weekly summary): `/learn
-- G<n>` approves only these.
CREATE TABLE listed_gaps (
    turn_id         INTEGER PRIMARY KEY REFERENCES agent_turns (id),
    first_listed_at INTEGER NOT NULL     -- unix ms
);
