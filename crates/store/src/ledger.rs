//! The ledger: the registry state machine in memory, its journal in storage, kept in step.
//! Commands are executed in batches; a batch is written in one transaction and nothing in it
//! is acknowledged before that transaction commits.

use crate::backend::{Backend, HoldingRow, StoreError, TxRow};
use crate::projection::{holding_row, Projection};
use crate::Location;
use ets_core::Timestamp;
use ets_registry::journal::{hex, GENESIS_HASH, JOURNAL_FORMAT};
use ets_registry::{ChainVerifier, Envelope, Outcome, Receipt, Record, Registry, Rejection, SealedRecord, Snapshot};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

#[derive(Clone, Debug)]
pub struct LedgerOptions {
    /// Write a snapshot after this many journal records since the last one (0: never
    /// automatically). Snapshots only shorten start-up; the journal alone is the truth.
    pub snapshot_every: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions { snapshot_every: 500_000 }
    }
}

/// An acknowledged command: durable, with the receipt of its first (or only) acceptance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub receipt: Receipt,
    /// True when the id had been accepted before with the same content and nothing changed.
    pub duplicate: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    Rejected(Rejection),
    Store(StoreError),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Rejected(r) => write!(f, "{r}"),
            SubmitError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SubmitError {}

pub struct Ledger {
    backend: Box<dyn Backend>,
    registry: Registry,
    head_hash: [u8; 32],
    snapshot_seq: u64,
    options: LedgerOptions,
    /// Set when storage failed and the in-memory state could not be rebuilt from it.
    poisoned: Option<String>,
    history: History,
    /// Time of the last journal record: records never go back in time (a clock step or a
    /// back-dated `ETS_CLOCK` is clamped to it), so point-in-time history follows journal order.
    last_at: Timestamp,
}

/// The trailing query tables: transactions (account history) and holdings rows of journaled
/// records, written in large batches after the journal commits. Rows keyed by account land on
/// scattered index pages, and writing them with every batch multiplied the bytes written per
/// transfer several times over; holdings rows change with nearly every transfer. Nothing
/// acknowledged depends on them: the journal is durable first, and opening a ledger catches the
/// tables up from the journal.
#[derive(Default)]
pub(crate) struct History {
    rows: Vec<TxRow>,
    /// Latest values of the holdings changed since the last flush.
    holdings: HashMap<(String, String), HoldingRow>,
    after_seq: u64,
    through_seq: u64,
}

/// Transactions rows held back before the trailing tables are written.
pub const HISTORY_ROWS_MAX: usize = 65_536;

impl History {
    fn starting_at(seq: u64) -> History {
        History { rows: Vec::new(), holdings: HashMap::new(), after_seq: seq, through_seq: seq }
    }

    pub(crate) fn push(&mut self, trailing: Trailing) {
        self.rows.extend(trailing.transactions);
        for h in trailing.holdings {
            self.holdings.insert((h.account.clone(), h.unit.clone()), h);
        }
        self.through_seq = trailing.through_seq;
    }

    pub(crate) fn is_full(&self) -> bool {
        self.rows.len() >= HISTORY_ROWS_MAX
    }

    /// Writes what is held back. On a storage error the rows stay held for the next try. If
    /// another process moved the tables meanwhile (opening a registry catches them up), the
    /// rows it already wrote are dropped and the rest go after its mark; a gap this buffer
    /// cannot fill is left to the catch-up of the next open.
    pub(crate) fn flush(&mut self, backend: &mut dyn Backend) -> Result<(), StoreError> {
        if self.through_seq == self.after_seq {
            return Ok(());
        }
        let mut holdings: Vec<HoldingRow> = self.holdings.values().cloned().collect();
        holdings.sort();
        if backend.append_trailing(&self.rows, &holdings, self.after_seq, self.through_seq)? {
            self.clear();
            return Ok(());
        }
        let mark = backend.trailing_through()?;
        if mark >= self.through_seq || mark < self.after_seq {
            self.clear();
            return Ok(());
        }
        // The other process got part of the way: write the rest after its mark. Holdings rows
        // are current values, so writing them again is right.
        self.rows.retain(|r| r.seq > mark);
        // If yet another writer moved the mark in between, the next open's catch-up covers it.
        backend.append_trailing(&self.rows, &holdings, mark, self.through_seq)?;
        self.clear();
        Ok(())
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.holdings.clear();
        self.after_seq = self.through_seq;
    }
}

