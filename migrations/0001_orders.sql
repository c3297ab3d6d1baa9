-- Every message seen in the Tribute chat, stored raw before anything else
-- is done with it. (chat_id, message_id) is the natural key, so a
-- duplicate delivery of the same message is a no-op.
CREATE TABLE tribute_messages (
    chat_id       INTEGER NOT NULL,
    message_id    INTEGER NOT NULL,
    sender_id     INTEGER,
    outgoing      INTEGER NOT NULL,
    date          INTEGER NOT NULL,             -- Telegram's unix seconds
    text          TEXT    NOT NULL,
    entities_json TEXT    NOT NULL,
    reply_to      INTEGER,
    buttons_json  TEXT    NOT NULL,
    -- order | malformed | follow_up | other | outgoing
    kind          TEXT    NOT NULL,
    parse_error   TEXT,
    received_at   INTEGER NOT NULL,             -- our clock, unix ms
    PRIMARY KEY (chat_id, message_id)
);

-- One row per parsed Custom Product Order: a persisted state machine.
CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY,
    order_ref           TEXT    NOT NULL UNIQUE,
    chat_id             INTEGER NOT NULL,
    message_id          INTEGER NOT NULL,
    customer_name       TEXT    NOT NULL,
    customer_id         INTEGER,
    customer_username   TEXT,
    product             TEXT    NOT NULL,
    amount_minor        INTEGER NOT NULL CHECK (amount_minor > 0),
    currency            TEXT    NOT NULL,
    details             TEXT    NOT NULL,
    -- JSON array of the distinct account IDs found in the details:
    -- one = ok, none = missing, several = ambiguous.
    account_candidates  TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    activation_id       TEXT,
    reply_message_id    INTEGER,
    button_message_id   INTEGER,
    escalation_reason   TEXT,
    -- failed activation attempts while the backend was unavailable
    activation_failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,                -- unix ms; parked until then
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (chat_id, message_id),
    FOREIGN KEY (chat_id, message_id) REFERENCES tribute_messages (chat_id, message_id)
);
CREATE INDEX orders_by_state ON orders (state);

-- What happened to each order, in order. from_state = to_state for notes
-- that are not transitions (e.g. a parked activation attempt).
CREATE TABLE order_events (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    at         INTEGER NOT NULL,                -- unix ms
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    note       TEXT    NOT NULL
);
CREATE INDEX order_events_by_order ON order_events (order_id, id);

-- Transactional outbox for moderator case messages: written in the same
-- transaction as the escalation, posted afterwards, retried until posted.
CREATE TABLE moderator_outbox (
    id                INTEGER PRIMARY KEY,
    order_id          INTEGER REFERENCES orders (id),
    source_chat_id    INTEGER NOT NULL,
    source_message_id INTEGER NOT NULL,
    reason            TEXT    NOT NULL,
    text              TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    posted_chat_id    INTEGER,
    posted_message_id INTEGER,
    posted_at         INTEGER
);
CREATE INDEX moderator_outbox_pending ON moderator_outbox (posted_at);
