//! EU ETS monitoring (MRR, Impl. Reg. 2018/2066) and verification materiality (AVR, 2018/2067).
//!
//! Method id [`METHOD_ID`], version [`METHOD_VERSION`]. Sources (mechanisms.md section 5,
//! worked example T12): `[S68]` standard methodology, `[S65]` installation categories,
//! `[S67]` activity-data uncertainty tiers, `[S69]` AVR materiality; mass balance from
//! cbam.md row F7 `[IR2547]` and **marked uncertain** (MRR Art. 25 not confirmed).
//!
//! All thresholds and percentages are read from the factor data, valid on a given date.

use crate::error::{MrvError, Result};
use crate::factors::{FactorSet, Status};
use crate::num::{self, div, mul, product, round_result};
use ets_core::Date;
use rust_decimal::Decimal;

pub const METHOD_ID: &str = "eu.mrr.standard";
pub const METHOD_VERSION: u32 = 1;
/// Status of the mass-balance method: the formula is not confirmed in the domain sources.
pub const MASS_BALANCE_STATUS: Status = Status::Uncertain;

const GJ_PER_TJ: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

/// Activity data in TJ from a fuel quantity and its NCV in GJ per unit: `q × NCV / 1000`.
/// Exact (division by a power of ten).
pub fn activity_data_tj(fuel_quantity: Decimal, ncv_gj_per_unit: Decimal) -> Result<Decimal> {
    num::non_negative("fuel quantity", fuel_quantity)?;
    num::positive("NCV (GJ per unit)", ncv_gj_per_unit)?;
    Ok(div(mul(fuel_quantity, ncv_gj_per_unit, "fuel quantity × NCV")?, GJ_PER_TJ, "GJ → TJ")?.normalize())
}

/// Standard combustion `Em = AD × EF × OF`, AD in TJ, EF in tCO2/TJ. `[S68]`
pub fn combustion(ad_tj: Decimal, ef_t_per_tj: Decimal, oxidation_factor: Decimal) -> Result<Decimal> {
    num::non_negative("activity data (TJ)", ad_tj)?;
    num::non_negative("emission factor (tCO2/TJ)", ef_t_per_tj)?;
    num::fraction("oxidation factor", oxidation_factor)?;
    Ok(round_result(product(&[ad_tj, ef_t_per_tj, oxidation_factor], "AD × EF × OF")?))
}

/// Standard combustion from fuel quantity and NCV: `Em = (q × NCV / 1000) × EF × OF`. `[S68]`
pub fn combustion_from_fuel(
    fuel_quantity: Decimal,
    ncv_gj_per_unit: Decimal,
    ef_t_per_tj: Decimal,
    oxidation_factor: Decimal,
) -> Result<Decimal> {
    combustion(activity_data_tj(fuel_quantity, ncv_gj_per_unit)?, ef_t_per_tj, oxidation_factor)
}

/// Process emissions `Em = AD × EF × CF`, CF (conversion factor) a fraction in [0, 1]. `[S68]`
pub fn process(activity_data: Decimal, ef: Decimal, conversion_factor: Decimal) -> Result<Decimal> {
    num::non_negative("activity data", activity_data)?;
    num::non_negative("emission factor", ef)?;
    num::fraction("conversion factor", conversion_factor)?;
    Ok(round_result(product(&[activity_data, ef, conversion_factor], "AD × EF × CF")?))
}

/// Direction of a mass-balance stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Input,
    /// Counted negative.
    Output,
}

/// One mass-balance source stream: material quantity (t) and carbon content (tC/t, fraction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassStream {
    pub flow: Flow,
    pub quantity_t: Decimal,
    pub carbon_fraction: Decimal,
}

/// **Uncertain method** ([`MASS_BALANCE_STATUS`]): `Em = f × Σ(AD_i × C_i)`, inputs positive,
/// outputs negative, with `f` (3.664 tCO2/tC) read from the factor data (`[IR2547]`).
/// A negative net result is refused.
pub fn mass_balance(streams: &[MassStream], factors: &FactorSet, on: Date) -> Result<Decimal> {
    let f = factors.lookup("eu.mrr.mass_balance_co2_per_c", on)?.value;
    let mut carbon = Decimal::ZERO;
    for s in streams {
        num::non_negative("mass-balance quantity (t)", s.quantity_t)?;
        num::fraction("mass-balance carbon content (tC/t)", s.carbon_fraction)?;
        let c = mul(s.quantity_t, s.carbon_fraction, "AD × C")?;
        carbon = match s.flow {
            Flow::Input => num::add(carbon, c, "mass-balance carbon sum")?,
            Flow::Output => num::sub(carbon, c, "mass-balance carbon sum")?,
        };
    }
    if carbon.is_sign_negative() && !carbon.is_zero() {
        return Err(MrvError::InvalidInput {
            name: "mass-balance net carbon (t)",
            value: carbon.to_string(),
            rule: "outputs exceed inputs; net carbon must not be negative",
        });
    }
    Ok(round_result(mul(f, carbon, "3.664 × Σ AD × C")?))
}

