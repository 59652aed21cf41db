//! Data-quality checks over one emission unit's monthly records for a reporting year.
//!
//! [`run_checks`] returns [`Finding`]s sorted for a regulator's queue: critical first, then by
//! month, source stream and check. The checks target the 2022 fraud cases (china-ets.md
//! section 5, `[FRAUD]`): edited element-carbon reports (carbon content out of range or
//! inconsistent with NCV), monthly sampling faked from batch tests (one report reused for
//! several months, sample dates outside the month), back-dated monthly lab reports (report
//! before sample, report later than the evidence deadline), and missing measurements that
//! force the default high carbon content.
//!
//! | Check | Severity | Parameter (default) |
//! |---|---|---|
//! | [`NCV_RANGE`], [`CC_RANGE`], [`OF_RANGE`] | warning | [`PlausibleRanges`], data keys `dq.<fuel>.<quantity>.{min,max}` (ets defaults, uncertain) |
//! | [`CC_VS_NCV`]: CC × NCV (implied element carbon, tC/t) outside the band | warning | `dq.<fuel>.carbon_fraction.{min,max}` |
//! | [`QUANTITY_JUMP`], [`NCV_JUMP`]: consecutive months differ by more than a factor | warning | [`QualityParams::quantity_jump_factor`] (3), [`QualityParams::ncv_jump_factor`] (1.25) |
//! | [`MISSING_MONTH`]: a stream has no record for a month of the year | warning | — |
//! | [`DUPLICATE_RECORD`]: two records for one stream and month | critical | — |
//! | [`REUSED_REPORT`]: one lab report id used for more than one month | critical | — |
//! | [`REPORT_BEFORE_SAMPLE`]: lab report dated before its sample | critical | — |
//! | [`SAMPLE_OUTSIDE_MONTH`]: sample not taken in the record's month | critical | — |
//! | [`LATE_REPORT`]: report dated more than N days after month end | warning | [`QualityParams::max_report_delay_days`] (40, `[NOTICE2025]`) |
//! | [`DEFAULT_CARBON`]: no measured carbon content (default high applies) | info | — |
//!
//! Jumps are only compared between consecutive calendar months that both have a record, and a
//! zero quantity (unit offline) is not a jump. Fabricated moisture data cannot be checked: the
//! records carry no moisture.

use crate::error::{MrvError, Result};
use crate::factors::FactorSet;
use crate::monthly::{Fuel, MonthlyRecord, YearMonth};
use crate::num::mul;
use ets_core::Date;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt;

pub const NCV_RANGE: &str = "ncv_range";
pub const CC_RANGE: &str = "carbon_content_range";
pub const OF_RANGE: &str = "oxidation_factor_range";
pub const CC_VS_NCV: &str = "carbon_content_vs_ncv";
pub const QUANTITY_JUMP: &str = "quantity_jump";
pub const NCV_JUMP: &str = "ncv_jump";
pub const MISSING_MONTH: &str = "missing_month";
pub const DUPLICATE_RECORD: &str = "duplicate_record";
pub const REUSED_REPORT: &str = "reused_lab_report";
pub const REPORT_BEFORE_SAMPLE: &str = "report_before_sample";
pub const SAMPLE_OUTSIDE_MONTH: &str = "sample_outside_month";
pub const LATE_REPORT: &str = "late_lab_report";
pub const DEFAULT_CARBON: &str = "default_carbon_content";

/// Default of [`QualityParams::quantity_jump_factor`] (ets default, to be calibrated).
pub const DEFAULT_QUANTITY_JUMP_FACTOR: Decimal = Decimal::from_parts(3, 0, 0, false, 0);
/// Default of [`QualityParams::ncv_jump_factor`]: 1.25 (ets default, to be calibrated).
pub const DEFAULT_NCV_JUMP_FACTOR: Decimal = Decimal::from_parts(125, 0, 0, false, 2);
/// Factor key of the monthly evidence deadline (`[NOTICE2025]`, 40 days, power from 2023).
pub const EVIDENCE_DEADLINE_KEY: &str = "cn.mrv.monthly_evidence_deadline_days";
/// Used when no deadline is in the data for the year (before 2023): the same 40 days.
pub const DEFAULT_MAX_REPORT_DELAY_DAYS: u32 = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// One anomaly, about one record (or, for [`MISSING_MONTH`], one absent record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// One of the check constants of this module.
    pub check: &'static str,
    pub severity: Severity,
    pub month: YearMonth,
    pub source_stream: String,
    /// The offending value as text.
    pub value: String,
    /// What was expected (a range, a date bound, ...).
    pub expected: String,
    pub reason: String,
}

/// Inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: Decimal,
    pub max: Decimal,
}

impl Range {
    pub fn contains(&self, v: Decimal) -> bool {
        self.min <= v && v <= self.max
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.min, self.max)
    }
}

/// Plausible values of one fuel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuelRanges {
    /// GJ/t.
    pub ncv: Range,
    /// Measured carbon content, tC/GJ.
    pub carbon_content: Range,
    pub oxidation_factor: Range,
    /// CC × NCV, tC/t: the band outside which carbon content is inconsistent with NCV.
    pub carbon_fraction: Range,
}

/// Plausible ranges for every [`Fuel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlausibleRanges {
    by_fuel: [FuelRanges; 4],
}

impl PlausibleRanges {
    /// From the factor data, entries `dq.<fuel>.<quantity>.{min,max}` valid on `on`.
    pub fn from_factors(factors: &FactorSet, on: Date) -> Result<PlausibleRanges> {
        let range = |fuel: Fuel, q: &str| -> Result<Range> {
            let min = factors.lookup(&format!("dq.{}.{q}.min", fuel.key()), on)?.value;
            let max = factors.lookup(&format!("dq.{}.{q}.max", fuel.key()), on)?.value;
            if min > max {
                return Err(MrvError::BadFactorData(format!("dq.{}.{q}: min {min} is above max {max}", fuel.key())));
            }
            Ok(Range { min, max })
        };
        let one = |fuel: Fuel| -> Result<FuelRanges> {
            Ok(FuelRanges {
                ncv: range(fuel, "ncv_gj_per_t")?,
                carbon_content: range(fuel, "cc_tc_per_gj")?,
                oxidation_factor: range(fuel, "oxidation_factor")?,
                carbon_fraction: range(fuel, "carbon_fraction")?,
            })
        };
        Ok(PlausibleRanges { by_fuel: [one(Fuel::Coal)?, one(Fuel::NaturalGas)?, one(Fuel::FuelOil)?, one(Fuel::Diesel)?] })
    }

    pub fn get(&self, fuel: Fuel) -> &FuelRanges {
        &self.by_fuel[fuel as usize]
    }

    /// Overrides one fuel's ranges (e.g. calibrated per plant).
    pub fn set(&mut self, fuel: Fuel, ranges: FuelRanges) {
        self.by_fuel[fuel as usize] = ranges;
    }
}

/// Parameters of [`run_checks`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QualityParams {
    /// Consecutive months whose quantities differ by more than this factor (either way) are
    /// flagged. Must be > 1. Default [`DEFAULT_QUANTITY_JUMP_FACTOR`].
    pub quantity_jump_factor: Decimal,
    /// As above for NCV. Default [`DEFAULT_NCV_JUMP_FACTOR`].
    pub ncv_jump_factor: Decimal,
    /// A lab report dated more than this many days after the month end is late. Default from
    /// [`EVIDENCE_DEADLINE_KEY`] (40), else [`DEFAULT_MAX_REPORT_DELAY_DAYS`].
    pub max_report_delay_days: u32,
    pub ranges: PlausibleRanges,
}

impl QualityParams {
    /// Defaults for a reporting year: ranges and deadline valid on 31 Dec of `year`.
    pub fn defaults(factors: &FactorSet, year: i32) -> Result<QualityParams> {
        let on = Date::from_ymd(year, 12, 31).map_err(|e| MrvError::InvalidInput {
            name: "year",
            value: e.to_string(),
            rule: "must be a calendar year",
        })?;
        let max_report_delay_days = match factors.lookup(EVIDENCE_DEADLINE_KEY, on) {
            Ok(f) => u32::try_from(f.value)
                .map_err(|_| MrvError::BadFactorData(format!("{EVIDENCE_DEADLINE_KEY} = {} is not a whole number of days", f.value)))?,
            Err(MrvError::FactorNotFound { .. }) => DEFAULT_MAX_REPORT_DELAY_DAYS,
            Err(e) => return Err(e),
        };
        Ok(QualityParams {
            quantity_jump_factor: DEFAULT_QUANTITY_JUMP_FACTOR,
            ncv_jump_factor: DEFAULT_NCV_JUMP_FACTOR,
            max_report_delay_days,
            ranges: PlausibleRanges::from_factors(factors, on)?,
        })
    }
}

