//! Rounding of allowance quantities, named as the rules name it.

use crate::RuleError;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// How a quantity becomes whole tonnes (or how a factor is rounded to places).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Toward zero: the draft 2025–26 plan's rule for allowances (`[DRAFT2526]`).
    Down,
    /// Away from zero: for obligations, so that a fraction of a tonne is still owed.
    Up,
    /// Half away from zero (mechanisms.md §10 convention).
    HalfUp,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::Down => RoundingStrategy::ToZero,
            Rounding::Up => RoundingStrategy::AwayFromZero,
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        }
    }

    /// A non-negative quantity in whole tonnes.
    pub fn whole_tonnes(self, v: Decimal) -> Result<u64, RuleError> {
        if v < Decimal::ZERO {
            return Err(RuleError::input("allowance quantity", v, "must not be negative"));
        }
        u64::try_from(v.round_dp_with_strategy(0, self.strategy())).map_err(|_| RuleError::Overflow("whole tonnes"))
    }
}

pub fn round_to(v: Decimal, dp: u32, rounding: Rounding) -> Decimal {
    v.round_dp_with_strategy(dp, rounding.strategy())
}

pub fn floor_tonnes(v: Decimal) -> Result<u64, RuleError> {
    Rounding::Down.whole_tonnes(v)
}

/// a × b, or an error naming the step (exact decimals have 28 significant digits).
pub fn mul(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal, RuleError> {
    a.checked_mul(b).ok_or(RuleError::Overflow(step))
}

/// a + b, or an error naming the step.
pub fn add(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal, RuleError> {
    a.checked_add(b).ok_or(RuleError::Overflow(step))
}

/// a / b (b ≠ 0), or an error naming the step.
pub fn div(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal, RuleError> {
    a.checked_div(b).ok_or(RuleError::Overflow(step))
}