/// Installation category (MRR Art. 19). `[S65]`
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Category {
    A,
    B,
    C,
}

/// A ≤ 50,000 t; B ≤ 500,000 t; C above (annual average verified emissions). `[S65]`
pub fn category(annual_emissions_t: Decimal, factors: &FactorSet, on: Date) -> Result<Category> {
    num::non_negative("annual emissions (tCO2e)", annual_emissions_t)?;
    let a_max = factors.lookup("eu.mrr.category_a_max", on)?.value;
    let b_max = factors.lookup("eu.mrr.category_b_max", on)?.value;
    Ok(if annual_emissions_t <= a_max {
        Category::A
    } else if annual_emissions_t <= b_max {
        Category::B
    } else {
        Category::C
    })
}

/// AVR materiality level as a fraction: 5% for categories A and B, 2% for C. `[S69]`
pub fn materiality_fraction(category: Category, factors: &FactorSet, on: Date) -> Result<Decimal> {
    let key = match category {
        Category::A | Category::B => "eu.avr.materiality_cat_ab",
        Category::C => "eu.avr.materiality_cat_c",
    };
    Ok(factors.lookup(key, on)?.value)
}

/// Materiality threshold in tCO2e: total reported emissions × materiality level. `[S69]`
pub fn materiality_threshold(total_emissions_t: Decimal, category: Category, factors: &FactorSet, on: Date) -> Result<Decimal> {
    num::non_negative("total reported emissions", total_emissions_t)?;
    let pct = materiality_fraction(category, factors, on)?;
    Ok(round_result(mul(total_emissions_t, pct, "emissions × materiality")?))
}

/// Activity-data tiers 1 to 4 (fuels and mass-balance streams; not flaring). `[S67]`
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Tier {
    T1 = 1,
    T2 = 2,
    T3 = 3,
    T4 = 4,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::T1, Tier::T2, Tier::T3, Tier::T4];

    fn key(self) -> &'static str {
        match self {
            Tier::T1 => "eu.mrr.ad_uncertainty_tier1",
            Tier::T2 => "eu.mrr.ad_uncertainty_tier2",
            Tier::T3 => "eu.mrr.ad_uncertainty_tier3",
            Tier::T4 => "eu.mrr.ad_uncertainty_tier4",
        }
    }
}

/// Maximum permissible uncertainty (± fraction) of a tier. `[S67]`
pub fn tier_max_uncertainty(tier: Tier, factors: &FactorSet, on: Date) -> Result<Decimal> {
    Ok(factors.lookup(tier.key(), on)?.value)
}

/// Whether an activity-data uncertainty (± fraction, 0.021 = 2.1%) meets a tier (≤ its limit).
pub fn meets_tier(uncertainty: Decimal, tier: Tier, factors: &FactorSet, on: Date) -> Result<bool> {
    num::non_negative("activity-data uncertainty", uncertainty)?;
    Ok(uncertainty <= tier_max_uncertainty(tier, factors, on)?)
}

