-- A `/learn`ed pair is a work item until the knowledge base has it: the
-- desk indexes it at once when it can, and the contact task retries the
-- ones that failed (the embedding server was down, the index was busy)
-- with backoff, so an approved answer never waits for a person to run
-- `kb ingest --conversations`.
ALTER TABLE approved_pairs ADD COLUMN indexed_at INTEGER;        -- unix ms; NULL while waiting
ALTER TABLE approved_pairs ADD COLUMN index_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE approved_pairs ADD COLUMN next_index_at INTEGER;     -- unix ms; NULL = due now
CREATE INDEX approved_pairs_to_index ON approved_pairs (next_index_at) WHERE indexed_at IS NULL;
