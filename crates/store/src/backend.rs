//! The storage contract shared by SQLite and PostgreSQL.

use crate::projection::Projection;
use ets_core::Timestamp;
use ets_registry::SealedRecord;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// Another writer appended first; reload and retry.
    Conflict(String),
    /// The stored data contradicts itself (broken chain, undecodable record, bad snapshot).
    Corrupt(String),
    /// The database could not be reached, read or written.
    Io(String),
    /// The database was made by a newer version of ets.
    Incompatible(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict(m) => write!(f, "concurrent write: {m}"),
            StoreError::Corrupt(m) => write!(f, "integrity failure: {m}"),
            StoreError::Io(m) => write!(f, "storage error: {m}"),
            StoreError::Incompatible(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A stored journal record: exactly the sealed record that was appended.
pub use ets_registry::SealedRecord as JournalRow;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    /// The registry's account index: the key other tables use.
    pub id: u32,
    pub number: String,
    pub market: String,
    pub kind: String,
    pub holder: String,
    pub holder_type: String,
    pub status: String,
    /// Comma-separated representative ids.
    pub representatives: String,
}

/// A unit type, named as people write it (`CEA:2024`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitRow {
    pub id: u32,
    pub name: String,
    pub market: String,
    pub vintage: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HoldingRow {
    pub account: String,
    pub unit: String,
    pub free: u64,
    pub encumbered: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRow {
    pub tx: u64,
    /// Account and unit keys as stored (`accounts.id`, `units.id`); the names below are joined
    /// in when reading.
    pub from_id: Option<u32>,
    pub to_id: Option<u32>,
    pub unit_id: u32,
    pub seq: u64,
    pub at: Timestamp,
    pub kind: String,
    pub from_account: Option<String>,
    pub to_account: Option<String>,
    pub unit: String,
    pub quantity: u64,
    pub compliance_year: Option<u16>,
    pub reverses: Option<u64>,
}

/// One registry's storage. Every method is a complete unit of work: `append` writes journal
/// records and projections in one transaction and returns only once that transaction is durable.
pub trait Backend: Send {
    fn kind(&self) -> &'static str;

    /// Appends sealed records (in order, continuing from `expected_last_seq`) and the accounts and
    /// units rows they add or change. Fails with `Conflict`, writing nothing, if the journal has
    /// moved on. (`projection.transactions` and `projection.holdings` go through
    /// `append_trailing`.)
    fn append(&mut self, expected_last_seq: u64, records: &[SealedRecord], projection: &Projection) -> Result<(), StoreError>;

    fn last_seq(&mut self) -> Result<u64, StoreError>;

    /// Streams journal records with `seq > after_seq` in order.
    fn scan_journal(&mut self, after_seq: u64, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError>;

    fn record_hash(&mut self, seq: u64) -> Result<Option<[u8; 32]>, StoreError>;

    /// Stored snapshots as (seq, state hash), oldest first.
    fn snapshot_list(&mut self) -> Result<Vec<(u64, [u8; 32])>, StoreError>;

    fn load_snapshot(&mut self, seq: u64) -> Result<Vec<u8>, StoreError>;

    fn save_snapshot(&mut self, seq: u64, state_hash: [u8; 32], body: &[u8]) -> Result<(), StoreError>;

    fn accounts(&mut self, market: Option<&str>) -> Result<Vec<AccountRow>, StoreError>;

    fn holdings(&mut self, account: Option<&str>) -> Result<Vec<HoldingRow>, StoreError>;

    /// Brings the trailing tables from journal record `after_seq` to `through_seq`: inserts the
    /// transactions rows of those records, writes the holdings rows they changed (their values
    /// at `through_seq`) and moves the mark, in one transaction, if the mark is exactly at
    /// `after_seq`; otherwise writes nothing and returns false (another writer moved it;
    /// catching up from the journal on the next open fills any gap).
    fn append_trailing(
        &mut self,
        transactions: &[TxRow],
        holdings: &[HoldingRow],
        after_seq: u64,
        through_seq: u64,
    ) -> Result<bool, StoreError>;

    /// The journal record up to which the trailing tables (transactions, holdings) are written.
    fn trailing_through(&mut self) -> Result<u64, StoreError>;

    /// Transactions touching `account`, in order, accepted before `before` when given.
    fn transactions(&mut self, account: &str, before: Option<Timestamp>) -> Result<Vec<TxRow>, StoreError>;

    fn schema_version(&mut self) -> Result<u32, StoreError>;

    /// Per (account id, unit id): the signed sum of its postings (units in less units out) and
    /// the number of posting rows; for the audit.
    fn posting_balances(&mut self) -> Result<Vec<(u32, u32, i64, u64)>, StoreError>;

    /// Starts a read-only transaction in which every later read sees one state of the database
    /// (the audit must not mix a table read before a writer's commit with one read after).
    fn begin_consistent_read(&mut self) -> Result<(), StoreError>;

    fn end_consistent_read(&mut self) -> Result<(), StoreError>;

    /// Appends MRV journal records (in order), and the evidence files they name that are not
    /// stored yet, in one transaction, if the MRV journal ends at `expected_last_seq`; otherwise
    /// `Conflict` and nothing written. A command id already in the MRV journal is also a
    /// `Conflict`.
    fn mrv_append(&mut self, expected_last_seq: u64, records: &[SealedRecord], evidence: &[EvidenceFile]) -> Result<(), StoreError>;

    /// Streams every MRV journal record in order.
    fn mrv_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError>;

    /// The MRV journal record of a command id, if any.
    fn mrv_command(&mut self, command_id: &str) -> Result<Option<JournalRow>, StoreError>;

    /// A stored evidence file by its SHA-256 (lower-case hex).
    fn mrv_evidence(&mut self, sha256: &str) -> Result<Option<EvidenceFile>, StoreError>;

    /// The hashes (as stored) of every evidence file, with the SHA-256 of its stored content
    /// recomputed, for the audit.
    fn mrv_evidence_check(&mut self) -> Result<Vec<(String, String)>, StoreError>;

    /// Appends exchange journal records in one transaction if the exchange journal ends at
    /// `expected_last_seq`; otherwise (or if a command id is taken) `Conflict`, nothing written.
    fn exchange_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError>;

    /// Streams every exchange journal record in order.
    fn exchange_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError>;

    /// Appends access journal records (identity, sessions, four-eyes controls) in one
    /// transaction if the access journal ends at `expected_last_seq`; otherwise (or if a
    /// command id is taken) `Conflict`, nothing written.
    fn access_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError>;

    /// Streams every access journal record in order.
    fn access_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError>;
    /// Appends finance journal records in one transaction if the finance journal ends at
    /// `expected_last_seq`; otherwise (or if a command id is taken) `Conflict`, nothing written.
    fn finance_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError>;

    /// Streams every finance journal record in order.
    fn finance_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError>;
}

/// An evidence file's bytes, stored under the SHA-256 the journal records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceFile {
    pub sha256: String,
    pub name: String,
    pub content: Vec<u8>,
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    ets_core::chain::hex(&Sha256::digest(bytes))
}

pub(crate) fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// One side of a transaction as the postings table stores it: the account it touches, whether
/// units came in or went out, and the other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Posting<'a> {
    pub account_id: u32,
    pub incoming: bool,
    pub counterparty_id: Option<u32>,
    pub row: &'a TxRow,
}

/// The postings of transaction rows, in key order (account, transaction) so that a flush
/// inserts along the B-tree rather than all over it.
pub(crate) fn postings(rows: &[TxRow]) -> Vec<Posting<'_>> {
    let mut out = Vec::with_capacity(rows.len() * 2);
    for row in rows {
        if let Some(from) = row.from_id {
            out.push(Posting { account_id: from, incoming: false, counterparty_id: row.to_id, row });
        }
        if let Some(to) = row.to_id {
            out.push(Posting { account_id: to, incoming: true, counterparty_id: row.from_id, row });
        }
    }
    out.sort_unstable_by_key(|p| (p.account_id, p.row.tx));
    out
}

/// A transaction row rebuilt from one posting of it: the account and its counterparty take the
/// places their direction gives them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tx_row_of_posting(
    tx: u64,
    seq: u64,
    at: Timestamp,
    kind: String,
    incoming: bool,
    (account_id, account): (u32, String),
    (counterparty_id, counterparty): (Option<u32>, Option<String>),
    (unit_id, unit): (u32, String),
    quantity: u64,
    compliance_year: Option<u16>,
    reverses: Option<u64>,
) -> TxRow {
    let ((from_id, from_account), (to_id, to_account)) = if incoming {
        ((counterparty_id, counterparty), (Some(account_id), Some(account)))
    } else {
        ((Some(account_id), Some(account)), (counterparty_id, counterparty))
    };
    TxRow { tx, from_id, to_id, unit_id, seq, at, kind, from_account, to_account, unit, quantity, compliance_year, reverses }
}