/// What a committed batch adds to the trailing tables.
pub(crate) struct Trailing {
    transactions: Vec<TxRow>,
    holdings: Vec<HoldingRow>,
    through_seq: u64,
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // Best effort: what is not written now is caught up from the journal on the next open.
        let _ = self.history.flush(self.backend.as_mut());
    }
}

/// A batch executed in memory and sealed, waiting to be made durable.
pub struct PreparedBatch {
    start_seq: u64,
    sealed: Vec<SealedRecord>,
    projection: Projection,
    /// A snapshot taken right after this batch, to store once the batch is durable.
    snapshot: Option<(u64, [u8; 32], Vec<u8>)>,
}

impl PreparedBatch {
    /// The trailing-table rows of this batch and the last record they cover, for `History`.
    pub(crate) fn take_trailing(&mut self) -> Trailing {
        Trailing {
            transactions: std::mem::take(&mut self.projection.transactions),
            holdings: std::mem::take(&mut self.projection.holdings),
            through_seq: self.sealed.last().map_or(self.start_seq, |r| r.seq),
        }
    }

    /// Phase two: one storage transaction; on success every command of the batch is durable.
    pub fn commit(&self, backend: &mut dyn Backend) -> Result<(), StoreError> {
        backend.append(self.start_seq, &self.sealed, &self.projection)?;
        if let Some((seq, hash, body)) = &self.snapshot {
            // A snapshot only shortens start-up; failing to store one loses nothing.
            let _ = backend.save_snapshot(*seq, *hash, body);
        }
        Ok(())
    }
}

/// Stands in for the storage while the pipelined writer's storage thread holds it.
struct Detached;

/// A stand-in backend that refuses everything (while the real one is being reopened).
pub(crate) fn detached() -> impl Backend {
    Detached
}

impl Detached {
    fn error<T>() -> Result<T, StoreError> {
        Err(StoreError::Io("storage is held by the ledger writer's storage thread".into()))
    }
}

