-- The journal is the truth: one row per accepted command, chained by SHA-256.
CREATE TABLE journal (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    command_id TEXT    NOT NULL UNIQUE,
    body       BLOB    NOT NULL,
    prev_hash  BLOB    NOT NULL,
    hash       BLOB    NOT NULL
);
-- Snapshots are a cache of the state at a journal position; replay can always rebuild them.
CREATE TABLE snapshots (
    seq        INTEGER PRIMARY KEY,
    state_hash BLOB    NOT NULL,
    body       BLOB    NOT NULL
);
-- Query tables: projections of the journal, written in the same transaction.
CREATE TABLE accounts (
    number          TEXT PRIMARY KEY,
    market          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    holder          TEXT NOT NULL,
    holder_type     TEXT NOT NULL,
    status          TEXT NOT NULL,
    representatives TEXT NOT NULL
);
CREATE TABLE holdings (
    account    TEXT    NOT NULL,
    unit       TEXT    NOT NULL,
    free       INTEGER NOT NULL CHECK (free >= 0),
    encumbered INTEGER NOT NULL CHECK (encumbered >= 0),
    PRIMARY KEY (account, unit)
) WITHOUT ROWID;
CREATE TABLE transactions (
    tx              INTEGER PRIMARY KEY,
    seq             INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    from_account    TEXT,
    to_account      TEXT,
    unit            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    compliance_year INTEGER,
    reverses        INTEGER
);
CREATE INDEX transactions_from ON transactions (from_account, tx);
CREATE INDEX transactions_to ON transactions (to_account, tx);
