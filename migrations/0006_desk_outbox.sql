-- The moderator desk posts its outbox row by row (src/moderator/outbox_worker.rs):
-- each row has its own due time and retry state, so one card Telegram keeps
-- refusing never holds back the cards behind it.

-- Failed posting attempts so far.
ALTER TABLE moderator_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- When the row may be tried (again), unix ms on the program's clock; 0 = now.
ALTER TABLE moderator_outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
-- Why the last attempt failed (for the log, `orders`/ops and a person).
ALTER TABLE moderator_outbox ADD COLUMN last_error TEXT;
-- Set when Telegram refused the row for good (too long, chat not found, …):
-- it is never tried again; posted_at stays NULL.
ALTER TABLE moderator_outbox ADD COLUMN parked_at INTEGER;
-- Telegram's random_id for the send, drawn once when the row is stored and
-- reused by every retry: a retry after a timeout whose send did go through
-- is refused as RANDOM_ID_DUPLICATE instead of posting the card twice.
ALTER TABLE moderator_outbox ADD COLUMN random_id INTEGER;
UPDATE moderator_outbox SET random_id = random() WHERE random_id IS NULL;

CREATE INDEX moderator_outbox_due ON moderator_outbox (next_attempt_at, id)
    WHERE posted_at IS NULL AND parked_at IS NULL;
