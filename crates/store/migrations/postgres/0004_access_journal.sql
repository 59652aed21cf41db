-- The access journal: one row per record of the access state machine (ets-access) that changed
-- its state: users, roles and passwords (as Argon2id PHC strings), logins and failed logins,
-- sessions and API tokens (secrets only as SHA-256), four-eyes transfer proposals and trusted
-- lists. Chained by SHA-256 like the other journals; replaying it rebuilds the state exactly.
CREATE TABLE access_journal (
    seq        BIGINT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    command_id TEXT NOT NULL UNIQUE,
    body       BYTEA NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
