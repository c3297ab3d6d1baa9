-- Customer contact and the moderator escalation chat (issue 4).
--
-- These tables are the raw material of the review export and of the agent:
-- every message to and from a customer, every case a person handled, and
-- every moderator action. Times are unix milliseconds.

-- One dialogue per customer (Telegram user id). `state` is the name of the
-- dialogue state (idle | awaiting_account | validating | with_moderator);
-- `state_json` holds the whole state with its data, so a restart resumes it.
CREATE TABLE conversations (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL UNIQUE,
    customer_name  TEXT    NOT NULL,
    -- ru | en: the language we write in
    language       TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    state_json     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX conversations_by_state ON conversations (state);

-- Every message in or out of a conversation, in order.
CREATE TABLE conversation_messages (
    id                  INTEGER PRIMARY KEY,
    conversation_id     INTEGER NOT NULL REFERENCES conversations (id),
    at                  INTEGER NOT NULL,
    -- in (from the customer) | out (to the customer) | internal (a moderator note, never sent)
    direction           TEXT    NOT NULL CHECK (direction IN ('in', 'out', 'internal')),
    -- customer | assistant (templates) | agent (the LLM agent) | moderator
    author              TEXT    NOT NULL CHECK (author IN ('customer', 'assistant', 'agent', 'moderator')),
    -- the moderator's Telegram user id when author = moderator
    author_id           INTEGER,
    text                TEXT    NOT NULL,
    -- template name (ask_account, reminder, thanks, ...) for assistant messages
    template            TEXT,
    telegram_chat_id    INTEGER,
    telegram_message_id INTEGER,
    -- JSON array of the order ids the message is about
    order_ids           TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX conversation_messages_by_conversation ON conversation_messages (conversation_id, id);
-- An incoming Telegram message is stored once, however often it is delivered.
CREATE UNIQUE INDEX conversation_messages_telegram
    ON conversation_messages (telegram_chat_id, telegram_message_id) WHERE direction = 'in';

-- Which orders a conversation is about, and where each stands in it.
CREATE TABLE conversation_orders (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    order_id        INTEGER NOT NULL UNIQUE REFERENCES orders (id),
    -- awaiting (we need the account) | validating (the backend checks `account`)
    -- | done (completed, customer thanked) | moderator (a case has it) | closed
    status          TEXT    NOT NULL,
    -- why the customer is asked: missing_account | ambiguous_account | no_pending_order | unknown_account
    reason          TEXT    NOT NULL,
    account         TEXT,
    -- how many account IDs from the customer the backend refused for this order
    rejections      INTEGER NOT NULL DEFAULT 0,
    linked_at       INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, order_id)
);

-- A case: something a person has to look at. `short_id` (C12) is what
-- moderators type; `pending_account` is an ID a moderator gave that the
-- backend is checking.
CREATE TABLE cases (
    id              INTEGER PRIMARY KEY,
    short_id        TEXT    UNIQUE,
    reason          TEXT    NOT NULL,
    order_id        INTEGER REFERENCES orders (id),
    conversation_id INTEGER REFERENCES conversations (id),
    status          TEXT    NOT NULL CHECK (status IN ('open', 'closed')),
    outcome         TEXT,
    pending_account TEXT,
    opened_at       INTEGER NOT NULL,
    closed_at       INTEGER
);
CREATE INDEX cases_open ON cases (status);

-- Messages of the moderator chat that belong to a case (the card and its
-- follow-ups): a reply to any of them acts on the case. Mapped by message
-- id, never by forward_from, so it works when customers hide forwards.
CREATE TABLE case_messages (
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    case_id    INTEGER NOT NULL REFERENCES cases (id),
    PRIMARY KEY (chat_id, message_id)
);

-- Cards and case follow-ups go through the existing transactional outbox.
ALTER TABLE moderator_outbox ADD COLUMN case_id INTEGER REFERENCES cases (id);
-- card (the first message of a case) | update (a follow-up, posted as a reply to the card)
ALTER TABLE moderator_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'card';

-- Everything a moderator (or someone who is not one) asked of us in the chat.
CREATE TABLE moderator_audit (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    moderator_id INTEGER NOT NULL,
    case_id      INTEGER REFERENCES cases (id),
    -- account | relay | done | reject | retry | note | cases | case | refused | unknown
    action       TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    -- 0 when the sender is not a configured moderator and was refused
    allowed      INTEGER NOT NULL,
    chat_id      INTEGER NOT NULL,
    message_id   INTEGER NOT NULL
);
CREATE INDEX moderator_audit_by_case ON moderator_audit (case_id, id);

-- Messages we sent to each customer per UTC day (the daily cap).
CREATE TABLE customer_daily_messages (
    customer_id INTEGER NOT NULL,
    day         TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (customer_id, day)
);
