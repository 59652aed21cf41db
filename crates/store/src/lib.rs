//! Durable storage for the ets registry, and the single-writer ledger that puts the pure
//! registry state machine behind it.
//!
//! Invariants: a command is acknowledged only after the transaction that holds its journal
//! record has committed (SQLite: WAL with `synchronous=FULL`; PostgreSQL: `synchronous_commit =
//! on`). The journal is the truth. Query tables are projections of it: `accounts` and `units`
//! are written in the same transaction as the records; `holdings` and `postings` trail it by at
//! most one flush, behind a mark, and are caught up on every open. Snapshots are a cache that
//! replay can always rebuild. The MRV journal (`MrvLog`) is a second hash-chained journal in the
//! same database, for monitoring plans, monthly submissions with evidence and verification; the
//! exchange journal (`ExchangeLog`) and the access journal (`AccessLog`: users, sessions,
//! four-eyes transfer controls) are chained the same way.

mod access_log;
mod backend;
mod exchange_log;
mod exchange_service;
mod finance_log;
mod ledger;
mod migrations;
mod mrv_log;
mod postgres_backend;
mod projection;
mod sqlite_backend;
mod writer;

pub use access_log::AccessLog;
pub use backend::{sha256_hex, AccountRow, Backend, EvidenceFile, HoldingRow, JournalRow, StoreError, TxRow, UnitRow};
pub use exchange_log::{submit_instructions, ExchangeLog, ExchangeReceipt, VenueConfig};
pub use exchange_service::{
    Answers as ExchangeAnswers, CarryOut, ExchangeService, ExchangeSubmission, ExchangeSubmitError, Publication, Publisher,
    Reply as ExchangeReply, EXCHANGE_BATCH_MAX,
};
pub use finance_log::{DeskResult, FinanceLog, FinanceReceipt, FinanceRecord, InclusionResult, Reads};
pub use ledger::{audit, AuditReport, Ledger, LedgerOptions, PreparedBatch, SubmitError, Submitted};
pub use mrv_log::{MrvAudit, MrvError, MrvLog, MrvReceipt, MrvSubmission};
pub use postgres_backend::PostgresBackend;
pub use projection::Projection;
pub use sqlite_backend::SqliteBackend;
pub use writer::{LedgerService, Submission};

/// Where the registry lives: a SQLite file path or a `postgres://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: Option<String> },
}

impl Location {
    /// `postgres://` and `postgresql://` URLs are PostgreSQL; anything else is a SQLite path.
    /// `schema` (PostgreSQL only) keeps several registries apart in one database.
    pub fn parse(text: &str, schema: Option<String>) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres { url: text.to_string(), schema }
        } else {
            Location::Sqlite(text.into())
        }
    }

    pub fn open(&self) -> Result<Box<dyn Backend>, StoreError> {
        match self {
            Location::Sqlite(path) => Ok(Box::new(SqliteBackend::open(path)?)),
            Location::Postgres { url, schema } => Ok(Box::new(PostgresBackend::open(url, schema.as_deref())?)),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres { url, schema } => match schema {
                Some(s) => write!(f, "{url} (schema {s})"),
                None => write!(f, "{url}"),
            },
        }
    }
}