struct Out(Vec<Finding>);

impl Out {
    fn push(&mut self, check: &'static str, severity: Severity, r: (YearMonth, &str), value: String, expected: String, reason: String) {
        self.0.push(Finding { check, severity, month: r.0, source_stream: r.1.to_string(), value, expected, reason });
    }
}

/// `a` and `b` differ by more than `factor` either way (both > 0, exact: no division).
fn jumps(a: Decimal, b: Decimal, factor: Decimal) -> Result<bool> {
    if a.is_zero() || b.is_zero() {
        return Ok(false);
    }
    Ok(b > mul(a, factor, "jump bound")? || a > mul(b, factor, "jump bound")?)
}

/// Runs every check over `records`, which must all belong to the first record's entity and
/// unit and to `year` (otherwise refused). Findings are sorted: severity (critical first),
/// month, source stream, check.
pub fn run_checks(records: &[MonthlyRecord], year: i32, params: &QualityParams) -> Result<Vec<Finding>> {
    for (name, f) in [("quantity jump factor", params.quantity_jump_factor), ("NCV jump factor", params.ncv_jump_factor)] {
        if f <= Decimal::ONE {
            return Err(MrvError::InvalidInput { name, value: f.to_string(), rule: "must be greater than 1" });
        }
    }
    let mut out = Out(Vec::new());
    let Some(first) = records.first() else { return Ok(Vec::new()) };
    let mut streams: BTreeMap<&str, [Option<&MonthlyRecord>; 12]> = BTreeMap::new();
    let mut reports: BTreeMap<&str, Vec<(YearMonth, &str)>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.entity() != first.entity() || r.unit() != first.unit() || r.month().year() != year {
            return Err(MrvError::InvalidInput {
                name: "record",
                value: format!("record {i}: entity '{}', unit '{}', month {}", r.entity(), r.unit(), r.month()),
                rule: "quality checks run over one entity's unit for one year",
            });
        }
        let at = (r.month(), r.source_stream());
        let slot = &mut streams.entry(r.source_stream()).or_insert([None; 12])[r.month().index()];
        if slot.is_some() {
            out.push(
                DUPLICATE_RECORD,
                Severity::Critical,
                at,
                format!("record {i}"),
                "one record per stream and month".into(),
                "a second record for the same source stream and month: double counting or a replaced record".into(),
            );
            continue;
        }
        *slot = Some(r);
        check_record(r, params, &mut out)?;
        if let Some(lab) = r.measurement() {
            reports.entry(lab.report_id()).or_default().push(at);
        }
    }

    for (stream, months) in &streams {
        for m in 0..12 {
            let ym = YearMonth::new(year, m as u32 + 1)?;
            let Some(cur) = months[m] else {
                out.push(
                    MISSING_MONTH,
                    Severity::Warning,
                    (ym, stream),
                    "no record".into(),
                    "a record for every month".into(),
                    "the source stream has no monthly record for this month".into(),
                );
                continue;
            };
            let Some(prev) = m.checked_sub(1).and_then(|p| months[p]) else { continue };
            if jumps(prev.quantity_t(), cur.quantity_t(), params.quantity_jump_factor)? {
                out.push(
                    QUANTITY_JUMP,
                    Severity::Warning,
                    (ym, stream),
                    format!("{} t", cur.quantity_t()),
                    format!("within ×{} of {} t ({})", params.quantity_jump_factor, prev.quantity_t(), prev.month()),
                    "fuel quantity changed by more than the jump factor from the previous month".into(),
                );
            }
            if jumps(prev.ncv_gj_per_t(), cur.ncv_gj_per_t(), params.ncv_jump_factor)? {
                out.push(
                    NCV_JUMP,
                    Severity::Warning,
                    (ym, stream),
                    format!("{} GJ/t", cur.ncv_gj_per_t()),
                    format!("within ×{} of {} GJ/t ({})", params.ncv_jump_factor, prev.ncv_gj_per_t(), prev.month()),
                    "NCV changed by more than the jump factor from the previous month".into(),
                );
            }
        }
    }

    for (id, uses) in &reports {
        let first_month = uses[0].0;
        if uses.iter().all(|u| u.0 == first_month) {
            continue;
        }
        let list: Vec<String> = uses.iter().map(|(m, s)| format!("{m} '{s}'")).collect();
        for &at in uses {
            out.push(
                REUSED_REPORT,
                Severity::Critical,
                at,
                (*id).to_string(),
                "a separate lab report for each month".into(),
                format!("lab report used for several months ({}): monthly sampling may be faked from one test", list.join(", ")),
            );
        }
    }

    let mut v = out.0;
    v.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.month.cmp(&b.month))
            .then_with(|| a.source_stream.cmp(&b.source_stream))
            .then(a.check.cmp(b.check))
    });
    Ok(v)
}

