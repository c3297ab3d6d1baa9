-- How far each chat's history is known to be read completely: the start
-- (unix seconds, message dates) of the last re-read that reached the end.
-- The next re-read starts a window before it, so a message whose update was
-- lost is found even when re-reads failed for longer than the window (a
-- long flood wait on history, Telegram down for an hour).
CREATE TABLE history_marks (
    chat_id      INTEGER PRIMARY KEY,
    read_through INTEGER NOT NULL
);
