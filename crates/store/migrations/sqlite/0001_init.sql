-- The journal is the truth: one row per accepted command, chained by SHA-256. Appends only:
-- command ids are unique by the registry's idempotency index (and `ets audit verify` checks
-- it on replay), so no index on them slows every append down.
CREATE TABLE journal (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    command_id TEXT    NOT NULL,
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
-- Query tables: projections of the journal. accounts and units are written in the same
-- transaction as the records; holdings and postings trail it (see projection_marks).
CREATE TABLE units (
    id      INTEGER PRIMARY KEY,
    name    TEXT    NOT NULL UNIQUE,
    market  TEXT    NOT NULL,
    vintage INTEGER NOT NULL
);
CREATE TABLE accounts (
    id              INTEGER NOT NULL UNIQUE,
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
-- Account history: one posting per account a transaction touches (two for a transfer),
-- clustered by account so that a statement is one range scan and no secondary index is kept.
-- Keys, not names (join accounts and units): rows stay small and a flush inserts in key order.
CREATE TABLE postings (
    account_id      INTEGER NOT NULL,
    tx              INTEGER  NOT NULL,
    seq             INTEGER  NOT NULL,
    at_ms           INTEGER  NOT NULL,
    kind            TEXT    NOT NULL,
    incoming        BOOLEAN NOT NULL,
    counterparty_id INTEGER,
    unit_id         INTEGER NOT NULL,
    quantity        INTEGER  NOT NULL CHECK (quantity > 0),
    compliance_year INTEGER,
    reverses        INTEGER,
    PRIMARY KEY (account_id, tx)
) WITHOUT ROWID;
-- How far the trailing query tables (postings and holdings) have been written: they trail
-- the journal (written in large batches after the journal commits) and are caught up from the
-- journal on open.
CREATE TABLE projection_marks (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
INSERT INTO projection_marks (name, seq) VALUES ('trailing', 0);
