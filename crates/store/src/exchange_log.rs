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
    venue: Option<Venue>,
    head: (u64, [u8; 32]),
    /// Command id → digest of (actor, command), for idempotent retries.
    ids: HashMap<String, u64>,
    /// Every instruction the journal implies, in order (for `reconcile`).
    instructions: Vec<Instruction>,
}

/// What one submitted command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeReceipt {
    Accepted(Outcome),
    /// The id was already journaled for this very command: nothing new was written.
    Repeated,
}

/// What a retried id is compared by: a 64-bit hash of (actor, command). The map is rebuilt
/// from the journal at every open, so the hash need not be stable across versions; a collision
/// would need 2^64 tries with the same id.
fn digest(envelope: &Envelope) -> u64 {
    let mut scratch = Vec::with_capacity(64);
    postcard::to_io(&(&envelope.actor, &envelope.command), &mut scratch).expect("encode");
    ahash::RandomState::with_seeds(0x6574_7321, 0x6578_6368, 0x616e_6765, 0x6a6f_7572).hash_one(&scratch)
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

impl ExchangeLog {
    pub fn open(mut backend: Box<dyn Backend>) -> Result<ExchangeLog, StoreError> {
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
        Ok(ExchangeLog { backend, venue, head: chain.head(), ids, instructions })
    }

    pub fn venue(&self) -> Option<&Venue> {
        self.venue.as_ref()
    }

    pub fn head(&self) -> (u64, [u8; 32]) {
        self.head
    }

    /// Starts the exchange journal. Refused if it has started.
    pub fn init(&mut self, config: VenueConfig, at: Timestamp) -> Result<(), StoreError> {
        if self.venue.is_some() {
            return Err(StoreError::Conflict("the exchange is already set up".into()));
        }
        let body = postcard::to_allocvec(&ExchangeRecord::Genesis(config.clone())).expect("encode");
        let sealed = SealedRecord::seal(self.head.0 + 1, at, "exchange-genesis".into(), body, self.head.1);
        self.backend.exchange_append(self.head.0, std::slice::from_ref(&sealed))?;
        self.head = (sealed.seq, sealed.hash);
        self.venue = Some(Venue::new(&config.operator, config.clearing, config.holidays));
        Ok(())
    }

    /// How many of the journal's registry instructions the registry has not recorded.
    pub fn undone(&self, registry: &ets_registry::Registry) -> usize {
        self.instructions.iter().filter(|i| registry.command_receipt(&i.id).is_none()).count()
    }

    /// Submits to the registry every instruction the journal implies that it has not recorded.
    /// Returns how many were submitted.
    pub fn reconcile(&mut self, ledger: &mut Ledger, at: Timestamp) -> Result<usize, StoreError> {
        let missing: Vec<ets_registry::Envelope> = self
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
        let Some(venue) = self.venue.as_mut() else {
            return Err(StoreError::Conflict("the exchange is not set up: run `ets exchange init` first".into()));
        };
        let mut results = Vec::with_capacity(envelopes.len());
        // The batch record is encoded as the commands are accepted (postcard's encoding of
        // `ExchangeRecord::Batch(Vec<Envelope>)`: variant, count, then each envelope), so an
        // accepted command is never copied.
        let mut encoded: Vec<u8> = Vec::with_capacity(envelopes.len() * 96);
        let mut accepted = 0u64;
        let mut instructions = Vec::new();
        // New ids go straight into `ids`: if the append fails, the log is rebuilt from storage.
        let mut at = Timestamp(0);
        for envelope in envelopes {
            let d = digest(envelope);
            if let Some(known) = self.ids.get(&envelope.id) {
                results.push(if *known == d {
                    Ok(ExchangeReceipt::Repeated)
                } else {
                    Err(Reject {
                        kind: RejectKind::Conflict,
                        message: format!("command id '{}' was already used for another command", envelope.id),
                    })
                });
                continue;
            }
            if let Err(e) = ets_core::check_identifier("command id", &envelope.id) {
                results.push(Err(Reject { kind: RejectKind::Invalid, message: e }));
                continue;
            }
            match venue.execute(envelope) {
                Err(r) => results.push(Err(r)),
                Ok(outcome) => {
                    at = at.max(Timestamp(envelope.at_ms));
                    encoded = postcard::to_extend(envelope, encoded).expect("encode");
                    accepted += 1;
                    instructions.extend(outcome.instructions.iter().cloned());
                    self.ids.insert(envelope.id.clone(), d);
                    results.push(Ok(ExchangeReceipt::Accepted(outcome)));
                }
            }
        }
        if accepted == 0 {
            return Ok(results);
        }
        let seq = self.head.0 + 1;
        let mut body = Vec::with_capacity(encoded.len() + 12);
        push_varint(&mut body, BATCH_VARIANT);
        push_varint(&mut body, accepted);
        body.extend_from_slice(&encoded);
        debug_assert!(matches!(postcard::from_bytes::<ExchangeRecord>(&body), Ok(ExchangeRecord::Batch(v)) if v.len() as u64 == accepted));
        let sealed = SealedRecord::seal(seq, at, format!("batch-{seq}"), body, self.head.1);
        if let Err(e) = self.backend.exchange_append(self.head.0, std::slice::from_ref(&sealed)) {
            // Memory is ahead of storage: rebuild from what is stored.
            let fresh = ExchangeLog::open(std::mem::replace(&mut self.backend, Box::new(crate::ledger::detached())))?;
            *self = fresh;
            return Err(e);
        }
        self.head = (sealed.seq, sealed.hash);
        let registry: Vec<ets_registry::Envelope> = instructions
            .iter()
            .map(|i| ets_registry::Envelope { id: i.id.clone(), actor: i.actor.clone(), command: i.command.clone() })
            .collect();
        self.instructions.extend(instructions);
        if carry_out {
            submit_instructions(ledger, at, &registry)?;
        }
        Ok(results)
    }

    /// Replays the journal from storage and compares the venue's state hash with this one.
    pub fn audit(&mut self) -> Result<(u64, [u8; 32]), StoreError> {
        let hash = self.venue.as_ref().map(Venue::state_hash).unwrap_or([0; 32]);
        let fresh = ExchangeLog::open(std::mem::replace(&mut self.backend, Box::new(crate::ledger::detached())))?;
        let again = fresh.venue.as_ref().map(Venue::state_hash).unwrap_or([0; 32]);
        let head = fresh.head;
        *self = fresh;
        if again != hash {
            return Err(StoreError::Corrupt("the exchange state replayed from storage differs from the one in memory".into()));
        }
        Ok((head.0, again))
    }
}

fn submit_instructions(ledger: &mut Ledger, at: Timestamp, envelopes: &[ets_registry::Envelope]) -> Result<(), StoreError> {
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
