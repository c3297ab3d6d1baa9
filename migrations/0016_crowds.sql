-- Fair under crowds (docs/contact.md, "Crowds"): many senders at once must
-- not crowd out the paying customers, the moderators or the backend.

-- 1. `coalescing`: a follow-up later ones of the same case are merged into
-- while it has not been tried yet (`store::coalesced_updates`): 'append'
-- (a customer's messages relayed to their case: several in one post) or
-- 'replace' (the queued-questions summary: only the newest figures). NULL
-- for every other row. (The card subject 'question_queue' needs no change:
-- 0015 took the list of subjects out of the table.)
ALTER TABLE moderator_outbox ADD COLUMN coalescing TEXT CHECK (coalescing IN ('append', 'replace'));
CREATE INDEX moderator_outbox_coalescing ON moderator_outbox (case_id, coalescing) WHERE coalescing IS NOT NULL;

-- 2. One open case per order. Every account ID a customer sent late (after
-- their order's case was opened) that the backend refused used to open one
-- more case for the same order. Keep the newest open case of each order and
-- close the others, with a follow-up on each saying where the order is now;
-- from here on the index refuses a second open case for one order.
INSERT INTO moderator_outbox (order_id, reason, text, created_at, case_id, kind, random_id)
SELECT c.order_id, c.reason,
       '☑️ ' || COALESCE(c.short_id, 'C' || c.id) || ': closed as a duplicate; '
           || COALESCE(k.short_id, 'C' || k.id) || ' has this order.',
       CAST(strftime('%s', 'now') AS INTEGER) * 1000, c.id, 'update', random()
FROM cases c
JOIN cases k ON k.id = (SELECT MAX(id) FROM cases WHERE order_id = c.order_id AND status = 'open')
WHERE c.status = 'open' AND c.order_id IS NOT NULL AND c.id <> k.id;

UPDATE cases
   SET status = 'closed',
       outcome = 'closed as a duplicate of C'
           || (SELECT MAX(d.id) FROM cases d WHERE d.order_id = cases.order_id AND d.status = 'open'),
       closed_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000,
       pending_account = NULL
 WHERE status = 'open' AND order_id IS NOT NULL
   AND id <> (SELECT MAX(d.id) FROM cases d WHERE d.order_id = cases.order_id AND d.status = 'open');

CREATE UNIQUE INDEX cases_one_open_per_order ON cases (order_id) WHERE status = 'open' AND order_id IS NOT NULL;

-- 3. Questions beyond the account-wide budget of agent turns and new
-- question cases (`[contact]`) wait here, oldest first, until the contact
-- tick releases them. `due_at` (unix ms): not before then (when the budget
-- has room again); `released_at`: handed to the question handler. Released
-- rows stay for the burst card's figures. No foreign keys: pruning old
-- conversation messages must not be blocked by a released row.
CREATE TABLE queued_questions (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL,
    -- the customer's stored message (conversation_messages.id): its text
    message_id      INTEGER NOT NULL UNIQUE,
    -- 1: tell the customer their question was passed on when a case is opened for it
    acknowledge     INTEGER NOT NULL CHECK (acknowledge IN (0, 1)),
    queued_at       INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    released_at     INTEGER,
    -- failed attempts to hand it over, and the last error (a store error:
    -- retried a few times, then released with it so it blocks nothing)
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT
);
CREATE INDEX queued_questions_waiting ON queued_questions (due_at, id) WHERE released_at IS NULL;
CREATE INDEX queued_questions_by_time ON queued_questions (queued_at);

-- 4. The contact task's lanes ask, per waiting sender, whether an order of
-- theirs waits for them (`store::inbox`).
CREATE INDEX orders_by_customer ON orders (customer_id, state);
