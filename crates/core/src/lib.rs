//! Units, money, dates and identifiers shared by every ets crate.
//!
//! Invariant: this crate does no I/O, reads no clock and has no randomness. Quantities of
//! compliance units are whole tonnes of CO2e held in `Tonnes` (u64); money is `Fen` (i64, the
//! smallest unit of the yuan). Every parser here is strict: it never goes through floating point.

pub mod chain;
mod date;
mod quantity;
mod rejection;

pub use date::{Date, DateError, Timestamp};
pub use quantity::{Fen, QuantityError, Tonnes};
pub use rejection::Rejection;

/// Largest length of an identifier chosen by a client (command ids, account holders, persons).
pub const IDENTIFIER_LENGTH_MAX: usize = 64;

/// Checks a client-chosen identifier: 1..=64 printable ASCII characters without spaces.
pub fn check_identifier(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > IDENTIFIER_LENGTH_MAX {
        return Err(format!("{what} '{value}' is {} characters long; the limit is {IDENTIFIER_LENGTH_MAX}", value.len()));
    }
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("{what} '{value}' contains {bad:?}; use letters, digits and punctuation without spaces"));
    }
    Ok(())
}
