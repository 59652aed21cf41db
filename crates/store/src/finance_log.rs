//! The finance journal: the shell around the finance desk (`ets_finance::desk::Desk`: pledges,
//! repos, futures) and the carbon-inclusion register (`ets_finance::inclusion::Inclusion`).
//!
//! Write-ahead, then outbox, as the exchange journal: a command is decided in memory against
//! the registry's current state, sealed into the next chained record (table `finance_journal`,
//! migration 0004) and appended; only then are the registry instructions it produced submitted
//! to the `Ledger` under their deterministic ids (`fin-N`, `inc-N`). Both machines read registry
//! holdings (and the register, holder types) to decide; each record stores exactly what its
//! command read, so replay decides every command the same way whatever the registry holds now,
//! and re-derives every instruction. `reconcile` submits those the registry has not recorded
//! (a crash between the two writes), exactly once thanks to the registry's idempotent ids.
//! Records are JSON: the inclusion genesis carries the pilots' compliance rules, whose exact
//! decimals are written as strings.

use crate::backend::{Backend, StoreError};
use crate::ledger::Ledger;
use ets_core::chain::{ChainVerifier, SealedRecord};
use ets_core::Timestamp;
use ets_finance::desk::{self, Desk, Holdings, Instruction};
use ets_finance::inclusion::{self, Accounts, Inclusion};
use ets_registry::{HolderType, Registry, UnitRef};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// What a command read from the registry: free holdings by (account, unit text), and
/// accounts' (market, holder type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reads {
    pub free: BTreeMap<String, BTreeMap<String, u64>>,
    pub holders: BTreeMap<String, Option<(String, HolderType)>>,
}

impl Holdings for Reads {
    fn free(&self, account: &str, unit: &UnitRef) -> u64 {
        self.free.get(account).and_then(|m| m.get(&unit.to_string())).copied().unwrap_or(0)
    }
}

impl Accounts for Reads {
    fn holder(&self, account: &str) -> Option<(String, HolderType)> {
        self.holders.get(account).cloned().flatten()
    }
}

/// The registry, with every read written down.
struct Recorder<'a> {
    registry: &'a Registry,
    reads: RefCell<Reads>,
}

impl Holdings for Recorder<'_> {
    fn free(&self, account: &str, unit: &UnitRef) -> u64 {
        let v = Holdings::free(self.registry, account, unit);
        self.reads.borrow_mut().free.entry(account.to_string()).or_default().insert(unit.to_string(), v);
        v
    }
}

impl Accounts for Recorder<'_> {
    fn holder(&self, account: &str) -> Option<(String, HolderType)> {
        let v = self.registry.holder(account);
        self.reads.borrow_mut().holders.insert(account.to_string(), v.clone());
        v
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one record at a time, decoded and dropped
pub enum FinanceRecord {
    /// Starts the desk: its operator and the registrar under which pledges are released and
    /// enforced.
    DeskGenesis {
        operator: String,
        registrar: String,
    },
    /// Starts the carbon-inclusion register.
    InclusionGenesis(inclusion::Config),
    Desk {
        envelope: desk::Envelope,
        reads: Reads,
    },
    Inclusion {
        envelope: inclusion::Envelope,
        reads: Reads,
    },
}

/// What one submitted command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinanceReceipt<O> {
    Accepted(O),
    /// The id was already journaled for this very command: nothing new was written.
    Repeated,
}

pub type DeskResult = Result<FinanceReceipt<desk::Outcome>, desk::Reject>;
pub type InclusionResult = Result<FinanceReceipt<inclusion::Outcome>, inclusion::Reject>;

pub struct FinanceLog {
    backend: Box<dyn Backend>,
    desk: Option<Desk>,
    inclusion: Option<Inclusion>,
    head: (u64, [u8; 32]),
    /// Command id → digest of the journaled (actor, command), for idempotent retries.
    ids: BTreeMap<String, u64>,
    /// Every instruction the journal implies, in order (for `reconcile`).
    instructions: Vec<Instruction>,
}

