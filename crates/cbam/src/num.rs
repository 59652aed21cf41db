//! Exact decimals: checked arithmetic (rust_decimal operators panic on overflow) and the
//! named rounding rules. No value here ever passes through binary floating point.
//!
//! Rounding policy:
//! - SEE, SEFA and certificates are kept at full precision (cbam.md §4.1: "keep full precision,
//!   round only at purchase/surrender step"); [`CertificateRounding`] names the optional rounding
//!   of a declaration's total.
//! - Money is rounded once, at the end of each line, to cents with [`MONEY_ROUNDING`].

use crate::error::{CbamError, Result};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Decimal places of money (EUR and CNY): cents and fen.
pub const MONEY_DP: u32 = 2;
/// Half away from zero, as commercial rounding of an amount due.
pub const MONEY_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;
/// Decimal places kept for a specific value computed by division (SEE, SEFA): far below any
/// published precision, so only repeating divisions are cut.
pub const SPECIFIC_DP: u32 = 12;

pub fn mul(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    a.checked_mul(b).ok_or(CbamError::Overflow { step })
}

pub fn add(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    a.checked_add(b).ok_or(CbamError::Overflow { step })
}

pub fn sub(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    a.checked_sub(b).ok_or(CbamError::Overflow { step })
}

/// a / b, with b checked non-zero by the caller; the result keeps [`SPECIFIC_DP`] places
/// (half-even) and drops trailing zeros.
pub fn div(a: Decimal, b: Decimal, step: &'static str) -> Result<Decimal> {
    let q = a.checked_div(b).ok_or(CbamError::Overflow { step })?;
    Ok(q.round_dp_with_strategy(SPECIFIC_DP, RoundingStrategy::MidpointNearestEven).normalize())
}

/// Money in cents, always shown with two places.
pub fn money(v: Decimal) -> Decimal {
    let mut r = v.round_dp_with_strategy(MONEY_DP, MONEY_ROUNDING);
    r.rescale(MONEY_DP);
    r
}

/// Parses an exact decimal written as text ("2.140"); names the field on failure.
pub fn parse(field: &str, text: &str) -> Result<Decimal> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CbamError::input(field, "is empty; give a decimal number such as 2.14"));
    }
    if t.contains(['e', 'E']) {
        return Err(CbamError::input(field, format!("'{text}' uses an exponent; write the number out in full")));
    }
    Decimal::from_str_exact(t).map_err(|_| CbamError::input(field, format!("'{text}' is not a decimal number")))
}

pub fn non_negative(field: &str, v: Decimal) -> Result<Decimal> {
    if v.is_sign_negative() && !v.is_zero() {
        return Err(CbamError::input(field, format!("{v} is negative; it must be zero or more")));
    }
    Ok(v)
}

pub fn positive(field: &str, v: Decimal) -> Result<Decimal> {
    if v <= Decimal::ZERO {
        return Err(CbamError::input(field, format!("{v} must be greater than zero")));
    }
    Ok(v)
}

/// How a number of certificates becomes a whole number, if at all. The sources do not say
/// (cbam.md §4.1, §8 item 4): the default keeps full precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateRounding {
    /// Full precision (default).
    #[default]
    None,
    /// Up to the next whole certificate (a fraction is still owed).
    Up,
    /// Down (towards zero).
    Down,
    /// Nearest, .5 away from zero.
    HalfUp,
}

impl CertificateRounding {
    pub fn apply(self, v: Decimal) -> Decimal {
        match self {
            CertificateRounding::None => v,
            CertificateRounding::Up => v.round_dp_with_strategy(0, RoundingStrategy::AwayFromZero),
            CertificateRounding::Down => v.round_dp_with_strategy(0, RoundingStrategy::ToZero),
            CertificateRounding::HalfUp => v.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero),
        }
    }

    pub fn parse(text: &str) -> Option<CertificateRounding> {
        match text {
            "none" => Some(CertificateRounding::None),
            "up" => Some(CertificateRounding::Up),
            "down" => Some(CertificateRounding::Down),
            "half-up" | "half_up" => Some(CertificateRounding::HalfUp),
            _ => None,
        }
    }
}

/// Serde helpers: decimals in input files are strings or integers, never binary floats.
pub mod serde_exact {
    use rust_decimal::Decimal;
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct V;

    impl Visitor<'_> for V {
        type Value = Decimal;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal written as a string (\"2.14\") or an integer")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            super::parse("value", v).map_err(|_| E::custom(format!("'{v}' is not a decimal number")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            Err(E::custom(format!("write {v} as the string \"{v}\": decimals are kept exact, not as binary floating point")))
        }
    }

    pub fn exact<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(V)
    }

    pub fn exact_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        struct O;
        impl<'de> Visitor<'de> for O {
            type Value = Option<Decimal>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an optional decimal")
            }
            fn visit_none<E: de::Error>(self) -> Result<Option<Decimal>, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Option<Decimal>, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Decimal>, D::Error> {
                exact(d).map(Some)
            }
        }
        d.deserialize_option(O)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact_and_names_the_field() {
        assert_eq!(parse("x", "2.140").unwrap().to_string(), "2.140");
        assert_eq!(parse("lines[0].net_mass_t", "abc").unwrap_err().field(), Some("lines[0].net_mass_t"));
        assert!(parse("x", "1e3").is_err());
        assert!(non_negative("q", Decimal::from(-1)).unwrap_err().to_string().contains("negative"));
    }

    #[test]
    fn certificate_rounding_modes() {
        let v = Decimal::new(217325, 2); // 2173.25
        assert_eq!(CertificateRounding::None.apply(v), v);
        assert_eq!(CertificateRounding::Up.apply(v), Decimal::from(2174));
        assert_eq!(CertificateRounding::Down.apply(v), Decimal::from(2173));
        assert_eq!(CertificateRounding::HalfUp.apply(Decimal::new(25, 1)), Decimal::from(3));
    }
}