impl Backend for Detached {
    fn kind(&self) -> &'static str {
        "detached"
    }
    fn append(&mut self, _: u64, _: &[SealedRecord], _: &Projection) -> Result<(), StoreError> {
        Detached::error()
    }
    fn last_seq(&mut self) -> Result<u64, StoreError> {
        Detached::error()
    }
    fn scan_journal(&mut self, _: u64, _: &mut dyn FnMut(crate::JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        Detached::error()
    }
    fn record_hash(&mut self, _: u64) -> Result<Option<[u8; 32]>, StoreError> {
        Detached::error()
    }
    fn snapshot_list(&mut self) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        Detached::error()
    }
    fn load_snapshot(&mut self, _: u64) -> Result<Vec<u8>, StoreError> {
        Detached::error()
    }
    fn save_snapshot(&mut self, _: u64, _: [u8; 32], _: &[u8]) -> Result<(), StoreError> {
        Detached::error()
    }
    fn accounts(&mut self, _: Option<&str>) -> Result<Vec<crate::AccountRow>, StoreError> {
        Detached::error()
    }
    fn holdings(&mut self, _: Option<&str>) -> Result<Vec<HoldingRow>, StoreError> {
        Detached::error()
    }
    fn append_trailing(&mut self, _: &[crate::TxRow], _: &[HoldingRow], _: u64, _: u64) -> Result<bool, StoreError> {
        Detached::error()
    }
    fn trailing_through(&mut self) -> Result<u64, StoreError> {
        Detached::error()
    }
    fn transactions(&mut self, _: &str, _: Option<Timestamp>) -> Result<Vec<crate::TxRow>, StoreError> {
        Detached::error()
    }
    fn schema_version(&mut self) -> Result<u32, StoreError> {
        Detached::error()
    }
    fn posting_balances(&mut self) -> Result<Vec<(u32, u32, i64, u64)>, StoreError> {
        Detached::error()
    }
    fn begin_consistent_read(&mut self) -> Result<(), StoreError> {
        Detached::error()
    }
    fn end_consistent_read(&mut self) -> Result<(), StoreError> {
        Detached::error()
    }
    fn mrv_append(&mut self, _: u64, _: &[SealedRecord], _: &[crate::EvidenceFile]) -> Result<(), StoreError> {
        Detached::error()
    }
    fn mrv_scan(&mut self, _: &mut dyn FnMut(crate::JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        Detached::error()
    }
    fn mrv_command(&mut self, _: &str) -> Result<Option<crate::JournalRow>, StoreError> {
        Detached::error()
    }
    fn mrv_evidence(&mut self, _: &str) -> Result<Option<crate::EvidenceFile>, StoreError> {
        Detached::error()
    }
    fn mrv_evidence_check(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        Detached::error()
    }
    fn exchange_append(&mut self, _: u64, _: &[SealedRecord]) -> Result<(), StoreError> {
        Detached::error()
    }
    fn exchange_scan(&mut self, _: &mut dyn FnMut(crate::JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        Detached::error()
    }
    fn access_append(&mut self, _: u64, _: &[SealedRecord]) -> Result<(), StoreError> {
        Detached::error()
    }
    fn access_scan(&mut self, _: &mut dyn FnMut(crate::JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        Detached::error()
    }
    fn finance_append(&mut self, _: u64, _: &[SealedRecord]) -> Result<(), StoreError> {
        Detached::error()
    }
    fn finance_scan(&mut self, _: &mut dyn FnMut(crate::JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        Detached::error()
    }
}

/// What `audit` proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    pub records: u64,
    pub head_hash: [u8; 32],
    pub state_hash: [u8; 32],
    pub snapshots_checked: usize,
    pub holdings_checked: usize,
    pub accounts_checked: usize,
}

impl Ledger {
    pub fn open(location: &Location, options: LedgerOptions) -> Result<Ledger, StoreError> {
        Ledger::with_backend(location.open()?, options)
    }

    /// Loads the newest sound snapshot, replays the journal after it (checking the chain), and
    /// checks every invariant before accepting commands.
    pub fn with_backend(mut backend: Box<dyn Backend>, options: LedgerOptions) -> Result<Ledger, StoreError> {
        let Loaded { registry, head: head_hash, snapshot_seq, last_at } = load(backend.as_mut())?;
        registry.check_invariants().map_err(|e| StoreError::Corrupt(format!("state rebuilt from the journal breaks an invariant: {e}")))?;
        catch_up_history(backend.as_mut(), &registry)?;
        let history = History::starting_at(registry.seq());
        Ok(Ledger { backend, registry, head_hash, snapshot_seq, last_at, options, poisoned: None, history })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn backend(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    pub fn head_hash(&self) -> [u8; 32] {
        self.head_hash
    }

    pub fn submit(&mut self, at: Timestamp, envelope: &Envelope) -> Result<Submitted, SubmitError> {
        let mut results = self.submit_batch(at, std::slice::from_ref(envelope)).map_err(SubmitError::Store)?;
        results.pop().expect("one result per command").map_err(SubmitError::Rejected)
    }

    /// Executes commands in order and writes the accepted ones in one durable transaction.
    /// Returns one result per command once (and only if) that transaction has committed.
    pub fn submit_batch(&mut self, at: Timestamp, envelopes: &[Envelope]) -> Result<Vec<Result<Submitted, Rejection>>, StoreError> {
        if let Some(why) = &self.poisoned {
            return Err(StoreError::Io(format!("ledger stopped after a storage failure: {why}")));
        }
        let (results, prepared) = self.prepare(at, envelopes);
        let Some(mut prepared) = prepared else { return Ok(results) };
        if let Err(e) = prepared.commit(self.backend.as_mut()) {
            // Memory is ahead of the durable journal: rebuild it from storage before going on.
            self.reload_after(&e);
            return Err(e);
        }
        self.history.push(prepared.take_trailing());
        if self.history.is_full() {
            // The batch is durable: a failure of the trailing tables must not be reported as
            // the batch's (a caller would retry it); they catch up later.
            let _ = self.history.flush(self.backend.as_mut());
        }
        Ok(results)
    }

    /// Writes the held-back rows of the trailing tables (also done on drop).
    pub fn flush_history(&mut self) -> Result<(), StoreError> {
        self.history.flush(self.backend.as_mut())
    }

    /// Transactions touching `account`, in order, accepted before `before` when given.
    pub fn transactions(&mut self, account: &str, before: Option<Timestamp>) -> Result<Vec<TxRow>, StoreError> {
        self.flush_history()?;
        self.backend.transactions(account, before)
    }

    /// Phase one of a batch, in memory only: executes the commands (the state moves on), seals
    /// the accepted ones into the chain and builds their query-table rows. Nothing may be
    /// acknowledged until `PreparedBatch::commit` has succeeded.
    pub fn prepare(&mut self, at: Timestamp, envelopes: &[Envelope]) -> (Vec<Result<Submitted, Rejection>>, Option<PreparedBatch>) {
        let at = at.max(self.last_at);
        let start_seq = self.registry.seq();
        let mut results = Vec::with_capacity(envelopes.len());
        let mut records = Vec::new();
        for (envelope, outcome) in envelopes.iter().zip(self.registry.execute_batch(envelopes)) {
            match outcome {
                Ok(Outcome::Accepted { seq, fingerprint, events, receipt }) => {
                    records.push(Record {
                        format: JOURNAL_FORMAT,
                        seq,
                        at,
                        command_id: envelope.id.clone(),
                        actor: envelope.actor.clone(),
                        fingerprint,
                        events,
                    });
                    results.push(Ok(Submitted { receipt, duplicate: false }));
                }
                Ok(Outcome::Duplicate(receipt)) => results.push(Ok(Submitted { receipt, duplicate: true })),
                Err(rejection) => results.push(Err(rejection)),
            }
        }
        if records.is_empty() {
            return (results, None);
        }
        self.last_at = at;
        let mut prev = self.head_hash;
        let sealed: Vec<SealedRecord> = records
            .iter()
            .map(|r| {
                let s = r.seal(prev);
                prev = s.hash;
                s
            })
            .collect();
        let projection = Projection::build(&self.registry, records.iter().map(|r| (r.seq, r.at, r.events.as_slice())));
        self.head_hash = prev;
        let snapshot = if self.options.snapshot_every > 0 && self.registry.seq() - self.snapshot_seq >= self.options.snapshot_every {
            let snapshot = self.registry.snapshot();
            self.snapshot_seq = snapshot.seq;
            Some((snapshot.seq, snapshot.hash(), snapshot.encode()))
        } else {
            None
        };
        (results, Some(PreparedBatch { start_seq, sealed, projection, snapshot }))
    }

    /// After a failed commit: rebuild the state from what storage holds.
    fn reload_after(&mut self, error: &StoreError) {
        match load(self.backend.as_mut()) {
            Ok(Loaded { registry, head, snapshot_seq, last_at }) => {
                self.history = History::starting_at(registry.seq());
                self.registry = registry;
                self.head_hash = head;
                self.snapshot_seq = snapshot_seq;
                self.last_at = last_at;
                self.poisoned = None;
            }
            Err(reload) => self.poisoned = Some(format!("{error}; reloading also failed: {reload}")),
        }
    }

    /// Splits the ledger for the pipelined writer: the state machine and the storage go to
    /// different threads. `join` puts them back together.
    pub(crate) fn split(mut self) -> (Ledger, Box<dyn Backend>, History) {
        let backend = std::mem::replace(&mut self.backend, Box::new(Detached));
        let history = std::mem::replace(&mut self.history, History::starting_at(self.registry.seq()));
        (self, backend, history)
    }

    /// Rejoins a split ledger. If storage failed meanwhile, the state is rebuilt from storage.
    pub(crate) fn join(mut self, backend: Box<dyn Backend>, failure: Option<StoreError>) -> Ledger {
        self.backend = backend;
        self.history = History::starting_at(self.registry.seq());
        if let Some(error) = failure {
            self.reload_after(&error);
        }
        self
    }

    /// Stores a snapshot of the current state (a start-up cache; never needed for correctness).
    pub fn snapshot(&mut self) -> Result<(), StoreError> {
        let snapshot = self.registry.snapshot();
        self.backend.save_snapshot(snapshot.seq, snapshot.hash(), &snapshot.encode())?;
        self.snapshot_seq = snapshot.seq;
        Ok(())
    }

    /// Snapshots if more than `records` have been journaled since the last snapshot.
    pub fn snapshot_if_behind(&mut self, records: u64) -> Result<(), StoreError> {
        if self.registry.seq() - self.snapshot_seq > records {
            self.snapshot()?;
        }
        Ok(())
    }

    /// Full audit of the storage, then a check that the replayed state equals this ledger's.
    pub fn audit(&mut self) -> Result<AuditReport, StoreError> {
        let report = audit(self.backend.as_mut())?;
        let live = self.registry.state_hash();
        if report.state_hash != live || report.records != self.registry.seq() {
            return Err(StoreError::Corrupt(format!(
                "replaying {} records gives state {} but the running ledger (record {}) has {}",
                report.records,
                hex(&report.state_hash),
                self.registry.seq(),
                hex(&live)
            )));
        }
        Ok(report)
    }
}

/// A registry loaded from storage: state, chain head, snapshot position, last record's time.
struct Loaded {
    registry: Registry,
    head: [u8; 32],
    snapshot_seq: u64,
    last_at: Timestamp,
}

fn load(backend: &mut dyn Backend) -> Result<Loaded, StoreError> {
    let mut registry = Registry::new();
    let mut from = 0;
    for (seq, hash) in backend.snapshot_list()?.into_iter().rev() {
        // A damaged snapshot is skipped: the journal can always rebuild what it held.
        let Ok(body) = backend.load_snapshot(seq) else { continue };
        let Ok(snapshot) = Snapshot::decode(&body) else { continue };
        if snapshot.seq == seq && snapshot.hash() == hash {
            registry = snapshot.into_registry();
            from = seq;
            break;
        }
    }
    let head = match from {
        0 => GENESIS_HASH,
        seq => backend
            .record_hash(seq)?
            .ok_or_else(|| StoreError::Corrupt(format!("a snapshot stands at record {seq} but the journal has no record {seq}")))?,
    };
    let mut verifier = ChainVerifier::starting_at(from + 1, head);
    let mut last_at = Timestamp(i64::MIN);
    // From the snapshot's own record (for its time) on.
    backend.scan_journal(from.saturating_sub(1), &mut |row| {
        last_at = row.at;
        if row.seq == from {
            return Ok(());
        }
        verifier.check(row.seq, &row.body, &row.prev_hash, &row.hash).map_err(StoreError::Corrupt)?;
        replay_row(&mut registry, row.seq, &row.command_id, &row.body)
    })?;
    Ok(Loaded { registry, head: verifier.head().1, snapshot_seq: from, last_at })
}

/// Writes the trailing-table rows of journal records the tables do not have yet: the
/// transactions of those records, and the holdings they touched at their current values.
fn catch_up_history(backend: &mut dyn Backend, registry: &Registry) -> Result<(), StoreError> {
    let through = backend.trailing_through()?;
    if through >= registry.seq() {
        return Ok(());
    }
    let mut history = History::starting_at(through);
    backend.scan_journal(through, &mut |row| {
        let record = Record::decode(&row.body).map_err(|e| StoreError::Corrupt(format!("record {}: {e}", row.seq)))?;
        let projection = Projection::build(registry, [(record.seq, record.at, record.events.as_slice())]);
        history.push(Trailing { transactions: projection.transactions, holdings: projection.holdings, through_seq: record.seq });
        Ok(())
    })?;
    history.flush(backend)
}

fn replay_row(registry: &mut Registry, seq: u64, command_id: &str, body: &[u8]) -> Result<(), StoreError> {
    let record = Record::decode(body).map_err(|e| StoreError::Corrupt(format!("record {seq}: {e}")))?;
    if record.format != JOURNAL_FORMAT {
        return Err(StoreError::Corrupt(format!(
            "record {seq} is in journal format {}; this program reads format {JOURNAL_FORMAT}",
            record.format
        )));
    }
    if record.seq != seq || record.command_id != command_id {
        return Err(StoreError::Corrupt(format!("record {seq}: its body names record {} / command '{}'", record.seq, record.command_id)));
    }
    registry.apply_record(record.seq, &record.command_id, record.fingerprint, &record.events).map_err(StoreError::Corrupt)
}

/// What the postings table must add up to: per (account, unit) the units held (free and
/// encumbered, nonzero only), and the number of posting rows (one per side of each transaction).
fn posting_balances(registry: &Registry) -> (BTreeMap<(u32, u32), i64>, u64) {
    let mut balances = BTreeMap::new();
    for (i, _) in registry.accounts().iter().enumerate() {
        let account = ets_registry::AccountIdx(i as u32);
        for (unit, holding) in registry.holdings_of(account) {
            balances.insert((account.0, unit.0), holding.total() as i64);
        }
    }
    let rows = registry
        .transactions()
        .iter()
        .map(|t| match (t.from, t.kind) {
            (None, _) | (_, ets_registry::TxKind::IssuanceReversal { .. }) => 1,
            _ => 2,
        })
        .sum();
    (balances, rows)
}

fn all_holdings(registry: &Registry) -> Vec<HoldingRow> {
    let mut rows = Vec::new();
    for i in 0..registry.accounts().len() {
        let account = ets_registry::AccountIdx(i as u32);
        for (unit, _) in registry.holdings_of(account) {
            rows.push(holding_row(registry, account, unit));
        }
    }
    rows.sort();
    rows
}

/// Checks a stored registry from scratch: the whole hash chain, a replay of every record, every
/// invariant of the replayed state, every stored snapshot against the replay at its position,
/// and the query tables against the replayed state. Reports the first thing found wrong.
pub fn audit(backend: &mut dyn Backend) -> Result<AuditReport, StoreError> {
    backend.begin_consistent_read()?;
    let report = audit_in_one_read(backend);
    let ended = backend.end_consistent_read();
    let report = report?;
    ended?;
    Ok(report)
}

fn audit_in_one_read(backend: &mut dyn Backend) -> Result<AuditReport, StoreError> {
    let snapshots = backend.snapshot_list()?;
    // The holdings table trails the journal up to its mark: it must equal the replayed state there.
    let mark = backend.trailing_through()?;
    let mut expected_holdings = if mark == 0 { Some(Vec::new()) } else { None };
    let mut expected_postings = if mark == 0 { Some((BTreeMap::new(), 0)) } else { None };
    let mut verifier = ChainVerifier::default();
    let mut registry = Registry::new();
    // A snapshot is sound when its body decodes, hashes to its stored hash, and equals the
    // replayed state at its position.
    let mut sound = Vec::with_capacity(snapshots.len());
    for (seq, hash) in &snapshots {
        let decoded = backend.load_snapshot(*seq).ok().and_then(|body| Snapshot::decode(&body).ok());
        sound.push(decoded.is_some_and(|s| s.seq == *seq && s.hash() == *hash));
    }
    let mut next_snapshot = snapshots.iter().zip(sound).peekable();
    let mut snapshots_checked = 0;
    backend.scan_journal(0, &mut |row| {
        verifier.check(row.seq, &row.body, &row.prev_hash, &row.hash).map_err(StoreError::Corrupt)?;
        replay_row(&mut registry, row.seq, &row.command_id, &row.body)?;
        if row.seq == mark {
            expected_holdings = Some(all_holdings(&registry));
            expected_postings = Some(posting_balances(&registry));
        }
        while let Some(((seq, hash), sound)) = next_snapshot.next_if(|((seq, _), _)| *seq <= row.seq) {
            if !sound || registry.state_hash() != *hash {
                return Err(StoreError::Corrupt(format!("the snapshot at record {seq} does not match the state the journal gives there")));
            }
            snapshots_checked += 1;
        }
        Ok(())
    })?;
    if let Some(((seq, _), _)) = next_snapshot.next() {
        return Err(StoreError::Corrupt(format!("a snapshot stands at record {seq}, beyond the journal's last record {}", registry.seq())));
    }
    registry.check_invariants().map_err(|e| StoreError::Corrupt(format!("the replayed state breaks an invariant: {e}")))?;

    let expected = expected_holdings.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the holdings and transactions tables claim to reach record {mark}, beyond the journal's last record {}",
            registry.seq()
        ))
    })?;
    let mut stored = backend.holdings(None)?;
    stored.sort();
    if let Some(i) = (0..expected.len().max(stored.len())).find(|&i| expected.get(i) != stored.get(i)) {
        let show = |r: Option<&HoldingRow>| {
            r.map_or("nothing".to_string(), |r| format!("{} {} free {} encumbered {}", r.account, r.unit, r.free, r.encumbered))
        };
        return Err(StoreError::Corrupt(format!(
            "the holdings table differs from the journal: the journal gives {}, the table has {}",
            show(expected.get(i)),
            show(stored.get(i))
        )));
    }
    let (expected_balances, expected_rows) = expected_postings.expect("set with the expected holdings");
    let stored = backend.posting_balances()?;
    let stored_rows: u64 = stored.iter().map(|(_, _, _, n)| n).sum();
    let stored_balances: BTreeMap<(u32, u32), i64> =
        stored.iter().filter(|(_, _, b, _)| *b != 0).map(|(a, u, b, _)| ((*a, *u), *b)).collect();
    if stored_rows != expected_rows {
        return Err(StoreError::Corrupt(format!(
            "the postings table has {stored_rows} rows; the journal up to record {mark} gives {expected_rows}"
        )));
    }
    if let Some(((a, u), b)) = expected_balances
        .iter()
        .find(|(k, b)| stored_balances.get(k) != Some(b))
        .or_else(|| stored_balances.iter().find(|(k, _)| !expected_balances.contains_key(k)))
    {
        return Err(StoreError::Corrupt(format!(
            "the postings of account {} in unit {} add up to {}, the journal gives {b} (up to record {mark})",
            registry.accounts().get(*a as usize).map_or("?", |x| x.number.as_str()),
            registry.units().get(*u as usize).map_or("?".to_string(), |_| registry.unit_name(ets_registry::UnitTypeIdx(*u))),
            stored_balances.get(&(*a, *u)).copied().unwrap_or(0),
        )));
    }
    let accounts = backend.accounts(None)?;
    for row in &accounts {
        let matches = registry.find_account(&row.number).is_some_and(|a| crate::projection::account_row(&registry, a) == *row);
        if !matches {
            return Err(StoreError::Corrupt(format!("the accounts table row for {} differs from the journal", row.number)));
        }
    }
    if accounts.len() != registry.accounts().len() {
        return Err(StoreError::Corrupt(format!(
            "the accounts table has {} rows, the journal opens {} accounts",
            accounts.len(),
            registry.accounts().len()
        )));
    }
    let (records, head_hash) = verifier.head();
    Ok(AuditReport {
        records,
        head_hash,
        state_hash: registry.state_hash(),
        snapshots_checked,
        holdings_checked: expected.len(),
        accounts_checked: accounts.len(),
    })
}
