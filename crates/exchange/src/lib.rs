//! ets-exchange: the matching core of the exchange.
//!
//! One [`book::OrderBook`] per instrument, single-threaded and deterministic: commands in,
//! events out, no clock, no I/O, no floating point. Prices are integer ticks (0.01 yuan for
//! allowances), quantities whole lots (1 t). Price-time priority; limit and market orders;
//! good-till-cancelled, immediate-or-cancel and fill-or-kill; cancel; amend (a quantity decrease
//! keeps the order's place, anything else re-queues it); self-trade prevention.
//!
//! Work in progress (issue 5): price bands, sessions and trading modes, auctions, settlement into
//! the registry, market data and journaling build on this core.

pub mod auction;
pub mod book;
pub mod rules;
pub mod venue;

pub use book::{Command, Event, OrderBook, OrderId, Reject, Side, Tif};
pub use rules::{Mode, PreTradeReject, TradingRules};
