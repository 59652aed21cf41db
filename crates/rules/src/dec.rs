//! Exact decimals in rulebook files: written as strings (`"0.7910"`) or integers, never as
//! binary floating point, so that the value read is the value written.

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::str::FromStr;

struct DecimalVisitor;

impl Visitor<'_> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal written as a string (\"0.7910\") or an integer")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        Decimal::from_str_exact(v.trim())
            .or_else(|_| Decimal::from_str(v.trim()))
            .map_err(|_| E::custom(format!("'{v}' is not a decimal number")))
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

/// `#[serde(deserialize_with = "dec::exact")]`
pub fn exact<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_any(DecimalVisitor)
}

/// The same for an optional value.
pub fn exact_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Decimal>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an optional decimal")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<Decimal>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Decimal>, D::Error> {
            exact(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// An exact decimal as a value type, for maps and lists in rulebooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Exact(pub Decimal);

impl<'de> serde::Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Exact, D::Error> {
        exact(d).map(Exact)
    }
}
