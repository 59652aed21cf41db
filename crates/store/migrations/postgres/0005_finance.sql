-- The finance journal: one row per accepted finance command (the finance desk's pledges,
-- repos and futures; the carbon-inclusion register's submissions, verifications, issuance,
-- transfers and compliance surrenders), chained by SHA-256 like the registry's. Each row also
-- records the registry holdings the command read, so replaying it rebuilds the desk and the
-- register exactly and re-derives the registry instructions they produced.
CREATE TABLE finance_journal (
    seq        BIGINT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    command_id TEXT NOT NULL UNIQUE,
    body       BYTEA NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