/// The highest tier the uncertainty meets, or `None` if it misses tier 1.
pub fn highest_tier_met(uncertainty: Decimal, factors: &FactorSet, on: Date) -> Result<Option<Tier>> {
    let mut best = None;
    for tier in Tier::ALL {
        if meets_tier(uncertainty, tier, factors, on)? {
            best = Some(tier);
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn on() -> Date {
        Date::parse("2024-12-31").unwrap()
    }

    #[test]
    fn worked_example_t12() {
        let f = FactorSet::builtin().unwrap();
        let ef = f.lookup_single("ipcc2006.ef.natural_gas").unwrap().value;
        let ad = activity_data_tj(d("50000000"), d("0.036")).unwrap();
        assert_eq!(ad, d("1800"));
        let em = combustion(ad, ef, d("1.0")).unwrap();
        assert_eq!(em, d("100980"));
        assert_eq!(combustion_from_fuel(d("50000000"), d("0.036"), d("56.1"), d("1.0")).unwrap(), d("100980"));
        let cat = category(em, &f, on()).unwrap();
        assert_eq!(cat, Category::B);
        assert_eq!(materiality_fraction(cat, &f, on()).unwrap(), d("0.05"));
        assert_eq!(materiality_threshold(em, cat, &f, on()).unwrap(), d("5049"));
        assert!(meets_tier(d("0.021"), Tier::T3, &f, on()).unwrap());
        assert!(!meets_tier(d("0.021"), Tier::T4, &f, on()).unwrap());
        assert_eq!(highest_tier_met(d("0.021"), &f, on()).unwrap(), Some(Tier::T3));
    }

    #[test]
    fn category_boundaries_and_materiality() {
        let f = FactorSet::builtin().unwrap();
        assert_eq!(category(d("50000"), &f, on()).unwrap(), Category::A);
        assert_eq!(category(d("50000.000001"), &f, on()).unwrap(), Category::B);
        assert_eq!(category(d("500000"), &f, on()).unwrap(), Category::B);
        assert_eq!(category(d("500001"), &f, on()).unwrap(), Category::C);
        assert_eq!(materiality_threshold(d("1000000"), Category::C, &f, on()).unwrap(), d("20000"));
        assert_eq!(materiality_threshold(d("40000"), Category::A, &f, on()).unwrap(), d("2000"));
        assert!(category(d("-1"), &f, on()).is_err());
    }

    #[test]
    fn tier_limits_inclusive() {
        let f = FactorSet::builtin().unwrap();
        assert_eq!(highest_tier_met(d("0.075"), &f, on()).unwrap(), Some(Tier::T1));
        assert_eq!(highest_tier_met(d("0.05"), &f, on()).unwrap(), Some(Tier::T2));
        assert_eq!(highest_tier_met(d("0.015"), &f, on()).unwrap(), Some(Tier::T4));
        assert_eq!(highest_tier_met(d("0.0751"), &f, on()).unwrap(), None);
        assert!(highest_tier_met(d("-0.01"), &f, on()).is_err());
    }

    #[test]
    fn process_emissions() {
        // 10,000 t CaCO3 × 0.440 tCO2/t × CF 1.0 = 4,400 t (hand-computed).
        assert_eq!(process(d("10000"), d("0.440"), d("1")).unwrap(), d("4400"));
        assert_eq!(process(d("10000"), d("0.440"), d("0.95")).unwrap(), d("4180"));
        let err = process(d("10000"), d("0.44"), d("1.2")).unwrap_err().to_string();
        assert!(err.contains("conversion factor"), "{err}");
    }

    #[test]
    fn mass_balance_uncertain_method() {
        let f = FactorSet::builtin().unwrap();
        assert_eq!(f.lookup("eu.mrr.mass_balance_co2_per_c", on()).unwrap().status, Status::Uncertain);
        // Inputs 1,000 t × 0.85 = 850 tC; output 200 t × 0.05 = 10 tC; net 840 tC × 3.664 = 3,077.76 t.
        let streams = [
            MassStream { flow: Flow::Input, quantity_t: d("1000"), carbon_fraction: d("0.85") },
            MassStream { flow: Flow::Output, quantity_t: d("200"), carbon_fraction: d("0.05") },
        ];
        assert_eq!(mass_balance(&streams, &f, on()).unwrap(), d("3077.76"));
        let net_negative = [MassStream { flow: Flow::Output, quantity_t: d("1"), carbon_fraction: d("0.5") }];
        let err = mass_balance(&net_negative, &f, on()).unwrap_err().to_string();
        assert!(err.contains("outputs exceed inputs"), "{err}");
        let bad = [MassStream { flow: Flow::Input, quantity_t: d("-1"), carbon_fraction: d("0.5") }];
        assert!(mass_balance(&bad, &f, on()).is_err());
    }

    #[test]
    fn combustion_rejects_invalid_inputs() {
        assert_eq!(
            combustion(d("100"), d("56.1"), d("1.5")).unwrap_err().to_string(),
            "invalid oxidation factor = 1.5: must be between 0 and 1 inclusive"
        );
        assert!(combustion(d("-100"), d("56.1"), d("1")).unwrap_err().to_string().contains("must not be negative"));
        assert!(activity_data_tj(d("100"), d("0")).is_err());
        // Other IPCC defaults: 10 TJ of other bituminous coal, OF 0.99 -> 936.54 t.
        assert_eq!(combustion(d("10"), d("94.6"), d("0.99")).unwrap(), d("936.54"));
    }
}
