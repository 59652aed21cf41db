//! Versioned factor and parameter data (`data/factors-v1.json`).
//!
//! The file is compiled in with `include_str!` and validated when loaded: every entry must
//! name a source key listed in the file's `sources`, have a `valid_from` date, a `valid_to`
//! that is not before it (or null = open-ended), a decimal `value` written as a string, and a
//! status (`confirmed` or `uncertain`). Entries sharing a key must not overlap in time.

use crate::error::{MrvError, Result};
use ets_core::Date;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The text of the built-in factor file.
pub const FACTORS_V1_JSON: &str = include_str!("../data/factors-v1.json");

/// Whether the domain sources confirm a value or it is a working assumption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Confirmed,
    /// Usable, but the sources leave the value or its validity open. Callers should show it.
    Uncertain,
}

/// One dated parameter value with its provenance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Factor {
    pub key: String,
    pub value: Decimal,
    pub unit: String,
    /// Key into [`FactorSet::sources`], e.g. `TPF-EF` or `IPCC 2006 Vol.2 Ch.1 Table 1.4`.
    pub source: String,
    pub valid_from: Date,
    /// Inclusive; `None` = still valid.
    pub valid_to: Option<Date>,
    pub status: Status,
    pub note: String,
}

impl Factor {
    pub fn is_valid_on(&self, on: Date) -> bool {
        self.valid_from <= on
            && match self.valid_to {
                Some(to) => on <= to,
                None => true,
            }
    }
}

/// A validated factor file.
#[derive(Clone, Debug)]
pub struct FactorSet {
    pub version: String,
    /// Source key -> description.
    pub sources: BTreeMap<String, String>,
    factors: Vec<Factor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: String,
    sources: BTreeMap<String, String>,
    parameters: Vec<RawFactor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFactor {
    key: String,
    value: String,
    unit: String,
    source: String,
    valid_from: String,
    valid_to: Option<String>,
    status: String,
    note: String,
}

fn iso(d: Date) -> String {
    let (y, m, dd) = d.ymd();
    format!("{y:04}-{m:02}-{dd:02}")
}

fn bad(msg: String) -> MrvError {
    MrvError::BadFactorData(msg)
}

impl FactorSet {
    /// The built-in `factors-v1` data.
    pub fn builtin() -> Result<FactorSet> {
        FactorSet::from_json(FACTORS_V1_JSON)
    }

    /// Parses and validates a factor file.
    pub fn from_json(text: &str) -> Result<FactorSet> {
        let raw: RawFile = serde_json::from_str(text).map_err(|e| bad(format!("not a valid factor file: {e}")))?;
        if raw.version.trim().is_empty() {
            return Err(bad("the file has no version".into()));
        }
        let mut factors = Vec::with_capacity(raw.parameters.len());
        for (i, p) in raw.parameters.into_iter().enumerate() {
            let at = format!("entry {i} ('{}')", p.key);
            if p.key.trim().is_empty() {
                return Err(bad(format!("{at}: empty key")));
            }
            if p.source.trim().is_empty() {
                return Err(bad(format!("{at}: no source key")));
            }
            if !raw.sources.contains_key(&p.source) {
                return Err(bad(format!("{at}: source key '{}' is not listed in sources", p.source)));
            }
            if p.unit.trim().is_empty() {
                return Err(bad(format!("{at}: no unit")));
            }
            let value = Decimal::from_str_exact(p.value.trim()).map_err(|e| bad(format!("{at}: value '{}': {e}", p.value)))?;
            if value.is_sign_negative() {
                return Err(bad(format!("{at}: negative value {value}")));
            }
            let valid_from = Date::parse(&p.valid_from).map_err(|e| bad(format!("{at}: valid_from: {e}")))?;
            let valid_to = match &p.valid_to {
                Some(t) => Some(Date::parse(t).map_err(|e| bad(format!("{at}: valid_to: {e}")))?),
                None => None,
            };
            if valid_to.is_some_and(|to| to < valid_from) {
                return Err(bad(format!("{at}: valid_to is before valid_from")));
            }
            let status = match p.status.as_str() {
                "confirmed" => Status::Confirmed,
                "uncertain" => Status::Uncertain,
                other => return Err(bad(format!("{at}: status '{other}' must be 'confirmed' or 'uncertain'"))),
            };
            factors.push(Factor { key: p.key, value, unit: p.unit, source: p.source, valid_from, valid_to, status, note: p.note });
        }
        // Entries with the same key must not overlap.
        for (i, a) in factors.iter().enumerate() {
            for b in factors[i + 1..].iter().filter(|b| b.key == a.key) {
                let a_before_b = a.valid_to.is_some_and(|to| to < b.valid_from);
                let b_before_a = b.valid_to.is_some_and(|to| to < a.valid_from);
                if !a_before_b && !b_before_a {
                    return Err(bad(format!("entries for '{}' overlap in time", a.key)));
                }
            }
        }
        Ok(FactorSet { version: raw.version, sources: raw.sources, factors })
    }

