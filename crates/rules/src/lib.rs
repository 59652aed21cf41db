//! ets-rules: market rulebooks as data, the allocation engines, compliance and the dual-track
//! rules between the national market and the pilots.
//!
//! Pure: no I/O, no clock, no floating point. Quantities of allowances are whole tonnes
//! (`u64`), intermediate values exact decimals; every rounding is the one the rules name
//! ([`num::Rounding`]).

pub mod allocation;
pub mod compliance;
pub mod dec;
pub mod num;
pub mod rulebook;

use rust_decimal::Decimal;
use std::fmt;

/// Why a calculation under the rules was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// An input outside its range: what, the value, the rule.
    Input {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    /// The rules have nothing for this case (a year without benchmarks, ...).
    NoRule(String),
    Overflow(&'static str),
}

impl RuleError {
    pub fn input(what: &'static str, value: Decimal, rule: &'static str) -> RuleError {
        RuleError::Input { what, value: value.to_string(), rule }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Input { what, value, rule } => write!(f, "{what} = {value}: {rule}"),
            RuleError::NoRule(m) => f.write_str(m),
            RuleError::Overflow(step) => write!(f, "arithmetic overflow in {step}"),
        }
    }
}

impl std::error::Error for RuleError {}
