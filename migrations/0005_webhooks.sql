-- Tribute webhooks (a second source of truth next to the Telegram
-- notifications) and the ops listener's DB-writable probe.

-- Every verified webhook delivery, stored before we answer 200. Tribute
-- retries for about a day on non-2xx, so (name, purchase_key) makes a
-- replay a no-op. purchase_key is the purchase id, or 'sha256:<hex>' of
-- the raw body for events that carry none (and for signed bodies we could
-- not read, name = 'invalid', kept with their raw text for a person).
CREATE TABLE tribute_webhook_events (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    purchase_key  TEXT    NOT NULL,
    purchase_id   TEXT,
    created_at    INTEGER,                 -- envelope created_at, unix ms
    sent_at       INTEGER,                 -- envelope sent_at, unix ms
    raw_body      TEXT    NOT NULL,
    error         TEXT,                    -- why an 'invalid' body was refused
    received_at   INTEGER NOT NULL,        -- our clock, unix ms
    UNIQUE (name, purchase_key)
);

-- One row per Tribute purchase, merged from its events, and what we did
-- about it: matched to a Telegram order, flagged, refunded, deactivated.
CREATE TABLE tribute_purchases (
    purchase_id          TEXT    PRIMARY KEY,
    product_id           TEXT,
    product_name         TEXT    NOT NULL,
    amount_minor         INTEGER NOT NULL,
    currency             TEXT    NOT NULL,
    telegram_user_id     INTEGER NOT NULL,
    transaction_id       TEXT,
    paid_at              INTEGER,          -- unix ms; NULL while only a refund was seen
    order_id             INTEGER UNIQUE REFERENCES orders (id),
    matched_at           INTEGER,
    unmatched_flagged_at INTEGER,          -- the "paid but no Telegram order" card was written
    refunded_at          INTEGER,          -- unix ms
    refund_reason        TEXT,
    refund_handled_at    INTEGER,          -- the refund was acted on and the moderator told
    -- requested | deactivated | already_deactivated | not_activated | failed
    deactivation         TEXT,
    next_attempt_at      INTEGER,          -- a deactivation waiting for the backend
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX tribute_purchases_open ON tribute_purchases (order_id, refund_handled_at);

-- The Tribute purchase a Telegram order was matched to.
ALTER TABLE orders ADD COLUMN tribute_purchase_id TEXT;

-- One row the ops listener rewrites to prove the database takes writes.
CREATE TABLE ops_heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
