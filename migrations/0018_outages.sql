-- Orders that wait because the backend or Telegram keeps failing are
-- reported to the moderator chat once per outage, not once per order and
-- not never (src/orders/outage.rs).

-- Since when an unsettled order has been waiting for a failing dependency,
-- and which: set by the first failure of a streak (`Store::park` for the
-- backend, `Store::park_step` for Telegram), cleared by every state change.
ALTER TABLE orders ADD COLUMN waiting_since INTEGER;
ALTER TABLE orders ADD COLUMN waiting_on TEXT CHECK (waiting_on IN ('backend', 'telegram'));
CREATE INDEX orders_waiting ON orders (waiting_on, waiting_since) WHERE waiting_since IS NOT NULL;

-- One row per outage of one dependency; at most one open per dependency,
-- so a restart can never open a second card for the same outage.
CREATE TABLE outages (
    id             INTEGER PRIMARY KEY,
    cause          TEXT    NOT NULL CHECK (cause IN ('backend', 'telegram')),
    -- When the first order it lists started waiting (unix ms on the program's clock).
    since          INTEGER NOT NULL,
    -- When it was reported (the card was queued).
    opened_at      INTEGER NOT NULL,
    -- The case whose card lists the waiting orders.
    case_id        INTEGER REFERENCES cases (id),
    -- When the last follow-up naming orders that joined was queued.
    last_update_at INTEGER,
    recovered_at   INTEGER
);
CREATE UNIQUE INDEX outages_one_open ON outages (cause) WHERE recovered_at IS NULL;

-- The orders an outage held up.
CREATE TABLE outage_orders (
    outage_id  INTEGER NOT NULL REFERENCES outages (id),
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    joined_at  INTEGER NOT NULL,
    -- Listed on the outage's card (it waited when the outage was opened).
    in_card    INTEGER NOT NULL CHECK (in_card IN (0, 1)),
    -- Named in the chat: on the card, or by a follow-up since.
    announced  INTEGER NOT NULL CHECK (announced IN (0, 1)),
    -- When it was first seen no longer waiting.
    left_at    INTEGER,
    PRIMARY KEY (outage_id, order_id)
);

-- A card about an outage: subject 'outage', the outage's id in subject_key.
-- The subject's kinds are checked where rows are read
-- (`store::outbox::body_from_row`, which parks a row it cannot read):
-- listed here, every new kind of card cost a rebuild of this table.
CREATE TABLE moderator_outbox_0018 (
    id                INTEGER PRIMARY KEY,
    order_id          INTEGER REFERENCES orders (id),
    source_chat_id    INTEGER,
    source_message_id INTEGER,
    reason            TEXT    NOT NULL,
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
    subject           TEXT CHECK (subject <> ''),
    conversation_id   INTEGER REFERENCES conversations (id),
    subject_key       TEXT,
    detail            TEXT,
    CHECK ((text IS NULL) <> (subject IS NULL))
);

INSERT INTO moderator_outbox_0018
    (id, order_id, source_chat_id, source_message_id, reason, text, created_at, posted_chat_id,
     posted_message_id, posted_at, case_id, kind, attempts, next_attempt_at, last_error, parked_at, random_id,
     subject, conversation_id, subject_key, detail)
SELECT id, order_id, source_chat_id, source_message_id, reason, text, created_at, posted_chat_id,
       posted_message_id, posted_at, case_id, kind, attempts, next_attempt_at, last_error, parked_at, random_id,
       subject, conversation_id, subject_key, detail
FROM moderator_outbox;

DROP TABLE moderator_outbox;
ALTER TABLE moderator_outbox_0018 RENAME TO moderator_outbox;

CREATE INDEX moderator_outbox_pending ON moderator_outbox (posted_at);
CREATE INDEX moderator_outbox_due ON moderator_outbox (next_attempt_at, id)
    WHERE posted_at IS NULL AND parked_at IS NULL;