/// What a retried id is compared by: a 64-bit hash of the record's envelope (or genesis). The
/// map is rebuilt from the journal at every open, so the hash need not be stable across versions.
fn digest(record: &FinanceRecord) -> u64 {
    let bytes = match record {
        FinanceRecord::Desk { envelope, .. } => serde_json::to_vec(&("desk", envelope)),
        FinanceRecord::Inclusion { envelope, .. } => serde_json::to_vec(&("inclusion", envelope)),
        genesis => serde_json::to_vec(genesis),
    }
    .expect("encode");
    ahash::RandomState::with_seeds(0x6669_6e61, 0x6e63_6521, 0x6c6f_6731, 0x6a6f_7572).hash_one(&bytes)
}

fn corrupt(seq: u64, m: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("finance record {seq}: {m}"))
}

impl FinanceLog {
    pub fn open(mut backend: Box<dyn Backend>) -> Result<FinanceLog, StoreError> {
        let mut chain = ChainVerifier::default();
        let mut log = FinanceLog {
            backend: Box::new(crate::ledger::detached()),
            desk: None,
            inclusion: None,
            head: (0, [0; 32]),
            ids: BTreeMap::new(),
            instructions: Vec::new(),
        };
        backend.finance_scan(&mut |row| {
            chain.check(row.seq, &row.body, &row.prev_hash, &row.hash).map_err(|m| StoreError::Corrupt(format!("finance journal: {m}")))?;
            let record: FinanceRecord = serde_json::from_slice(&row.body).map_err(|e| corrupt(row.seq, format!("cannot decode: {e}")))?;
            log.replay(row.seq, &row.command_id, record)
        })?;
        log.backend = backend;
        log.head = chain.head();
        Ok(log)
    }

    fn replay(&mut self, seq: u64, id: &str, record: FinanceRecord) -> Result<(), StoreError> {
        match &record {
            FinanceRecord::DeskGenesis { operator, registrar } => {
                if self.desk.is_some() {
                    return Err(corrupt(seq, "a second desk genesis"));
                }
                self.desk = Some(Desk::new(operator, registrar));
            }
            FinanceRecord::InclusionGenesis(config) => {
                if self.inclusion.is_some() {
                    return Err(corrupt(seq, "a second inclusion genesis"));
                }
                self.inclusion = Some(Inclusion::new(config.clone()).map_err(|m| corrupt(seq, m))?);
            }
            FinanceRecord::Desk { envelope, reads } => {
                let d = self.desk.as_mut().ok_or_else(|| corrupt(seq, "a desk command before the desk's genesis"))?;
                let out = d.execute(envelope, reads).map_err(|r| corrupt(seq, format!("({}) is refused on replay: {r}", envelope.id)))?;
                self.instructions.extend(out.instructions);
            }
            FinanceRecord::Inclusion { envelope, reads } => {
                let r = self.inclusion.as_mut().ok_or_else(|| corrupt(seq, "an inclusion command before its genesis"))?;
                let out = r.execute(envelope, reads).map_err(|r| corrupt(seq, format!("({}) is refused on replay: {r}", envelope.id)))?;
                self.instructions.extend(out.instructions);
            }
        }
        self.ids.insert(id.to_string(), digest(&record));
        Ok(())
    }

    pub fn desk(&self) -> Option<&Desk> {
        self.desk.as_ref()
    }

    pub fn inclusion(&self) -> Option<&Inclusion> {
        self.inclusion.as_ref()
    }

    pub fn head(&self) -> (u64, [u8; 32]) {
        self.head
    }

    /// Every registry instruction the journal implies, in order.
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    fn append(&mut self, id: &str, record: FinanceRecord, at: Timestamp) -> Result<(), StoreError> {
        let body = serde_json::to_vec(&record).expect("encode");
        let sealed = SealedRecord::seal(self.head.0 + 1, at, id.to_string(), body, self.head.1);
        self.backend.finance_append(self.head.0, std::slice::from_ref(&sealed))?;
        self.head = (sealed.seq, sealed.hash);
        self.ids.insert(id.to_string(), digest(&record));
        Ok(())
    }

