-- The MRV journal: one row per accepted MRV command (registration, plans, monthly submissions
-- with their evidence hashes, verification steps), chained by SHA-256 like the registry's.
-- MRV commands are few, so a unique index on command ids makes retries exact.
CREATE TABLE mrv_journal (
    seq        BIGINT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    command_id TEXT NOT NULL UNIQUE,
    body       BYTEA NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
-- Evidence files, by content: the journal holds each file's SHA-256, this table the bytes, so
-- a stored file that no longer matches its recorded hash is found by `ets audit verify`.
CREATE TABLE mrv_evidence (
    sha256  TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    content BYTEA NOT NULL
);