fn check_record(r: &MonthlyRecord, p: &QualityParams, out: &mut Out) -> Result<()> {
    let at = (r.month(), r.source_stream());
    let ranges = p.ranges.get(r.fuel());
    let fuel = r.fuel();
    if !ranges.ncv.contains(r.ncv_gj_per_t()) {
        out.push(
            NCV_RANGE,
            Severity::Warning,
            at,
            format!("{} GJ/t", r.ncv_gj_per_t()),
            format!("{} GJ/t", ranges.ncv),
            format!("NCV outside the plausible range for {fuel}"),
        );
    }
    if !ranges.oxidation_factor.contains(r.oxidation_factor()) {
        out.push(
            OF_RANGE,
            Severity::Warning,
            at,
            r.oxidation_factor().to_string(),
            ranges.oxidation_factor.to_string(),
            format!("oxidation factor outside the plausible range for {fuel}"),
        );
    }
    let Some(lab) = r.measurement() else {
        out.push(
            DEFAULT_CARBON,
            Severity::Info,
            at,
            "not measured".into(),
            "a measured carbon content".into(),
            "no measured carbon content: the default high value may apply (CHEMLINKED)".into(),
        );
        return Ok(());
    };
    let cc = lab.cc_tc_per_gj();
    if !ranges.carbon_content.contains(cc) {
        out.push(
            CC_RANGE,
            Severity::Warning,
            at,
            format!("{cc} tC/GJ"),
            format!("{} tC/GJ", ranges.carbon_content),
            format!("measured carbon content outside the plausible range for {fuel}"),
        );
    }
    let fraction = mul(cc, r.ncv_gj_per_t(), "carbon content × NCV")?;
    if !ranges.carbon_fraction.contains(fraction) {
        out.push(
            CC_VS_NCV,
            Severity::Warning,
            at,
            format!("CC × NCV = {fraction} tC/t ({cc} tC/GJ × {} GJ/t)", r.ncv_gj_per_t()),
            format!("{} tC/t", ranges.carbon_fraction),
            "carbon content inconsistent with NCV: the implied element carbon is implausible (edited test report?)".into(),
        );
    }
    let (sample, report) = (lab.sample_date(), lab.report_date());
    if !r.month().contains(sample) {
        out.push(
            SAMPLE_OUTSIDE_MONTH,
            Severity::Critical,
            at,
            format!("sampled {sample}"),
            format!("{} to {}", r.month().first_day(), r.month().last_day()),
            format!("report {} was not sampled in the record's month: monthly sampling may be faked from a batch test", lab.report_id()),
        );
    }
    if report < sample {
        out.push(
            REPORT_BEFORE_SAMPLE,
            Severity::Critical,
            at,
            format!("reported {report}, sampled {sample}"),
            format!("report on or after {sample}"),
            format!("report {} is dated before its sample: back-dated report", lab.report_id()),
        );
    }
    let deadline = Date(r.month().last_day().0 + p.max_report_delay_days as i32);
    if report > deadline {
        out.push(
            LATE_REPORT,
            Severity::Warning,
            at,
            format!("reported {report}"),
            format!("on or before {deadline} ({} days after month end)", p.max_report_delay_days),
            format!("report {} is dated after the monthly evidence deadline", lab.report_id()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monthly::{Carbon, LabMeasurement, RecordFields};
    use crate::testgen::{clean_year, d, day, with};

    const STREAMS: &[(&str, Fuel)] =
        &[("coal-A", Fuel::Coal), ("coal-B", Fuel::Coal), ("gas", Fuel::NaturalGas), ("oil", Fuel::FuelOil), ("diesel", Fuel::Diesel)];

    fn params(year: i32) -> QualityParams {
        QualityParams::defaults(&FactorSet::builtin().unwrap(), year).unwrap()
    }

    /// Index of stream `s` (in STREAMS), month `m` (1-based) in a clean year.
    fn at(s: usize, m: usize) -> usize {
        s * 12 + m - 1
    }

    fn lab(r: &MonthlyRecord) -> LabMeasurement {
        r.measurement().unwrap().clone()
    }

    fn relab(f: &mut RecordFields, cc: Option<Decimal>, id: Option<&str>, report: Option<Date>, sample: Option<Date>) {
        let Carbon::Measured(l) = &f.carbon else { panic!("measured") };
        f.carbon = Carbon::Measured(
            LabMeasurement::new(
                cc.unwrap_or(l.cc_tc_per_gj()),
                id.unwrap_or(l.report_id()),
                report.unwrap_or(l.report_date()),
                sample.unwrap_or(l.sample_date()),
            )
            .unwrap(),
        );
    }

    /// Plants `change` at `idx`, runs the checks and returns the findings of `check`, asserting
    /// that every one of them is about `(month, stream)` of the planted record.
    fn planted(year: i32, idx: usize, check: &str, change: impl FnOnce(&mut RecordFields)) -> Vec<Finding> {
        let mut recs = clean_year(11, year, STREAMS);
        recs[idx] = with(&recs[idx], change);
        let all = run_checks(&recs, year, &params(year)).unwrap();
        let found: Vec<Finding> = all.into_iter().filter(|f| f.check == check).collect();
        assert!(!found.is_empty(), "{check} not found");
        for f in &found {
            assert_eq!((f.month, f.source_stream.as_str()), (recs[idx].month(), recs[idx].source_stream()), "{f:?}");
        }
        found
    }

    #[test]
    fn clean_generated_years_have_no_findings() {
        for seed in 0..50 {
            for year in [2021, 2022, 2023, 2024] {
                let recs = clean_year(seed, year, STREAMS);
                let findings = run_checks(&recs, year, &params(year)).unwrap();
                assert!(findings.is_empty(), "seed {seed} year {year}: {findings:#?}");
            }
        }
    }

    #[test]
    fn ncv_out_of_range() {
        let f = planted(2023, at(0, 5), NCV_RANGE, |x| x.ncv_gj_per_t = d("35"));
        assert_eq!((f[0].severity, f[0].value.as_str(), f[0].expected.as_str()), (Severity::Warning, "35 GJ/t", "[10, 32] GJ/t"));
    }

    #[test]
    fn carbon_content_out_of_range() {
        let f = planted(2023, at(2, 3), CC_RANGE, |x| relab(x, Some(d("0.0200")), None, None, None));
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].reason.contains("natural_gas"));
    }

    #[test]
    fn oxidation_factor_out_of_range() {
        let f = planted(2023, at(0, 8), OF_RANGE, |x| x.oxidation_factor = d("0.80"));
        assert_eq!(f[0].expected, "[0.90, 1]");
    }

    #[test]
    fn carbon_content_inconsistent_with_ncv() {
        // Gas: both within their own ranges, but CC × NCV = 0.0145 × 44 = 0.638 tC/t.
        let f = planted(2023, at(2, 12), CC_VS_NCV, |x| {
            x.ncv_gj_per_t = d("44");
            relab(x, Some(d("0.0145")), None, None, None)
        });
        assert!(f[0].value.starts_with("CC × NCV = 0.6380 tC/t"), "{}", f[0].value);
        // Coal: an edited low element carbon with a high NCV.
        let f = planted(2023, at(1, 12), CC_VS_NCV, |x| {
            x.ncv_gj_per_t = d("30");
            relab(x, Some(d("0.0305")), None, None, None)
        });
        assert_eq!(f[0].expected, "[0.25, 0.90] tC/t");
    }

    #[test]
    fn quantity_and_ncv_jumps() {
        let f = planted(2023, at(3, 12), QUANTITY_JUMP, |x| x.quantity_t *= d("4"));
        assert!(f[0].expected.starts_with("within ×3 of"), "{}", f[0].expected);
        // A spike also jumps back down the next month: both months flagged.
        let mut recs = clean_year(3, 2023, STREAMS);
        recs[at(0, 4)] = with(&recs[at(0, 4)], |x| x.quantity_t *= d("5"));
        let jumps: Vec<_> = run_checks(&recs, 2023, &params(2023))
            .unwrap()
            .into_iter()
            .filter(|f| f.check == QUANTITY_JUMP)
            .map(|f| f.month.month())
            .collect();
        assert_eq!(jumps, vec![4, 5]);
        // NCV: coal 19-22 GJ/t in clean data; 30 is in range but a jump.
        planted(2023, at(0, 12), NCV_JUMP, |x| x.ncv_gj_per_t = d("30"));
        // Zero quantity (unit offline) is not a jump.
        let mut recs = clean_year(3, 2023, STREAMS);
        recs[at(0, 4)] = with(&recs[at(0, 4)], |x| x.quantity_t = d("0"));
        assert!(run_checks(&recs, 2023, &params(2023)).unwrap().is_empty());
    }

    #[test]
    fn jump_factor_is_a_parameter() {
        let mut recs = clean_year(5, 2023, STREAMS);
        recs[at(0, 7)] = with(&recs[at(0, 7)], |x| x.quantity_t *= d("2"));
        let count = |p: &QualityParams| run_checks(&recs, 2023, p).unwrap().iter().filter(|f| f.check == QUANTITY_JUMP).count();
        let mut p = params(2023);
        assert_eq!(count(&p), 0);
        p.quantity_jump_factor = d("1.5");
        assert!(count(&p) >= 1);
        p.quantity_jump_factor = d("1");
        assert!(run_checks(&recs, 2023, &p).unwrap_err().to_string().contains("greater than 1"));
    }

    #[test]
    fn missing_months() {
        let mut recs = clean_year(2, 2023, STREAMS);
        recs.remove(at(4, 10));
        recs.remove(at(1, 1));
        let f: Vec<_> = run_checks(&recs, 2023, &params(2023)).unwrap();
        let missing: Vec<_> = f.iter().filter(|f| f.check == MISSING_MONTH).map(|f| (f.month.month(), f.source_stream.as_str())).collect();
        assert_eq!(missing, vec![(1, "coal-B"), (10, "diesel")]);
        assert_eq!(f.len(), 2, "{f:#?}");
    }

    #[test]
    fn duplicate_record() {
        let mut recs = clean_year(2, 2023, STREAMS);
        recs.push(recs[at(0, 3)].clone());
        let f = run_checks(&recs, 2023, &params(2023)).unwrap();
        // Only the duplicate: the same report id twice in one month is not a reuse across months.
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!((f[0].check, f[0].severity), (DUPLICATE_RECORD, Severity::Critical));
    }

    #[test]
    fn reused_lab_report_across_months() {
        let mut recs = clean_year(2, 2023, STREAMS);
        let id = lab(&recs[at(0, 2)]).report_id().to_string();
        // The batch test of February also "covers" March and April (sampled in each month).
        for m in [3, 4] {
            recs[at(0, m)] = with(&recs[at(0, m)], |x| relab(x, None, Some(&id), None, None));
        }
        let f = run_checks(&recs, 2023, &params(2023)).unwrap();
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(f.iter().all(|f| f.check == REUSED_REPORT && f.severity == Severity::Critical && f.value == id));
        assert_eq!(f.iter().map(|f| f.month.month()).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert!(f[0].reason.contains("2023-02 'coal-A', 2023-03 'coal-A', 2023-04 'coal-A'"), "{}", f[0].reason);
        // One report for two streams in the same month is not a reuse across months.
        let mut recs = clean_year(2, 2023, STREAMS);
        let id = lab(&recs[at(0, 2)]).report_id().to_string();
        recs[at(1, 2)] = with(&recs[at(1, 2)], |x| relab(x, None, Some(&id), None, None));
        assert!(run_checks(&recs, 2023, &params(2023)).unwrap().is_empty());
    }

    #[test]
    fn sample_outside_month_from_batch_test() {
        let f = planted(2023, at(0, 6), SAMPLE_OUTSIDE_MONTH, |x| relab(x, None, None, None, Some(day(2023, 3, 15))));
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].expected, "2023-06-01 to 2023-06-30");
    }

    #[test]
    fn back_dated_report() {
        // Reported before the sample was taken.
        let f = planted(2023, at(0, 9), REPORT_BEFORE_SAMPLE, |x| relab(x, None, None, Some(day(2023, 9, 2)), Some(day(2023, 9, 20))));
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(f[0].reason.contains("back-dated"));
    }

    #[test]
    fn late_report_with_parameterised_delay() {
        // Month end 2023-05-31 + 40 days = 2023-07-10.
        let f = planted(2023, at(3, 5), LATE_REPORT, |x| relab(x, None, None, Some(day(2023, 7, 11)), None));
        assert!(f[0].expected.starts_with("on or before 2023-07-10"), "{}", f[0].expected);
        let mut recs = clean_year(11, 2023, STREAMS);
        recs[at(3, 5)] = with(&recs[at(3, 5)], |x| relab(x, None, None, Some(day(2023, 7, 10)), None));
        assert!(run_checks(&recs, 2023, &params(2023)).unwrap().is_empty());
        let mut p = params(2023);
        p.max_report_delay_days = 30;
        assert_eq!(run_checks(&recs, 2023, &p).unwrap()[0].check, LATE_REPORT);
        // No deadline in the data before 2023: the 40-day fallback.
        assert_eq!(params(2022).max_report_delay_days, DEFAULT_MAX_REPORT_DELAY_DAYS);
        assert_eq!(params(2024).max_report_delay_days, 40);
    }

    #[test]
    fn default_carbon_content_is_info() {
        let f = planted(2022, at(0, 11), DEFAULT_CARBON, |x| x.carbon = Carbon::Missing);
        assert_eq!(f[0].severity, Severity::Info);
    }

    #[test]
    fn findings_are_sorted_for_the_queue() {
        let mut recs = clean_year(9, 2023, STREAMS);
        recs[at(0, 11)] = with(&recs[at(0, 11)], |x| x.carbon = Carbon::Missing);
        recs[at(2, 8)] = with(&recs[at(2, 8)], |x| x.ncv_gj_per_t = d("60"));
        recs[at(4, 9)] = with(&recs[at(4, 9)], |x| relab(x, None, None, None, Some(day(2023, 1, 5))));
        recs[at(1, 1)] = with(&recs[at(1, 1)], |x| relab(x, None, None, None, Some(day(2022, 12, 30))));
        let f = run_checks(&recs, 2023, &params(2023)).unwrap();
        let sev: Vec<_> = f.iter().map(|f| f.severity).collect();
        let mut sorted = sev.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(sev, sorted);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].month.month(), 1);
        assert_eq!(f[1].month.month(), 9);
        assert_eq!(f.last().unwrap().severity, Severity::Info);
    }

    #[test]
    fn refuses_records_of_another_unit_or_year() {
        let mut recs = clean_year(1, 2023, STREAMS);
        recs[5] = with(&recs[5], |x| x.unit = "UNIT-2".into());
        assert!(run_checks(&recs, 2023, &params(2023)).unwrap_err().to_string().contains("one entity's unit"));
        let recs = clean_year(1, 2023, STREAMS);
        assert!(run_checks(&recs, 2024, &params(2024)).is_err());
        assert!(run_checks(&[], 2023, &params(2023)).unwrap().is_empty());
    }

    #[test]
    fn ranges_come_from_the_data_and_can_be_overridden() {
        let mut p = params(2023);
        let coal = *p.ranges.get(Fuel::Coal);
        assert_eq!(coal.carbon_content, Range { min: d("0.0240"), max: d("0.0340") });
        let mut recs = clean_year(4, 2023, STREAMS);
        recs[0] = with(&recs[0], |x| x.ncv_gj_per_t = d("21.5"));
        p.ranges.set(Fuel::Coal, FuelRanges { ncv: Range { min: d("22"), max: d("25") }, ..coal });
        assert!(run_checks(&recs, 2023, &p).unwrap().iter().any(|f| f.check == NCV_RANGE));
    }
}
