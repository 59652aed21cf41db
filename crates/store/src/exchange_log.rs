//! The exchange journal: the shell around `ets_exchange::venue::Venue`.
//!
//! Write-ahead, then outbox. A batch of venue commands is decided in memory, sealed into
//! chained records and appended in one transaction; only then are the registry instructions
//! the batch produced (settlement deliveries, auction deliveries, unlodging) submitted to the
//! registry ledger, under their deterministic ids. Opening replays the journal, which re-derives
//! every instruction, and `reconcile` submits any the registry has not recorded, so a crash
//! between the two writes loses nothing and, the registry's ids being idempotent, repeats
//! nothing. Commands are acknowledged after both writes.

use crate::backend::{Backend, StoreError};
use crate::ledger::Ledger;
use ahash::AHashMap as HashMap;
use ets_core::chain::{ChainVerifier, SealedRecord};
use ets_core::{Date, Timestamp};
use ets_exchange::venue::{Envelope, Instruction, Outcome, Reject, RejectKind, Venue};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The first record of an exchange journal: who operates the venue, its clearing accounts and
/// its holiday calendar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueConfig {
    pub operator: String,
    pub clearing: BTreeMap<String, String>,
    pub holidays: BTreeSet<Date>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one record at a time, decoded and dropped
enum ExchangeRecord {
    Genesis(VenueConfig),
    /// The accepted commands of one batch, in order: one row per batch keeps the journal's
    /// per-row cost (index, hash, page writes) off each order.
    Batch(Vec<Envelope>),
}

/// The index of `ExchangeRecord::Batch` in postcard's encoding.
const BATCH_VARIANT: u64 = 1;

pub struct ExchangeLog {
    backend: Box<dyn Backend>,
    state: ExchangeState,
}

/// The exchange journal's memory: the venue, the chain head and what retries and `reconcile`
/// need. It decides and seals batches; writing them is the caller's (`ExchangeLog` in line,
/// `ExchangeService` on a storage thread).
pub(crate) struct ExchangeState {
    venue: Option<Venue>,
    head: (u64, [u8; 32]),
    /// Command id → digest of (actor, command), for idempotent retries.
    ids: HashMap<String, u64>,
    /// Every instruction the journal implies, in order (for `reconcile`).
    instructions: Vec<Instruction>,
}

/// A decided batch: its sealed journal record (none if nothing was accepted) and the registry
/// instructions to carry out once the record is stored.
pub(crate) struct PreparedExchangeBatch {
    pub(crate) sealed: Option<SealedRecord>,
    pub(crate) at: Timestamp,
    pub(crate) instructions: Vec<ets_registry::Envelope>,
}

/// One result per command of a batch, and the batch to store.
pub(crate) type Decided = (Vec<Result<ExchangeReceipt, Reject>>, PreparedExchangeBatch);

/// What one submitted command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeReceipt {
    Accepted(Outcome),
    /// The id was already journaled for this very command: nothing new was written.
    Repeated,
}

/// The seeds of the retry digest: the map is rebuilt from the journal at every open, so the
/// hash need not be stable across versions; a collision would need 2^64 tries with one id.
fn digest_state() -> ahash::RandomState {
    ahash::RandomState::with_seeds(0x6574_7321, 0x6578_6368, 0x616e_6765, 0x6a6f_7572)
}

/// What a retried id is compared by: a 64-bit hash of the encoded actor and command.
fn digest(envelope: &Envelope) -> u64 {
    let mut scratch = Vec::with_capacity(64);
    scratch = postcard::to_extend(&envelope.actor, scratch).expect("encode");
    let split = scratch.len();
    scratch = postcard::to_extend(&envelope.command, scratch).expect("encode");
    digest_bytes(&digest_state(), &scratch[..split], &scratch[split..])
}

fn digest_bytes(state: &ahash::RandomState, actor: &[u8], command: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = state.build_hasher();
    h.write(actor);
    h.write(command);
    h.finish()
}

/// Appends `value` as an unsigned LEB128 varint (postcard's length encoding).
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

impl ExchangeState {
    pub(crate) fn venue(&self) -> Option<&Venue> {
        self.venue.as_ref()
    }

    fn load(backend: &mut dyn Backend) -> Result<ExchangeState, StoreError> {
        let mut chain = ChainVerifier::default();
        let mut venue: Option<Venue> = None;
        let mut ids = HashMap::new();
        let mut instructions = Vec::new();
        backend.exchange_scan(&mut |row| {
            chain
                .check(row.seq, &row.body, &row.prev_hash, &row.hash)
                .map_err(|m| StoreError::Corrupt(format!("exchange journal: {m}")))?;
            let record: ExchangeRecord = postcard::from_bytes(&row.body)
                .map_err(|e| StoreError::Corrupt(format!("exchange record {}: cannot decode: {e}", row.seq)))?;
            match record {
                ExchangeRecord::Genesis(config) => {
                    if venue.is_some() {
                        return Err(StoreError::Corrupt(format!("exchange record {}: a second genesis", row.seq)));
                    }
                    venue = Some(Venue::new(&config.operator, config.clearing, config.holidays));
                }
                ExchangeRecord::Batch(envelopes) => {
                    let v = venue.as_mut().ok_or_else(|| StoreError::Corrupt("exchange journal does not start with its genesis".into()))?;
                    for envelope in envelopes {
                        let outcome = v.execute(&envelope).map_err(|r| {
                            StoreError::Corrupt(format!("exchange record {} ({}) is refused on replay: {r}", row.seq, envelope.id))
                        })?;
                        instructions.extend(outcome.instructions);
                        ids.insert(envelope.id.clone(), digest(&envelope));
                    }
                }
            }
            Ok(())
        })?;
        Ok(ExchangeState { venue, head: chain.head(), ids, instructions })
    }

