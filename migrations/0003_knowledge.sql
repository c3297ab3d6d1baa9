-- Question/answer pairs a moderator approved for the knowledge base (the
-- `/learn` command). The raw conversation is never kept here: only the
-- customer's question and the team's answer. They are redacted when they
-- are indexed (`kb ingest --conversations`, or at once by the daemon).
CREATE TABLE approved_pairs (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL,
    question        TEXT    NOT NULL,
    answer          TEXT    NOT NULL,
    language        TEXT,
    approved_by     INTEGER NOT NULL,             -- the moderator's Telegram user id
    approved_at     INTEGER NOT NULL,             -- our clock, unix ms
    UNIQUE (conversation_id, question, answer)
);
