//! Checked exact arithmetic and the named rounding rules.
//!
//! `rust_decimal` operators panic on overflow, so every step here goes through the checked
//! methods and turns overflow into [`MrvError::Overflow`].
//!
//! Rounding policy:
//! - Multiplications are exact as long as the result fits in 28 significant digits.
//! - Divisions (44/12, element carbon / NCV) are done **last**, after all multiplications,
//!   so that a product that is a multiple of the divisor comes out exact.
//! - Each method result (tCO2e) is then rounded to [`RESULT_DP`] decimal places with
//!   [`RESULT_ROUNDING`] (half-even). This only bites on results of a repeating division.
//! - Whole tonnes are produced only on request, by [`round_whole_tonnes`] with an explicit
//!   [`WholeTonneRounding`] mode.

use crate::error::{MrvError, Result};
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places kept in every method result in tCO2e (1 g).
pub const RESULT_DP: u32 = 6;
/// Rounding applied at [`RESULT_DP`]: round half to even.
pub const RESULT_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointNearestEven;

pub(crate) fn mul(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    a.checked_mul(b).ok_or(MrvError::Overflow { step })
}

pub(crate) fn add(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    a.checked_add(b).ok_or(MrvError::Overflow { step })
}

pub(crate) fn sub(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    a.checked_sub(b).ok_or(MrvError::Overflow { step })
}

pub(crate) fn div(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    a.checked_div(b).ok_or(MrvError::Overflow { step })
}

/// Product of all factors, checked at each step.
pub(crate) fn product(factors: &[Decimal], step: &'static str) -> Result<Decimal> {
    factors.iter().try_fold(Decimal::ONE, |acc, f| mul(acc, *f, step))
}

/// Rounds a method result to [`RESULT_DP`] places with [`RESULT_ROUNDING`] and drops
/// trailing zeros so that `1960200.000000` displays as `1960200`.
pub fn round_result(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(RESULT_DP, RESULT_ROUNDING).normalize()
}

/// How to turn tCO2e into whole tonnes. There is no default: the caller names the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholeTonneRounding {
    /// Nearest tonne, .5 away from zero (commercial rounding).
    HalfUp,
    /// Nearest tonne, .5 to the even tonne.
    HalfEven,
    /// Towards zero (drop the fraction).
    Down,
    /// Away from zero (any fraction adds a tonne).
    Up,
}

impl WholeTonneRounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            WholeTonneRounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            WholeTonneRounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            WholeTonneRounding::Down => RoundingStrategy::ToZero,
            WholeTonneRounding::Up => RoundingStrategy::AwayFromZero,
        }
    }
}

/// Rounds tCO2e to whole tonnes with the named mode. Negative values are refused.
pub fn round_whole_tonnes(value: Decimal, mode: WholeTonneRounding) -> Result<u64> {
    non_negative("emissions to round", value)?;
    let whole = value.round_dp_with_strategy(0, mode.strategy());
    u64::try_from(whole).map_err(|_| MrvError::Overflow { step: "conversion to whole tonnes" })
}

pub(crate) fn non_negative(name: &'static str, value: Decimal) -> Result<Decimal> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(MrvError::InvalidInput { name, value: value.to_string(), rule: "must not be negative" });
    }
    Ok(value)
}

pub(crate) fn positive(name: &'static str, value: Decimal) -> Result<Decimal> {
    if value <= Decimal::ZERO {
        return Err(MrvError::InvalidInput { name, value: value.to_string(), rule: "must be greater than zero" });
    }
    Ok(value)
}

/// A fraction in [0, 1] (oxidation factor, conversion factor, mass fraction).
pub(crate) fn fraction(name: &'static str, value: Decimal) -> Result<Decimal> {
    if value < Decimal::ZERO || value > Decimal::ONE {
        return Err(MrvError::InvalidInput { name, value: value.to_string(), rule: "must be between 0 and 1 inclusive" });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn whole_tonne_modes() {
        assert_eq!(round_whole_tonnes(d("2.5"), WholeTonneRounding::HalfUp).unwrap(), 3);
        assert_eq!(round_whole_tonnes(d("2.5"), WholeTonneRounding::HalfEven).unwrap(), 2);
        assert_eq!(round_whole_tonnes(d("3.5"), WholeTonneRounding::HalfEven).unwrap(), 4);
        assert_eq!(round_whole_tonnes(d("2.9"), WholeTonneRounding::Down).unwrap(), 2);
        assert_eq!(round_whole_tonnes(d("2.1"), WholeTonneRounding::Up).unwrap(), 3);
        assert_eq!(round_whole_tonnes(d("7"), WholeTonneRounding::Up).unwrap(), 7);
        let err = round_whole_tonnes(d("-1"), WholeTonneRounding::HalfUp).unwrap_err();
        assert!(err.to_string().contains("must not be negative"), "{err}");
    }

    #[test]
    fn result_rounding_is_half_even_at_six_places() {
        // 1/12 = 0.08333...
        assert_eq!(round_result(d("1") / d("12")), d("0.083333"));
        assert_eq!(round_result(d("0.0000025")), d("0.000002"));
        assert_eq!(round_result(d("0.0000035")), d("0.000004"));
        assert_eq!(round_result(d("1960200.000000")).to_string(), "1960200");
    }

    #[test]
    fn checked_ops_report_overflow() {
        let err = mul(Decimal::MAX, d("2"), "test").unwrap_err();
        assert_eq!(err, MrvError::Overflow { step: "test" });
        assert!(add(Decimal::MAX, Decimal::ONE, "t").is_err());
        assert!(div(Decimal::ONE, Decimal::ZERO, "t").is_err());
    }

    #[test]
    fn range_checks() {
        assert!(fraction("of", d("1.01")).unwrap_err().to_string().contains("between 0 and 1"));
        assert!(positive("ncv", d("0")).is_err());
        assert!(non_negative("q", d("0")).is_ok());
    }
}