    /// Starts the desk. Refused if it has started.
    pub fn init_desk(&mut self, operator: &str, registrar: &str, at: Timestamp) -> Result<(), StoreError> {
        if self.desk.is_some() {
            return Err(StoreError::Conflict("the finance desk is already set up".into()));
        }
        let record = FinanceRecord::DeskGenesis { operator: operator.into(), registrar: registrar.into() };
        self.append("desk-genesis", record, at)?;
        self.desk = Some(Desk::new(operator, registrar));
        Ok(())
    }

    /// Starts the carbon-inclusion register. Refused if it has started.
    pub fn init_inclusion(&mut self, config: inclusion::Config, at: Timestamp) -> Result<(), StoreError> {
        if self.inclusion.is_some() {
            return Err(StoreError::Conflict("carbon inclusion is already set up".into()));
        }
        let register = Inclusion::new(config.clone()).map_err(StoreError::Conflict)?;
        self.append("inclusion-genesis", FinanceRecord::InclusionGenesis(config), at)?;
        self.inclusion = Some(register);
        Ok(())
    }

    /// How many of the journal's registry instructions the registry has not recorded.
    pub fn undone(&self, registry: &Registry) -> usize {
        self.instructions.iter().filter(|i| registry.command_receipt(&i.id).is_none()).count()
    }

    /// Submits to the registry every instruction the journal implies that it has not recorded.
    pub fn reconcile(&mut self, ledger: &mut Ledger, at: Timestamp) -> Result<usize, StoreError> {
        let missing: Vec<Instruction> =
            self.instructions.iter().filter(|i| ledger.registry().command_receipt(&i.id).is_none()).cloned().collect();
        carry_out(ledger, at, &missing)?;
        Ok(missing.len())
    }

    /// Decides a desk command against the registry, journals it, then carries out its registry
    /// instructions. A refusal writes nothing; a repeated id with the same command is
    /// `Repeated`; a reused id with another command is refused.
    pub fn submit_desk(&mut self, envelope: &desk::Envelope, ledger: &mut Ledger, at: Timestamp) -> Result<DeskResult, StoreError> {
        self.submit_desk_then(envelope, ledger, at, true)
    }

    /// `submit_desk` that stops after the journal write when `carry_out` is false: the state a
    /// crash between the two writes leaves, for recovery tests.
    #[doc(hidden)]
    pub fn submit_desk_then(
        &mut self,
        envelope: &desk::Envelope,
        ledger: &mut Ledger,
        at: Timestamp,
        carry: bool,
    ) -> Result<DeskResult, StoreError> {
        if let Some(known) = self.ids.get(&envelope.id) {
            let d = digest(&FinanceRecord::Desk { envelope: envelope.clone(), reads: Reads::default() });
            return Ok(if *known == d {
                Ok(FinanceReceipt::Repeated)
            } else {
                Err(desk::Reject {
                    kind: desk::RejectKind::Conflict,
                    message: format!("command id '{}' was already used for another command", envelope.id),
                })
            });
        }
        if let Err(m) = ets_core::check_identifier("command id", &envelope.id) {
            return Ok(Err(desk::Reject { kind: desk::RejectKind::Invalid, message: m }));
        }
        let Some(d) = self.desk.as_mut() else {
            return Err(StoreError::Conflict("the finance desk is not set up: run `ets finance init` first".into()));
        };
        let before = d.clone();
        let recorder = Recorder { registry: ledger.registry(), reads: RefCell::default() };
        let outcome = match d.execute(envelope, &recorder) {
            Err(r) => return Ok(Err(r)),
            Ok(o) => o,
        };
        if let Err((kind, message)) = trial(ledger.registry(), &outcome.instructions) {
            self.desk = Some(before);
            return Ok(Err(desk::Reject { kind: kind.into(), message }));
        }
        let record = FinanceRecord::Desk { envelope: envelope.clone(), reads: recorder.reads.into_inner() };
        if let Err(e) = self.append(&envelope.id, record, at) {
            self.desk = Some(before);
            return Err(e);
        }
        self.instructions.extend(outcome.instructions.iter().cloned());
        if carry {
            carry_out(ledger, at, &outcome.instructions)?;
        }
        Ok(Ok(FinanceReceipt::Accepted(outcome)))
    }

