-- The exchange journal: one row per accepted venue command (orders, cancels, deals, the day's
-- open and close, auctions), chained by SHA-256 like the registry's. Replaying it rebuilds the
-- books and trades exactly, and re-derives the registry instructions settlement produced.
CREATE TABLE exchange_journal (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    command_id TEXT NOT NULL UNIQUE,
    body       BLOB NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
);
