-- Cards are stored as typed escalations, not as text: the reason, what the
-- card is about (`subject` and its columns) and a short `detail`. The
-- moderator desk renders the card from the store when it posts it
-- (src/moderator/render.rs), so every card is rendered in one place, from
-- the facts as they are then, and sized to Telegram there.
--
-- `text` becomes nullable, which SQLite can only do by rebuilding the
-- table. Rows stored before keep their rendered text (and no subject);
-- follow-ups (`kind = 'update'`) are still stored as text.

CREATE TABLE moderator_outbox_typed (
    id                INTEGER PRIMARY KEY,
    order_id          INTEGER REFERENCES orders (id),
    -- The Tribute message a card is about (subject 'tribute_message');
    -- rows stored before 0011 kept their source message here too.
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
    -- What a typed card is about: order (order_id) | conversation
    -- (conversation_id, a question case) | tribute_message (source_chat_id,
    -- source_message_id) | purchase (subject_key = the Tribute purchase id,
    -- order_id when matched) | webhook_body (subject_key = the body key of
    -- an unreadable webhook in tribute_webhook_events).
    subject           TEXT CHECK (subject IN ('order', 'conversation', 'tribute_message', 'purchase', 'webhook_body')),
    conversation_id   INTEGER REFERENCES conversations (id),
    subject_key       TEXT,
    -- The specifics of the reason, e.g. "3 IDs refused, the last 123456".
    detail            TEXT,
    -- A row is either rendered text or a typed card, never both or neither.
    CHECK ((text IS NULL) <> (subject IS NULL))
);

INSERT INTO moderator_outbox_typed
    (id, order_id, source_chat_id, source_message_id, reason, text, created_at, posted_chat_id,
     posted_message_id, posted_at, case_id, kind, attempts, next_attempt_at, last_error, parked_at, random_id)
SELECT id, order_id, source_chat_id, source_message_id, reason, text, created_at, posted_chat_id,
       posted_message_id, posted_at, case_id, kind, attempts, next_attempt_at, last_error, parked_at, random_id
FROM moderator_outbox;

DROP TABLE moderator_outbox;
ALTER TABLE moderator_outbox_typed RENAME TO moderator_outbox;

CREATE INDEX moderator_outbox_pending ON moderator_outbox (posted_at);
CREATE INDEX moderator_outbox_due ON moderator_outbox (next_attempt_at, id)
    WHERE posted_at IS NULL AND parked_at IS NULL;
