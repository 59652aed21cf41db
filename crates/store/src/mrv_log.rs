//! The MRV journal: the shell around `ets_mrv::state::MrvState`.
//!
//! Opening reads the whole MRV journal, checks its SHA-256 chain and rebuilds the state by
//! applying each record's events. A command is decided against that state, sealed into the next
//! record and appended, together with any evidence files it brings, in one transaction; it is
//! acknowledged only after that commit. Command ids are idempotent: the same id with the same
//! actor and command returns the recorded result, a reused id with anything else is refused.
//! MRV traffic is a few commands per entity per month, so one synchronous append per command is
//! plenty (the registry's pipelined ledger is for transfers).

use crate::backend::{sha256_hex, Backend, EvidenceFile, StoreError};
use ets_core::chain::{hex, ChainVerifier, SealedRecord};
use ets_core::Timestamp;
use ets_mrv::state::{command_digest, Command, Event, MrvParams, MrvRecord, MrvState, MRV_JOURNAL_FORMAT};
use ets_mrv::verification::{RejectKind, Rejection};
use ets_mrv::FactorSet;
use std::collections::BTreeSet;
use std::fmt;

/// Attempts when another writer appended between our read and our write.
const CONFLICT_RETRIES: usize = 5;

pub struct MrvLog {
    backend: Box<dyn Backend>,
    factors: FactorSet,
    params: MrvParams,
    state: MrvState,
    head: (u64, [u8; 32]),
    last_at: Timestamp,
}

#[derive(Debug)]
pub enum MrvError {
    Rejected(Rejection),
    Store(StoreError),
}

impl fmt::Display for MrvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MrvError::Rejected(r) => write!(f, "{}", r.message),
            MrvError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<StoreError> for MrvError {
    fn from(e: StoreError) -> Self {
        MrvError::Store(e)
    }
}

/// One command of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrvSubmission {
    pub command_id: String,
    pub actor: String,
    /// The shell's time of the command (moved up to the previous record's, if earlier).
    pub at: Timestamp,
    pub command: Command,
}

/// What a submitted command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrvReceipt {
    pub seq: u64,
    pub at: Timestamp,
    pub events: Vec<Event>,
    /// The id was already in the journal for this very command: nothing new was written.
    pub repeated: bool,
}

/// What `MrvLog::audit` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrvAudit {
    pub records: u64,
    pub head_hash: [u8; 32],
    pub evidence_files: usize,
    pub monthly_submissions: usize,
}

struct Loaded {
    state: MrvState,
    head: (u64, [u8; 32]),
    last_at: Timestamp,
    evidence_named: BTreeSet<String>,
    submissions: usize,
}

fn load(backend: &mut dyn Backend, factors: &FactorSet, params: &MrvParams) -> Result<Loaded, StoreError> {
    load_checking(backend, factors, params, None)
}

/// Loads the journal; with `expected = (seq, hash)`, also fails unless record `seq` still has
/// that hash (so a journal rewritten below a head someone holds is caught, however long it is).
fn load_checking(
    backend: &mut dyn Backend,
    factors: &FactorSet,
    params: &MrvParams,
    expected: Option<(u64, [u8; 32])>,
) -> Result<Loaded, StoreError> {
    let mut state = MrvState::new(factors.clone(), params.clone());
    let mut chain = ChainVerifier::default();
    let mut last_at = Timestamp(0);
    let mut evidence_named = BTreeSet::new();
    let mut submissions = 0;
    backend.mrv_scan(&mut |row| {
        chain.check(row.seq, &row.body, &row.prev_hash, &row.hash).map_err(|m| StoreError::Corrupt(format!("MRV journal: {m}")))?;
        if let Some((seq, hash)) = expected {
            if row.seq == seq && row.hash != hash {
                return Err(StoreError::Corrupt(format!(
                    "MRV record {seq} now hashes to {}, not {} as when it was read: the journal was rewritten",
                    hex(&row.hash),
                    hex(&hash)
                )));
            }
        }
        let record = MrvRecord::decode(&row.body).map_err(|m| StoreError::Corrupt(format!("MRV journal: {m}")))?;
        if record.seq != row.seq || record.command_id != row.command_id || record.at != row.at {
            return Err(StoreError::Corrupt(format!("MRV record {}: its body does not match its row", row.seq)));
        }
        for e in &record.events {
            if let Event::MonthlySubmitted { submission } = e {
                submissions += 1;
                evidence_named.extend(submission.evidence.iter().map(|x| x.sha256.clone()));
            }
            state.apply(e);
        }
        last_at = last_at.max(record.at);
        Ok(())
    })?;
    Ok(Loaded { state, head: chain.head(), last_at, evidence_named, submissions })
}

