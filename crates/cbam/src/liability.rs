//! The financial obligation of an importer's year (R956 Art. 6(2)(c), 9, 21, 22, 31; R2083;
//! IR2620; IR2548).
//!
//! Per line: `certificates = max(0, M × SEE − FAA − Reduction_CP)`, where
//! - SEE is the actual value, or the default value × (1 + mark-up of the year);
//! - `FAA = M × CBAM_y × CSCF_y × BM`: BM is Column B (default values), or the operator's
//!   benchmark per tonne (Column A plus precursors, see [`crate::see`]) for actual values; zero
//!   for electricity. The CBAM factor multiplies the benchmark, never the embedded emissions;
//! - `Reduction_CP = M × carbon price paid (EUR/t of good) / reference price` (DRAFT9 Art. 5–6),
//!   only with actual values;
//! - the floor at zero is per line (cbam.md §4.1 recommends it; the sources do not say).
//!
//! The 50 t threshold (Art. 2a): the net mass of cement, fertilisers, iron and steel and
//! aluminium in the year; at or below it those goods owe nothing; electricity and hydrogen
//! always owe. Prices: quarter of importation in 2026, week (of purchase; by default the week of
//! importation) from 2027. Quarterly holding from 2027: a share of the embedded emissions
//! since 1 January on default values without mark-up, net of the free-allocation adjustment.

use crate::error::{CbamError, Result};
use crate::num::{self, serde_exact, CertificateRounding};
use crate::reference::{Reference, Sector};
use ets_core::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most lines in one declaration.
pub const LINES_MAX: usize = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Default,
    Actual,
}

/// Actual values from the operator's communication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualData {
    /// SEE that counts (t CO2e per tonne of good, or per MWh).
    #[serde(deserialize_with = "serde_exact::exact")]
    pub see_t_per_t: Decimal,
    /// The good's free-allocation benchmark per tonne before CBAM factor and CSCF: Column A
    /// for a simple good, Column A plus Σ m_i × benchmark_i for a complex one.
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub benchmark_t_per_t: Option<Decimal>,
    /// Carbon price effectively paid per tonne of good, in EUR, net of free allocation and
    /// rebates (the communication's "carbon price due").
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub carbon_price_eur_per_t: Option<Decimal>,
}

