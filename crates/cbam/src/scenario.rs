//! Scenarios: the liability per tonne and per year from 2026 to 2034 for one product, on
//! default values against actual data, with the domestic carbon price at several levels: the
//! question a Chinese exporter asks. Every figure comes from [`crate::liability::declare`] on a
//! one-line declaration per year, so scenarios and declarations cannot disagree.

use crate::error::{CbamError, Result};
use crate::liability::{declare, ActualData, Declaration, ImportLine, LiabilityParams, Method};
use crate::num;
use crate::reference::Reference;
use ets_core::Date;
use rust_decimal::Decimal;
use serde::Serialize;

/// Most domestic price levels in one scenario.
pub const LEVELS_MAX: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioInput {
    pub cn: String,
    pub country: String,
    pub route: Option<String>,
    /// Tonnes exported to the EU each year.
    pub net_mass_t: Decimal,
    /// Actual data (SEE counted, benchmark per tonne, own direct SEE the domestic price covers).
    pub actual: Option<ScenarioActual>,
    /// EU certificate price assumed for every year (EUR).
    pub certificate_price_eur: Decimal,
    /// Effective domestic carbon prices paid per tonne of direct emissions (CNY), net of free allocation.
    pub domestic_prices_cny: Vec<Decimal>,
    pub eur_per_cny: Decimal,
    pub first_year: i32,
    pub last_year: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScenarioActual {
    pub see_t_per_t: Decimal,
    pub benchmark_t_per_t: Decimal,
    /// Direct SEE of the installation's own processes (what its carbon price covers).
    pub own_direct_t_per_t: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScenarioCase {
    /// `default`, or `actual @ CNY x`.
    pub case: String,
    pub certificates_per_t: Decimal,
    pub eur_per_t: Decimal,
    pub certificates: Decimal,
    pub eur: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScenarioYear {
    pub year: i32,
    pub cbam_factor: Decimal,
    pub markup: Decimal,
    pub cases: Vec<ScenarioCase>,
}

pub fn run(input: &ScenarioInput, reference: &Reference, params: &LiabilityParams) -> Result<Vec<ScenarioYear>> {
    reference.check_year("first_year", input.first_year)?;
    reference.check_year("last_year", input.last_year)?;
    if input.last_year < input.first_year {
        return Err(CbamError::input("last_year", "is before first_year"));
    }
    num::positive("net_mass_t", input.net_mass_t)?;
    num::positive("certificate_price_eur", input.certificate_price_eur)?;
    num::non_negative("eur_per_cny", input.eur_per_cny)?;
    if input.domestic_prices_cny.len() > LEVELS_MAX {
        return Err(CbamError::input("domestic_prices_cny", format!("more than {LEVELS_MAX} levels")));
    }
    for (i, p) in input.domestic_prices_cny.iter().enumerate() {
        num::non_negative(&format!("domestic_prices_cny[{i}]"), *p)?;
    }
    let mut out = Vec::new();
    for year in input.first_year..=input.last_year {
        let on = Date::from_ymd(year, 3, 15).expect("a valid date");
        let mut p = params.clone();
        let period = crate::liability::price_period(year, on);
        p.prices.insert(period, input.certificate_price_eur);
        // The exporter's product alone: the importer threshold is not the question here.
        p.threshold_mass_t = Some(Decimal::ZERO);
        let line = |method, actual| ImportLine {
            id: "scenario".into(),
            cn: input.cn.clone(),
            country: input.country.clone(),
            net_mass_t: input.net_mass_t,
            imported_on: on,
            method,
            route: input.route.clone(),
            actual,
            priced_on: None,
        };
        let one = |l: ImportLine| declare(&Declaration { importer: "scenario".into(), year, lines: vec![l] }, reference, &p);
        let mut cases = Vec::new();
        let mut factor = Decimal::ZERO;
        let mut markup = Decimal::ZERO;
        let mut push = |name: String, r: crate::liability::DeclarationResult| -> Result<()> {
            factor = r.lines[0].cbam_factor;
            if r.lines[0].method == Method::Default {
                markup = r.lines[0].markup;
            }
            cases.push(ScenarioCase {
                case: name,
                certificates_per_t: num::div(r.certificates, input.net_mass_t, "per tonne")?,
                eur_per_t: num::money(num::div(r.cost_eur, input.net_mass_t, "per tonne")?),
                certificates: r.certificates,
                eur: r.cost_eur,
            });
            Ok(())
        };
        match one(line(Method::Default, None)) {
            Ok(r) => push("default".into(), r)?,
            Err(e) if input.actual.is_none() => return Err(e),
            Err(_) => {} // no default value for this product: actual cases only
        }
        if let Some(a) = input.actual {
            let levels: Vec<Decimal> =
                if input.domestic_prices_cny.is_empty() { vec![Decimal::ZERO] } else { input.domestic_prices_cny.clone() };
            for level in levels {
                let cp_eur = num::mul(num::mul(level, a.own_direct_t_per_t, "carbon price")?, input.eur_per_cny, "carbon price EUR")?;
                let actual = ActualData {
                    see_t_per_t: a.see_t_per_t,
                    benchmark_t_per_t: Some(a.benchmark_t_per_t),
                    carbon_price_eur_per_t: Some(cp_eur),
                };
                let r = one(line(Method::Actual, Some(actual)))?;
                push(format!("actual @ CNY {level}"), r)?;
            }
        }
        out.push(ScenarioYear { year, cbam_factor: factor, markup, cases });
    }
    Ok(out)
}
