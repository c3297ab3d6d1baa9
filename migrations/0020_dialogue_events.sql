-- What the customer dialogue must react to, written by the order's own
-- transition in the same transaction (`cas_order_state`), so the contact
-- task learns of it without looking at every order every second:
--   needs_customer: the order waits for its customer (missing or refused
--                   account ID, a second payment): adopt it into the
--                   customer's dialogue, or hand it back to its case;
--   completed:      an order with an open case was confirmed: close the case.
-- A row stays until the contact task has handled it (at least once; each
-- handler re-reads the order and does nothing when it moved on).
CREATE TABLE dialogue_events (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('needs_customer', 'completed')),
    due_at     INTEGER NOT NULL,            -- unix ms
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX dialogue_events_due ON dialogue_events (due_at);

-- Work the old once-a-second scan would have found after an upgrade.
INSERT INTO dialogue_events (order_id, kind, due_at)
SELECT o.id, 'needs_customer', 0 FROM orders o
 LEFT JOIN conversation_orders l ON l.order_id = o.id
 WHERE o.state = 'needs_customer' AND o.customer_id IS NOT NULL
   AND (l.status IS NULL OR l.status != 'awaiting');
INSERT INTO dialogue_events (order_id, kind, due_at)
SELECT DISTINCT c.order_id, 'completed', 0 FROM cases c JOIN orders o ON o.id = c.order_id
 WHERE c.status = 'open' AND o.state = 'confirmed';
