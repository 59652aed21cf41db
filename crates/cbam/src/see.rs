//! Embedded emissions of an installation's goods (R956 Annex IV; IR2547 Annex III).
//!
//! - Attribution (F5): `AttrEm_dir = DirEm* + Em_H,imp − Em_H,exp + WG_imp − WG_exp − Em_el,exp`,
//!   where `DirEm*` is the process's share of the installation's direct emissions (entered per
//!   process, or as a fraction of the installation's total, e.g. its verified MRV figure).
//! - Indirect (F6): `Em_indir = electricity consumed (MWh) × EF (t CO2/MWh)`.
//! - Simple and complex goods (F1–F3): `SEE = (AttrEm + Σ M_i × SEE_i) / AL`, recursively over
//!   the installation's own processes, each channel (direct, indirect) separately.
//! - Precursors of EU or exempt origin count zero (F4), for emissions and benchmarks alike.
//! - What counts (IR2547 Annex I pt 3.1): a good's own indirect emissions count only where its
//!   sector counts them (cement, fertilisers, sinter); a precursor brings what counts for the
//!   precursor itself, so steel made from sinter includes the sinter's indirect emissions and
//!   ammonia made from hydrogen excludes the hydrogen's.
//! - Free-allocation benchmark per tonne (IR2620 Annex pt 3, Eq. 4–5, before the CBAM factor and
//!   CSCF): Column A of the process plus `Σ m_i × benchmark_i`, where a precursor's benchmark is
//!   the producer's value, else Column B for its CN and route; own processes recurse.
//!
//! Division is done last, once per channel, so that exact inputs give exact results.

use crate::error::{CbamError, Result};
use crate::num::{self, serde_exact};
use crate::reference::{Counts, Origin, Reference, Sector};
use ets_core::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Most processes and purchased precursors in one installation (a limit on everything).
pub const PROCESSES_MAX: usize = 1_000;
pub const PRECURSORS_PER_PROCESS_MAX: usize = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationInput {
    pub installation: InstallationInfo,
    pub reporting_period: Period,
    /// The installation's direct emissions (t CO2e), e.g. its verified MRV figure. Needed when a
    /// process gives its share; when given, the processes must add up to it.
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub direct_emissions_t: Option<Decimal>,
    /// Actual emission factor of the electricity consumed; default: the country's grid default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electricity_ef: Option<ElectricityEf>,
    pub processes: Vec<ProcessInput>,
    #[serde(default)]
    pub purchased_precursors: Vec<PurchasedPrecursor>,
    /// Carbon price effectively paid for the installation's direct emissions (net of free
    /// allocation and rebates), e.g. from [`crate::carbon_price::carbon_price_paid`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_price: Option<CarbonPricePaid>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationInfo {
    pub id: String,
    pub name: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    pub operator: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub un_locode: String,
    #[serde(default)]
    pub contact_email: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub start: Date,
    pub end: Date,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectricityEf {
    #[serde(deserialize_with = "serde_exact::exact")]
    pub t_co2_per_mwh: Decimal,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessInput {
    pub id: String,
    /// 8-digit CN code of the good the process produces.
    pub cn: String,
    /// IR2620 route (C, D, E, ...), where the benchmark depends on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(deserialize_with = "serde_exact::exact")]
    pub activity_level_t: Decimal,
    /// DirEm*: direct emissions attributed to the process (t CO2e).
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub direct_emissions_t: Option<Decimal>,
    /// Or its share (0..1) of the installation's direct emissions.
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub share_of_installation: Option<Decimal>,
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub heat_imported_t: Option<Decimal>,
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub heat_exported_t: Option<Decimal>,
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub waste_gas_imported_t: Option<Decimal>,
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub waste_gas_exported_t: Option<Decimal>,
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub electricity_exported_t: Option<Decimal>,
    /// Electricity consumed (MWh).
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub electricity_mwh: Option<Decimal>,
    #[serde(default)]
    pub precursors: Vec<PrecursorUse>,
}

/// Mass of a precursor used over the period: from an own process or a purchased one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecursorUse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchased: Option<String>,
    #[serde(deserialize_with = "serde_exact::exact")]
    pub mass_t: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchasedPrecursor {
    pub id: String,
    pub cn: String,
    /// Country of production (ISO alpha-2), or UNKNOWN.
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default)]
    pub installation: String,
    /// Actual SEE from the producer's communication (t CO2e/t).
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub see_direct: Option<Decimal>,
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub see_indirect: Option<Decimal>,
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub electricity_mwh_per_t: Option<Decimal>,
    /// The producer's free-allocation benchmark per tonne (its communication), else Column B.
    #[serde(default, deserialize_with = "serde_exact::exact_opt", skip_serializing_if = "Option::is_none")]
    pub benchmark_t_per_t: Option<Decimal>,
    /// Actual values are usable only with a verification report (cbam.md §3.1); otherwise the
    /// default value is used.
    #[serde(default)]
    pub verified: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarbonPricePaid {
    /// Effective price per tonne of the installation's direct emissions, in `currency`.
    #[serde(deserialize_with = "serde_exact::exact")]
    pub per_t_co2e: Decimal,
    pub currency: String,
    /// EUR per unit of `currency` (yearly average rate).
    #[serde(deserialize_with = "serde_exact::exact")]
    pub eur_per_unit: Decimal,
    #[serde(default)]
    pub instrument: String,
    #[serde(default)]
    pub legal_act: String,
}

/// Options that the sources leave open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeeParams {
    /// Apply the default-value mark-up of this year to precursor default values. Default: none
    /// (the mark-up is set by year of import, which a communication does not know; [?]).
    pub precursor_markup_year: Option<i32>,
}

