//! Pilot carbon-finance products (issue 9, items 1–3): allowance pledges, repurchase agreements,
//! and forwards/futures on allowances, as one deterministic state machine, the [`desk::Desk`].
//!
//! The style is the exchange venue's: `Desk::execute(envelope, holdings)` decides a command
//! against the current state and either applies it, returning its events and the registry
//! instructions it implies, or refuses it with a reason and changes nothing. No clock (the
//! envelope carries the business date), no I/O, no floating point: tonnes are `u64`, cash is fen
//! (`i64`, products in `i128` before narrowing), rates are basis points.
//!
//! Product terms of the pilots are not known (china-ets.md §6.2, all **U**), so every product is
//! modelled generally with its terms as parameters (haircut, maintenance level, top-up days,
//! maturity, repurchase price, failure penalty, contract size, initial margin, position limit,
//! settlement kind).
//!
//! Units and cash:
//! - **Cash** is a ledger per party held by the desk (deposits and withdrawals are commands);
//!   loans, repo legs, variation margin and delivery payments move between parties on it, so
//!   the sum of balances always equals net deposits. Initial margin is a reservation of cash.
//!   Variation margin may drive a balance negative (a margin shortfall, recorded as an event);
//!   nothing else may.
//! - **Units** stay in the registry. The desk never moves them itself; it emits
//!   [`desk::Instruction`]s (registry commands with deterministic ids `fin-N`) that the shell
//!   applies in order before the next desk command. To decide whether a party *can* deliver
//!   (a pledge, a top-up, a repo leg, a physical delivery), the desk reads the party's free
//!   registry holding through the read-only [`desk::Holdings`] view passed to `execute`;
//!   `ets_registry::Registry` implements it (free = not pending, not frozen). This is the
//!   simplest sound design: the registry stays the single source of truth for units and the
//!   desk keeps no shadow copy that could drift.
//! - **Pledges** are registry pending transfers (`PendingPurpose::Pledge`) from the borrower's
//!   account to the lender's: owned by the borrower, not movable. Release is `VoidPending`,
//!   enforcement `PostPending`, both issued under the desk's registrar actor (the registry lets
//!   the market authority post a pending transfer; the pledge registrar is that authority).
//! - **Bilateral agreements** (a pledge, a repo) are registered by the desk operator on both
//!   parties' signed application, as a pledge registration institution does; the desk then
//!   emits the registry instructions under the party whose units move (the borrower's
//!   `CreatePending`, the seller's and later the buyer's `Transfer`), the agreement being that
//!   party's consent. A propose/confirm handshake inside the desk (like the venue's block deals)
//!   is not built yet. Top-ups and repayments come from the borrower (or the operator).
//! - **Futures** trade on an order book per contract (`ets_exchange::OrderBook`, the
//!   exchange's matching core: limit orders, price-time priority, GTC/IOC/FOK, self-trade
//!   prevention) or come in as bilateral trades (`Command::Trade`, e.g. reported block trades).
//!   An order reserves cash for its initial margin and its worst difference to the last
//!   settlement price, and the position limit counts working orders on the same side, so no
//!   fill breaches the limit (a later settlement price can make a resting order's price
//!   difference larger than reserved: that shows as a margin shortfall, not a refusal). Each trade is brought to the last settlement price at once (the
//!   price difference is paid between the two sides), so every open position is always marked
//!   at the contract's last settlement price and each day's
//!   variation margin is exactly (new price − last price) × position × size.
//!
//! Bounds: prices are at most [`desk::MAX_PRICE_FEN`] (¥1m a tonne), quantities and a futures
//! position's notional at most [`desk::MAX_TONNES`], so every product of price and tonnes stays
//! inside `i64`.
//!
//! Every contract ends: a pledge is released (repaid) or enforced (unmet margin call at its
//! deadline, or unpaid at maturity); a repo is settled or failed with the remedy applied; a
//! futures contract is delivered (physical) or settled (cash) at expiry.
//!
//! Carbon inclusion (碳普惠, issue 9): [`inclusion::Inclusion`], methodologies for small emitters
//! and individuals, aggregated submissions, verification, issuance of a pilot's credits and
//! their use for compliance under the pilot rulebook's offset rules (see that module).

pub mod desk;
pub mod inclusion;

pub use desk::{Command, ContractData, Desk, Envelope, Event, Holdings, Instruction, Outcome, Reject, RejectKind, Settlement, Side, Tif};
