-- A bounded store and customers' privacy (src/retention, docs/privacy.md).
--
-- The pruner deletes or scrubs what is past its window in small batches and
-- never touches pending work; `forget` erases one customer at once. Orders
-- keep their money facts with the customer replaced by a pseudonym.

-- When the customer's personal data was replaced by a pseudonym (after
-- their last activity, or by `forget`). An erased conversation's
-- customer_id is minus its own id: never a Telegram user id, so the
-- customer writing again starts a new conversation.
ALTER TABLE conversations ADD COLUMN erased_at INTEGER;
ALTER TABLE orders ADD COLUMN erased_at INTEGER;

-- A paid purchase no Telegram order matched before the deadline goes to a
-- moderator (a card) and is not matched automatically any more.
ALTER TABLE tribute_purchases ADD COLUMN matching_stopped_at INTEGER;
-- Purchases a moderator was already told about ("paid, but no Telegram
-- order") and older than the default deadline (72 h) stop being matched
-- now, without a second card each: no flood of cards after the upgrade.
UPDATE tribute_purchases SET matching_stopped_at = unmatched_flagged_at
 WHERE order_id IS NULL AND paid_at IS NOT NULL AND unmatched_flagged_at IS NOT NULL
   AND paid_at < CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 72 * 3600 * 1000;

-- Rows the pruner (or `forget`) deleted and texts it scrubbed, by table
-- and label. Counters that /metrics computes from row counts (customer
-- messages, agent answers, escalations) add these, so they never go down.
CREATE TABLE retention_counts (
    -- pruned (rows deleted) | scrubbed (texts blanked, customers pseudonymised)
    kind   TEXT    NOT NULL CHECK (kind IN ('pruned', 'scrubbed')),
    -- the table, or what was scrubbed
    what   TEXT    NOT NULL,
    -- e.g. a message's direction or a card's reason; '' when none
    label  TEXT    NOT NULL DEFAULT '',
    n      INTEGER NOT NULL,
    PRIMARY KEY (kind, what, label)
);

-- When the pruner last finished a pass (for /metrics).
CREATE TABLE retention_passes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    at      INTEGER NOT NULL,      -- unix ms
    -- 1 when some table had more than one batch due
    more    INTEGER NOT NULL
);

-- Every erasure of a customer: when, who asked, and what kinds of data
-- and how many rows were erased. Never whose.
CREATE TABLE erasures (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,  -- unix ms
    -- "command line" | "moderator <Telegram user id>"
    requested_by TEXT    NOT NULL,
    -- JSON object: kind of data -> rows erased
    counts_json  TEXT    NOT NULL
);

-- Approved pairs of an erased conversation still to be removed from the
-- knowledge base's index: a work item until the index no longer has them
-- (the index is another store, and may be unreachable when `forget` runs).
CREATE TABLE kb_removals (
    conversation_id INTEGER PRIMARY KEY,
    requested_at    INTEGER NOT NULL,   -- unix ms
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0
);

-- The pruner's scans, and a customer's rows found by their Telegram id.
CREATE INDEX inbox_handled ON inbox (handled_at) WHERE handled_at IS NOT NULL;
CREATE INDEX conversation_messages_by_time ON conversation_messages (at);
CREATE INDEX customer_outbox_done ON customer_outbox (done_at) WHERE status <> 'pending';
CREATE INDEX customer_outbox_by_customer ON customer_outbox (customer_id);
CREATE INDEX tribute_webhook_events_by_time ON tribute_webhook_events (received_at);
CREATE INDEX tribute_webhook_events_by_purchase ON tribute_webhook_events (purchase_id);
CREATE INDEX tribute_purchases_by_user ON tribute_purchases (telegram_user_id);
CREATE INDEX tribute_purchases_unmatched ON tribute_purchases (paid_at)
    WHERE order_id IS NULL AND matching_stopped_at IS NULL;
-- orders by customer: 0016 has orders_by_customer (customer_id, state).
CREATE INDEX learn_previews_by_conversation ON learn_previews (conversation_id);
CREATE INDEX moderator_outbox_by_case ON moderator_outbox (case_id);
