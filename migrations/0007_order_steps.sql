-- The order workflow as work items in the store (the only queue): every
-- unsettled order is due when `next_attempt_at` is NULL or past, and a
-- sweep takes whatever is due, so a lost wake-up costs a delay, never an
-- order.

-- The random_id of our reply to the Tribute notification, chosen and
-- committed before the first send: every retry (after a timeout, a crash)
-- sends the same id, and Telegram's RANDOM_ID_DUPLICATE tells that the
-- first one was delivered.
ALTER TABLE orders ADD COLUMN reply_random_id INTEGER;
-- When the order entered `replied` (unix ms): the Send button's deadline
-- counts from here, not from the last time the order was touched.
ALTER TABLE orders ADD COLUMN replied_at INTEGER;
-- Telegram failures of the current step in a row (backoff exponent).
ALTER TABLE orders ADD COLUMN step_failures INTEGER NOT NULL DEFAULT 0;

CREATE INDEX orders_due ON orders (state, next_attempt_at);
-- The Send-button follow-up is found by the reply it answers.
CREATE INDEX tribute_messages_by_reply ON tribute_messages (chat_id, reply_to);
-- The periodic re-read starts below the recent messages (by date).
CREATE INDEX tribute_messages_by_date ON tribute_messages (chat_id, date);
