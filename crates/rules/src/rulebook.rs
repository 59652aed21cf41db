//! Rulebooks as data: one TOML file per market and period, carrying the parameters the engines
//! take ([`PowerRules`], [`IndustryRules`], [`PilotRules`], [`ComplianceRules`]) together with
//! coverage, cap, trading, auction and dual-track rules, and the list of values that are not
//! certain.
//!
//! A rulebook is read in three passes, each reporting everything it finds:
//! 1. TOML syntax (every syntax error, with the enclosing table and key);
//! 2. types, through serde with `deny_unknown_fields` everywhere (the error's span is mapped back
//!    to the dotted key path of the document);
//! 3. semantic checks across fields (years inside the period, shares within [0, 1], penalty
//!    multiples inside their range, offset groups, `[uncertain]` paths that exist, ...).
//!
//! `[allocation]` is tagged by `engine`, but it is not read as a serde internally tagged enum:
//! that would buffer the table and lose both the spans (errors would only name `allocation`) and
//! the integer year keys of the power benchmarks (buffered keys stay strings). It is read from the
//! parsed document instead, with the tag removed, straight into the engine's rules type.
//!
//! Key paths are dotted; array elements are written `name[index]`, so the first offset group's
//! limit is `compliance.offsets[0].limit_share`. The same paths name keys in errors, in
//! `[uncertain]` and in [`Rulebook::diff`].

use crate::allocation::industry::{IndustryMethod, IndustryRules};
use crate::allocation::pilot::{CapSplit, PilotMethod, PilotRules};
use crate::allocation::power::{LoadFactor, PowerRules, PreAllocation};
use crate::compliance::{ComplianceRules, Penalty};
use crate::dec;
use ets_core::Date;
use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// One market's rules for one period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rulebook {
    pub rulebook: Meta,
    pub coverage: Coverage,
    pub allocation: Allocation,
    pub cap: Cap,
    pub compliance: ComplianceRules,
    pub trading: Trading,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auction: Option<Auction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dual_track: Option<DualTrack>,
    /// Key path → why the value is not certain.
    pub uncertain: BTreeMap<String, Uncertain>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Final,
    /// From a consultation draft: values may change in the final text.
    Draft,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub id: String,
    /// `CN` for the national market, `BJ`, `TJ`, `SH`, `CQ`, `HB`, `GD`, `SZ`, `FJ` for the pilots,
    /// or another upper-case identifier (`EU`, `WCI`).
    pub market: String,
    pub title: String,
    pub first_year: i32,
    pub last_year: i32,
    pub version: u32,
    pub status: Status,
    /// Source keys of the domain files (`ALLOC2324`, `S64`, ...).
    pub sources: Vec<String>,
}

/// Emissions scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Direct,
    /// Direct plus indirect emissions of purchased electricity and heat.
    DirectAndIndirect,
}

