//! The versioned CBAM reference data (`data/cbam-v1.json`): scope (CN codes by sector and what
//! counts), the CBAM factor by year, mark-ups, dated parameters, default values by country,
//! CBAM benchmarks (Column A and B), default electricity emission factors, certificate prices
//! and the EU and exempt origins.
//!
//! The file is compiled in with `include_str!` and validated when loaded; every problem is
//! reported at once, each naming the entry. Every entry names a source key listed in the file,
//! and values the sources leave open are marked `uncertain` (see cbam.md §8).

use crate::error::{CbamError, Result};
use crate::num;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The text of the built-in reference data.
pub const CBAM_V1_JSON: &str = include_str!("../data/cbam-v1.json");

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sector {
    Cement,
    Fertilisers,
    IronSteel,
    Aluminium,
    Hydrogen,
    Electricity,
}

impl Sector {
    pub const ALL: [Sector; 6] =
        [Sector::Cement, Sector::Fertilisers, Sector::IronSteel, Sector::Aluminium, Sector::Hydrogen, Sector::Electricity];

    pub fn name(self) -> &'static str {
        match self {
            Sector::Cement => "cement",
            Sector::Fertilisers => "fertilisers",
            Sector::IronSteel => "iron_steel",
            Sector::Aluminium => "aluminium",
            Sector::Hydrogen => "hydrogen",
            Sector::Electricity => "electricity",
        }
    }

    pub fn parse(text: &str) -> Option<Sector> {
        Sector::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// Which emissions count in a good's embedded emissions (Annex II: direct only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counts {
    Direct,
    DirectAndIndirect,
}

impl Counts {
    pub fn includes_indirect(self) -> bool {
        self == Counts::DirectAndIndirect
    }

    pub fn name(self) -> &'static str {
        match self {
            Counts::Direct => "direct",
            Counts::DirectAndIndirect => "direct_and_indirect",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Confirmed,
    Uncertain,
}

/// Where goods or a precursor come from, as CBAM sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A member state: precursors count zero (IR2547 Annex III B, F4).
    Eu,
    /// Annex III pt 1 (Iceland, Liechtenstein, Norway, Switzerland): precursors count zero.
    Exempt,
    Third,
}

/// A scope entry: a CN prefix (2 to 8 digits) and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Good {
    pub cn: String,
    pub sector: Sector,
    pub counts: Counts,
    pub description: String,
    pub source: String,
}

/// What the scope says about one 8-digit CN code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    pub cn: String,
    pub good: &'a Good,
}

impl Scope<'_> {
    pub fn sector(&self) -> Sector {
        self.good.sector
    }
    pub fn counts(&self) -> Counts {
        self.good.counts
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub cn: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectorRules {
    pub sector: Sector,
    pub counts: Counts,
    /// Counts towards the 50 t importer threshold (Art. 2a; not electricity or hydrogen).
    pub threshold_mass: bool,
    /// (from year, mark-up fraction), ascending.
    pub markup: Vec<(i32, Decimal)>,
}

/// A default value (IR2621 Annex I, or Annex IV for an unknown country), before mark-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultValue {
    pub cn: String,
    /// ISO 3166 alpha-2, `OTHER` (other countries and territories) or `UNKNOWN` (Annex IV).
    pub country: String,
    /// IR2620 route letter of the value (C = BF/BOF, ...), where the sources give it.
    pub route: Option<String>,
    pub direct: Option<Decimal>,
    pub indirect: Option<Decimal>,
    /// The "total emissions" column, to which the mark-up applies.
    pub total: Decimal,
    pub source: String,
    pub status: Status,
    pub note: String,
}

/// A CBAM benchmark (IR2620): Column A (process, for actual values) and Column B (default,
/// whole good incl. precursors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Benchmark {
    pub cn: String,
    pub route: Option<String>,
    pub column_a: Option<Decimal>,
    pub column_b: Option<Decimal>,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    pub key: String,
    pub value: Decimal,
    pub from_year: i32,
    pub to_year: i32,
    pub unit: String,
    pub source: String,
    pub status: Status,
    pub note: String,
}