    /// Decides each command in order and seals the accepted ones into the next journal record.
    /// Memory moves ahead of storage: if the record is not stored, the state must be reloaded.
    pub(crate) fn prepare(&mut self, envelopes: &[Envelope]) -> Result<Decided, StoreError> {
        let Some(venue) = self.venue.as_mut() else {
            return Err(StoreError::Conflict("the exchange is not set up: run `ets exchange init` first".into()));
        };
        let mut results = Vec::with_capacity(envelopes.len());
        // The batch record is encoded as the commands are accepted (postcard's encoding of
        // `ExchangeRecord::Batch(Vec<Envelope>)`: variant, count, then each envelope, whose
        // encoding is its fields' in order), so an accepted command is never copied, and the
        // retry digest hashes the actor's and the command's bytes of that same encoding.
        let mut encoded: Vec<u8> = Vec::with_capacity(envelopes.len() * 96);
        let mut accepted = 0u64;
        let mut instructions = Vec::new();
        let mut at = Timestamp(0);
        let hasher = digest_state();
        for envelope in envelopes {
            let start = encoded.len();
            encoded = postcard::to_extend(&envelope.id, encoded).expect("encode");
            let actor_at = encoded.len();
            encoded = postcard::to_extend(&envelope.actor, encoded).expect("encode");
            let actor_end = encoded.len();
            encoded = postcard::to_extend(&envelope.at_ms, encoded).expect("encode");
            let command_at = encoded.len();
            encoded = postcard::to_extend(&envelope.command, encoded).expect("encode");
            let d = digest_bytes(&hasher, &encoded[actor_at..actor_end], &encoded[command_at..]);
            let decided = if let Some(known) = self.ids.get(&envelope.id) {
                if *known == d {
                    Ok(ExchangeReceipt::Repeated)
                } else {
                    Err(Reject {
                        kind: RejectKind::Conflict,
                        message: format!("command id '{}' was already used for another command", envelope.id),
                    })
                }
            } else if let Err(e) = ets_core::check_identifier("command id", &envelope.id) {
                Err(Reject { kind: RejectKind::Invalid, message: e })
            } else {
                venue.execute(envelope).map(|outcome| {
                    at = at.max(Timestamp(envelope.at_ms));
                    accepted += 1;
                    instructions.extend(outcome.instructions.iter().cloned());
                    self.ids.insert(envelope.id.clone(), d);
                    ExchangeReceipt::Accepted(outcome)
                })
            };
            if !matches!(decided, Ok(ExchangeReceipt::Accepted(_))) {
                encoded.truncate(start);
            }
            results.push(decided);
        }
        if accepted == 0 {
            return Ok((results, PreparedExchangeBatch { sealed: None, at, instructions: Vec::new() }));
        }
        let seq = self.head.0 + 1;
        let mut body = Vec::with_capacity(encoded.len() + 12);
        push_varint(&mut body, BATCH_VARIANT);
        push_varint(&mut body, accepted);
        body.extend_from_slice(&encoded);
        debug_assert!(matches!(postcard::from_bytes::<ExchangeRecord>(&body), Ok(ExchangeRecord::Batch(v)) if v.len() as u64 == accepted));
        let sealed = SealedRecord::seal(seq, at, format!("batch-{seq}"), body, self.head.1);
        self.head = (sealed.seq, sealed.hash);
        let registry: Vec<ets_registry::Envelope> = instructions
            .iter()
            .map(|i| ets_registry::Envelope { id: i.id.clone(), actor: i.actor.clone(), command: i.command.clone() })
            .collect();
        self.instructions.extend(instructions);
        Ok((results, PreparedExchangeBatch { sealed: Some(sealed), at, instructions: registry }))
    }
}

impl PreparedExchangeBatch {
    /// Stores the batch's record, continuing the chain from the record before it.
    pub(crate) fn commit(&self, backend: &mut dyn Backend) -> Result<(), StoreError> {
        match &self.sealed {
            Some(sealed) => backend.exchange_append(sealed.seq - 1, std::slice::from_ref(sealed)),
            None => Ok(()),
        }
    }
}

impl ExchangeLog {
    pub fn open(mut backend: Box<dyn Backend>) -> Result<ExchangeLog, StoreError> {
        let state = ExchangeState::load(backend.as_mut())?;
        Ok(ExchangeLog { backend, state })
    }

    pub(crate) fn split(self) -> (ExchangeState, Box<dyn Backend>) {
        (self.state, self.backend)
    }