impl ActualData {
    /// From a computed process of an installation.
    pub fn from_process(p: &crate::see::ProcessResult) -> ActualData {
        ActualData { see_t_per_t: p.see.counted, benchmark_t_per_t: p.see.benchmark, carbon_price_eur_per_t: p.carbon_price_eur_per_t }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLine {
    pub id: String,
    pub cn: String,
    /// Country of origin (ISO alpha-2).
    pub country: String,
    /// Net mass in tonnes (MWh for electricity).
    #[serde(deserialize_with = "serde_exact::exact")]
    pub net_mass_t: Decimal,
    pub imported_on: Date,
    pub method: Method,
    /// IR2620 route, where the benchmark depends on it and the default value does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<ActualData>,
    /// Day the certificates are bought (2027 on: its week's price); default: `imported_on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priced_on: Option<Date>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub importer: String,
    pub year: i32,
    pub lines: Vec<ImportLine>,
}

/// Parameters the sources leave open, each with its documented default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiabilityParams {
    /// Cross-sectoral correction factor; default: the reference data's (1, a placeholder).
    pub cscf: Option<Decimal>,
    /// Certificate prices by period (`2026-Q2`, `2027-W05`) beyond those in the data.
    pub prices: BTreeMap<String, Decimal>,
    /// Reference price for converting a carbon price paid (DRAFT9: the year's average CBAM
    /// price); default: the line's certificate price.
    pub reference_price_eur: Option<Decimal>,
    /// Rounding of the declaration's total certificates; default none.
    pub rounding: CertificateRounding,
    /// Threshold mass override (t); default: the data's 50 t.
    pub threshold_mass_t: Option<Decimal>,
    /// Holding share override; default: the data's (0 in 2026, 0.5 from 2027).
    pub holding_share: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineResult {
    pub id: String,
    pub cn: String,
    pub sector: Sector,
    pub country: String,
    pub method: Method,
    pub net_mass_t: Decimal,
    /// SEE used (t CO2e/t), after the mark-up for default values.
    pub see_t_per_t: Decimal,
    pub markup: Decimal,
    pub embedded_t: Decimal,
    pub cbam_factor: Decimal,
    pub cscf: Decimal,
    /// The benchmark per tonne and which column it is (`A+precursors`, `B`, `none` for electricity).
    pub benchmark_t_per_t: Decimal,
    pub benchmark_column: &'static str,
    pub sefa_t_per_t: Decimal,
    pub faa_t: Decimal,
    pub carbon_price_reduction_t: Decimal,
    /// After the floor at zero.
    pub certificates: Decimal,
    /// The line came out negative and was floored.
    pub floored: bool,
    /// Below the importer threshold: nothing owed.
    pub exempt: bool,
    pub price_period: String,
    pub price_eur: Decimal,
    pub cost_eur: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Threshold {
    pub mass_counted_t: Decimal,
    pub threshold_t: Decimal,
    /// The counted goods are exempt (mass at or below the threshold).
    pub exempt: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarterHolding {
    pub quarter: u32,
    /// Embedded emissions since 1 January on default values without mark-up.
    pub embedded_default_t: Decimal,
    pub faa_t: Decimal,
    pub share: Decimal,
    /// Certificates to hold at the end of the quarter.
    pub required: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeclarationResult {
    pub importer: String,
    pub year: i32,
    pub threshold: Threshold,
    pub lines: Vec<LineResult>,
    pub embedded_t: Decimal,
    pub faa_t: Decimal,
    pub carbon_price_reduction_t: Decimal,
    /// Σ per-line certificates at full precision.
    pub certificates: Decimal,
    /// After the declaration-level rounding parameter.
    pub certificates_rounded: Decimal,
    pub rounding: CertificateRounding,
    pub cost_eur: Decimal,
    /// Quarter-end holdings (empty when no holding applies); `Err` text when a default value
    /// needed for it is missing.
    pub holding: std::result::Result<Vec<QuarterHolding>, String>,
    pub data_version: String,
}

/// ISO 8601 week of a day: (ISO year, week 1..=53).
pub fn iso_week(d: Date) -> (i32, u32) {
    let weekday = (d.0 + 3).rem_euclid(7); // 1970-01-01 was a Thursday; 0 = Monday
    let thursday = Date(d.0 - weekday + 3);
    let (y, _, _) = thursday.ymd();
    let jan1 = Date::from_ymd(y, 1, 1).expect("a valid date");
    (y, ((thursday.0 - jan1.0) / 7 + 1) as u32)
}

/// The certificate-price period of a day in a declaration year: `YYYY-Qn` in 2026, the ISO
/// week `YYYY-Www` from 2027.
pub fn price_period(year: i32, on: Date) -> String {
    let (y, m, _) = on.ymd();
    if year <= 2026 {
        format!("{y}-Q{}", (m - 1) / 3 + 1)
    } else {
        let (wy, w) = iso_week(on);
        format!("{wy}-W{w:02}")
    }
}

struct Prepared {
    sector: Sector,
    threshold_mass: bool,
    see: Decimal,
    markup: Decimal,
    benchmark: Decimal,
    column: &'static str,
    cp_eur_per_t: Decimal,
    price_period: String,
    price: Decimal,
    cn: String,
}

fn prepare(line: &ImportLine, year: i32, reference: &Reference, params: &LiabilityParams, at: &str) -> Result<Prepared> {
    let scope = reference.scope(&format!("{at}.cn"), &line.cn)?;
    let sector = scope.sector();
    num::non_negative(&format!("{at}.net_mass_t"), line.net_mass_t)?;
    let (y, _, _) = line.imported_on.ymd();
    if y != year {
        return Err(CbamError::input(format!("{at}.imported_on"), format!("{} is not in the declaration year {year}", line.imported_on)));
    }
    let country = line.country.trim();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(CbamError::input(format!("{at}.country"), format!("'{country}' is not a two-letter ISO country code")));
    }
    if reference.origin(country) != crate::reference::Origin::Third {
        return Err(CbamError::input(format!("{at}.country"), format!("goods originating in {country} are not subject to CBAM")));
    }
    let rules = reference.sector_rules(sector);
    let (see, markup, benchmark, column, cp) = match (line.method, &line.actual) {
        (Method::Default, Some(_)) => {
            return Err(CbamError::input(format!("{at}.actual"), "method is default: remove the actual values, or set method to actual"))
        }
        (Method::Actual, None) => {
            return Err(CbamError::input(
                format!("{at}.actual"),
                "method is actual but no actual values are given (see_t_per_t, benchmark_t_per_t)",
            ))
        }
        (Method::Default, None) => {
            let dv = reference.default_value(&scope.cn, country).ok_or_else(|| {
                CbamError::input(
                    format!("{at}.cn"),
                    format!(
                        "no default value for CN {} from {country} in the reference data {}: use actual values",
                        scope.cn, reference.version
                    ),
                )
            })?;
            let markup = reference.markup(sector, year);
            let see = num::mul(dv.total, num::add(Decimal::ONE, markup, "mark-up")?, "default SEE")?;
            let (benchmark, column) = if sector == Sector::Electricity {
                (Decimal::ZERO, "none")
            } else {
                let route = line.route.as_deref().or(dv.route.as_deref());
                let b = reference.benchmark(&format!("{at}.route"), &scope.cn, route)?;
                let v = b.column_b.ok_or_else(|| {
                    CbamError::input(format!("{at}.cn"), format!("no Column B benchmark for CN {} in the data", scope.cn))
                })?;
                (v, "B")
            };
            (see, markup, benchmark, column, Decimal::ZERO)
        }
        (Method::Actual, Some(a)) => {
            let see = num::non_negative(&format!("{at}.actual.see_t_per_t"), a.see_t_per_t)?;
            let (benchmark, column) = if sector == Sector::Electricity {
                (Decimal::ZERO, "none")
            } else {
                let b = a.benchmark_t_per_t.ok_or_else(|| {
                    CbamError::input(
                        format!("{at}.actual.benchmark_t_per_t"),
                        "missing: give the good's benchmark per tonne from the operator's communication (Column A, plus its precursors' benchmarks for a complex good)",
                    )
                })?;
                (num::non_negative(&format!("{at}.actual.benchmark_t_per_t"), b)?, "A+precursors")
            };
            let cp = num::non_negative(&format!("{at}.actual.carbon_price_eur_per_t"), a.carbon_price_eur_per_t.unwrap_or_default())?;
            (see, Decimal::ZERO, benchmark, column, cp)
        }
    };
    let period = price_period(year, line.priced_on.unwrap_or(line.imported_on));
    let price = params.prices.get(&period).copied().or_else(|| reference.certificate_price(&period)).ok_or_else(|| {
        CbamError::input(
            format!("{at}.imported_on"),
            format!(
                "no certificate price for {period} in the reference data {} (not published there): give it as a parameter ({period}=EUR)",
                reference.version
            ),
        )
    })?;
    Ok(Prepared {
        sector,
        threshold_mass: rules.threshold_mass,
        see,
        markup,
        benchmark,
        column,
        cp_eur_per_t: cp,
        price_period: period,
        price,
        cn: scope.cn,
    })
}

/// Computes a declaration. Every line is checked before anything is computed; the first bad
/// line's field is named.
pub fn declare(decl: &Declaration, reference: &Reference, params: &LiabilityParams) -> Result<DeclarationResult> {
    let year = reference.check_year("year", decl.year)?;
    if decl.lines.len() > LINES_MAX {
        return Err(CbamError::input("lines", format!("more than {LINES_MAX} lines")));
    }
    let cbam_factor = reference.cbam_factor("year", year)?;
    let cscf = match params.cscf {
        Some(v) => num::non_negative("cscf", v)?,
        None => reference.parameter("cscf", year)?.value,
    };
    let relief = num::mul(cbam_factor, cscf, "CBAM factor × CSCF")?;
    let threshold_t = match params.threshold_mass_t {
        Some(v) => num::non_negative("threshold_mass_t", v)?,
        None => reference.parameter("threshold_mass_t", year)?.value,
    };
    if let Some(p) = params.reference_price_eur {
        num::positive("reference_price_eur", p)?;
    }
    let mut prepared = Vec::with_capacity(decl.lines.len());
    let mut ids = std::collections::HashSet::with_capacity(decl.lines.len());
    let mut mass_counted = Decimal::ZERO;
    for (i, line) in decl.lines.iter().enumerate() {
        let at = format!("lines[{i}]");
        if !line.id.is_empty() && !ids.insert(line.id.as_str()) {
            return Err(CbamError::input(format!("{at}.id"), format!("'{}' is used twice", line.id)));
        }
        let p = prepare(line, year, reference, params, &at)?;
        if p.threshold_mass {
            mass_counted = num::add(mass_counted, line.net_mass_t, "threshold mass")?;
        }
        prepared.push(p);
    }
    let exempt_goods = mass_counted <= threshold_t;
    let mut lines = Vec::with_capacity(prepared.len());
    let (mut embedded_sum, mut faa_sum, mut red_sum, mut cert_sum, mut cost_sum) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for (line, p) in decl.lines.iter().zip(prepared) {
        let m = line.net_mass_t;
        let exempt = exempt_goods && p.threshold_mass;
        let embedded = num::mul(m, p.see, "embedded emissions")?;
        let sefa = num::mul(relief, p.benchmark, "SEFA")?;
        let faa = num::mul(m, sefa, "FAA")?;
        let reference_price = params.reference_price_eur.unwrap_or(p.price);
        let reduction = if p.cp_eur_per_t.is_zero() {
            Decimal::ZERO
        } else {
            num::div(num::mul(m, p.cp_eur_per_t, "carbon price paid")?, reference_price, "carbon price reduction")?
        };
        let raw = num::sub(num::sub(embedded, faa, "certificates")?, reduction, "certificates")?;
        let floored = raw < Decimal::ZERO;
        let certificates = if exempt || floored { Decimal::ZERO } else { raw };
        let cost = num::money(num::mul(certificates, p.price, "cost")?);
        if !exempt {
            embedded_sum = num::add(embedded_sum, embedded, "total")?;
            faa_sum = num::add(faa_sum, faa, "total")?;
            red_sum = num::add(red_sum, reduction, "total")?;
        }
        cert_sum = num::add(cert_sum, certificates, "total")?;
        cost_sum = num::add(cost_sum, cost, "total")?;
        lines.push(LineResult {
            id: line.id.clone(),
            cn: p.cn,
            sector: p.sector,
            country: line.country.trim().to_string(),
            method: line.method,
            net_mass_t: m,
            see_t_per_t: p.see.normalize(),
            markup: p.markup,
            embedded_t: embedded.normalize(),
            cbam_factor,
            cscf,
            benchmark_t_per_t: p.benchmark,
            benchmark_column: p.column,
            sefa_t_per_t: sefa.normalize(),
            faa_t: faa.normalize(),
            carbon_price_reduction_t: reduction.normalize(),
            certificates: certificates.normalize(),
            floored: floored && !exempt,
            exempt,
            price_period: p.price_period,
            price_eur: p.price,
            cost_eur: cost,
        });
    }
    let holding = holding(decl, year, reference, params, relief, exempt_goods);
    Ok(DeclarationResult {
        importer: decl.importer.clone(),
        year,
        threshold: Threshold { mass_counted_t: mass_counted, threshold_t, exempt: exempt_goods },
        lines,
        embedded_t: embedded_sum.normalize(),
        faa_t: faa_sum.normalize(),
        carbon_price_reduction_t: red_sum.normalize(),
        certificates: cert_sum.normalize(),
        certificates_rounded: params.rounding.apply(cert_sum).normalize(),
        rounding: params.rounding,
        cost_eur: cost_sum,
        holding,
        data_version: reference.version.clone(),
    })
}

/// Quarter-end holdings (Art. 22(2) as amended): share × Σ since 1 January of
/// max(0, M × default SEE without mark-up − M × CBAM × CSCF × Column B).
fn holding(
    decl: &Declaration,
    year: i32,
    reference: &Reference,
    params: &LiabilityParams,
    relief: Decimal,
    exempt_goods: bool,
) -> std::result::Result<Vec<QuarterHolding>, String> {
    let share = match params.holding_share {
        Some(s) => s,
        None => reference.parameter("holding_share", year).map_err(|e| e.to_string())?.value,
    };
    if share.is_zero() {
        return Ok(Vec::new());
    }
    let mut per_quarter = [(Decimal::ZERO, Decimal::ZERO); 4];
    for (i, line) in decl.lines.iter().enumerate() {
        let scope = reference.scope("cn", &line.cn).map_err(|e| e.to_string())?;
        if exempt_goods && reference.sector_rules(scope.sector()).threshold_mass {
            continue;
        }
        let dv = reference.default_value(&scope.cn, line.country.trim()).ok_or_else(|| {
            format!("lines[{i}]: no default value for CN {} from {} (the holding is computed on defaults)", scope.cn, line.country)
        })?;
        let bm = if scope.sector() == Sector::Electricity {
            Decimal::ZERO
        } else {
            let route = line.route.as_deref().or(dv.route.as_deref());
            reference
                .benchmark("route", &scope.cn, route)
                .ok()
                .and_then(|b| b.column_b)
                .ok_or_else(|| format!("lines[{i}]: no Column B benchmark"))?
        };
        let q = ((line.imported_on.ymd().1 - 1) / 3) as usize;
        let e = line.net_mass_t.checked_mul(dv.total).ok_or("overflow")?;
        let f = line.net_mass_t.checked_mul(relief).and_then(|v| v.checked_mul(bm)).ok_or("overflow")?;
        per_quarter[q].0 += e;
        per_quarter[q].1 += f;
    }
    let mut out = Vec::with_capacity(4);
    let (mut e, mut f) = (Decimal::ZERO, Decimal::ZERO);
    for (q, (eq, fq)) in per_quarter.iter().enumerate() {
        e += *eq;
        f += *fq;
        let net = (e - f).max(Decimal::ZERO);
        out.push(QuarterHolding { quarter: q as u32 + 1, embedded_default_t: e, faa_t: f, share, required: net * share });
    }
    Ok(out)
}
