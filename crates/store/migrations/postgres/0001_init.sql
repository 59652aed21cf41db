-- The journal is the truth: one row per accepted command, chained by SHA-256. Appends only:
-- command ids are unique by the registry's idempotency index (and `ets audit verify` checks
-- it on replay), so no index on them slows every append down.
CREATE TABLE journal (
    seq        BIGINT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    command_id TEXT   NOT NULL,
    body       BYTEA  NOT NULL,
    prev_hash  BYTEA  NOT NULL,
    hash       BYTEA  NOT NULL
);
-- Snapshots are a cache of the state at a journal position; replay can always rebuild them.
CREATE TABLE snapshots (
    seq        BIGINT PRIMARY KEY,
    state_hash BYTEA  NOT NULL,
    body       BYTEA  NOT NULL
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
    account    TEXT   NOT NULL,
    unit       TEXT   NOT NULL,
    free       BIGINT NOT NULL CHECK (free >= 0),
    encumbered BIGINT NOT NULL CHECK (encumbered >= 0),
    PRIMARY KEY (account, unit)
);
-- Account history: one posting per account a transaction touches (two for a transfer),
-- clustered by account so that a statement is one range scan and no secondary index is kept.
-- Keys, not names (join accounts and units): rows stay small and a flush inserts in key order.
CREATE TABLE postings (
    account_id      INTEGER NOT NULL,
    tx              BIGINT  NOT NULL,
    seq             BIGINT  NOT NULL,
    at_ms           BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    incoming        BOOLEAN NOT NULL,
    counterparty_id INTEGER,
    unit_id         INTEGER NOT NULL,
    quantity        BIGINT  NOT NULL CHECK (quantity > 0),
    compliance_year INTEGER,
    reverses        BIGINT,
    PRIMARY KEY (account_id, tx)
);
-- How far the trailing query tables (postings and holdings) have been written: they trail
-- the journal (written in large batches after the journal commits) and are caught up from the
-- journal on open.
CREATE TABLE projection_marks (
    name TEXT PRIMARY KEY,
    seq  BIGINT NOT NULL
);
INSERT INTO projection_marks (name, seq) VALUES ('trailing', 0);
