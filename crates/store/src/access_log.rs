//! The access journal: the shell around `ets_access::Access` (users, sessions, API tokens,
//! four-eyes transfer proposals, trusted account lists).
//!
//! Opening reads the whole access journal, checks its SHA-256 chain and rebuilds the state by
//! applying each record (`Access::apply_record`, the path `execute` takes too). A command is
//! decided in memory; the record it produced — an accepted command's, or a refused login's,
//! whose failure counts towards throttling — is sealed into the next journal row and appended in
//! one transaction before the answer is returned. If that write fails, memory is rebuilt from
//! storage. Records without events (a quiet tick) change nothing but the clock and are not
//! journaled. Bodies are postcard encodings of `ets_access::Record`; they hold no secrets
//! (passwords only as Argon2id PHC strings, session and token secrets only as SHA-256).

use crate::backend::{Backend, JournalRow, StoreError};
use ets_access::{Access, ControlRules, Envelope, Record, Refusal};
use ets_core::chain::{ChainVerifier, SealedRecord};
use ets_core::Timestamp;

pub struct AccessLog {
    backend: Box<dyn Backend>,
    access: Access,
    head: (u64, [u8; 32]),
}

/// The command id of access journal record `seq`: unique and derived from the position alone
/// (access commands carry no id of their own).
fn command_id(seq: u64) -> String {
    format!("access-{seq}")
}

/// Checks one stored row against the chain and decodes its record.
fn decode(chain: &mut ChainVerifier, row: &JournalRow) -> Result<Record, StoreError> {
    chain.check(row.seq, &row.body, &row.prev_hash, &row.hash).map_err(|m| StoreError::Corrupt(format!("access journal: {m}")))?;
    let record: Record =
        postcard::from_bytes(&row.body).map_err(|e| StoreError::Corrupt(format!("access record {}: cannot decode: {e}", row.seq)))?;
    if record.at != row.at || row.command_id != command_id(row.seq) {
        return Err(StoreError::Corrupt(format!(
            "access record {}: stored as '{}' at {}, its body says {}",
            row.seq, row.command_id, row.at, record.at
        )));
    }
    Ok(record)
}

fn invalid_rules(problems: Vec<String>) -> StoreError {
    StoreError::Corrupt(format!("access control rules are invalid: {}", problems.join("; ")))
}

impl AccessLog {
    /// Replays the journal under `rules`, verifying the chain. A broken link, an undecodable
    /// record or one the state machine cannot apply is `StoreError::Corrupt` naming the record.
    pub fn open(mut backend: Box<dyn Backend>, rules: ControlRules) -> Result<AccessLog, StoreError> {
        let (access, head) = load(backend.as_mut(), rules)?;
        Ok(AccessLog { backend, access, head })
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The last journaled record's sequence number and hash ((0, zeros) when empty).
    pub fn head(&self) -> (u64, [u8; 32]) {
        self.head
    }

    /// Decides the command and journals the record it produced (an accepted command's with
    /// events, or a refused login's) in one transaction before returning. The outer error is a
    /// storage failure: the command's effect is then not stored and memory is rebuilt from
    /// storage. A record without events is not journaled.
    pub fn execute(&mut self, envelope: &Envelope) -> Result<Result<Record, Refusal>, StoreError> {
        let result = self.access.execute(envelope);
        let to_journal = match &result {
            Ok(record) if !record.events.is_empty() => Some(record),
            Err(Refusal { record: Some(record), .. }) => Some(&**record),
            _ => None,
        };
        if let Some(record) = to_journal {
            let seq = self.head.0 + 1;
            let body = postcard::to_allocvec(record).expect("encode an access record");
            let sealed = SealedRecord::seal(seq, record.at, command_id(seq), body, self.head.1);
            if let Err(e) = self.backend.access_append(self.head.0, std::slice::from_ref(&sealed)) {
                // Memory is ahead of storage: rebuild it from what is stored.
                self.reload();
                return Err(e);
            }
            self.head = (sealed.seq, sealed.hash);
        }
        Ok(result)
    }

    /// The journaled records with `seq > after`, at most `limit`, oldest first, read from
    /// storage with the chain checked from the first record (for an audit endpoint).
    pub fn records(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        let mut chain = ChainVerifier::default();
        let mut out = Vec::new();
        self.backend.access_scan(&mut |row| {
            if row.seq <= after {
                chain.check(row.seq, &row.body, &row.prev_hash, &row.hash).map_err(|m| StoreError::Corrupt(format!("access journal: {m}")))
            } else if out.len() < limit {
                out.push((row.seq, decode(&mut chain, &row)?));
                Ok(())
            } else {
                Ok(())
            }
        })?;
        Ok(out)
    }

    /// Replays the journal from storage and compares the state with the one in memory; memory
    /// is then the replayed state. Returns (records, head hash).
    pub fn audit(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let (again, head) = load(self.backend.as_mut(), self.access.rules().clone())?;
        let same = again == self.access;
        self.access = again;
        self.head = head;
        if !same {
            return Err(StoreError::Corrupt("the access state replayed from storage differs from the one in memory".into()));
        }
        Ok(head)
    }

    /// Rebuilds memory from storage after a failed write. If even that fails, the state is
    /// emptied and the storage detached, so nothing unjournaled is ever visible and every later
    /// command fails until the log is reopened.
    fn reload(&mut self) {
        let rules = self.access.rules().clone();
        match load(self.backend.as_mut(), rules.clone()) {
            Ok((access, head)) => {
                self.access = access;
                self.head = head;
            }
            Err(_) => {
                self.backend = Box::new(crate::ledger::detached());
                self.access = Access::new(rules).expect("rules were valid when the log opened");
                self.head = (0, [0; 32]);
            }
        }
    }
}

/// Replays the access journal: the state and the chain head.
fn load(backend: &mut dyn Backend, rules: ControlRules) -> Result<(Access, (u64, [u8; 32])), StoreError> {
    let mut access = Access::new(rules).map_err(invalid_rules)?;
    let mut chain = ChainVerifier::default();
    let mut last_at = Timestamp(i64::MIN);
    backend.access_scan(&mut |row| {
        let record = decode(&mut chain, &row)?;
        if record.at < last_at {
            return Err(StoreError::Corrupt(format!("access record {} goes back in time ({} after {last_at})", row.seq, record.at)));
        }
        last_at = record.at;
        // The state machine asserts its invariants while applying; a record that breaks one
        // (only a forged record, its chain rewritten) is corruption, not a crash.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| access.apply_record(&record)))
            .map_err(|_| StoreError::Corrupt(format!("access record {} cannot be applied to the state before it", row.seq)))
    })?;
    Ok((access, chain.head()))
}
