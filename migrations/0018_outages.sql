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

-- A card about an outage: subject 'outage', the outage's id in subject_key
-- (0015 removed the CHECK listing the subjects).