/// Per-tonne values of a good or precursor (t CO2e/t, MWh/t).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Specific {
    /// Direct channel (F2 over direct emissions).
    pub direct: Decimal,
    /// Indirect channel (F2 over electricity emissions).
    pub indirect: Decimal,
    /// What counts for CBAM (see the module doc).
    pub counted: Decimal,
    /// Direct emissions of this installation's own processes only (purchased precursors left
    /// out): what the installation's carbon price covers.
    pub own_direct: Decimal,
    pub electricity_mwh: Decimal,
    /// Free-allocation benchmark per tonne before the CBAM factor and CSCF; `None` when a
    /// benchmark in the chain is not in the data.
    pub benchmark: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrecursorLine {
    pub name: String,
    /// `own`, `purchased`, `eu_origin` (counts zero), `exempt_origin` (counts zero).
    pub kind: &'static str,
    pub cn: String,
    pub mass_t: Decimal,
    pub per_t: Specific,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessResult {
    pub id: String,
    pub cn: String,
    pub sector: Sector,
    pub counts: Counts,
    pub route: Option<String>,
    pub activity_level_t: Decimal,
    pub attributed_direct_t: Decimal,
    pub electricity_mwh: Decimal,
    pub indirect_t: Decimal,
    pub see: Specific,
    pub precursors: Vec<PrecursorLine>,
    /// Carbon price due per tonne of product, in the price's currency and in EUR.
    pub carbon_price_per_t: Option<Decimal>,
    pub carbon_price_eur_per_t: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PurchasedResult {
    pub id: String,
    pub cn: String,
    pub country: String,
    /// `actual`, `default`, `eu_origin`, `exempt_origin`.
    pub basis: &'static str,
    pub per_t: Specific,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallationResult {
    pub electricity_ef: Decimal,
    pub electricity_ef_source: String,
    pub processes: Vec<ProcessResult>,
    pub purchased: Vec<PurchasedResult>,
    /// Things the operator should know (unverified precursor data replaced by defaults,
    /// benchmarks missing from the data, ...).
    pub warnings: Vec<String>,
    pub data_version: String,
}

impl InstallationResult {
    pub fn process(&self, id: &str) -> Option<&ProcessResult> {
        self.processes.iter().find(|p| p.id == id)
    }
}

fn opt0(v: Option<Decimal>, field: &str) -> Result<Decimal> {
    num::non_negative(field, v.unwrap_or(Decimal::ZERO))
}

/// Computes every process's SEE and benchmark. Errors name the field.
pub fn compute(input: &InstallationInput, reference: &Reference, params: SeeParams) -> Result<InstallationResult> {
    if input.processes.is_empty() {
        return Err(CbamError::input("processes", "no production process: give at least one"));
    }
    if input.processes.len() > PROCESSES_MAX || input.purchased_precursors.len() > PROCESSES_MAX {
        return Err(CbamError::input("processes", format!("more than {PROCESSES_MAX} processes or purchased precursors")));
    }
    if input.reporting_period.end < input.reporting_period.start {
        return Err(CbamError::input("reporting_period.end", "is before reporting_period.start"));
    }
    let country = input.installation.country.trim();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(CbamError::input("installation.country", format!("'{country}' is not a two-letter ISO country code")));
    }
    let mut warnings = Vec::new();
    let (ef, ef_source) = match &input.electricity_ef {
        Some(e) => (num::non_negative("electricity_ef.t_co2_per_mwh", e.t_co2_per_mwh)?, e.source.clone()),
        None => {
            let v = reference.electricity_ef(country);
            let which = if reference.electricity_ef.contains_key(country) { country } else { "OTHER" };
            (v, format!("default grid factor {which} (IR2621 Annex II, data {})", reference.version))
        }
    };
    if let Some(total) = input.direct_emissions_t {
        num::non_negative("direct_emissions_t", total)?;
    }

    // Purchased precursors first: they do not depend on anything.
    let mut purchased = Vec::with_capacity(input.purchased_precursors.len());
    for (i, pp) in input.purchased_precursors.iter().enumerate() {
        let at = format!("purchased_precursors[{i}]");
        if input.purchased_precursors[..i].iter().any(|o| o.id == pp.id) {
            return Err(CbamError::input(format!("{at}.id"), format!("'{}' is listed twice", pp.id)));
        }
        purchased.push(resolve_purchased(pp, reference, params, &at, &mut warnings)?);
    }

    // Attributed direct emissions per process, checked against the installation total.
    let mut base = Vec::with_capacity(input.processes.len());
    for (i, p) in input.processes.iter().enumerate() {
        let at = format!("processes[{i}]");
        if p.id.trim().is_empty() {
            return Err(CbamError::input(format!("{at}.id"), "is empty"));
        }
        if input.processes[..i].iter().any(|o| o.id == p.id) {
            return Err(CbamError::input(format!("{at}.id"), format!("'{}' is listed twice", p.id)));
        }
        let b = match (p.direct_emissions_t, p.share_of_installation) {
            (Some(v), None) => num::non_negative(&format!("{at}.direct_emissions_t"), v)?,
            (None, Some(s)) => {
                if s < Decimal::ZERO || s > Decimal::ONE {
                    return Err(CbamError::input(format!("{at}.share_of_installation"), format!("{s} must be between 0 and 1")));
                }
                let total = input.direct_emissions_t.ok_or_else(|| {
                    CbamError::input(format!("{at}.share_of_installation"), "a share needs the installation's direct_emissions_t")
                })?;
                num::mul(s, total, "share of installation emissions")?
            }
            (Some(_), Some(_)) => {
                return Err(CbamError::input(
                    format!("{at}.direct_emissions_t"),
                    "give direct_emissions_t or share_of_installation, not both",
                ))
            }
            (None, None) => {
                return Err(CbamError::input(
                    format!("{at}.direct_emissions_t"),
                    "missing: give the process's direct emissions (t CO2e) or its share_of_installation",
                ))
            }
        };
        base.push(b);
    }
    if let Some(total) = input.direct_emissions_t {
        let sum = base.iter().try_fold(Decimal::ZERO, |a, b| num::add(a, *b, "attribution sum"))?;
        if sum != total {
            return Err(CbamError::input(
                "processes",
                format!("the processes' direct emissions add up to {sum} t but the installation's direct_emissions_t is {total} t: attribute all of it"),
            ));
        }
    }

    // SEE per process, in dependency order, with cycle detection.
    let n = input.processes.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on the path, 2 done
    let mut results: Vec<Option<ProcessResult>> = vec![None; n];
    for start in 0..n {
        visit(start, input, reference, &purchased, &base, ef, &mut state, &mut results, &mut Vec::new(), &mut warnings)?;
    }
    let mut processes: Vec<ProcessResult> = results.into_iter().map(|r| r.expect("every process visited")).collect();
    for p in &mut processes {
        if p.see.benchmark.is_none() && p.sector != Sector::Electricity {
            warnings.push(format!(
                "process '{}' (CN {}): a CBAM benchmark in its chain is not in the data {}; the free-allocation adjustment needs it",
                p.id, p.cn, reference.version
            ));
        }
        if let Some(cp) = &input.carbon_price {
            num::non_negative("carbon_price.per_t_co2e", cp.per_t_co2e)?;
            num::non_negative("carbon_price.eur_per_unit", cp.eur_per_unit)?;
            let per_t = num::mul(cp.per_t_co2e, p.see.own_direct, "carbon price per tonne")?;
            p.carbon_price_per_t = Some(num::money(per_t));
            p.carbon_price_eur_per_t = Some(num::money(num::mul(per_t, cp.eur_per_unit, "carbon price in EUR")?));
        }
    }
    Ok(InstallationResult {
        electricity_ef: ef,
        electricity_ef_source: ef_source,
        processes,
        purchased,
        warnings,
        data_version: reference.version.clone(),
    })
}

fn resolve_purchased(
    pp: &PurchasedPrecursor,
    reference: &Reference,
    params: SeeParams,
    at: &str,
    warnings: &mut Vec<String>,
) -> Result<PurchasedResult> {
    let scope = reference.scope(&format!("{at}.cn"), &pp.cn)?;
    let country = pp.country.trim();
    let zero = |basis| PurchasedResult {
        id: pp.id.clone(),
        cn: scope.cn.clone(),
        country: country.to_string(),
        basis,
        per_t: Specific { benchmark: Some(Decimal::ZERO), ..Specific::default() },
    };
    match reference.origin(country) {
        Origin::Eu => return Ok(zero("eu_origin")),
        Origin::Exempt => return Ok(zero("exempt_origin")),
        Origin::Third => {}
    }
    if !(country == "UNKNOWN" || (country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))) {
        return Err(CbamError::input(format!("{at}.country"), format!("'{country}' is not a two-letter ISO code or UNKNOWN")));
    }
    let counts = scope.counts();
    let column_b = || reference.benchmark(&format!("{at}.route"), &scope.cn, pp.route.as_deref()).ok().and_then(|b| b.column_b);
    if let (Some(direct), true) = (pp.see_direct, pp.verified) {
        let direct = num::non_negative(&format!("{at}.see_direct"), direct)?;
        let el = opt0(pp.electricity_mwh_per_t, &format!("{at}.electricity_mwh_per_t"))?;
        let indirect = match pp.see_indirect {
            Some(v) => num::non_negative(&format!("{at}.see_indirect"), v)?,
            // The producer's electricity at its country's default factor.
            None => num::mul(el, reference.electricity_ef(country), "precursor indirect")?,
        };
        let counted = if counts.includes_indirect() { num::add(direct, indirect, "precursor counted")? } else { direct };
        let benchmark = match pp.benchmark_t_per_t {
            Some(b) => Some(num::non_negative(&format!("{at}.benchmark_t_per_t"), b)?),
            None => column_b(),
        };
        return Ok(PurchasedResult {
            id: pp.id.clone(),
            cn: scope.cn.clone(),
            country: country.into(),
            basis: "actual",
            per_t: Specific { direct, indirect, counted, own_direct: Decimal::ZERO, electricity_mwh: el, benchmark },
        });
    }
    if pp.see_direct.is_some() {
        warnings.push(format!(
            "purchased precursor '{}': actual values without a verification report cannot be used; its default value is used (cbam.md §3.1)",
            pp.id
        ));
    }
    let Some(dv) = reference.default_value(&scope.cn, country) else {
        return Err(CbamError::input(
            format!("{at}.see_direct"),
            format!(
                "missing precursor data: no verified actual values (see_direct with verified: true) and no default value for CN {} from {country} in the reference data {}",
                scope.cn, reference.version
            ),
        ));
    };
    let factor = match params.precursor_markup_year {
        Some(y) => num::add(Decimal::ONE, reference.markup(scope.sector(), y), "mark-up")?,
        None => Decimal::ONE,
    };
    let total = num::mul(dv.total, factor, "precursor default")?;
    let direct = num::mul(dv.direct.unwrap_or(dv.total), factor, "precursor default")?;
    let indirect = num::mul(dv.indirect.unwrap_or(Decimal::ZERO), factor, "precursor default")?;
    let counted = if counts.includes_indirect() { total } else { direct };
    let route = pp.route.clone().or_else(|| dv.route.clone());
    let benchmark = match pp.benchmark_t_per_t {
        Some(b) => Some(b),
        None => reference.benchmark(&format!("{at}.route"), &scope.cn, route.as_deref()).ok().and_then(|b| b.column_b),
    };
    Ok(PurchasedResult {
        id: pp.id.clone(),
        cn: scope.cn.clone(),
        country: country.into(),
        basis: "default",
        per_t: Specific { direct, indirect, counted, own_direct: Decimal::ZERO, electricity_mwh: Decimal::ZERO, benchmark },
    })
}

#[allow(clippy::too_many_arguments)]
fn visit(
    i: usize,
    input: &InstallationInput,
    reference: &Reference,
    purchased: &[PurchasedResult],
    base: &[Decimal],
    ef: Decimal,
    state: &mut [u8],
    results: &mut [Option<ProcessResult>],
    path: &mut Vec<usize>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match state[i] {
        2 => return Ok(()),
        1 => {
            let from = path.iter().position(|&j| j == i).expect("on the path");
            let mut cycle: Vec<String> = path[from..].iter().map(|&j| input.processes[j].id.clone()).collect();
            cycle.push(input.processes[i].id.clone());
            return Err(CbamError::Cycle { path: cycle });
        }
        _ => {}
    }
    state[i] = 1;
    path.push(i);
    let p = &input.processes[i];
    let at = format!("processes[{i}]");
    if p.precursors.len() > PRECURSORS_PER_PROCESS_MAX {
        return Err(CbamError::input(format!("{at}.precursors"), format!("more than {PRECURSORS_PER_PROCESS_MAX} precursors")));
    }
    // Own precursor processes first.
    let mut own_refs = Vec::with_capacity(p.precursors.len());
    for (j, u) in p.precursors.iter().enumerate() {
        let f = format!("{at}.precursors[{j}]");
        match (&u.process, &u.purchased) {
            (Some(q), None) => {
                let k = input.processes.iter().position(|o| &o.id == q).ok_or_else(|| {
                    CbamError::input(format!("{f}.process"), format!("missing precursor data: no process '{q}' in this installation"))
                })?;
                visit(k, input, reference, purchased, base, ef, state, results, path, warnings)?;
                own_refs.push(Some(k));
            }
            (None, Some(_)) => own_refs.push(None),
            _ => return Err(CbamError::input(f, "name either the own process or the purchased precursor it comes from")),
        }
    }
    let scope = reference.scope(&format!("{at}.cn"), &p.cn)?;
    let al = num::positive(&format!("{at}.activity_level_t"), p.activity_level_t)?;
    let attributed = {
        let mut a = base[i];
        a = num::add(a, opt0(p.heat_imported_t, &format!("{at}.heat_imported_t"))?, "attribution")?;
        a = num::sub(a, opt0(p.heat_exported_t, &format!("{at}.heat_exported_t"))?, "attribution")?;
        a = num::add(a, opt0(p.waste_gas_imported_t, &format!("{at}.waste_gas_imported_t"))?, "attribution")?;
        a = num::sub(a, opt0(p.waste_gas_exported_t, &format!("{at}.waste_gas_exported_t"))?, "attribution")?;
        a = num::sub(a, opt0(p.electricity_exported_t, &format!("{at}.electricity_exported_t"))?, "attribution")?;
        if a.is_sign_negative() && !a.is_zero() {
            return Err(CbamError::input(
                format!("{at}.direct_emissions_t"),
                format!("attributed direct emissions come out negative ({a} t): exports of heat, waste gas or electricity exceed the process's emissions"),
            ));
        }
        a
    };
    let el = opt0(p.electricity_mwh, &format!("{at}.electricity_mwh"))?;
    let indirect_t = num::mul(el, ef, "indirect emissions")?;
    let counts = scope.counts();

    let mut n_dir = attributed;
    let mut n_ind = indirect_t;
    let mut n_counted = if counts.includes_indirect() { num::add(attributed, indirect_t, "counted")? } else { attributed };
    let mut n_own = attributed;
    let mut n_el = el;
    let column_a = if scope.sector() == Sector::Electricity {
        Some(Decimal::ZERO)
    } else {
        reference.benchmark(&format!("{at}.route"), &scope.cn, p.route.as_deref()).ok().and_then(|b| b.column_a)
    };
    let mut n_bm = column_a.map(|a| num::mul(a, al, "benchmark")).transpose()?;
    let mut lines = Vec::with_capacity(p.precursors.len());
    for (j, u) in p.precursors.iter().enumerate() {
        let f = format!("{at}.precursors[{j}]");
        let m = num::non_negative(&format!("{f}.mass_t"), u.mass_t)?;
        let (name, kind, cn, per_t) = match own_refs[j] {
            Some(k) => {
                let r = results[k].as_ref().expect("visited");
                let mut per_t = r.see;
                if per_t.benchmark.is_none() {
                    // The chain below has a benchmark not in the data: Column B of the
                    // precursor's CN and route (IR2620 Eq. 5, as for a producer without a value).
                    per_t.benchmark = reference.benchmark("route", &r.cn, r.route.as_deref()).ok().and_then(|b| b.column_b);
                    if per_t.benchmark.is_some() {
                        warnings.push(format!(
                            "process '{}': the benchmark of its precursor '{}' is Column B of CN {} (a benchmark further up its chain is not in the data)",
                            p.id, r.id, r.cn
                        ));
                    }
                }
                (r.id.clone(), "own", r.cn.clone(), per_t)
            }
            None => {
                let id = u.purchased.as_deref().expect("checked above");
                let pr = purchased.iter().find(|x| x.id == id).ok_or_else(|| {
                    CbamError::input(format!("{f}.purchased"), format!("missing precursor data: '{id}' is not in purchased_precursors"))
                })?;
                let kind = match pr.basis {
                    "eu_origin" => "eu_origin",
                    "exempt_origin" => "exempt_origin",
                    _ => "purchased",
                };
                (pr.id.clone(), kind, pr.cn.clone(), pr.per_t)
            }
        };
        n_dir = num::add(n_dir, num::mul(m, per_t.direct, "precursor direct")?, "precursor direct")?;
        n_ind = num::add(n_ind, num::mul(m, per_t.indirect, "precursor indirect")?, "precursor indirect")?;
        n_counted = num::add(n_counted, num::mul(m, per_t.counted, "precursor counted")?, "precursor counted")?;
        n_own = num::add(n_own, num::mul(m, per_t.own_direct, "precursor own")?, "precursor own")?;
        n_el = num::add(n_el, num::mul(m, per_t.electricity_mwh, "precursor electricity")?, "precursor electricity")?;
        n_bm = match (n_bm, per_t.benchmark) {
            (Some(a), Some(b)) => Some(num::add(a, num::mul(m, b, "precursor benchmark")?, "precursor benchmark")?),
            _ => None,
        };
        lines.push(PrecursorLine { name, kind, cn, mass_t: m, per_t });
    }
    let see = Specific {
        direct: num::div(n_dir, al, "SEE direct")?,
        indirect: num::div(n_ind, al, "SEE indirect")?,
        counted: num::div(n_counted, al, "SEE counted")?,
        own_direct: num::div(n_own, al, "SEE own")?,
        electricity_mwh: num::div(n_el, al, "specific electricity")?,
        benchmark: n_bm.map(|b| num::div(b, al, "benchmark per tonne")).transpose()?,
    };
    results[i] = Some(ProcessResult {
        id: p.id.clone(),
        cn: scope.cn.clone(),
        sector: scope.sector(),
        counts,
        route: p.route.clone(),
        activity_level_t: al,
        attributed_direct_t: attributed,
        electricity_mwh: el,
        indirect_t,
        see,
        precursors: lines,
        carbon_price_per_t: None,
        carbon_price_eur_per_t: None,
    });
    state[i] = 2;
    path.pop();
    Ok(())
}