/// The validated reference data.
#[derive(Clone, Debug)]
pub struct Reference {
    pub version: String,
    pub sources: BTreeMap<String, String>,
    pub first_year: i32,
    pub last_year: i32,
    pub sectors: Vec<SectorRules>,
    pub goods: Vec<Good>,
    pub excluded: Vec<Excluded>,
    pub cbam_factor: BTreeMap<i32, Decimal>,
    pub parameters: Vec<Parameter>,
    pub default_values: Vec<DefaultValue>,
    pub benchmarks: Vec<Benchmark>,
    pub electricity_ef: BTreeMap<String, Decimal>,
    /// `2026-Q1` or `2027-W05` -> EUR per certificate.
    pub certificate_prices: BTreeMap<String, Decimal>,
    pub eu_origins: BTreeSet<String>,
    pub exempt_origins: BTreeSet<String>,
}

// ------------------------------------------------------------------------------ raw file

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: String,
    sources: BTreeMap<String, String>,
    years: RawYears,
    sectors: Vec<RawSector>,
    goods: Vec<RawGood>,
    excluded: Vec<RawExcluded>,
    cbam_factor: Vec<RawYearValue>,
    cbam_factor_source: String,
    parameters: Vec<RawParameter>,
    default_values: Vec<RawDefault>,
    benchmarks: Vec<RawBenchmark>,
    electricity_ef: Vec<RawEf>,
    certificate_prices: Vec<RawPrice>,
    eu_origins: Vec<String>,
    exempt_origins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYears {
    first: i32,
    last: i32,
    source: String,
    #[allow(dead_code)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSector {
    sector: String,
    counts: Counts,
    threshold_mass: bool,
    markup: Vec<RawMarkup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarkup {
    from_year: i32,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGood {
    cn: String,
    sector: String,
    description: String,
    source: String,
    counts: Option<Counts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExcluded {
    cn: String,
    reason: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYearValue {
    year: i32,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    key: String,
    value: String,
    from_year: i32,
    to_year: i32,
    unit: String,
    source: String,
    status: Status,
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefault {
    cn: String,
    country: String,
    route: Option<String>,
    direct: Option<String>,
    indirect: Option<String>,
    total: String,
    source: String,
    status: Status,
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBenchmark {
    cn: String,
    route: Option<String>,
    column_a: Option<String>,
    column_b: Option<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEf {
    country: String,
    value: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    period: String,
    eur: String,
    source: String,
}

// ------------------------------------------------------------------------------ helpers

/// Digits of a CN code with spaces removed; `None` unless all digits.
pub fn cn_digits(text: &str) -> Option<String> {
    let d: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

/// Checks an 8-digit CN code of goods (spaces allowed: `7208 10 00`).
pub fn parse_cn(field: &str, text: &str) -> Result<String> {
    match cn_digits(text) {
        Some(d) if d.len() == 8 => Ok(d),
        _ => Err(CbamError::input(field, format!("'{text}' is not an 8-digit CN code (e.g. 72081000 or '7208 10 00')"))),
    }
}

fn is_prefix_code(cn: &str) -> bool {
    cn_digits(cn).is_some_and(|d| d == cn && d.len() >= 2 && d.len() <= 8 && d.len() % 2 == 0)
}

fn is_country(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
}

/// A certificate price period: `YYYY-Qn` or `YYYY-Www`.
pub fn is_period(p: &str) -> bool {
    let b = p.as_bytes();
    if b.len() < 7 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    match (b[5], &p[6..]) {
        (b'Q', q) => matches!(q, "1" | "2" | "3" | "4"),
        (b'W', w) => w.len() == 2 && w.parse::<u32>().is_ok_and(|n| (1..=53).contains(&n)),
        _ => false,
    }
}

impl Reference {
    /// The built-in `cbam-v1` data.
    pub fn builtin() -> Result<Reference> {
        Reference::from_json(CBAM_V1_JSON)
    }

    /// Parses and validates a reference file; every problem is listed in the error.
    pub fn from_json(text: &str) -> Result<Reference> {
        let raw: RawFile = serde_json::from_str(text).map_err(|e| CbamError::Data(format!("not a valid CBAM reference file: {e}")))?;
        let mut problems: Vec<String> = Vec::new();
        let mut p = |s: String| problems.push(s);
        if raw.version.trim().is_empty() {
            p("the file has no version".into());
        }
        let known_source = |s: &str| raw.sources.contains_key(s);
        let dec = |at: &str, what: &str, text: &str, p: &mut dyn FnMut(String)| -> Decimal {
            match num::parse(what, text) {
                Ok(v) if v.is_sign_negative() && !v.is_zero() => {
                    p(format!("{at}: {what} {v} is negative"));
                    Decimal::ZERO
                }
                Ok(v) => v,
                Err(_) => {
                    p(format!("{at}: {what} '{text}' is not a decimal written as a string"));
                    Decimal::ZERO
                }
            }
        };
        if !known_source(&raw.years.source) || !known_source(&raw.cbam_factor_source) {
            p("years.source and cbam_factor_source must be listed in sources".into());
        }
        if raw.years.first > raw.years.last {
            p(format!("years: first {} is after last {}", raw.years.first, raw.years.last));
        }

        // Sectors.
        let mut sectors = Vec::new();
        for (i, s) in raw.sectors.iter().enumerate() {
            let at = format!("sectors[{i}]");
            let Some(sector) = Sector::parse(&s.sector) else {
                p(format!("{at}: unknown sector '{}'", s.sector));
                continue;
            };
            let mut markup = Vec::new();
            for (j, m) in s.markup.iter().enumerate() {
                let v = dec(&format!("{at}.markup[{j}]"), "value", &m.value, &mut p);
                if v > Decimal::ONE {
                    p(format!("{at}.markup[{j}]: {v} is above 1"));
                }
                if markup.last().is_some_and(|(y, _)| *y >= m.from_year) {
                    p(format!("{at}.markup[{j}]: from_year {} is not after the previous entry", m.from_year));
                }
                markup.push((m.from_year, v));
            }
            if markup.first().is_none_or(|(y, _)| *y > raw.years.first) {
                p(format!("{at}: the mark-up must start at or before {}", raw.years.first));
            }
            sectors.push(SectorRules { sector, counts: s.counts, threshold_mass: s.threshold_mass, markup });
        }
        for s in Sector::ALL {
            match sectors.iter().filter(|r| r.sector == s).count() {
                1 => {}
                0 => p(format!("sectors: {} is missing", s.name())),
                _ => p(format!("sectors: {} is listed twice", s.name())),
            }
        }

        // Goods and exclusions.
        let mut goods: Vec<Good> = Vec::new();
        for (i, g) in raw.goods.iter().enumerate() {
            let at = format!("goods[{i}] ('{}')", g.cn);
            if !is_prefix_code(&g.cn) {
                p(format!("{at}: CN '{}' must be 2, 4, 6 or 8 digits", g.cn));
            }
            if !known_source(&g.source) {
                p(format!("{at}: source '{}' is not listed in sources", g.source));
            }
            if goods.iter().any(|o| o.cn == g.cn) {
                p(format!("{at}: listed twice"));
            }
            let Some(sector) = Sector::parse(&g.sector) else {
                p(format!("{at}: unknown sector '{}'", g.sector));
                continue;
            };
            let counts = g.counts.or_else(|| sectors.iter().find(|s| s.sector == sector).map(|s| s.counts)).unwrap_or(Counts::Direct);
            goods.push(Good { cn: g.cn.clone(), sector, counts, description: g.description.clone(), source: g.source.clone() });
        }
        let mut excluded = Vec::new();
        for (i, e) in raw.excluded.iter().enumerate() {
            let at = format!("excluded[{i}] ('{}')", e.cn);
            if !is_prefix_code(&e.cn) {
                p(format!("{at}: CN '{}' must be 2, 4, 6 or 8 digits", e.cn));
            }
            if !known_source(&e.source) {
                p(format!("{at}: source '{}' is not listed in sources", e.source));
            }
            if !goods.iter().any(|g| e.cn.starts_with(&g.cn)) {
                p(format!("{at}: excludes a code no scope entry includes"));
            }
            excluded.push(Excluded { cn: e.cn.clone(), reason: e.reason.clone() });
        }

        // CBAM factor: every year of the rules, in [0, 1], never rising.
        let mut cbam_factor = BTreeMap::new();
        for (i, f) in raw.cbam_factor.iter().enumerate() {
            let v = dec(&format!("cbam_factor[{i}]"), "value", &f.value, &mut p);
            if v > Decimal::ONE {
                p(format!("cbam_factor[{i}]: {v} is above 1"));
            }
            if cbam_factor.insert(f.year, v).is_some() {
                p(format!("cbam_factor[{i}]: year {} listed twice", f.year));
            }
        }
        for y in raw.years.first..=raw.years.last {
            if !cbam_factor.contains_key(&y) {
                p(format!("cbam_factor: no value for {y}"));
            }
        }
        let values: Vec<Decimal> = cbam_factor.values().copied().collect();
        if values.windows(2).any(|w| w[1] > w[0]) {
            p("cbam_factor: the factor must not rise from one year to the next".into());
        }

        // Parameters.
        let mut parameters: Vec<Parameter> = Vec::new();
        for (i, r) in raw.parameters.iter().enumerate() {
            let at = format!("parameters[{i}] ('{}')", r.key);
            let value = dec(&at, "value", &r.value, &mut p);
            if !known_source(&r.source) {
                p(format!("{at}: source '{}' is not listed in sources", r.source));
            }
            if r.from_year > r.to_year {
                p(format!("{at}: from_year is after to_year"));
            }
            if parameters.iter().any(|o| o.key == r.key && o.from_year <= r.to_year && r.from_year <= o.to_year) {
                p(format!("{at}: overlaps another entry for the same key"));
            }
            parameters.push(Parameter {
                key: r.key.clone(),
                value,
                from_year: r.from_year,
                to_year: r.to_year,
                unit: r.unit.clone(),
                source: r.source.clone(),
                status: r.status,
                note: r.note.clone(),
            });
        }
        for key in ["cscf", "threshold_mass_t", "holding_share"] {
            for y in raw.years.first..=raw.years.last {
                if !parameters.iter().any(|q| q.key == key && q.from_year <= y && y <= q.to_year) {
                    p(format!("parameters: no '{key}' for {y}"));
                }
            }
        }

        let in_scope = |cn: &str| goods.iter().any(|g| cn.starts_with(&g.cn)) && !excluded.iter().any(|e| cn.starts_with(&e.cn));

        // Default values.
        let mut default_values: Vec<DefaultValue> = Vec::new();
        for (i, d) in raw.default_values.iter().enumerate() {
            let at = format!("default_values[{i}] ('{}' {})", d.cn, d.country);
            if !is_prefix_code(&d.cn) || !in_scope(&d.cn) {
                p(format!("{at}: CN '{}' is not a CBAM good of the scope", d.cn));
            }
            if !(is_country(&d.country) || d.country == "OTHER" || d.country == "UNKNOWN") {
                p(format!("{at}: country must be an ISO code, OTHER or UNKNOWN"));
            }
            if !known_source(&d.source) {
                p(format!("{at}: source '{}' is not listed in sources", d.source));
            }
            let total = dec(&at, "total", &d.total, &mut p);
            let direct = d.direct.as_deref().map(|t| dec(&at, "direct", t, &mut p));
            let indirect = d.indirect.as_deref().map(|t| dec(&at, "indirect", t, &mut p));
            if let (Some(a), Some(b)) = (direct, indirect) {
                if a + b != total {
                    p(format!("{at}: direct {a} + indirect {b} is not the total {total}"));
                }
            }
            if default_values.iter().any(|o| o.cn == d.cn && o.country == d.country && o.route == d.route) {
                p(format!("{at}: listed twice"));
            }
            default_values.push(DefaultValue {
                cn: d.cn.clone(),
                country: d.country.clone(),
                route: d.route.clone(),
                direct,
                indirect,
                total,
                source: d.source.clone(),
                status: d.status,
                note: d.note.clone(),
            });
        }

        // Benchmarks: Column A (process) cannot exceed Column B (whole good incl. precursors).
        let mut benchmarks: Vec<Benchmark> = Vec::new();
        for (i, b) in raw.benchmarks.iter().enumerate() {
            let at = format!("benchmarks[{i}] ('{}' {})", b.cn, b.route.as_deref().unwrap_or("-"));
            if !is_prefix_code(&b.cn) || !in_scope(&b.cn) {
                p(format!("{at}: CN '{}' is not a CBAM good of the scope", b.cn));
            }
            if !known_source(&b.source) {
                p(format!("{at}: source '{}' is not listed in sources", b.source));
            }
            let a = b.column_a.as_deref().map(|t| dec(&at, "column_a", t, &mut p));
            let bb = b.column_b.as_deref().map(|t| dec(&at, "column_b", t, &mut p));
            if a.is_none() && bb.is_none() {
                p(format!("{at}: neither column A nor column B"));
            }
            if let (Some(a), Some(bb)) = (a, bb) {
                if a > bb {
                    p(format!("{at}: column A {a} is above column B {bb}"));
                }
            }
            if benchmarks.iter().any(|o| o.cn == b.cn && o.route == b.route) {
                p(format!("{at}: listed twice"));
            }
            benchmarks.push(Benchmark { cn: b.cn.clone(), route: b.route.clone(), column_a: a, column_b: bb, source: b.source.clone() });
        }

        let mut electricity_ef = BTreeMap::new();
        for (i, e) in raw.electricity_ef.iter().enumerate() {
            let at = format!("electricity_ef[{i}] ('{}')", e.country);
            if !known_source(&e.source) {
                p(format!("{at}: source '{}' is not listed in sources", e.source));
            }
            let v = dec(&at, "value", &e.value, &mut p);
            if electricity_ef.insert(e.country.clone(), v).is_some() {
                p(format!("{at}: listed twice"));
            }
        }
        if !electricity_ef.contains_key("OTHER") {
            p("electricity_ef: no OTHER entry (the fallback for countries not listed)".into());
        }

        let mut certificate_prices = BTreeMap::new();
        for (i, c) in raw.certificate_prices.iter().enumerate() {
            let at = format!("certificate_prices[{i}] ('{}')", c.period);
            if !is_period(&c.period) {
                p(format!("{at}: period must be YYYY-Qn (2026) or YYYY-Www (2027 on)"));
            }
            if !known_source(&c.source) {
                p(format!("{at}: source '{}' is not listed in sources", c.source));
            }
            let v = dec(&at, "eur", &c.eur, &mut p);
            if v.is_zero() {
                p(format!("{at}: price must be above zero"));
            }
            if certificate_prices.insert(c.period.clone(), v).is_some() {
                p(format!("{at}: listed twice"));
            }
        }

        let eu_origins: BTreeSet<String> = raw.eu_origins.iter().cloned().collect();
        let exempt_origins: BTreeSet<String> = raw.exempt_origins.iter().cloned().collect();
        for c in eu_origins.iter().chain(&exempt_origins) {
            if !is_country(c) {
                p(format!("origins: '{c}' is not a two-letter code"));
            }
        }
        if eu_origins.intersection(&exempt_origins).next().is_some() {
            p("origins: a country is both EU and exempt".into());
        }

        if !problems.is_empty() {
            return Err(CbamError::Data(problems.join("; ")));
        }
        Ok(Reference {
            version: raw.version,
            sources: raw.sources,
            first_year: raw.years.first,
            last_year: raw.years.last,
            sectors,
            goods,
            excluded,
            cbam_factor,
            parameters,
            default_values,
            benchmarks,
            electricity_ef,
            certificate_prices,
            eu_origins,
            exempt_origins,
        })
    }

    // ------------------------------------------------------------------------ lookups

    /// The scope of an 8-digit CN code: the longest scope entry that is a prefix, unless a
    /// longer exclusion applies.
    pub fn scope(&self, field: &str, cn_text: &str) -> Result<Scope<'_>> {
        let cn = parse_cn(field, cn_text)?;
        let good = self.goods.iter().filter(|g| cn.starts_with(&g.cn)).max_by_key(|g| g.cn.len());
        let Some(good) = good else {
            return Err(CbamError::input(
                field,
                format!("CN {cn} is not a CBAM good (not in Annex I of Regulation 2023/956, data {})", self.version),
            ));
        };
        if let Some(e) = self.excluded.iter().filter(|e| cn.starts_with(&e.cn) && e.cn.len() > good.cn.len()).max_by_key(|e| e.cn.len()) {
            return Err(CbamError::input(field, format!("CN {cn} is not a CBAM good: {}", e.reason)));
        }
        Ok(Scope { cn, good })
    }

    pub fn sector_rules(&self, sector: Sector) -> &SectorRules {
        self.sectors.iter().find(|s| s.sector == sector).expect("validated: every sector present")
    }

    /// Checks a declaration year against the years the rules cover.
    pub fn check_year(&self, field: &str, year: i32) -> Result<i32> {
        if year < self.first_year || year > self.last_year {
            let why = if year < self.first_year {
                format!("{year} is before the definitive period: certificates are due from {} on", self.first_year)
            } else {
                format!("{year} is after {}, the last year the reference data {} covers", self.last_year, self.version)
            };
            return Err(CbamError::input(field, why));
        }
        Ok(year)
    }

    /// The CBAM factor (share of free allocation retained) for a declaration year.
    pub fn cbam_factor(&self, field: &str, year: i32) -> Result<Decimal> {
        self.check_year(field, year)?;
        Ok(self.cbam_factor[&year])
    }

    /// The mark-up on default values for a sector in a year (0.10 = +10 %).
    pub fn markup(&self, sector: Sector, year: i32) -> Decimal {
        self.sector_rules(sector).markup.iter().rev().find(|(from, _)| *from <= year).map_or(Decimal::ZERO, |(_, v)| *v)
    }

    pub fn parameter(&self, key: &str, year: i32) -> Result<&Parameter> {
        self.parameters
            .iter()
            .find(|p| p.key == key && p.from_year <= year && year <= p.to_year)
            .ok_or_else(|| CbamError::input(key, format!("no value for {year} in the reference data {}", self.version)))
    }

    pub fn origin(&self, country: &str) -> Origin {
        if self.eu_origins.contains(country) {
            Origin::Eu
        } else if self.exempt_origins.contains(country) {
            Origin::Exempt
        } else {
            Origin::Third
        }
    }

    /// The default value for a good from a country: the longest CN prefix listed for that
    /// country, else for `OTHER` (other countries and territories, cbam.md §3.2 Fallback).
    pub fn default_value(&self, cn: &str, country: &str) -> Option<&DefaultValue> {
        let find = |c: &str| self.default_values.iter().filter(|d| d.country == c && cn.starts_with(&d.cn)).max_by_key(|d| d.cn.len());
        find(country).or_else(|| if country == "UNKNOWN" { None } else { find("OTHER") })
    }

    /// The benchmark of a good on a route: the longest CN prefix with that route, or with no
    /// route where the benchmark has a single value.
    pub fn benchmark(&self, field: &str, cn: &str, route: Option<&str>) -> Result<&Benchmark> {
        let matching: Vec<&Benchmark> = self.benchmarks.iter().filter(|b| cn.starts_with(&b.cn)).collect();
        let Some(len) = matching.iter().map(|b| b.cn.len()).max() else {
            return Err(CbamError::input(
                field,
                format!("no CBAM benchmark for CN {cn} in the reference data {} (not found in the sources, cbam.md §8 item 7): give it as a parameter", self.version),
            ));
        };
        let best: Vec<&Benchmark> = matching.into_iter().filter(|b| b.cn.len() == len).collect();
        if let Some(b) = best.iter().find(|b| b.route.is_none()) {
            return Ok(b);
        }
        let routes: Vec<&str> = best.iter().filter_map(|b| b.route.as_deref()).collect();
        match route {
            Some(r) => best.iter().find(|b| b.route.as_deref() == Some(r)).copied().ok_or_else(|| {
                CbamError::input(field, format!("route '{r}' has no benchmark for CN {cn}; the data has {}", routes.join(", ")))
            }),
            None => Err(CbamError::input(
                field,
                format!("CN {cn} has a benchmark per production route ({}): give the route", routes.join(", ")),
            )),
        }
    }

    /// Default grid emission factor of a country (t CO2/MWh), else `OTHER`.
    pub fn electricity_ef(&self, country: &str) -> Decimal {
        self.electricity_ef.get(country).or_else(|| self.electricity_ef.get("OTHER")).copied().expect("validated: OTHER present")
    }

    pub fn certificate_price(&self, period: &str) -> Option<Decimal> {
        self.certificate_prices.get(period).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Reference {
        Reference::builtin().unwrap()
    }

    #[test]
    fn builtin_loads() {
        let r = r();
        assert_eq!(r.version, "cbam-v1");
        assert_eq!(r.cbam_factor[&2026].to_string(), "0.975");
        assert_eq!(r.cbam_factor[&2034], Decimal::ZERO);
        assert_eq!(r.certificate_price("2026-Q1").unwrap().to_string(), "75.36");
        assert!(r.certificate_price("2026-Q2").is_none());
    }

    #[test]
    fn scope_by_cn_code() {
        let r = r();
        let hrc = r.scope("cn", "7208 10 00").unwrap();
        assert_eq!(hrc.sector(), Sector::IronSteel);
        assert_eq!(hrc.counts(), Counts::Direct);
        // Sinter is iron and steel but counts indirect emissions too.
        assert_eq!(r.scope("cn", "26011200").unwrap().counts(), Counts::DirectAndIndirect);
        assert_eq!(r.scope("cn", "25231000").unwrap().counts(), Counts::DirectAndIndirect);
        assert_eq!(r.scope("cn", "31021000").unwrap().sector(), Sector::Fertilisers);
        // Scrap and listed ferro-alloys are out; ferro-manganese (7202 11) is in.
        assert!(r.scope("cn", "72041000").unwrap_err().to_string().contains("scrap"));
        assert!(r.scope("cn", "72022100").is_err());
        assert!(r.scope("cn", "72021120").is_ok());
        assert!(r.scope("cn", "31056000").unwrap_err().to_string().contains("excepted"));
        let e = r.scope("lines[0].cn", "84713000").unwrap_err();
        assert_eq!(e.field(), Some("lines[0].cn"));
        assert!(e.to_string().contains("not a CBAM good"), "{e}");
        assert!(r.scope("cn", "7208").unwrap_err().to_string().contains("8-digit"));
    }

    #[test]
    fn markups_by_sector_and_year() {
        let r = r();
        let m = |s, y| r.markup(s, y).to_string();
        assert_eq!(m(Sector::IronSteel, 2026), "0.10");
        assert_eq!(m(Sector::IronSteel, 2027), "0.20");
        assert_eq!(m(Sector::IronSteel, 2028), "0.30");
        assert_eq!(m(Sector::Aluminium, 2033), "0.30");
        assert_eq!(m(Sector::Fertilisers, 2026), "0.01");
        assert_eq!(m(Sector::Fertilisers, 2030), "0.01");
        assert_eq!(m(Sector::Hydrogen, 2027), "0.20");
        assert_eq!(m(Sector::Electricity, 2028), "0");
    }

    #[test]
    fn defaults_fall_back_to_other_countries() {
        let r = r();
        assert_eq!(r.default_value("72081000", "CN").unwrap().total.to_string(), "3.19");
        assert_eq!(r.default_value("72081000", "VN").unwrap().country, "OTHER");
        assert!(r.default_value("25231000", "CN").is_none());
    }

    #[test]
    fn benchmarks_by_route() {
        let r = r();
        let b = r.benchmark("b", "72081000", Some("C")).unwrap();
        assert_eq!((b.column_a.unwrap().to_string(), b.column_b.unwrap().to_string()), ("0.044".into(), "1.370".into()));
        assert!(r.benchmark("b", "72081000", None).unwrap_err().to_string().contains("give the route"));
        assert_eq!(r.benchmark("b", "28041000", None).unwrap().column_b.unwrap().to_string(), "5.089");
        assert!(r.benchmark("b", "25231000", None).unwrap_err().to_string().contains("no CBAM benchmark"));
    }

    #[test]
    fn years_outside_the_rules_are_refused() {
        let r = r();
        assert!(r.check_year("year", 2025).unwrap_err().to_string().contains("before the definitive period"));
        assert!(r.check_year("year", 2035).unwrap_err().to_string().contains("after 2034"));
        assert!(r.check_year("year", 2030).is_ok());
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut v: serde_json::Value = serde_json::from_str(CBAM_V1_JSON).unwrap();
        v["benchmarks"][0]["column_a"] = "9".into();
        v["default_values"][0]["source"] = "NOPE".into();
        v["cbam_factor"][1]["value"] = "0.99".into();
        v["goods"][0]["sector"] = "glass".into();
        let err = Reference::from_json(&v.to_string()).unwrap_err().to_string();
        for needle in ["column A 9 is above column B", "source 'NOPE' is not listed", "must not rise", "unknown sector 'glass'"] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
        let mut v: serde_json::Value = serde_json::from_str(CBAM_V1_JSON).unwrap();
        v["default_values"][0]["total"] = serde_json::json!(3.19);
        assert!(Reference::from_json(&v.to_string()).is_err(), "a binary float is refused");
    }
}
