-- One bad message must not stop the contact task, nor be dropped in
-- silence: handling one inbox row that fails (an error or a panic) is
-- retried a bounded number of times with backoff, then the row is
-- quarantined and the moderators get one card about it (in the same
-- transaction, so a crash can neither lose nor double that card).
ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- Not to be taken before this time (unix ms): the backoff after a failure.
ALTER TABLE inbox ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
-- Set when the retries ran out (handled_at is set too, error says why).
ALTER TABLE inbox ADD COLUMN quarantined_at INTEGER;

-- Card subjects are checked where they are read (`store::outbox`), not by
-- a CHECK listing them: new kinds of card (a quarantined message, here)
-- should not need a table rebuild each. SQLite can drop a CHECK only by
-- rebuilding the table, once.
CREATE TABLE moderator_outbox_open (
    id                INTEGER PRIMARY KEY,
    order_id          INTEGER REFERENCES orders (id),
    -- The message a card is about (subjects 'tribute_message', 'inbox_message').
    source_chat_id    INTEGER,
    source_message_id INTEGER,
    reason            TEXT    NOT NULL,
    -- The rendered text: follow-ups and cards stored before 0011 only.
    text              TEXT,
    created_at        INTEGER NOT NULL,
    posted_chat_id    INTEGER,
    posted_message_id INTEGER,
    posted_at         INTEGER,
    case_id           INTEGER REFERENCES cases (id),
    kind              TEXT    NOT NULL DEFAULT 'card',
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    parked_at         INTEGER,
    random_id         INTEGER,
    -- What a typed card is about (see `CardSubject` in src/store/outbox.rs).
    subject           TEXT,
    conversation_id   INTEGER REFERENCES conversations (id),
    subject_key       TEXT,
    detail            TEXT,
    CHECK ((text IS NULL) <> (subject IS NULL))
);
INSERT INTO moderator_outbox_open SELECT
    id, order_id, source_chat_id, source_message_id, reason, text, created_at, posted_chat_id, posted_message_id,
    posted_at, case_id, kind, attempts, next_attempt_at, last_error, parked_at, random_id, subject, conversation_id,
    subject_key, detail
FROM moderator_outbox;
DROP TABLE moderator_outbox;
ALTER TABLE moderator_outbox_open RENAME TO moderator_outbox;
CREATE INDEX moderator_outbox_pending ON moderator_outbox (posted_at);
CREATE INDEX moderator_outbox_due ON moderator_outbox (next_attempt_at, id)
    WHERE posted_at IS NULL AND parked_at IS NULL;
