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
    let mut state = MrvState::new(factors.clone(), params.clone());
    let mut chain = ChainVerifier::default();
    let mut last_at = Timestamp(0);
    let mut evidence_named = BTreeSet::new();
    let mut submissions = 0;
    backend.mrv_scan(&mut |row| {
        chain.check(row.seq, &row.body, &row.prev_hash, &row.hash).map_err(|m| StoreError::Corrupt(format!("MRV journal: {m}")))?;
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
        ets_core::check_identifier("command id", command_id).map_err(|m| MrvError::Rejected(Rejection::new(RejectKind::Invalid, m)))?;
        if !evidence.is_empty() {
            let listed: BTreeSet<&str> = match command {
                Command::SubmitMonthly { evidence, .. } => evidence.iter().map(|e| e.sha256.as_str()).collect(),
                _ => BTreeSet::new(),
            };
            for f in evidence {
                let actual = sha256_hex(&f.content);
                if actual != f.sha256 || !listed.contains(actual.as_str()) {
                    return Err(MrvError::Rejected(Rejection::new(
                        RejectKind::Invalid,
                        format!("evidence file '{}' (sha256 {actual}) is not listed in the command", f.name),
                    )));
                }
            }
        }
        let digest = command_digest(actor, command);
        for _ in 0..CONFLICT_RETRIES {
            if let Some(row) = self.backend.mrv_command(command_id)? {
                let record = MrvRecord::decode(&row.body).map_err(StoreError::Corrupt)?;
                if record.digest != digest {
                    return Err(MrvError::Rejected(Rejection::new(
                        RejectKind::Inconsistent,
                        format!("command id '{command_id}' was already used (MRV record {}) for a different command", row.seq),
                    )));
                }
                return Ok(MrvReceipt { seq: row.seq, at: row.at, events: record.events, repeated: true });
            }
            let at = at.max(self.last_at);
            let mut next = self.state.clone();
            let events = next.execute(actor, at, command).map_err(MrvError::Rejected)?;
            let seq = self.head.0 + 1;
            let record = MrvRecord {
                format: MRV_JOURNAL_FORMAT,
                seq,
                at,
                command_id: command_id.to_string(),
                actor: actor.to_string(),
                digest: digest.clone(),
                events: events.clone(),
            };
            let sealed = SealedRecord::seal(seq, at, command_id.to_string(), record.encode(), self.head.1);
            match self.backend.mrv_append(self.head.0, &sealed, evidence) {
                Ok(()) => {
                    self.state = next;
                    self.head = (seq, sealed.hash);
                    self.last_at = at;
                    return Ok(MrvReceipt { seq, at, events, repeated: false });
                }
                Err(StoreError::Conflict(_)) => self.reload()?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(MrvError::Store(StoreError::Conflict(format!("the MRV journal kept moving; gave up after {CONFLICT_RETRIES} attempts"))))
    }

    /// Checks the whole MRV journal from a fresh read: the chain, every body decoding into
    /// valid data, the replayed state matching this one, and every stored evidence file's
    /// content matching the hash it is stored under and named by a submission.
    pub fn audit(&mut self) -> Result<MrvAudit, StoreError> {
        let loaded = load(self.backend.as_mut(), &self.factors, &self.params)?;
        if loaded.head != self.head && loaded.head.0 <= self.head.0 {
            return Err(StoreError::Corrupt(format!(
                "MRV journal head {} ({}) differs from the one opened ({}, {})",
                loaded.head.0,
                hex(&loaded.head.1),
                self.head.0,
                hex(&self.head.1)
            )));
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