    pub(crate) fn join(state: ExchangeState, backend: Box<dyn Backend>, failed: bool) -> Result<ExchangeLog, StoreError> {
        if failed {
            // Memory may be ahead of storage: rebuild from what is stored.
            return ExchangeLog::open(backend);
        }
        Ok(ExchangeLog { backend, state })
    }

    pub fn venue(&self) -> Option<&Venue> {
        self.state.venue.as_ref()
    }

    pub fn head(&self) -> (u64, [u8; 32]) {
        self.state.head
    }

    /// Starts the exchange journal. Refused if it has started.
    pub fn init(&mut self, config: VenueConfig, at: Timestamp) -> Result<(), StoreError> {
        if self.state.venue.is_some() {
            return Err(StoreError::Conflict("the exchange is already set up".into()));
        }
        let head = self.state.head;
        let body = postcard::to_allocvec(&ExchangeRecord::Genesis(config.clone())).expect("encode");
        let sealed = SealedRecord::seal(head.0 + 1, at, "exchange-genesis".into(), body, head.1);
        self.backend.exchange_append(head.0, std::slice::from_ref(&sealed))?;
        self.state.head = (sealed.seq, sealed.hash);
        self.state.venue = Some(Venue::new(&config.operator, config.clearing, config.holidays));
        Ok(())
    }

    /// How many of the journal's registry instructions the registry has not recorded.
    pub fn undone(&self, registry: &ets_registry::Registry) -> usize {
        self.state.instructions.iter().filter(|i| registry.command_receipt(&i.id).is_none()).count()
    }

    /// Submits to the registry every instruction the journal implies that it has not recorded.
    /// Returns how many were submitted.
    pub fn reconcile(&mut self, ledger: &mut Ledger, at: Timestamp) -> Result<usize, StoreError> {
        let missing: Vec<ets_registry::Envelope> = self
            .state
            .instructions
            .iter()
            .filter(|i| ledger.registry().command_receipt(&i.id).is_none())
            .map(|i| ets_registry::Envelope { id: i.id.clone(), actor: i.actor.clone(), command: i.command.clone() })
            .collect();
        submit_instructions(ledger, at, &missing)?;
        Ok(missing.len())
    }

    /// Decides each command in order; journals the accepted ones in one transaction; then
    /// carries out their registry instructions. One result per command: a refusal changes
    /// nothing; a repeated id with the same command is `Repeated`; a reused id with another
    /// command is refused.
    pub fn submit_batch(
        &mut self,
        envelopes: &[Envelope],
        ledger: &mut Ledger,
    ) -> Result<Vec<Result<ExchangeReceipt, Reject>>, StoreError> {
        self.submit_batch_then(envelopes, ledger, true)
    }

    /// `submit_batch` that stops after the journal write when `carry_out` is false: the state a
    /// crash between the two writes leaves, for recovery tests.
    #[doc(hidden)]
    pub fn submit_batch_then(
        &mut self,
        envelopes: &[Envelope],
        ledger: &mut Ledger,
        carry_out: bool,
    ) -> Result<Vec<Result<ExchangeReceipt, Reject>>, StoreError> {
        let (results, prepared) = self.state.prepare(envelopes)?;
        if let Err(e) = prepared.commit(self.backend.as_mut()) {
            // Memory is ahead of storage: rebuild from what is stored.
            let fresh = ExchangeLog::open(std::mem::replace(&mut self.backend, Box::new(crate::ledger::detached())))?;
            *self = fresh;
            return Err(e);
        }
        if carry_out {
            submit_instructions(ledger, prepared.at, &prepared.instructions)?;
        }
        Ok(results)
    }

    /// Replays the journal from storage and compares the venue's state hash with this one.
    pub fn audit(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let hash = self.state.venue.as_ref().map(Venue::state_hash).unwrap_or([0; 32]);
        let fresh = ExchangeLog::open(std::mem::replace(&mut self.backend, Box::new(crate::ledger::detached())))?;
        let again = fresh.state.venue.as_ref().map(Venue::state_hash).unwrap_or([0; 32]);
        let head = fresh.state.head;
        *self = fresh;
        if again != hash {
            return Err(StoreError::Corrupt("the exchange state replayed from storage differs from the one in memory".into()));
        }
        Ok((head.0, again))
    }
}

/// Carries out a batch's registry instructions on a ledger; a refusal means the registry and
/// the venue disagree (units moved outside the exchange, an account closed).
pub fn submit_instructions(ledger: &mut Ledger, at: Timestamp, envelopes: &[ets_registry::Envelope]) -> Result<(), StoreError> {
    if envelopes.is_empty() {
        return Ok(());
    }
    for (i, result) in ledger.submit_batch(at, envelopes)?.into_iter().enumerate() {
        if let Err(r) = result {
            // The venue reserved what each instruction moves; a refusal means the registry and
            // the venue disagree (units moved outside the exchange, an account closed).
            return Err(StoreError::Corrupt(format!("registry refused exchange instruction {}: {}", envelopes[i].id, r.message)));
        }
    }
    Ok(())
}