    pub fn all(&self) -> &[Factor] {
        &self.factors
    }

    /// The entry for `key` valid on `on`.
    pub fn lookup(&self, key: &str, on: Date) -> Result<&Factor> {
        self.factors
            .iter()
            .find(|f| f.key == key && f.is_valid_on(on))
            .ok_or_else(|| MrvError::FactorNotFound { key: key.to_string(), on: Some(iso(on)) })
    }

    /// The only entry for `key`, for undated values such as a GWP of one assessment report.
    pub fn lookup_single(&self, key: &str) -> Result<&Factor> {
        let mut it = self.factors.iter().filter(|f| f.key == key);
        match (it.next(), it.next()) {
            (Some(f), None) => Ok(f),
            (None, _) => Err(MrvError::FactorNotFound { key: key.to_string(), on: None }),
            (Some(_), Some(_)) => Err(MrvError::FactorAmbiguous { key: key.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn builtin_loads_and_every_entry_has_source_and_validity() {
        let set = FactorSet::builtin().unwrap();
        assert_eq!(set.version, "factors-v1");
        assert!(set.all().len() >= 20);
        for f in set.all() {
            assert!(set.sources.contains_key(&f.source), "{}", f.key);
            assert!(f.is_valid_on(f.valid_from));
        }
    }

    #[test]
    fn default_coal_carbon_content_is_dated() {
        let set = FactorSet::builtin().unwrap();
        let key = "cn.power.coal_cc_default_high";
        let f2020 = set.lookup(key, date("2020-06-30")).unwrap();
        assert_eq!(f2020.value.to_string(), "0.03356");
        assert_eq!(f2020.status, Status::Uncertain);
        let f2022 = set.lookup(key, date("2022-12-31")).unwrap();
        assert_eq!(f2022.value.to_string(), "0.03085");
        assert_eq!(f2022.status, Status::Confirmed);
        assert_eq!(f2022.source, "CHEMLINKED");
        let f2024 = set.lookup(key, date("2024-03-01")).unwrap();
        assert_eq!(f2024.status, Status::Uncertain);
        assert!(set.lookup(key, date("2018-12-31")).is_err());
        assert_eq!(set.lookup_single(key).unwrap_err(), MrvError::FactorAmbiguous { key: key.into() });
    }

    #[test]
    fn ipcc_defaults_present() {
        let set = FactorSet::builtin().unwrap();
        for (k, v) in [
            ("ipcc2006.ef.natural_gas", "56.1"),
            ("ipcc2006.ef.other_bituminous_coal", "94.6"),
            ("ipcc2006.ef.gas_diesel_oil", "74.1"),
            ("ipcc2006.ef.residual_fuel_oil", "77.4"),
        ] {
            let f = set.lookup_single(k).unwrap();
            assert_eq!(f.value.to_string(), v);
            assert_eq!(f.source, "IPCC 2006 Vol.2 Ch.1 Table 1.4");
        }
    }

    const HEAD: &str = r#"{"version":"t","sources":{"X":"x"},"parameters":["#;

    fn entry(source: &str, from: &str, to: &str) -> String {
        format!(
            r#"{{"key":"k","value":"1","unit":"u","source":"{source}","valid_from":"{from}","valid_to":{to},"status":"confirmed","note":""}}"#
        )
    }

    #[test]
    fn validation_rejects_bad_entries() {
        let unknown_source = format!("{HEAD}{}]}}", entry("Y", "2020-01-01", "null"));
        let err = FactorSet::from_json(&unknown_source).unwrap_err().to_string();
        assert!(err.contains("source key 'Y' is not listed"), "{err}");

        let empty_source = format!("{HEAD}{}]}}", entry("", "2020-01-01", "null"));
        assert!(FactorSet::from_json(&empty_source).unwrap_err().to_string().contains("no source key"));

        let bad_date = format!("{HEAD}{}]}}", entry("X", "2020-13-01", "null"));
        assert!(FactorSet::from_json(&bad_date).unwrap_err().to_string().contains("valid_from"));

        let reversed = format!("{HEAD}{}]}}", entry("X", "2021-01-01", r#""2020-01-01""#));
        assert!(FactorSet::from_json(&reversed).unwrap_err().to_string().contains("before valid_from"));

        let overlap = format!("{HEAD}{},{}]}}", entry("X", "2020-01-01", "null"), entry("X", "2021-01-01", r#""2021-12-31""#));
        assert!(FactorSet::from_json(&overlap).unwrap_err().to_string().contains("overlap"));

        let missing_validity = r#"{"version":"t","sources":{"X":"x"},"parameters":[{"key":"k","value":"1","unit":"u","source":"X","status":"confirmed","note":""}]}"#;
        assert!(FactorSet::from_json(missing_validity).is_err());

        let ok = format!("{HEAD}{},{}]}}", entry("X", "2020-01-01", r#""2020-12-31""#), entry("X", "2021-01-01", "null"));
        assert_eq!(FactorSet::from_json(&ok).unwrap().all().len(), 2);
    }
}
