-- Customer and moderator messages wait here until the contact task has
-- handled them: the event loop only stores them (it never waits on an LLM
-- or a send), a restart resumes the unhandled ones, and the history
-- re-read of the moderator chat and of customers' chats adds what the
-- live stream lost. (chat_id, message_id) makes a message that arrives
-- twice — live and re-read, or duplicated by Telegram — one row.
CREATE TABLE inbox (
    chat_id      INTEGER NOT NULL,
    message_id   INTEGER NOT NULL,
    -- customer | moderator
    kind         TEXT    NOT NULL CHECK (kind IN ('customer', 'moderator')),
    sender_id    INTEGER,
    -- the whole message as received (serde JSON of telegram::Message)
    message_json TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,             -- unix ms
    handled_at   INTEGER,                      -- NULL while waiting
    -- why handling failed, if it did (the message is not retried)
    error        TEXT,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX inbox_waiting ON inbox (received_at) WHERE handled_at IS NULL;
