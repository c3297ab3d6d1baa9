-- Messages to customers as work items. A message is stored before the
-- first attempt and keeps one Telegram `random_id` for every attempt, in
-- this process or after a restart: a retry of a send whose answer was lost
-- is refused by Telegram as RANDOM_ID_DUPLICATE instead of arriving twice.
-- A transient failure (flood wait, timeout, disconnect) moves `due_at`
-- with backoff; the contact task's sweep takes what is due. A delivered
-- message becomes a row of `conversation_messages` in the same transaction
-- that marks it sent.
CREATE TABLE customer_outbox (
    id                  INTEGER PRIMARY KEY,
    conversation_id     INTEGER NOT NULL REFERENCES conversations (id),
    customer_id         INTEGER NOT NULL,
    text                TEXT    NOT NULL,
    -- assistant | agent | moderator (as in conversation_messages)
    author              TEXT    NOT NULL,
    author_id           INTEGER,
    template            TEXT,
    -- JSON array of the order ids the message is about
    order_ids           TEXT    NOT NULL DEFAULT '[]',
    random_id           INTEGER NOT NULL,
    -- the UTC day (YYYY-MM-DD) the message is counted in against the daily
    -- cap; an attempt on a later day counts it there too
    cap_day             TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,            -- unix ms
    due_at              INTEGER NOT NULL,            -- unix ms: the next attempt
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    -- the last attempt's answer was lost (timeout): look in the chat before sending again
    maybe_sent          INTEGER NOT NULL DEFAULT 0,
    -- pending | sent | refused (Telegram refused for good) | expired (never went through)
    -- | obsolete (a question for an account no order waits for any more)
    status              TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sent', 'refused', 'expired', 'obsolete')),
    telegram_message_id INTEGER,
    done_at             INTEGER
);
CREATE INDEX customer_outbox_due ON customer_outbox (due_at) WHERE status = 'pending';

-- The contact tick looks only at dialogues that can move.
CREATE INDEX conversation_orders_open ON conversation_orders (status)
    WHERE status IN ('awaiting', 'validating', 'moderator');

-- The contact tick looks only at dialogues that can move: those whose
-- timer is due (`due_at`, unix ms, NULL when none runs) and those where
-- something changed since the tick last looked (`version` >
-- `looked_version`). The triggers bump `version` on every change of a
-- dialogue's orders, links and cases; setting the dialogue state bumps it
-- too. A change while the tick is looking leaves `version` ahead of what
-- the tick writes back, so it is never missed.
ALTER TABLE conversations ADD COLUMN due_at INTEGER;
ALTER TABLE conversations ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE conversations ADD COLUMN looked_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX conversations_due ON conversations (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX conversations_changed ON conversations (id) WHERE version > looked_version;

CREATE TRIGGER conversation_changed_by_order AFTER UPDATE OF state ON orders
BEGIN
    UPDATE conversations SET version = version + 1
     WHERE id IN (SELECT conversation_id FROM conversation_orders WHERE order_id = NEW.id);
END;
CREATE TRIGGER conversation_changed_by_new_link AFTER INSERT ON conversation_orders
BEGIN
    UPDATE conversations SET version = version + 1 WHERE id = NEW.conversation_id;
END;
CREATE TRIGGER conversation_changed_by_link AFTER UPDATE ON conversation_orders
BEGIN
    UPDATE conversations SET version = version + 1 WHERE id = NEW.conversation_id;
END;
CREATE TRIGGER conversation_changed_by_case AFTER UPDATE OF status ON cases
BEGIN
    UPDATE conversations SET version = version + 1
     WHERE id = NEW.conversation_id
        OR id IN (SELECT conversation_id FROM conversation_orders WHERE order_id = NEW.order_id);
END;
