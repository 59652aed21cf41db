//! Monthly activity data of China's power sector and a unit's monthly and annual emissions.
//!
//! A [`MonthlyRecord`] is one source stream (a fuel feed of one emission unit) in one calendar
//! month: quantity burned, net calorific value, carbon content (measured with its lab report, or
//! missing) and oxidation factor. Records are validated when built ([`MonthlyRecord::new`]);
//! [`unit_year_emissions`] then computes a unit's emissions with the `cn_power` formula
//! ([`crate::cn_power::carbon_oxidised`], [`crate::cn_power::carbon_to_co2`]).
//!
//! ## Months without a measured carbon content
//!
//! Source: `[CHEMLINKED]` (china-ets.md section 5, row "Default (high) coal carbon content"),
//! factor key [`DEFAULT_CC_KEY`]. The June 2022 MEE notice says that for 2021–22, months
//! missing measurement (when fewer than 3 months are measured) use 0.03085 tC/GJ regardless of
//! coal type. The rule implemented here, per [`MissingCarbonRule`]:
//!
//! 1. Measured months are counted **per source stream and reporting year** (the notice does not
//!    say whether per stream, per unit or per coal type: our reading).
//! 2. If a stream has fewer than [`MissingCarbonRule::min_measured_months`] (default
//!    [`DEFAULT_MIN_MEASURED_MONTHS`] = 3) measured months, each of its unmeasured months uses
//!    the dated default high carbon content valid on the **last day of that month** (0.03085
//!    for 2021–22; 0.03356 for 2019–20 and 0.03085 from 2023 are flagged uncertain in the data).
//! 3. What unmeasured months use when enough months are measured is not in the domain files.
//!    Default: still the default high value ([`FillWhenEnough::DefaultHigh`], conservative: it
//!    never understates). [`FillWhenEnough::MeanOfMeasured`] uses the plain mean of the
//!    stream's measured months instead, rounded to [`CARBON_CONTENT_DP`] places half-even.
//! 4. The default high value is for coal only: a non-coal stream that needs it is refused with
//!    [`MrvError::NotApplicable`].
//!
//! ## Rounding
//!
//! Carbon (tC) is exact per record. A month's tCO2 is the month's summed carbon × 44 / 12,
//! rounded once ([`crate::num::round_result`]); the annual tCO2 is computed from the year's
//! summed carbon, also rounded once, so it can differ from the sum of the rounded months in the
//! sixth decimal place.

use crate::cn_power::{carbon_oxidised, carbon_to_co2, CARBON_CONTENT_DP, DEFAULT_CC_KEY};
use crate::error::{MrvError, Result};
use crate::factors::{Factor, FactorSet, Status};
use crate::num::{self, add, div};
use ets_core::Date;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Default of [`MissingCarbonRule::min_measured_months`] (`[CHEMLINKED]`: "fewer than 3").
pub const DEFAULT_MIN_MEASURED_MONTHS: u32 = 3;

fn invalid(name: &'static str, value: impl fmt::Display, rule: &'static str) -> MrvError {
    MrvError::InvalidInput { name, value: value.to_string(), rule }
}

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct YearMonth {
    year: i32,
    month: u8,
}

impl YearMonth {
    /// Checked: month 1–12, year 1900–9999.
    pub fn new(year: i32, month: u32) -> Result<YearMonth> {
        if !(1900..=9999).contains(&year) {
            return Err(invalid("year", year, "must be between 1900 and 9999"));
        }
        if !(1..=12).contains(&month) {
            return Err(invalid("month", month, "must be between 1 and 12"));
        }
        Ok(YearMonth { year, month: month as u8 })
    }

    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Result<YearMonth> {
        let t = text.trim();
        let bad = || invalid("month", format!("'{text}'"), "must be written YYYY-MM, e.g. 2022-05");
        let (y, m) = t.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        YearMonth::new(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?)
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        u32::from(self.month)
    }