/// Global-warming potentials used to add up gases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GwpSet {
    Sar,
    Ar4,
    Ar5,
    Ar6,
    /// As the market's accounting guideline for the sector says (national aluminium).
    SectorGuideline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearSpan {
    pub from: i32,
    pub to: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorThreshold {
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub threshold_t_co2e: Option<Decimal>,
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub threshold_tce: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// Annual emissions (tCO2e) at or above which an entity is covered.
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub threshold_t_co2e: Option<Decimal>,
    /// What the emissions threshold is measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_on: Option<Scope>,
    /// Annual energy use (tonnes of standard coal equivalent) at or above which an entity is covered.
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub threshold_tce: Option<Decimal>,
    /// The threshold is met if any year of this span meets it (national 2019–20: 2013–2018);
    /// absent: each year is tested on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_any_year_in: Option<YearSpan>,
    /// Sectors with their own thresholds (Shanghai).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sector_thresholds: BTreeMap<String, SectorThreshold>,
    pub sectors: Vec<String>,
    pub gases: Vec<String>,
    /// Needed when gases other than CO2 are covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gwp: Option<GwpSet>,
    pub scope: Scope,
}

/// The allocation engine and its rules, tagged by `engine` in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "engine", rename_all = "snake_case")]
pub enum Allocation {
    Power(PowerRules),
    Industry(IndustryRules),
    /// Pilots, and EU-like or WCI-like benchmark allocation.
    Pilot(PilotRules),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapKind {
    /// A fixed number of allowances.
    Absolute,
    /// The total follows output (intensity benchmarks): no absolute cap.
    OutputBased,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub kind: CapKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_t: Option<u64>,
    #[serde(default)]
    pub split: CapSplit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participants {
    /// Covered (compliance) entities.
    pub entities: bool,
    /// Other legal persons: companies, financial institutions.
    pub institutions: bool,
    pub individuals: bool,
    #[serde(default)]
    pub foreign_institutions: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundEnforcement {
    /// Orders outside the bounds are refused.
    HardLimit,
    /// The authority intervenes (auction at the ceiling, buy-back at the floor); trades may
    /// still happen outside the bounds.
    Intervention,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceBounds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling_minor: Option<i64>,
    pub enforcement: BoundEnforcement,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosingPrice {
    /// Volume-weighted average of the day's listed trades; the previous close if there were
    /// none; block trades excluded (SEEE).
    ListedVwap,
    LastTrade,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trading {
    /// ISO 4217 code of the prices; amounts are in its minor unit (fen for CNY).
    pub currency: String,
    /// Listed orders: price band as a share of the previous close (±).
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub listed_band: Option<Decimal>,
    /// Largest listed order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_max_order_t: Option<u64>,
    /// Block orders: price band as a share of the previous close (±); absent: no block mode.
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub block_band: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_min_t: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_t: Option<u64>,
    pub participants: Participants,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_bounds: Option<PriceBounds>,
    pub closing_price: ClosingPrice,
    /// An entity may sell at most this share of its free allocation (Chongqing 2014: 50%).
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub max_sale_share_of_free_allocation: Option<Decimal>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuctionFormat {
    /// Sealed bids, every winner pays the clearing price.
    UniformPrice,
    /// Winners pay their own bids.
    PayAsBid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bidder {
    CoveredEntities,
    /// Covered entities short of allowances for their obligation only (Hubei 2020).
    EntitiesWithShortfall,
    Institutions,
    Individuals,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReservePrice {
    /// No reserve price (the EU cancels instead when the price is far below the secondary market).
    None,
    Fixed {
        price_minor: i64,
    },
    /// `multiple` × the volume-weighted average price of the market's listed trades over the
    /// `months` months before the auction (Shanghai: 1.2 × 6 months).
    VwapMultiple {
        #[serde(deserialize_with = "dec::exact")]
        multiple: Decimal,
        months: u32,
    },
    /// `base_minor` in `base_year`, then the previous year's price × (1 + rate + inflation if
    /// `plus_inflation`) each year (WCI).
    Escalating {
        base_minor: i64,
        base_year: i32,
        #[serde(deserialize_with = "dec::exact")]
        rate: Decimal,
        plus_inflation: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AuctionFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve_price: Option<ReservePrice>,
    /// Who may bid.
    pub bidders: Vec<Bidder>,
    /// Most one covered entity may buy, as a share of the volume offered.
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub bidder_limit_share: Option<Decimal>,
    /// The same for bidders that are not covered entities, where it differs.
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub other_bidder_limit_share: Option<Decimal>,
    /// Bids are whole multiples of this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_t: Option<u64>,
    /// The auction is cancelled when bids do not cover the volume offered.
    #[serde(default)]
    pub cancel_if_undersubscribed: bool,
}

/// What happens to a pilot's allowances when one of its entities is covered by the national
/// market for the same gases and sector (china-ets.md §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "treatment", rename_all = "snake_case", deny_unknown_fields)]
pub enum DualTrack {
    /// The pilot takes the allowances back (Tianjin).
    Withdraw,
    /// The entity keeps its surplus in the pilot for `years` years (Shanghai 2026–30 plan: 3).
    CarryOver { years: u32 },
    /// Converted into national allowances at `rate` national per pilot allowance.
    Convert {
        #[serde(deserialize_with = "dec::exact")]
        rate: Decimal,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uncertain {
    /// The source key the value comes from, or was looked for in; `ets` for a default of ets's own.
    pub source: String,
    pub why: String,
}

/// One problem in a rulebook file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulebookError {
    pub file: String,
    /// Dotted key path (`allocation.benchmarks.2023.cat_i`); empty for the whole file.
    pub key: String,
    pub problem: String,
    /// 1-based line of the key in the file, where the file has it.
    pub line: Option<usize>,
}

impl fmt::Display for RulebookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() { "(file)" } else { &self.key };
        write!(f, "{}: {key}: {}", self.file, self.problem)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RulebookError {}

/// Every problem found in a rulebook file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulebookErrors(pub Vec<RulebookError>);

impl fmt::Display for RulebookErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RulebookErrors {}

/// The file without `[allocation]`, which is read on its own (see the module documentation).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulebookFile {
    rulebook: Meta,
    coverage: Coverage,
    /// Required and known here, read by `read_allocation`.
    #[serde(rename = "allocation")]
    _allocation: IgnoredAny,
    cap: Cap,
    compliance: ComplianceRules,
    trading: Trading,
    #[serde(default)]
    auction: Option<Auction>,
    #[serde(default)]
    dual_track: Option<DualTrack>,
    #[serde(default)]
    uncertain: BTreeMap<String, Uncertain>,
}

/// The rulebook files shipped with ets: (file name, text).
pub fn builtin() -> &'static [(&'static str, &'static str)] {
    BUILTIN
}

const BUILTIN: &[(&str, &str)] = &[
    ("cn-power-2019-2020.toml", include_str!("../rulebooks/cn-power-2019-2020.toml")),
    ("cn-power-2021-2022.toml", include_str!("../rulebooks/cn-power-2021-2022.toml")),
    ("cn-power-2023-2024.toml", include_str!("../rulebooks/cn-power-2023-2024.toml")),
    ("cn-power-2025-2026-draft.toml", include_str!("../rulebooks/cn-power-2025-2026-draft.toml")),
    ("cn-industry-2024.toml", include_str!("../rulebooks/cn-industry-2024.toml")),
    ("cn-industry-2025-2026-draft.toml", include_str!("../rulebooks/cn-industry-2025-2026-draft.toml")),
    ("bj-2024.toml", include_str!("../rulebooks/bj-2024.toml")),
    ("tj-2025.toml", include_str!("../rulebooks/tj-2025.toml")),
    ("sh-2024.toml", include_str!("../rulebooks/sh-2024.toml")),
    ("cq-2021.toml", include_str!("../rulebooks/cq-2021.toml")),
    ("hb-2024.toml", include_str!("../rulebooks/hb-2024.toml")),
    ("gd-2024.toml", include_str!("../rulebooks/gd-2024.toml")),
    ("sz-2022.toml", include_str!("../rulebooks/sz-2022.toml")),
    ("fj-2017.toml", include_str!("../rulebooks/fj-2017.toml")),
    ("eu-ets-like.toml", include_str!("../rulebooks/eu-ets-like.toml")),
    ("wci-like.toml", include_str!("../rulebooks/wci-like.toml")),
];

const ABSENT: &str = "(absent)";

impl Rulebook {
    /// Reads and checks a rulebook. `file_name` only names the file in errors.
    pub fn from_toml(file_name: &str, text: &str) -> Result<Rulebook, RulebookErrors> {
        let (root, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            let errors = syntax
                .iter()
                .map(|e| {
                    let at = e.span().map_or(0, |s| s.start);
                    RulebookError {
                        file: file_name.to_string(),
                        key: key_at_line(text, at),
                        problem: format!("TOML syntax: {}", e.message()),
                        line: Some(line_of(text, at)),
                    }
                })
                .collect();
            return Err(RulebookErrors(errors));
        }
        let index = Index::new(text, root.get_ref());
        let mut errors = Vec::new();
        let rest = match toml::from_str::<RulebookFile>(text) {
            Ok(rest) => Some(rest),
            Err(e) => {
                errors.push(index.type_error(file_name, &e));
                None
            }
        };
        let allocation = match read_allocation(root.get_ref()) {
            Ok(a) => Some(a),
            Err(AllocationError::Missing) => None,
            Err(AllocationError::Key(key, problem)) => {
                let line = index.line(&key).or_else(|| index.line("allocation"));
                errors.push(RulebookError { file: file_name.to_string(), line, key, problem });
                None
            }
            Err(AllocationError::Toml(e)) => {
                errors.push(index.type_error(file_name, &e));
                None
            }
        };
        let (Some(rest), Some(allocation)) = (rest, allocation) else {
            return Err(RulebookErrors(errors));
        };
        let rulebook = Rulebook {
            rulebook: rest.rulebook,
            coverage: rest.coverage,
            allocation,
            cap: rest.cap,
            compliance: rest.compliance,
            trading: rest.trading,
            auction: rest.auction,
            dual_track: rest.dual_track,
            uncertain: rest.uncertain,
        };
        let mut check = Check { file: file_name, index: &index, errors };
        rulebook.validate(&mut check);
        if check.errors.is_empty() {
            Ok(rulebook)
        } else {
            Err(RulebookErrors(check.errors))
        }
    }

    /// Every value that differs between the two rulebooks, as (key path, old, new), in key order.
    /// A value one side lacks is `(absent)`; decimals that are equal in value do not differ.
    pub fn diff(&self, other: &Rulebook) -> Vec<(String, String, String)> {
        let old = self.flatten();
        let new = other.flatten();
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let mut out = Vec::new();
        for key in keys {
            let a = old.get(key).map_or(ABSENT, String::as_str);
            let b = new.get(key).map_or(ABSENT, String::as_str);
            if !same_value(a, b) {
                out.push((key.clone(), a.to_string(), b.to_string()));
            }
        }
        out
    }

    fn flatten(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        // Through the text: `toml::Value::try_from` refuses the integer year keys of the power
        // benchmarks, the text serializer writes them as keys. A rulebook holds only strings,
        // numbers, bools, tables and arrays, so neither step can fail.
        let text = toml::to_string(self).expect("a rulebook serializes to TOML");
        let value: toml::Value = toml::from_str(&text).expect("serialized TOML parses");
        flatten_value("", &value, &mut out);
        out
    }

    fn validate(&self, c: &mut Check) {
        self.validate_meta(c);
        self.validate_coverage(c);
        self.validate_allocation(c);
        self.validate_cap(c);
        self.validate_compliance(c);
        self.validate_trading(c);
        self.validate_auction(c);
        if let Some(DualTrack::CarryOver { years: 0 }) = self.dual_track {
            c.push("dual_track.years", "must be at least 1");
        }
        if let Some(DualTrack::Convert { rate }) = self.dual_track {
            c.positive("dual_track.rate", rate);
        }
        self.validate_uncertain(c);
    }

    fn years(&self) -> std::ops::RangeInclusive<i32> {
        self.rulebook.first_year..=self.rulebook.last_year
    }

    fn validate_meta(&self, c: &mut Check) {
        let m = &self.rulebook;
        if m.id.is_empty() || !m.id.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
            c.push("rulebook.id", format!("'{}' must be lower-case letters, digits and '-'", m.id));
        }
        if !is_market_code(&m.market) {
            c.push(
                "rulebook.market",
                format!(
                    "'{}' is not a market code: 2 to 8 upper-case letters or digits, starting with a letter (CN, BJ, EU, WCI)",
                    m.market
                ),
            );
        }
        if m.title.trim().is_empty() {
            c.push("rulebook.title", "must not be empty");
        }
        if m.first_year > m.last_year {
            c.push("rulebook.first_year", format!("the period starts in {} after it ends in {}", m.first_year, m.last_year));
        }
        if m.version == 0 {
            c.push("rulebook.version", "versions start at 1");
        }
        if m.sources.is_empty() {
            c.push("rulebook.sources", "name at least one source key");
        }
        let mut seen = BTreeSet::new();
        for s in &m.sources {
            if !seen.insert(s) {
                c.push("rulebook.sources", format!("source '{s}' is listed twice"));
            }
        }
    }

    fn validate_coverage(&self, c: &mut Check) {
        let cov = &self.coverage;
        if let Some(t) = cov.threshold_t_co2e {
            c.positive("coverage.threshold_t_co2e", t);
            if cov.measured_on.is_none() {
                c.push("coverage.measured_on", "an emissions threshold needs what it is measured on (direct or direct_and_indirect)");
            }
        }
        if let Some(t) = cov.threshold_tce {
            c.positive("coverage.threshold_tce", t);
        }
        if let Some(span) = cov.threshold_any_year_in {
            if span.from > span.to {
                c.push("coverage.threshold_any_year_in", format!("{} is after {}", span.from, span.to));
            }
        }
        for (sector, t) in &cov.sector_thresholds {
            let key = format!("coverage.sector_thresholds.{}", key_segment(sector));
            if t.threshold_t_co2e.is_none() && t.threshold_tce.is_none() {
                c.push(&key, "give threshold_t_co2e, threshold_tce or both");
            }
            for (name, v) in [("threshold_t_co2e", t.threshold_t_co2e), ("threshold_tce", t.threshold_tce)] {
                if let Some(v) = v {
                    c.positive(&format!("{key}.{name}"), v);
                }
            }
        }
        if cov.sectors.is_empty() {
            c.push("coverage.sectors", "name at least one sector");
        }
        if cov.gases.is_empty() {
            c.push("coverage.gases", "name at least one gas");
        }
        if cov.gwp.is_none() && cov.gases.iter().any(|g| g != "CO2") {
            c.push("coverage.gwp", "gases other than CO2 are covered: name the GWP set that adds them up");
        }
    }

    fn validate_allocation(&self, c: &mut Check) {
        match &self.allocation {
            Allocation::Power(p) => self.validate_power(c, p),
            Allocation::Industry(i) => {
                c.share_opt("allocation.pre_allocation_share", i.pre_allocation_share);
                if let IndustryMethod::BalanceValue { slope, band, bound, balance_value_dp, small_unit_threshold_t } = &i.method {
                    c.positive("allocation.method.slope", *slope);
                    c.share("allocation.method.slope", *slope);
                    c.positive("allocation.method.band", *band);
                    if *band >= Decimal::ONE {
                        c.push("allocation.method.band", format!("{band} must be below 1"));
                    }
                    c.share("allocation.method.bound", *bound);
                    c.places("allocation.method.balance_value_dp", *balance_value_dp);
                    c.non_negative("allocation.method.small_unit_threshold_t", *small_unit_threshold_t);
                }
            }
            Allocation::Pilot(p) => {
                if p.methods.is_empty() {
                    c.push("allocation.methods", "name a method for at least one sector (or `default`)");
                }
                for (sector, m) in &p.methods {
                    if let PilotMethod::Grandfathering { control_factor } | PilotMethod::HistoricalIntensity { control_factor } = m {
                        c.positive(&format!("allocation.methods.{}.control_factor", key_segment(sector)), *control_factor);
                    }
                }
                for (product, b) in &p.benchmarks {
                    c.positive(&format!("allocation.benchmarks.{}", key_segment(product)), b.0);
                }
                c.share_opt("allocation.first_batch_share", p.first_batch_share);
            }
        }
    }

    fn validate_power(&self, c: &mut Check, p: &PowerRules) {
        for (year, b) in &p.benchmarks {
            let key = format!("allocation.benchmarks.{year}");
            if !self.years().contains(year) {
                c.push(
                    &key,
                    format!("benchmarks for {year} lie outside the period {}–{}", self.rulebook.first_year, self.rulebook.last_year),
                );
            }
            for (name, v) in [
                ("cat_i", b.cat_i),
                ("cat_ii", b.cat_ii),
                ("cat_iii", b.cat_iii),
                ("cat_iv", b.cat_iv),
                ("heat_coal", b.heat_coal),
                ("heat_gas", b.heat_gas),
            ] {
                c.positive(&format!("{key}.{name}"), v);
            }
        }
        for year in self.years() {
            if !p.benchmarks.contains_key(&year) {
                c.push("allocation.benchmarks", format!("no benchmarks for {year}, a year of the period"));
            }
        }
        match &p.load_factor {
            LoadFactor::Exponential { threshold, base, .. } => {
                c.share("allocation.load_factor.threshold", *threshold);
                c.positive("allocation.load_factor.base", *base);
            }
            LoadFactor::Draft2526 { threshold_percent } => {
                if *threshold_percent < Decimal::ZERO || *threshold_percent > Decimal::ONE_HUNDRED {
                    c.push("allocation.load_factor.threshold_percent", format!("{threshold_percent} must lie within [0, 100]"));
                }
            }
            LoadFactor::None | LoadFactor::Piecewise2019 => {}
        }
        if let Some(dp) = p.load_factor_dp {
            c.places("allocation.load_factor_dp", dp);
        }
        if let Some(cool) = &p.cooling {
            c.positive("allocation.cooling.air", cool.air);
            c.positive("allocation.cooling.water", cool.water);
        }
        c.share_opt("allocation.heat_factor_coal", p.heat_factor_coal);
        c.share_opt("allocation.heat_factor_gas", p.heat_factor_gas);
        c.share_opt("allocation.gap_cap", p.gap_cap);
        match &p.pre_allocation {
            PreAllocation::PreviousYearVerified { share } | PreAllocation::BaseYearOutput { share } => {
                c.share("allocation.pre_allocation.share", *share);
            }
            PreAllocation::None => {}
        }
    }

    fn validate_cap(&self, c: &mut Check) {
        if self.cap.cap_t == Some(0) {
            c.push("cap.cap_t", "a cap of 0 t: leave cap_t out if the cap is not known");
        }
        let s = &self.cap.split;
        let mut total = Decimal::ZERO;
        for (name, v) in [
            ("auction_share", s.auction_share),
            ("new_entrant_reserve_share", s.new_entrant_reserve_share),
            ("price_stability_reserve_share", s.price_stability_reserve_share),
            ("government_reserve_share", s.government_reserve_share),
        ] {
            if let Some(v) = v {
                c.share(&format!("cap.split.{name}"), v);
                total += v;
            }
        }
        if total > Decimal::ONE {
            c.push("cap.split", format!("the set-asides add up to {}% of the cap, more than 100%", total * Decimal::ONE_HUNDRED));
        }
    }

    fn validate_compliance(&self, c: &mut Check) {
        let r = &self.compliance;
        for year in self.years() {
            if let Err(e) = Date::from_ymd(year + 1, r.deadline_month, r.deadline_day) {
                c.push("compliance.deadline_day", format!("the deadline for {year} is not a date: {e}"));
                break;
            }
        }
        let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, g) in r.offsets.iter().enumerate() {
            let key = format!("compliance.offsets[{i}]");
            if g.standards.is_empty() {
                c.push(&format!("{key}.standards"), "an offset group needs at least one standard");
            }
            for s in &g.standards {
                if let Some(first) = group_of.insert(s, i) {
                    if first != i {
                        c.push(&format!("{key}.standards"), format!("standard '{s}' is already in compliance.offsets[{first}]"));
                    }
                }
            }
            c.share(&format!("{key}.limit_share"), g.limit_share);
            c.share_opt(&format!("{key}.min_local_share"), g.min_local_share);
            c.share_opt(&format!("{key}.non_local_limit_share"), g.non_local_limit_share);
            if let Some(rate) = g.rate {
                if rate <= Decimal::ZERO || rate > Decimal::ONE {
                    c.push(&format!("{key}.rate"), format!("{rate} must be in (0, 1]: tonnes one credit counts for"));
                }
            }
            if g.non_local_limit_share.is_some_and(|n| n > g.limit_share) {
                c.push(&format!("{key}.non_local_limit_share"), "exceeds the group's limit_share");
            }
            if (g.local_only || g.min_local_share.is_some() || g.non_local_limit_share.is_some()) && g.local_provinces.is_empty() {
                c.push(&format!("{key}.local_provinces"), "a locality rule needs the provinces that are local");
            }
        }
        c.share_opt("compliance.total_offset_limit_share", r.total_offset_limit_share);
        if r.vintages.cut_before_vintage.is_some() != r.vintages.cut_from_year.is_some() {
            c.push("compliance.vintages", "cut_before_vintage and cut_from_year go together");
        }
        if let Some(co) = &r.carry_over {
            c.non_negative("compliance.carry_over.base_t", co.base_t);
            c.non_negative("compliance.carry_over.rate", co.rate);
            if co.net_sales_from > co.net_sales_to {
                c.push("compliance.carry_over.net_sales_from", format!("{} is after {}", co.net_sales_from, co.net_sales_to));
            }
            if co.vintages.is_empty() {
                c.push("compliance.carry_over.vintages", "name the vintages that may be carried over");
            }
            if co.vintages.iter().any(|v| *v >= co.into_vintage) {
                c.push("compliance.carry_over.vintages", format!("vintages carried over must be older than {}", co.into_vintage));
            }
        }
        match &r.penalty {
            Penalty::PriceMultiple { min_multiple, max_multiple, applied_multiple, cap_fen, deduct_multiple, .. } => {
                c.non_negative("compliance.penalty.min_multiple", *min_multiple);
                if min_multiple > max_multiple {
                    c.push("compliance.penalty.max_multiple", format!("{max_multiple} is below the minimum {min_multiple}"));
                }
                if applied_multiple < min_multiple || applied_multiple > max_multiple {
                    c.push(
                        "compliance.penalty.applied_multiple",
                        format!("{applied_multiple} lies outside the rule's range [{min_multiple}, {max_multiple}]"),
                    );
                }
                if cap_fen.is_some_and(|cap| cap <= 0) {
                    c.push("compliance.penalty.cap_fen", "a cap on the fine must be positive");
                }
                c.non_negative("compliance.penalty.deduct_multiple", *deduct_multiple);
            }
            Penalty::FixedPerTonne { amount_minor, currency, .. } => {
                if *amount_minor <= 0 {
                    c.push("compliance.penalty.amount_minor", "must be positive");
                }
                if !is_currency(currency) {
                    c.push("compliance.penalty.currency", format!("'{currency}' is not a currency code (three capital letters)"));
                }
            }
            Penalty::UntimelySurrender { ratio, min_allowance_share } => {
                if *ratio < Decimal::ONE {
                    c.push("compliance.penalty.ratio", format!("{ratio} must be at least 1"));
                }
                c.share("compliance.penalty.min_allowance_share", *min_allowance_share);
            }
            Penalty::NonMonetary { sanction } => {
                if sanction.trim().is_empty() {
                    c.push("compliance.penalty.sanction", "describe the sanction");
                }
            }
        }
    }

    fn validate_trading(&self, c: &mut Check) {
        let t = &self.trading;
        if !is_currency(&t.currency) {
            c.push("trading.currency", format!("'{}' is not a currency code (three capital letters)", t.currency));
        }
        c.share_opt("trading.listed_band", t.listed_band);
        c.share_opt("trading.block_band", t.block_band);
        if t.block_band.is_some() != t.block_min_t.is_some() {
            c.push("trading.block_min_t", "a block mode needs both block_band and block_min_t");
        }
        if let (Some(max), Some(min)) = (t.listed_max_order_t, t.block_min_t) {
            if max >= min {
                c.push("trading.listed_max_order_t", format!("{max} t reaches the block minimum of {min} t"));
            }
        }
        if t.tick_minor.is_some_and(|v| v <= 0) {
            c.push("trading.tick_minor", "must be positive");
        }
        if t.lot_t == Some(0) {
            c.push("trading.lot_t", "must be positive");
        }
        let p = t.participants;
        if !(p.entities || p.institutions || p.individuals || p.foreign_institutions) {
            c.push("trading.participants", "nobody may trade");
        }
        if let Some(b) = t.price_bounds {
            if b.floor_minor.is_none() && b.ceiling_minor.is_none() {
                c.push("trading.price_bounds", "give floor_minor, ceiling_minor or both");
            }
            if b.floor_minor.is_some_and(|f| f < 0) {
                c.push("trading.price_bounds.floor_minor", "must not be negative");
            }
            if let (Some(f), Some(ceiling)) = (b.floor_minor, b.ceiling_minor) {
                if f > ceiling {
                    c.push("trading.price_bounds.floor_minor", format!("floor {f} is above the ceiling {ceiling}"));
                }
            }
        }
        c.share_opt("trading.max_sale_share_of_free_allocation", t.max_sale_share_of_free_allocation);
    }

    fn validate_auction(&self, c: &mut Check) {
        let Some(a) = &self.auction else { return };
        match &a.reserve_price {
            Some(ReservePrice::Fixed { price_minor }) if *price_minor < 0 => {
                c.push("auction.reserve_price.price_minor", "must not be negative")
            }
            Some(ReservePrice::VwapMultiple { multiple, months }) => {
                c.positive("auction.reserve_price.multiple", *multiple);
                if *months == 0 {
                    c.push("auction.reserve_price.months", "must be at least 1");
                }
            }
            Some(ReservePrice::Escalating { base_minor, rate, .. }) => {
                if *base_minor < 0 {
                    c.push("auction.reserve_price.base_minor", "must not be negative");
                }
                c.share("auction.reserve_price.rate", *rate);
            }
            _ => {}
        }
        if a.bidders.is_empty() {
            c.push("auction.bidders", "name who may bid");
        }
        c.share_opt("auction.bidder_limit_share", a.bidder_limit_share);
        c.share_opt("auction.other_bidder_limit_share", a.other_bidder_limit_share);
        if a.lot_t == Some(0) {
            c.push("auction.lot_t", "must be positive");
        }
    }

    fn validate_uncertain(&self, c: &mut Check) {
        for (path, u) in &self.uncertain {
            let key = format!("uncertain.{}", key_segment(path));
            if !c.index.contains(path) {
                c.push(&key, format!("'{path}' is not a key of this file"));
            }
            if path.starts_with("uncertain") {
                c.push(&key, "an [uncertain] entry cannot name another one");
            }
            if u.source != "ets" && !self.rulebook.sources.contains(&u.source) {
                c.push(&format!("{key}.source"), format!("'{}' is neither in [rulebook].sources nor `ets`", u.source));
            }
            if u.why.trim().is_empty() {
                c.push(&format!("{key}.why"), "say why the value is uncertain");
            }
        }
    }
}

fn is_market_code(s: &str) -> bool {
    (2..=8).contains(&s.len())
        && s.starts_with(|ch: char| ch.is_ascii_uppercase())
        && s.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
}

fn is_currency(s: &str) -> bool {
    s.len() == 3 && s.chars().all(|ch| ch.is_ascii_uppercase())
}

/// Collects semantic problems with the line of their key.
struct Check<'a> {
    file: &'a str,
    index: &'a Index,
    errors: Vec<RulebookError>,
}

impl Check<'_> {
    fn push(&mut self, key: &str, problem: impl Into<String>) {
        self.errors.push(RulebookError {
            file: self.file.to_string(),
            key: key.to_string(),
            problem: problem.into(),
            line: self.index.line(key),
        });
    }

    fn share(&mut self, key: &str, v: Decimal) {
        if v < Decimal::ZERO || v > Decimal::ONE {
            self.push(key, format!("{v} is not a share: it must lie within [0, 1]"));
        }
    }

    fn share_opt(&mut self, key: &str, v: Option<Decimal>) {
        if let Some(v) = v {
            self.share(key, v);
        }
    }

    fn positive(&mut self, key: &str, v: Decimal) {
        if v <= Decimal::ZERO {
            self.push(key, format!("{v} must be positive"));
        }
    }

    fn non_negative(&mut self, key: &str, v: Decimal) {
        if v < Decimal::ZERO {
            self.push(key, format!("{v} must not be negative"));
        }
    }

    fn places(&mut self, key: &str, dp: u32) {
        if dp > 28 {
            self.push(key, format!("{dp} decimal places: exact decimals hold at most 28"));
        }
    }
}

enum AllocationError {
    /// No `[allocation]`: the rest of the file reports it.
    Missing,
    Key(String, String),
    Toml(toml::de::Error),
}

fn read_allocation(root: &DeTable<'_>) -> Result<Allocation, AllocationError> {
    let Some(value) = root.get("allocation") else { return Err(AllocationError::Missing) };
    let DeValue::Table(table) = value.get_ref() else {
        return Err(AllocationError::Key("allocation".into(), format!("must be a table, not a {}", value.get_ref().type_str())));
    };
    let engines = "`power`, `industry` or `pilot`";
    let Some(engine) = table.get("engine") else {
        return Err(AllocationError::Key("allocation.engine".into(), format!("missing: name the allocation engine, {engines}")));
    };
    let Some(name) = engine.get_ref().as_str() else {
        return Err(AllocationError::Key("allocation.engine".into(), format!("must be a string, {engines}")));
    };
    let mut rest = table.clone();
    rest.remove("engine");
    let de = || ValueDeserializer::from(Spanned::new(value.span(), DeValue::Table(rest.clone())));
    let read = match name {
        "power" => PowerRules::deserialize(de()).map(Allocation::Power),
        "industry" => IndustryRules::deserialize(de()).map(Allocation::Industry),
        "pilot" => PilotRules::deserialize(de()).map(Allocation::Pilot),
        other => return Err(AllocationError::Key("allocation.engine".into(), format!("unknown engine '{other}': expected {engines}"))),
    };
    read.map_err(AllocationError::Toml)
}

/// Every key and array element of the parsed document with its spans, to turn a byte offset
/// into a key path and a key path into a line.
struct Index {
    entries: Vec<Entry>,
    /// Byte offsets of line starts.
    lines: Vec<usize>,
    text: String,
}

struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
    is_table: bool,
}

impl Index {
    fn new(text: &str, root: &DeTable<'_>) -> Index {
        let mut entries = Vec::new();
        index_table("", root, &mut entries);
        let lines = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Index { entries, lines, text: text.to_string() }
    }

    fn contains(&self, path: &str) -> bool {
        self.entries.iter().any(|e| e.path == path)
    }

    fn line(&self, path: &str) -> Option<usize> {
        self.entries.iter().find(|e| e.path == path).map(|e| self.line_at(e.key.start))
    }

    fn line_at(&self, offset: usize) -> usize {
        self.lines.partition_point(|start| *start <= offset)
    }

    /// The innermost entry whose key or value span holds `span`.
    fn at(&self, span: &Range<usize>) -> Option<&Entry> {
        let holds = |r: &Range<usize>| r.start <= span.start && span.end <= r.end && r.start < r.end;
        self.entries
            .iter()
            .filter_map(|e| {
                if holds(&e.key) {
                    Some((e.key.len(), e))
                } else if holds(&e.value) {
                    Some((e.value.len(), e))
                } else {
                    None
                }
            })
            .min_by(|(a, x), (b, y)| a.cmp(b).then(y.path.len().cmp(&x.path.len())))
            .map(|(_, e)| e)
    }

    fn type_error(&self, file: &str, e: &toml::de::Error) -> RulebookError {
        let message = e.message().trim().to_string();
        let span = e.span().filter(|s| !(s.start == 0 && s.end == 0));
        let entry = span.as_ref().and_then(|s| self.at(s));
        let mut key = entry.map(|e| e.path.clone()).unwrap_or_default();
        let mut line = span.as_ref().map(|s| self.line_at(s.start));
        // A table's span covers the whole table when serde buffered it (tagged enums) or only
        // its header: name the field the message is about when it can be told.
        if entry.is_none_or(|e| e.is_table) {
            if let Some(field) =
                backticked_field(&message).filter(|f| key != key_segment(f) && !key.ends_with(&format!(".{}", key_segment(f))))
            {
                let child = join(&key, &key_segment(field));
                if let Some(c) = self.entries.iter().find(|c| c.path == child) {
                    line = Some(self.line_at(c.key.start));
                }
                key = child;
            } else if let Some(c) = self.child_named_by(&key, &message) {
                line = Some(self.line_at(c.value.start));
                key = c.path.clone();
            }
        }
        RulebookError { file: file.to_string(), key, problem: message, line }
    }

    /// The one scalar below `parent` whose text the message quotes.
    fn child_named_by(&self, parent: &str, message: &str) -> Option<&Entry> {
        let prefix = if parent.is_empty() { String::new() } else { format!("{parent}.") };
        let mut found = self.entries.iter().filter(|e| {
            if e.is_table || !e.path.starts_with(&prefix) {
                return false;
            }
            quotes(message, &self.text[e.value.clone()])
        });
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }
}

fn index_table(prefix: &str, table: &DeTable<'_>, out: &mut Vec<Entry>) {
    for (k, v) in table.iter() {
        let path = join(prefix, &key_segment(k.get_ref()));
        index_value(path, k.span(), v, out);
    }
}

fn index_value(path: String, key: Range<usize>, v: &Spanned<DeValue<'_>>, out: &mut Vec<Entry>) {
    let is_table = matches!(v.get_ref(), DeValue::Table(_));
    out.push(Entry { path: path.clone(), key, value: v.span(), is_table });
    match v.get_ref() {
        DeValue::Table(t) => index_table(&path, t, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                index_value(format!("{path}[{i}]"), item.span(), item, out);
            }
        }
        _ => {}
    }
}

fn join(prefix: &str, segment: &str) -> String {
    if prefix.is_empty() {
        segment.to_string()
    } else {
        format!("{prefix}.{segment}")
    }
}

/// A key as it appears in a path: bare if TOML would allow it bare, quoted otherwise.
fn key_segment(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// Whether an error message quotes a value written as `raw`: verbatim, in backticks, or as a
/// number equal in value (serde prints the float `0.70` as `0.7`).
fn quotes(message: &str, raw: &str) -> bool {
    let bare = raw.trim_matches('"');
    if bare.is_empty() {
        return false;
    }
    if message.contains(raw) || message.contains(&format!("`{bare}`")) {
        return true;
    }
    let Ok(number) = bare.parse::<Decimal>() else { return false };
    message
        .split(|ch: char| ch.is_whitespace() || matches!(ch, '"' | '`' | ',' | ':'))
        .any(|token| token.parse::<Decimal>().is_ok_and(|n| n == number))
}

/// The field serde names in "unknown field `x`" or "missing field `x`".
fn backticked_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// For syntax errors, where there is no parsed document: the last `[table]` header above the
/// offset and the key on the offset's line.
fn key_at_line(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let this = text[start..end].trim();
    let header = |line: &str| -> Option<String> {
        let line = line.trim();
        line.starts_with('[').then(|| line.trim_start_matches('[').split(']').next().unwrap_or("").trim().replace(' ', ""))
    };
    if let Some(h) = header(this) {
        return h;
    }
    let table = text[..start].lines().rev().find_map(header).unwrap_or_default();
    let key = this.split_once('=').map(|(k, _)| k.trim().trim_matches('"').replace(' ', "")).unwrap_or_default();
    join(&table, &key)
}

fn flatten_value(path: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten_value(&join(path, &key_segment(k)), v, out);
            }
        }
        // A list of plain values (sources, standards, vintages) is one value: compared element
        // by element, one insertion would show as a change of every later element.
        toml::Value::Array(items) if !items.iter().any(|i| i.is_table() || i.is_array()) => {
            let shown: Vec<String> = items.iter().map(scalar).collect();
            out.insert(path.to_string(), format!("[{}]", shown.join(", ")));
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_value(&format!("{path}[{i}]"), item, out);
            }
        }
        other => {
            out.insert(path.to_string(), scalar(other));
        }
    }
}

fn scalar(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn same_value(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<Decimal>(), b.parse::<Decimal>()), (Ok(x), Ok(y)) if x == y)
}