    /// The same for a carbon-inclusion command.
    pub fn submit_inclusion(
        &mut self,
        envelope: &inclusion::Envelope,
        ledger: &mut Ledger,
        at: Timestamp,
    ) -> Result<InclusionResult, StoreError> {
        if let Some(known) = self.ids.get(&envelope.id) {
            let d = digest(&FinanceRecord::Inclusion { envelope: envelope.clone(), reads: Reads::default() });
            return Ok(if *known == d {
                Ok(FinanceReceipt::Repeated)
            } else {
                Err(inclusion::Reject {
                    kind: inclusion::RejectKind::Conflict,
                    message: format!("command id '{}' was already used for another command", envelope.id),
                })
            });
        }
        let Some(register) = self.inclusion.as_mut() else {
            return Err(StoreError::Conflict("carbon inclusion is not set up: run `ets inclusion init` first".into()));
        };
        let before = register.clone();
        let recorder = Recorder { registry: ledger.registry(), reads: RefCell::default() };
        let outcome = match register.execute(envelope, &recorder) {
            Err(r) => return Ok(Err(r)),
            Ok(o) => o,
        };
        if let Err((kind, message)) = trial(ledger.registry(), &outcome.instructions) {
            self.inclusion = Some(before);
            return Ok(Err(inclusion::Reject { kind: kind.into(), message }));
        }
        let record = FinanceRecord::Inclusion { envelope: envelope.clone(), reads: recorder.reads.into_inner() };
        if let Err(e) = self.append(&envelope.id, record, at) {
            self.inclusion = Some(before);
            return Err(e);
        }
        self.instructions.extend(outcome.instructions.iter().cloned());
        carry_out(ledger, at, &outcome.instructions)?;
        Ok(Ok(FinanceReceipt::Accepted(outcome)))
    }

    /// Re-reads the whole journal from storage (chain checked), replays it and compares the
    /// desk, the register and the instructions with the ones in memory. Returns the head.
    pub fn audit(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let fresh = FinanceLog::open(std::mem::replace(&mut self.backend, Box::new(crate::ledger::detached())))?;
        let same = fresh.desk == self.desk && fresh.inclusion == self.inclusion && fresh.instructions == self.instructions;
        let head = fresh.head;
        *self = fresh;
        if !same {
            return Err(StoreError::Corrupt("the finance state replayed from storage differs from the one in memory".into()));
        }
        Ok(head)
    }
}

/// The instructions tried against the registry (`Registry::trial`): the first it would refuse, as
/// (kind, message naming it). A command is journaled only if every instruction it implies will
/// be carried out: the desk and the register check what they read, but the registry has rules of
/// its own (account status, representatives, authorities) that a journaled command must not
/// meet for the first time when it is carried out, with nothing to undo it.
fn trial(registry: &Registry, instructions: &[Instruction]) -> Result<(), (ets_registry::RejectKind, String)> {
    let envelopes: Vec<ets_registry::Envelope> = instructions
        .iter()
        .map(|i| ets_registry::Envelope { id: i.id.clone(), actor: i.actor.clone(), command: i.command.clone() })
        .collect();
    registry
        .trial(&envelopes)
        .map_err(|(i, r)| (r.kind, format!("the registry would refuse {} ({}): nothing was recorded", envelopes[i].id, r.message)))
}

fn carry_out(ledger: &mut Ledger, at: Timestamp, instructions: &[Instruction]) -> Result<(), StoreError> {
    if instructions.is_empty() {
        return Ok(());
    }
    let envelopes: Vec<ets_registry::Envelope> = instructions
        .iter()
        .map(|i| ets_registry::Envelope { id: i.id.clone(), actor: i.actor.clone(), command: i.command.clone() })
        .collect();
    for (i, result) in ledger.submit_batch(at, &envelopes)?.into_iter().enumerate() {
        if let Err(r) = result {
            // The machine checked what each instruction moves against the registry it read; a
            // refusal means they disagree.
            return Err(StoreError::Corrupt(format!("registry refused finance instruction {}: {}", envelopes[i].id, r.message)));
        }
    }
    Ok(())
}
