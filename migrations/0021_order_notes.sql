-- An order's history line is written by the order's own row change, and a
-- follow-up's wake-up by its own insert, not by a second statement: every
-- statement is a hand-off to the database's thread and back, which costs
-- more than the SQL (docs/deployment.md, "Where the orders path spends its
-- time"), and an order step is now one statement where it was a
-- transaction of four or five.
--
-- `last_note` is the note of the order's latest `order_events` row. Every
-- write that logs a step sets it (with `updated_at`, the row's time), and
-- the triggers below append the row: a new order, a move or a note. (A
-- row written without a note logs nothing: an import writes its own.)
ALTER TABLE orders ADD COLUMN last_note TEXT;
UPDATE orders SET last_note =
    (SELECT e.note FROM order_events e WHERE e.order_id = orders.id ORDER BY e.id DESC LIMIT 1);

CREATE TRIGGER order_event_on_insert AFTER INSERT ON orders
WHEN NEW.last_note IS NOT NULL
BEGIN
    INSERT INTO order_events (order_id, at, from_state, to_state, note)
    VALUES (NEW.id, NEW.updated_at, NULL, NEW.state, NEW.last_note);
END;

-- `UPDATE OF last_note`: fires for every statement that sets it, even to
-- the same text (two parked attempts in a row are two lines).
CREATE TRIGGER order_event_on_note AFTER UPDATE OF last_note ON orders
WHEN NEW.last_note IS NOT NULL
BEGIN
    INSERT INTO order_events (order_id, at, from_state, to_state, note)
    VALUES (NEW.id, NEW.updated_at, OLD.state, NEW.state, NEW.last_note);
END;

-- The customer dialogue's events (0020), written by the move itself:
-- an order that waits for its customer, and a confirmed order that has an
-- open case. The compare-and-set (`store/orders.rs`) returns the same
-- condition, to hint the contact task after the commit.
CREATE TRIGGER order_needs_customer AFTER UPDATE OF state ON orders
WHEN NEW.state = 'needs_customer' AND NEW.customer_id IS NOT NULL
BEGIN
    INSERT INTO dialogue_events (order_id, kind, due_at) VALUES (NEW.id, 'needs_customer', NEW.updated_at);
END;

CREATE TRIGGER order_completed_with_open_case AFTER UPDATE OF state ON orders
WHEN NEW.state = 'confirmed' AND EXISTS (SELECT 1 FROM cases WHERE order_id = NEW.id AND status = 'open')
BEGIN
    INSERT INTO dialogue_events (order_id, kind, due_at) VALUES (NEW.id, 'completed', NEW.updated_at);
END;

-- The bot's follow-up to our reply makes the order that waits for it due
-- at once, by the insert that stores it. (A follow-up stored before the
-- order notes our reply is found by the order's own look after its wait.)
CREATE TRIGGER follow_up_wakes_its_order AFTER INSERT ON tribute_messages
WHEN NEW.kind = 'follow_up' AND NEW.reply_to IS NOT NULL
BEGIN
    UPDATE orders SET next_attempt_at = NULL
     WHERE chat_id = NEW.chat_id AND reply_message_id = NEW.reply_to AND state = 'replied';
END;