impl MrvLog {
    pub fn open(mut backend: Box<dyn Backend>, factors: FactorSet, params: MrvParams) -> Result<MrvLog, StoreError> {
        let loaded = load(backend.as_mut(), &factors, &params)?;
        Ok(MrvLog { backend, factors, params, state: loaded.state, head: loaded.head, last_at: loaded.last_at })
    }

    pub fn state(&self) -> &MrvState {
        &self.state
    }

    /// (last sequence number, its hash).
    pub fn head(&self) -> (u64, [u8; 32]) {
        self.head
    }

    pub fn backend(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    fn reload(&mut self) -> Result<(), StoreError> {
        let loaded = load(self.backend.as_mut(), &self.factors, &self.params)?;
        self.state = loaded.state;
        self.head = loaded.head;
        self.last_at = loaded.last_at;
        Ok(())
    }

    /// Decides, seals and durably appends one command. `at` is the shell's clock; a time
    /// earlier than the journal's last record is moved up to it, so journal times never go
    /// backwards. `evidence` holds the bytes of files the command lists (each must be listed,
    /// by the SHA-256 of its content); listed files may also be left out (kept elsewhere).
    pub fn submit(
        &mut self,
        command_id: &str,
        actor: &str,
        at: Timestamp,
        command: &Command,
        evidence: &[EvidenceFile],
    ) -> Result<MrvReceipt, MrvError> {
        let item = MrvSubmission { command_id: command_id.to_string(), actor: actor.to_string(), at, command: command.clone() };
        let mut receipts = self.submit_batch(std::slice::from_ref(&item), evidence).map_err(|(_, e)| e)?;
        Ok(receipts.pop().expect("one receipt per command"))
    }

    /// Decides every command in order against the state the previous ones leave, then appends
    /// them all in one transaction: either every command is journaled or none is (an import of a
    /// year of monthly data is all or nothing). A refusal names the position of the command
    /// refused. If every id is already journaled for the same commands, the recorded results
    /// are returned; a batch whose ids are partly journaled is refused.
    pub fn submit_batch(
        &mut self,
        batch: &[MrvSubmission],
        evidence: &[EvidenceFile],
    ) -> Result<Vec<MrvReceipt>, (Option<usize>, MrvError)> {
        let invalid = |i: Option<usize>, m: String| (i, MrvError::Rejected(Rejection::new(RejectKind::Invalid, m)));
        let mut listed: BTreeSet<&str> = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (i, item) in batch.iter().enumerate() {
            ets_core::check_identifier("command id", &item.command_id).map_err(|m| invalid(Some(i), m))?;
            if !ids.insert(item.command_id.as_str()) {
                return Err(invalid(Some(i), format!("command id '{}' appears twice in one batch", item.command_id)));
            }
            if let Command::SubmitMonthly { evidence, .. } = &item.command {
                listed.extend(evidence.iter().map(|e| e.sha256.as_str()));
            }
        }
        for f in evidence {
            let actual = sha256_hex(&f.content);
            if actual != f.sha256 || !listed.contains(actual.as_str()) {
                return Err(invalid(None, format!("evidence file '{}' (sha256 {actual}) is not listed in the commands", f.name)));
            }
        }
        let digests: Vec<String> = batch.iter().map(|b| command_digest(&b.actor, &b.command)).collect();
        for _ in 0..CONFLICT_RETRIES {
            let mut known = Vec::new();
            for (i, item) in batch.iter().enumerate() {
                if let Some(row) = self.backend.mrv_command(&item.command_id).map_err(|e| (Some(i), e.into()))? {
                    let record = MrvRecord::decode(&row.body).map_err(|m| (Some(i), StoreError::Corrupt(m).into()))?;
                    if record.digest != digests[i] {
                        return Err((
                            Some(i),
                            MrvError::Rejected(Rejection::new(
                                RejectKind::Inconsistent,
                                format!(
                                    "command id '{}' was already used (MRV record {}) for a different command",
                                    item.command_id, row.seq
                                ),
                            )),
                        ));
                    }
                    known.push(MrvReceipt { seq: row.seq, at: row.at, events: record.events, repeated: true });
                }
            }
            if known.len() == batch.len() {
                return Ok(known);
            }
            if !known.is_empty() {
                return Err((
                    None,
                    MrvError::Rejected(Rejection::new(
                        RejectKind::Inconsistent,
                        format!(
                            "{} of the {} command ids are already journaled: resubmit the batch as it was, or with new ids",
                            known.len(),
                            batch.len()
                        ),
                    )),
                ));
            }
            // Decided on the live state (no copy of it per batch): if a later command of the
            // batch is refused or the append fails, the state is rebuilt from storage.
            let mut at = self.last_at;
            let mut sealed = Vec::with_capacity(batch.len());
            let mut receipts = Vec::with_capacity(batch.len());
            let mut prev = self.head.1;
            for (i, item) in batch.iter().enumerate() {
                at = at.max(item.at);
                let events = match self.state.execute(&item.actor, at, &item.command) {
                    Ok(events) => events,
                    Err(r) => {
                        if i > 0 {
                            self.reload().map_err(|e| (Some(i), e.into()))?;
                        }
                        return Err((Some(i), MrvError::Rejected(r)));
                    }
                };
                let seq = self.head.0 + 1 + i as u64;
                let record = MrvRecord {
                    format: MRV_JOURNAL_FORMAT,
                    seq,
                    at,
                    command_id: item.command_id.clone(),
                    actor: item.actor.clone(),
                    digest: digests[i].clone(),
                    events: events.clone(),
                };
                let s = SealedRecord::seal(seq, at, item.command_id.clone(), record.encode(), prev);
                prev = s.hash;
                sealed.push(s);
                receipts.push(MrvReceipt { seq, at, events, repeated: false });
            }
            match self.backend.mrv_append(self.head.0, &sealed, evidence) {
                Ok(()) => {
                    if let Some(last) = sealed.last() {
                        self.head = (last.seq, last.hash);
                    }
                    self.last_at = at;
                    return Ok(receipts);
                }
                Err(StoreError::Conflict(_)) => self.reload().map_err(|e| (None, e.into()))?,
                Err(e) => {
                    // Memory is ahead of storage: rebuild it from what is stored.
                    if let Err(reload) = self.reload() {
                        return Err((None, reload.into()));
                    }
                    return Err((None, e.into()));
                }
            }
        }
        Err((
            None,
            MrvError::Store(StoreError::Conflict(format!("the MRV journal kept moving; gave up after {CONFLICT_RETRIES} attempts"))),
        ))
    }

    /// Checks the whole MRV journal from a fresh read: the chain, every body decoding into
    /// valid data, the replayed state matching this one, and every stored evidence file's
    /// content matching the hash it is stored under and named by a submission.
    pub fn audit(&mut self) -> Result<MrvAudit, StoreError> {
        let expected = (self.head.0 > 0).then_some(self.head);
        let loaded = load_checking(self.backend.as_mut(), &self.factors, &self.params, expected)?;
        if loaded.head.0 < self.head.0 {
            return Err(StoreError::Corrupt(format!(
                "MRV journal ends at record {}, but record {} was read before: records were removed",
                loaded.head.0, self.head.0
            )));
        }
        if loaded.head == self.head && format!("{:?}", loaded.state) != format!("{:?}", self.state) {
            return Err(StoreError::Corrupt("the MRV state replayed from storage differs from the one in memory".into()));
        }
        let stored = self.backend.mrv_evidence_check()?;
        for (key, actual) in &stored {
            if key != actual {
                return Err(StoreError::Corrupt(format!(
                    "evidence file stored as {key} now has content hashing to {actual}: it was altered"
                )));
            }
            if !loaded.evidence_named.contains(key) {
                return Err(StoreError::Corrupt(format!("evidence file {key} is stored but no submission names it")));
            }
        }
        Ok(MrvAudit {
            records: loaded.head.0,
            head_hash: loaded.head.1,
            evidence_files: stored.len(),
            monthly_submissions: loaded.submissions,
        })
    }
}
