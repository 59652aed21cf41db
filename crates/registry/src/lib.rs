//! The ets registry: an exact ledger of allowances and offsets for several markets side by side,
//! held as serial-number blocks, run as a deterministic state machine.
//!
//! Invariants: no I/O, no clock, no randomness, no floating point. A command goes in
//! (`Registry::execute`), events come out; the same events replayed (`Registry::apply_record`)
//! give the same state, proven by equal `state_hash`es. Conservation per unit type
//! (issued = circulating + surrendered + cancelled) and non-negative holdings are asserted on
//! every event in release builds; `check_invariants` recomputes everything from scratch.

pub mod command;
pub mod event;
pub mod holding;
mod index;
mod invariants;
pub mod journal;
pub mod model;
mod registry;
pub mod snapshot;
pub mod workload;

pub use command::{Command, Envelope, RejectKind, Rejection, UnitRef};
pub use event::Event;
pub use journal::{ChainVerifier, Record, SealedRecord};
pub use model::*;
pub use registry::{
    Account, Freeze, MarketState, Outcome, Pending, Receipt, Registry, TxRecord, UnitTypeState, ACCOUNT_NUMBER_FIRST, VINTAGE_FIRST,
    VINTAGE_LAST,
};
pub use snapshot::Snapshot;
