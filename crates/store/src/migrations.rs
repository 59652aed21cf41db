//! Versioned schema migrations. A migration is never edited once released: add a new one.

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "journal, snapshots and query tables",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "MRV journal and evidence store",
        sqlite: include_str!("../migrations/sqlite/0002_mrv.sql"),
        postgres: include_str!("../migrations/postgres/0002_mrv.sql"),
    },
    Migration {
        version: 3,
        name: "exchange journal",
        sqlite: include_str!("../migrations/sqlite/0003_exchange.sql"),
        postgres: include_str!("../migrations/postgres/0003_exchange.sql"),
    },
    Migration {
        version: 4,
        name: "access journal",
        sqlite: include_str!("../migrations/sqlite/0004_access_journal.sql"),
        postgres: include_str!("../migrations/postgres/0004_access_journal.sql"),
    },
    Migration {
        version: 5,
        name: "finance journal",
        sqlite: include_str!("../migrations/sqlite/0005_finance.sql"),
        postgres: include_str!("../migrations/postgres/0005_finance.sql"),
    },
];

pub const SCHEMA_VERSION: u32 = 5;
