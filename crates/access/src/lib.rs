//! Identity, authorization and registry security controls for the ets server, as a pure,
//! deterministic state machine (`Access`): commands in, journaled records of events out.
//!
//! - `policy`: roles, actions and `allows` (deny by default), with `intended` as the table the
//!   matrix test checks it against. Actions carry the market of the account they touch, so a
//!   market authority is scoped to its own market.
//! - `identity` + `password`: users with roles, Argon2id password hashes (PHC strings), login
//!   sessions and scoped API tokens stored only as the SHA-256 of their secret, expiry,
//!   revocation, login throttling per user and per origin.
//! - `controls` + `calendar`: four-eyes transfer proposals, trusted account lists whose
//!   additions take effect after N working days, the "26-hour" delay and the per-transaction
//!   limit for transfers to accounts not on the list, execution only in opening hours. A `Tick`
//!   releases matured transfers as `Event::TransferReleased`, which the shell executes against
//!   the registry.
//! - `rules`: every parameter (`ControlRules`), validated on load, defaults with their sources.
//!
//! Invariants: no I/O, no clock (every command carries its time), no randomness (secrets and
//! salts come from the caller), no floating point. Secrets are never stored or journaled in the
//! clear. A transfer is released only after a second, different user approved it, never before
//! its release time, only while the registry is open, and never to an untrusted account above
//! the limit (asserted in `apply`). A refused command changes nothing, except a failed login,
//! whose failure is recorded for throttling.

mod access;
pub mod calendar;
pub mod controls;
pub mod event;
pub mod identity;
pub mod password;
pub mod policy;
pub mod rules;

pub use access::Access;
pub use calendar::Calendar;
pub use controls::{TransferProposal, TransferStatus, TrustedEntry, TrustedProposal, TrustedStatus};
pub use event::{Actor, Command, Envelope, Event, LoginFailure, Record, Refusal, RejectKind, Rejection, Secret, ThrottleKey};
pub use identity::{Principal, Session, Token, User};
pub use policy::{allows, intended, matrix, AccountRef, Action, ActionKind, EntityRef, Grant, Role, RoleKind};
pub use rules::{ControlRules, OutsideHours, PasswordRules, ThrottleRules};
