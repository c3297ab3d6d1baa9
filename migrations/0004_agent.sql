-- Every agent turn: what the customer asked, what the agent drafted, what
-- the customer got, and which escalation rules fired. The review export
-- reads it; the repeat detector reads the previous turn of a conversation.
CREATE TABLE agent_turns (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER,                    -- NULL for `ask` on the command line
    customer_id     INTEGER,                    -- Telegram user id; NULL for `ask`
    question        TEXT    NOT NULL,
    answer          TEXT,                       -- the draft (model or curated answer), if any
    reply           TEXT    NOT NULL,           -- what the customer was sent
    language        TEXT    NOT NULL CHECK (language IN ('ru', 'en')),
    confidence      REAL,
    sources_json    TEXT    NOT NULL,           -- JSON array of knowledge-base hit ids
    reasons_json    TEXT    NOT NULL,           -- JSON array of {"code", "detail"}; empty = answered
    escalated       INTEGER NOT NULL CHECK (escalated IN (0, 1)),
    mode            TEXT    NOT NULL CHECK (mode IN ('llm', 'retrieval')),
    latency_ms      INTEGER NOT NULL,
    at              INTEGER NOT NULL            -- unix ms
);
CREATE INDEX agent_turns_by_conversation ON agent_turns (conversation_id, id);
CREATE INDEX agent_turns_by_customer ON agent_turns (customer_id, id);
CREATE INDEX agent_turns_by_time ON agent_turns (at);
