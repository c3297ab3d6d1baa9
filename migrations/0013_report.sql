-- The automation report (src/report) reads every figure with aggregates
-- over a time range. Without these indexes each order would look for its
-- cases, and each agent turn for the case opened after it, by scanning the
-- whole cases table: quadratic at 100k orders.
CREATE INDEX orders_by_created ON orders (created_at);
CREATE INDEX cases_by_order ON cases (order_id);
CREATE INDEX cases_by_conversation ON cases (conversation_id, opened_at);
CREATE INDEX cases_by_opened ON cases (opened_at);
CREATE INDEX moderator_audit_by_time ON moderator_audit (at);

-- The weekly summary in the moderator chat, as work items on the program's
-- clock: one row per scheduled time. The row exists before the first
-- attempt and keeps one Telegram `random_id` for every attempt, so a
-- restart neither skips a week (the row is still due) nor posts it twice
-- (a retry of a send that went through is refused as RANDOM_ID_DUPLICATE).
CREATE TABLE report_posts (
    due_at          INTEGER PRIMARY KEY,        -- the scheduled time, unix ms
    random_id       INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,           -- unix ms
    last_error      TEXT,
    posted_at       INTEGER,                    -- NULL while waiting
    message_id      INTEGER
);
CREATE INDEX report_posts_waiting ON report_posts (next_attempt_at) WHERE posted_at IS NULL;