    /// 0 for January … 11 for December.
    pub fn index(self) -> usize {
        usize::from(self.month - 1)
    }

    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year, self.month(), 1).expect("a validated month has a first day")
    }

    pub fn last_day(self) -> Date {
        Date(self.next().first_day().0 - 1)
    }

    pub fn next(self) -> YearMonth {
        if self.month == 12 {
            YearMonth { year: self.year + 1, month: 1 }
        } else {
            YearMonth { year: self.year, month: self.month + 1 }
        }
    }

    pub fn contains(self, day: Date) -> bool {
        self.first_day() <= day && day <= self.last_day()
    }
}

impl TryFrom<String> for YearMonth {
    type Error = MrvError;

    fn try_from(text: String) -> Result<YearMonth> {
        YearMonth::parse(&text)
    }
}

impl From<YearMonth> for String {
    fn from(m: YearMonth) -> String {
        m.to_string()
    }
}

impl TryFrom<RecordFields> for MonthlyRecord {
    type Error = MrvError;

    fn try_from(f: RecordFields) -> Result<MonthlyRecord> {
        MonthlyRecord::new(f)
    }
}

impl From<MonthlyRecord> for RecordFields {
    fn from(r: MonthlyRecord) -> RecordFields {
        r.f
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Fuels with plausibility ranges in the factor data (`dq.<key>.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fuel {
    Coal,
    NaturalGas,
    FuelOil,
    Diesel,
}

impl Fuel {
    pub const ALL: [Fuel; 4] = [Fuel::Coal, Fuel::NaturalGas, Fuel::FuelOil, Fuel::Diesel];

    /// The key used in the factor data and in text input.
    pub fn key(self) -> &'static str {
        match self {
            Fuel::Coal => "coal",
            Fuel::NaturalGas => "natural_gas",
            Fuel::FuelOil => "fuel_oil",
            Fuel::Diesel => "diesel",
        }
    }

    /// Only coal has a dated default high carbon content ([`DEFAULT_CC_KEY`]).
    pub fn has_default_carbon_content(self) -> bool {
        self == Fuel::Coal
    }
}

impl fmt::Display for Fuel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Fuel {
    type Err = MrvError;

    fn from_str(s: &str) -> Result<Fuel> {
        Fuel::ALL
            .into_iter()
            .find(|f| f.key() == s.trim())
            .ok_or_else(|| invalid("fuel", format!("'{s}'"), "must be one of coal, natural_gas, fuel_oil, diesel"))
    }
}

/// A measured carbon content with its laboratory evidence. The dates are not cross-checked
/// here: a report dated before its sample is still a record to keep, and
/// [`crate::quality`] flags it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabMeasurement {
    cc_tc_per_gj: Decimal,
    report_id: String,
    report_date: Date,
    sample_date: Date,
}

impl LabMeasurement {
    /// Checked: carbon content > 0 tC/GJ, report id not blank and without surrounding spaces.
    pub fn new(cc_tc_per_gj: Decimal, report_id: impl Into<String>, report_date: Date, sample_date: Date) -> Result<LabMeasurement> {
        num::positive("carbon content (tC/GJ)", cc_tc_per_gj)?;
        let report_id = report_id.into();
        check_text("lab report id", &report_id)?;
        Ok(LabMeasurement { cc_tc_per_gj, report_id, report_date, sample_date })
    }

    pub fn cc_tc_per_gj(&self) -> Decimal {
        self.cc_tc_per_gj
    }

    pub fn report_id(&self) -> &str {
        &self.report_id
    }

    pub fn report_date(&self) -> Date {
        self.report_date
    }

    pub fn sample_date(&self) -> Date {
        self.sample_date
    }
}

/// The carbon content of one month's fuel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carbon {
    Measured(LabMeasurement),
    /// No measurement for the month: [`MissingCarbonRule`] decides what is used.
    Missing,
}

/// The inputs of [`MonthlyRecord::new`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFields {
    pub entity: String,
    /// Emission unit id (e.g. a generating unit).
    pub unit: String,
    pub source_stream: String,
    pub month: YearMonth,
    pub fuel: Fuel,
    pub quantity_t: Decimal,
    pub ncv_gj_per_t: Decimal,
    pub carbon: Carbon,
    pub oxidation_factor: Decimal,
}

/// One source stream of one emission unit in one month. Built only through
/// [`MonthlyRecord::new`], so every record holds valid values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RecordFields", into = "RecordFields")]
pub struct MonthlyRecord {
    f: RecordFields,
}

fn check_text(name: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(invalid(name, format!("'{value}'"), "must not be empty"));
    }
    if value.trim() != value || value.chars().any(char::is_control) {
        return Err(invalid(name, format!("'{value}'"), "must not have surrounding spaces or control characters"));
    }
    Ok(())
}

impl MonthlyRecord {
    /// Checked: entity, unit and source stream not blank; quantity ≥ 0 t; NCV > 0 GJ/t;
    /// oxidation factor in (0, 1].
    pub fn new(f: RecordFields) -> Result<MonthlyRecord> {
        check_text("entity", &f.entity)?;
        check_text("emission unit id", &f.unit)?;
        check_text("source stream", &f.source_stream)?;
        num::non_negative("fuel quantity (t)", f.quantity_t)?;
        num::positive("NCV (GJ/t)", f.ncv_gj_per_t)?;
        num::fraction("oxidation factor", f.oxidation_factor)?;
        num::positive("oxidation factor", f.oxidation_factor)?;
        Ok(MonthlyRecord { f })
    }

    pub fn fields(&self) -> &RecordFields {
        &self.f
    }

    pub fn entity(&self) -> &str {
        &self.f.entity
    }

    pub fn unit(&self) -> &str {
        &self.f.unit
    }

    pub fn source_stream(&self) -> &str {
        &self.f.source_stream
    }

    pub fn month(&self) -> YearMonth {
        self.f.month
    }

    pub fn fuel(&self) -> Fuel {
        self.f.fuel
    }

    pub fn quantity_t(&self) -> Decimal {
        self.f.quantity_t
    }

    pub fn ncv_gj_per_t(&self) -> Decimal {
        self.f.ncv_gj_per_t
    }

    pub fn carbon(&self) -> &Carbon {
        &self.f.carbon
    }

    pub fn measurement(&self) -> Option<&LabMeasurement> {
        match &self.f.carbon {
            Carbon::Measured(m) => Some(m),
            Carbon::Missing => None,
        }
    }

    pub fn oxidation_factor(&self) -> Decimal {
        self.f.oxidation_factor
    }
}

/// What unmeasured months use once a stream has enough measured months (not in the domain
/// files; see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillWhenEnough {
    /// The dated default high value, as with too few measured months (conservative).
    DefaultHigh,
    /// The mean of the stream's measured carbon contents, rounded to [`CARBON_CONTENT_DP`].
    MeanOfMeasured,
}

/// How months without a measured carbon content are filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingCarbonRule {
    /// A stream with fewer measured months than this uses the default high value for its
    /// unmeasured months. Default 3 (`[CHEMLINKED]`).
    pub min_measured_months: u32,
    pub when_enough_measured: FillWhenEnough,
}

impl Default for MissingCarbonRule {
    fn default() -> Self {
        MissingCarbonRule { min_measured_months: DEFAULT_MIN_MEASURED_MONTHS, when_enough_measured: FillWhenEnough::DefaultHigh }
    }
}

/// Where a record's carbon content came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarbonBasis {
    Measured,
    /// The dated default high value ([`DEFAULT_CC_KEY`]); see the month's [`MonthEmissions::default_factor`].
    DefaultHigh,
    MeanOfMeasured,
}

/// The result for one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordEmissions {
    /// Position of the record in the input slice.
    pub index: usize,
    /// Carbon content used, tC/GJ.
    pub carbon_content: Decimal,
    pub basis: CarbonBasis,
    /// Carbon oxidised, tC, exact.
    pub carbon_t: Decimal,
}

/// The default factor applied in a month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultApplied {
    pub value: Decimal,
    pub source: String,
    pub status: Status,
}

/// One month of a unit (all its source streams).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthEmissions {
    pub month: YearMonth,
    pub records: u32,
    /// Records of the month that used the default high value.
    pub default_records: u32,
    pub default_factor: Option<DefaultApplied>,
    /// Exact.
    pub carbon_t: Decimal,
    /// Summed carbon × 44 / 12, rounded once.
    pub co2_t: Decimal,
}

/// A unit's emissions for one reporting year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitYearEmissions {
    pub entity: String,
    pub unit: String,
    pub year: i32,
    pub rule: MissingCarbonRule,
    /// One entry per input record, in input order.
    pub records: Vec<RecordEmissions>,
    /// Months with at least one record, in calendar order.
    pub monthly: Vec<MonthEmissions>,
    pub annual_carbon_t: Decimal,
    /// Annual summed carbon × 44 / 12, rounded once.
    pub annual_co2_t: Decimal,
}

struct StreamAcc<'a> {
    name: &'a str,
    fuel: Fuel,
    months_seen: u16,
    measured: u32,
    cc_sum: Decimal,
    /// Carbon content for unmeasured months, resolved after the first pass.
    fill: Option<(CarbonBasis, Decimal)>,
}

/// A unit's monthly and annual emissions from its records of one year (any order), with the
/// missing-carbon rule of the module documentation. Refused: an empty slice; records of
/// another entity, unit or year than the first record; two records for the same stream and
/// month; a stream that changes fuel; a non-coal stream that would need the default.
pub fn unit_year_emissions(records: &[MonthlyRecord], rule: &MissingCarbonRule, factors: &FactorSet) -> Result<UnitYearEmissions> {
    let first = records.first().ok_or_else(|| invalid("monthly records", "none", "a calculation needs at least one record"))?;
    let (entity, unit, year) = (first.entity(), first.unit(), first.month().year());

    // Pass 1: consistency, duplicates, measured-month counts per stream.
    let mut streams: Vec<StreamAcc<'_>> = Vec::new();
    let mut stream_of: Vec<u32> = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        if r.entity() != entity {
            return Err(invalid(
                "record entity",
                format!("'{}' (record {i}; first record: '{entity}')", r.entity()),
                "all records must belong to one entity",
            ));
        }
        if r.unit() != unit {
            return Err(invalid(
                "record emission unit",
                format!("'{}' (record {i}; first record: '{unit}')", r.unit()),
                "all records must belong to one emission unit",
            ));
        }
        if r.month().year() != year {
            return Err(invalid(
                "record month",
                format!("{} (record {i}; first record's year: {year})", r.month()),
                "all records must be in one reporting year",
            ));
        }
        let s = match streams.iter().position(|s| s.name == r.source_stream()) {
            Some(s) => s,
            None => {
                streams.push(StreamAcc {
                    name: r.source_stream(),
                    fuel: r.fuel(),
                    months_seen: 0,
                    measured: 0,
                    cc_sum: Decimal::ZERO,
                    fill: None,
                });
                streams.len() - 1
            }
        };
        let acc = &mut streams[s];
        let bit = 1u16 << r.month().index();
        if acc.months_seen & bit != 0 {
            return Err(invalid(
                "record",
                format!("stream '{}' month {} (record {i})", acc.name, r.month()),
                "a stream has at most one record per month",
            ));
        }
        if acc.fuel != r.fuel() {
            return Err(invalid(
                "record fuel",
                format!("{} for stream '{}' month {} (record {i}; earlier: {})", r.fuel(), acc.name, r.month(), acc.fuel),
                "a source stream burns one fuel",
            ));
        }
        acc.months_seen |= bit;
        if let Some(m) = r.measurement() {
            acc.measured += 1;
            acc.cc_sum = add(acc.cc_sum, m.cc_tc_per_gj(), "sum of measured carbon content")?;
        }
        stream_of.push(s as u32);
    }
    for s in &mut streams {
        let enough = s.measured >= rule.min_measured_months && s.measured > 0;
        s.fill = Some(if enough && rule.when_enough_measured == FillWhenEnough::MeanOfMeasured {
            let mean = div(s.cc_sum, Decimal::from(s.measured), "mean measured carbon content")?;
            (CarbonBasis::MeanOfMeasured, mean.round_dp_with_strategy(CARBON_CONTENT_DP, RoundingStrategy::MidpointNearestEven).normalize())
        } else {
            (CarbonBasis::DefaultHigh, Decimal::ZERO)
        });
    }

    // Pass 2: carbon per record, summed per month. Default lookups are cached per month.
    let mut defaults: [Option<&Factor>; 12] = [None; 12];
    let mut month_carbon = [Decimal::ZERO; 12];
    let mut month_records = [0u32; 12];
    let mut month_default = [0u32; 12];
    let mut out = Vec::with_capacity(records.len());
    for (i, (r, &s)) in records.iter().zip(&stream_of).enumerate() {
        let m = r.month().index();
        let (basis, cc) = match r.measurement() {
            Some(lab) => (CarbonBasis::Measured, lab.cc_tc_per_gj()),
            None => match streams[s as usize].fill {
                Some((CarbonBasis::DefaultHigh, _)) | None => {
                    if !r.fuel().has_default_carbon_content() {
                        return Err(MrvError::NotApplicable(format!(
                            "no default carbon content for {} (stream '{}', month {}): the dated default high value ({DEFAULT_CC_KEY}) is for coal only; a measurement is needed",
                            r.fuel(),
                            r.source_stream(),
                            r.month()
                        )));
                    }
                    let f = match defaults[m] {
                        Some(f) => f,
                        None => {
                            let f = factors.lookup(DEFAULT_CC_KEY, r.month().last_day())?;
                            defaults[m] = Some(f);
                            f
                        }
                    };
                    month_default[m] += 1;
                    (CarbonBasis::DefaultHigh, f.value)
                }
                Some((basis, cc)) => (basis, cc),
            },
        };
        let carbon_t = carbon_oxidised(r.quantity_t(), r.ncv_gj_per_t(), cc, r.oxidation_factor())?;
        month_carbon[m] = add(month_carbon[m], carbon_t, "monthly sum of carbon")?;
        month_records[m] += 1;
        out.push(RecordEmissions { index: i, carbon_content: cc, basis, carbon_t });
    }

    let mut monthly = Vec::with_capacity(12);
    let mut annual_carbon_t = Decimal::ZERO;
    for m in 0..12 {
        if month_records[m] == 0 {
            continue;
        }
        annual_carbon_t = add(annual_carbon_t, month_carbon[m], "annual sum of carbon")?;
        monthly.push(MonthEmissions {
            month: YearMonth { year, month: m as u8 + 1 },
            records: month_records[m],
            default_records: month_default[m],
            default_factor: defaults[m].map(|f| DefaultApplied { value: f.value, source: f.source.clone(), status: f.status }),
            carbon_t: month_carbon[m],
            co2_t: carbon_to_co2(month_carbon[m])?,
        });
    }
    Ok(UnitYearEmissions {
        entity: entity.to_string(),
        unit: unit.to_string(),
        year,
        rule: *rule,
        records: out,
        monthly,
        annual_co2_t: carbon_to_co2(annual_carbon_t)?,
        annual_carbon_t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cn_power::{fuel_emissions, CarbonContent, FuelBurn};
    use crate::testgen::{clean_year, d, day, with};

    /// Worked example 15 as one month: 1,000,000 t, NCV 20, OF 0.99.
    fn coal_month(year: i32, m: u32, cc: Option<&str>) -> MonthlyRecord {
        let carbon = match cc {
            Some(cc) => Carbon::Measured(LabMeasurement::new(d(cc), format!("R-{year}-{m}"), day(year, m, 20), day(year, m, 10)).unwrap()),
            None => Carbon::Missing,
        };
        MonthlyRecord::new(RecordFields {
            entity: "E".into(),
            unit: "U1".into(),
            source_stream: "coal-1".into(),
            month: YearMonth::new(year, m).unwrap(),
            fuel: Fuel::Coal,
            quantity_t: d("1000000"),
            ncv_gj_per_t: d("20.0"),
            carbon,
            oxidation_factor: d("0.99"),
        })
        .unwrap()
    }

    #[test]
    fn measured_year_matches_worked_example_15_and_cn_power() {
        let f = FactorSet::builtin().unwrap();
        let recs: Vec<_> = (1..=12).map(|m| coal_month(2022, m, Some("0.0270"))).collect();
        let r = unit_year_emissions(&recs, &MissingCarbonRule::default(), &f).unwrap();
        assert_eq!(r.monthly.len(), 12);
        assert!(r.monthly.iter().all(|m| m.co2_t == d("1960200") && m.default_factor.is_none()));
        assert_eq!(r.annual_co2_t, d("23522400"));
        assert_eq!(r.annual_carbon_t, d("6415200"));
        // Same as the cn_power method on the month's fuel.
        let burn = FuelBurn {
            consumption: d("1000000"),
            ncv_gj_per_unit: d("20.0"),
            carbon_content: CarbonContent::Measured(d("0.0270")),
            oxidation_factor: d("0.99"),
        };
        assert_eq!(fuel_emissions(&[burn], &f).unwrap().total_co2_t, r.monthly[0].co2_t);
        assert!(r.records.iter().all(|x| x.basis == CarbonBasis::Measured));
    }

    #[test]
    fn fewer_than_three_measured_months_use_dated_default_high() {
        let f = FactorSet::builtin().unwrap();
        let recs: Vec<_> = (1..=12).map(|m| coal_month(2022, m, (m <= 2).then_some("0.0270"))).collect();
        let r = unit_year_emissions(&recs, &MissingCarbonRule::default(), &f).unwrap();
        // 2 × 1,960,200 + 10 × 2,239,710 (worked example 15 with 0.03085).
        assert_eq!(r.annual_co2_t, d("26317500"));
        let may = &r.monthly[4];
        assert_eq!(may.co2_t, d("2239710"));
        assert_eq!(may.default_records, 1);
        assert_eq!(
            may.default_factor,
            Some(DefaultApplied { value: d("0.03085"), source: "CHEMLINKED".into(), status: Status::Confirmed })
        );
        assert_eq!(r.records[4].basis, CarbonBasis::DefaultHigh);
        assert_eq!(r.monthly[0].default_factor, None);
    }

    #[test]
    fn default_is_dated_by_month() {
        let f = FactorSet::builtin().unwrap();
        let r = unit_year_emissions(&[coal_month(2020, 6, None)], &MissingCarbonRule::default(), &f).unwrap();
        assert_eq!(r.annual_co2_t, d("2436456"));
        assert_eq!(r.monthly[0].default_factor.as_ref().unwrap().status, Status::Uncertain);
        assert!(unit_year_emissions(&[coal_month(2018, 6, None)], &MissingCarbonRule::default(), &f).is_err());
    }

    #[test]
    fn enough_measured_months_policy_and_threshold_parameter() {
        let f = FactorSet::builtin().unwrap();
        let ccs = ["0.0270", "0.0280", "0.0290"];
        let mut recs: Vec<_> = (1..=3).map(|m| coal_month(2022, m, Some(ccs[m as usize - 1]))).collect();
        recs.push(coal_month(2022, 4, None));
        // Default policy: still the default high value.
        let r = unit_year_emissions(&recs, &MissingCarbonRule::default(), &f).unwrap();
        assert_eq!(r.records[3].carbon_content, d("0.03085"));
        // Mean of measured: 0.028 -> 1e6 × 20 × 0.028 × 0.99 = 554,400 tC -> 2,032,800 t.
        let mean = MissingCarbonRule { min_measured_months: 3, when_enough_measured: FillWhenEnough::MeanOfMeasured };
        let r = unit_year_emissions(&recs, &mean, &f).unwrap();
        assert_eq!((r.records[3].basis, r.records[3].carbon_content), (CarbonBasis::MeanOfMeasured, d("0.028")));
        assert_eq!(r.monthly[3].co2_t, d("2032800"));
        // Threshold 4: three measured months are too few, the default applies.
        let strict = MissingCarbonRule { min_measured_months: 4, ..mean };
        assert_eq!(unit_year_emissions(&recs, &strict, &f).unwrap().records[3].basis, CarbonBasis::DefaultHigh);
        // Mean rounded to CARBON_CONTENT_DP half-even: (0.027 + 0.028 + 0.0281) / 3 = 0.0277.
        recs[2] = coal_month(2022, 3, Some("0.0281"));
        assert_eq!(unit_year_emissions(&recs, &mean, &f).unwrap().records[3].carbon_content, d("0.0277"));
        recs[2] = coal_month(2022, 3, Some("0.0282"));
        assert_eq!(unit_year_emissions(&recs, &mean, &f).unwrap().records[3].carbon_content, d("0.0277333333"));
    }

    #[test]
    fn clean_generated_year_sums_monthly_carbon() {
        let f = FactorSet::builtin().unwrap();
        let recs = clean_year(7, 2023, &[("coal-A", Fuel::Coal), ("gas", Fuel::NaturalGas)]);
        let r = unit_year_emissions(&recs, &MissingCarbonRule::default(), &f).unwrap();
        let sum = r.monthly.iter().fold(Decimal::ZERO, |a, m| a + m.carbon_t);
        assert_eq!(sum, r.annual_carbon_t);
        assert_eq!(r.records.len(), 24);
        assert!(r.monthly.iter().all(|m| m.records == 2));
    }

    #[test]
    fn constructors_reject_bad_input_with_clear_messages() {
        let r = coal_month(2022, 1, Some("0.027"));
        let bad = |f: &dyn Fn(&mut RecordFields)| {
            let mut x = r.fields().clone();
            f(&mut x);
            MonthlyRecord::new(x).unwrap_err().to_string()
        };
        assert_eq!(bad(&|x| x.quantity_t = d("-1")), "invalid fuel quantity (t) = -1: must not be negative");
        assert_eq!(bad(&|x| x.ncv_gj_per_t = d("0")), "invalid NCV (GJ/t) = 0: must be greater than zero");
        assert_eq!(bad(&|x| x.oxidation_factor = d("1.2")), "invalid oxidation factor = 1.2: must be between 0 and 1 inclusive");
        assert!(bad(&|x| x.oxidation_factor = d("0")).contains("oxidation factor = 0"));
        assert_eq!(bad(&|x| x.unit = " ".into()), "invalid emission unit id = ' ': must not be empty");
        assert!(bad(&|x| x.source_stream = "coal ".into()).contains("surrounding spaces"));
        assert_eq!(YearMonth::new(2022, 13).unwrap_err().to_string(), "invalid month = 13: must be between 1 and 12");
        assert_eq!(YearMonth::parse("2022-05").unwrap().to_string(), "2022-05");
        assert!(YearMonth::parse("2022-5").is_err());
        assert!(LabMeasurement::new(d("0"), "R", day(2022, 1, 1), day(2022, 1, 1)).unwrap_err().to_string().contains("carbon content"));
        assert!(LabMeasurement::new(d("0.027"), "", day(2022, 1, 1), day(2022, 1, 1)).unwrap_err().to_string().contains("lab report id"));
        assert_eq!("natural_gas".parse::<Fuel>().unwrap(), Fuel::NaturalGas);
        assert!("peat".parse::<Fuel>().unwrap_err().to_string().contains("must be one of"));
        assert_eq!(YearMonth::new(2024, 2).unwrap().last_day(), day(2024, 2, 29));
        assert_eq!(YearMonth::new(2024, 12).unwrap().last_day(), day(2024, 12, 31));
    }

    #[test]
    fn calculation_rejects_inconsistent_sets() {
        let f = FactorSet::builtin().unwrap();
        let rule = MissingCarbonRule::default();
        assert!(unit_year_emissions(&[], &rule, &f).unwrap_err().to_string().contains("at least one record"));
        let a = coal_month(2022, 1, Some("0.027"));
        let other_unit = with(&a, |x| x.unit = "U2".into());
        assert!(unit_year_emissions(&[a.clone(), other_unit], &rule, &f).unwrap_err().to_string().contains("one emission unit"));
        let other_year = coal_month(2023, 2, Some("0.027"));
        assert!(unit_year_emissions(&[a.clone(), other_year], &rule, &f).unwrap_err().to_string().contains("one reporting year"));
        let err = unit_year_emissions(&[a.clone(), a.clone()], &rule, &f).unwrap_err().to_string();
        assert!(err.contains("at most one record per month") && err.contains("coal-1"), "{err}");
        let gas = with(&coal_month(2022, 2, None), |x| x.fuel = Fuel::NaturalGas);
        assert!(unit_year_emissions(&[a.clone(), gas], &rule, &f).unwrap_err().to_string().contains("one fuel"));
        let gas = with(&coal_month(2022, 2, None), |x| {
            x.fuel = Fuel::NaturalGas;
            x.source_stream = "gas".into()
        });
        let err = unit_year_emissions(&[a, gas], &rule, &f).unwrap_err();
        assert!(matches!(&err, MrvError::NotApplicable(m) if m.contains("coal only")), "{err}");
    }
}
