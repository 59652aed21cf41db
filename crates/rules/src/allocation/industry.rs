//! National steel, cement and aluminium allocation (china-ets.md §2.6, `[QH-IND]`,
//! `[DRAFT2526]`).
//!
//! - 2024 vintage: allocation equals verified emissions.
//! - 2026 draft (taken to apply to 2025 too, U): `A = E × (1 + α)`, with the unit's deviation
//!   from the sector's balance value `X = (BP − I) / BP` and `α = slope·X` inside the band
//!   (−20% < X < 20%), `+bound` at or above it, `−bound` at or below its negative (0.15, 20%,
//!   3%: α is continuous). Special cases and small units get `A = E`.
//! - The balance value BP of a sector is the intensity at which the sector's allocation equals
//!   its emissions: `Σ E_i·α_i(BP) = 0`. `α_i` only grows with BP, so the root is unique up to a
//!   flat stretch; between two consecutive breakpoints (`BP = I_i/(1 ∓ band)`) the membership
//!   of every unit is fixed and the equation is linear in 1/BP:
//!   `BP = slope·Σ_p E_i·I_i / (slope·Σ_p E_i + bound·(Σ_n E_i − Σ_m E_i))`. [`balance_value`]
//!   tries each stretch and keeps the root that lies in it: exact, no iteration. The published
//!   BP is rounded to the rulebook's places before it is used.

use crate::dec;
use crate::num::{floor_tonnes, round_to, Rounding};
use crate::RuleError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum IndustryMethod {
    /// A = verified emissions (2024 vintage).
    VerifiedEmissions,
    /// A = E × (1 + α(X)) around a solved balance value.
    BalanceValue {
        #[serde(deserialize_with = "dec::exact")]
        slope: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        band: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        bound: Decimal,
        /// Places the published balance value is rounded to (half up).
        balance_value_dp: u32,
        /// Units verified below this get A = E (26,000 t in the 2026 draft).
        #[serde(deserialize_with = "dec::exact")]
        small_unit_threshold_t: Decimal,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndustryRules {
    pub method: IndustryMethod,
    /// Pre-allocation as a share of the previous year's verified emissions (none for 2024).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub pre_allocation_share: Option<Decimal>,
    pub rounding: Rounding,
}

/// One allocation unit (a steel producer, a clinker line, an electrolysis process).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndustryUnit {
    pub unit: String,
    pub entity: String,
    /// Sector: the balance value is solved per sector.
    pub sector: String,
    pub verified_t: Decimal,
    /// Intensity I in the sector's definition (tCO2 per t of its product).
    pub intensity: Decimal,
    /// A listed special case (white clinker, hydrogen-rich furnace, new or closed unit, ...): A = E.
    #[serde(default)]
    pub special_case: bool,
    #[serde(default)]
    pub previous_verified_t: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IndustryAllocation {
    pub unit: String,
    pub entity: String,
    pub sector: String,
    /// X and α, if the unit is in the intensity scheme.
    pub deviation: Option<Decimal>,
    pub adjustment: Option<Decimal>,
    pub final_t: u64,
    pub pre_allocated_t: u64,
    pub true_up_t: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IndustryResult {
    /// Balance value per sector, as published (rounded).
    pub balance_values: BTreeMap<String, Decimal>,
    pub units: Vec<IndustryAllocation>,
}

/// α(X) for the rules' slope, band and bound.
pub fn adjustment(x: Decimal, slope: Decimal, band: Decimal, bound: Decimal) -> Decimal {
    if x >= band {
        bound
    } else if x <= -band {
        -bound
    } else {
        slope * x
    }
}

/// The exact balance value of one sector's (emissions, intensity) pairs. Refused for no units,
/// a non-positive intensity or negative emissions.
pub fn balance_value(units: &[(Decimal, Decimal)], slope: Decimal, band: Decimal, bound: Decimal) -> Result<Decimal, RuleError> {
    if units.is_empty() {
        return Err(RuleError::NoRule("a balance value needs at least one unit in the intensity scheme".into()));
    }
    if band <= Decimal::ZERO || band >= Decimal::ONE || slope <= Decimal::ZERO || bound < Decimal::ZERO {
        return Err(RuleError::input("balance-value parameters", band, "need 0 < band < 1, slope > 0, bound ≥ 0"));
    }
    // Bounds that keep every product and sum below exact decimals' 28 digits.
    let limit = Decimal::from(1_000_000_000_000u64);
    for (e, i) in units {
        if *e < Decimal::ZERO || *e > limit {
            return Err(RuleError::input("verified emissions", *e, "must be between 0 and 10^12 t"));
        }
        if *i <= Decimal::ZERO || *i > Decimal::from(1_000_000) {
            return Err(RuleError::input("intensity", *i, "must be positive and at most 10^6"));
        }
    }
    // Breakpoints, and a point beyond each end so that every stretch is tried.
    let mut points: Vec<Decimal> = Vec::with_capacity(units.len() * 2 + 2);
    for (_, i) in units {
        points.push(*i / (Decimal::ONE + band));
        points.push(*i / (Decimal::ONE - band));
    }
    points.sort();
    points.dedup();
    let f = |bp: Decimal| -> Decimal { units.iter().map(|(e, i)| *e * adjustment(Decimal::ONE - *i / bp, slope, band, bound)).sum() };
    for w in points.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let mid = (lo + hi) / Decimal::TWO;
        // Membership in the open stretch, read at its midpoint.
        let (mut sum_p_e, mut sum_p_ei, mut n_minus_m) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for (e, i) in units {
            let x = Decimal::ONE - *i / mid;
            if x >= band {
                n_minus_m += *e;
            } else if x <= -band {
                n_minus_m -= *e;
            } else {
                sum_p_e += *e;
                sum_p_ei += *e * *i;
            }
        }
        let denominator = slope * sum_p_e + bound * n_minus_m;
        if sum_p_e.is_zero() || denominator <= Decimal::ZERO {
            continue;
        }
        let bp = slope * sum_p_ei / denominator;
        if bp >= lo && bp <= hi {
            return Ok(bp);
        }
    }
    // All units in one state at the root (e.g. a single unit): then BP is where the lone
    // linear stretch crosses zero, found above, or the emissions-weighted intensity.
    let total: Decimal = units.iter().map(|(e, _)| *e).sum();
    if total.is_zero() {
        return Ok(units[0].1);
    }
    let bp = units.iter().map(|(e, i)| *e * *i).sum::<Decimal>() / total;
    if f(bp).is_zero() {
        return Ok(bp);
    }
    Err(RuleError::NoRule("no balance value solves the sector's equation".into()))
}

pub fn allocate(rules: &IndustryRules, units: &[IndustryUnit]) -> Result<IndustryResult, RuleError> {
    let mut balance_values = BTreeMap::new();
    // The small-emitter test is on the entity's verified emissions (all its units), as the
    // draft words it ("entities verified < 26,000 tCO2e").
    let mut entity_total: BTreeMap<&str, Decimal> = BTreeMap::new();
    for u in units {
        let t = entity_total.entry(u.entity.as_str()).or_insert(Decimal::ZERO);
        *t = crate::num::add(*t, u.verified_t, "entity emissions")?;
    }
    let in_scheme = |u: &IndustryUnit, threshold: Decimal| !u.special_case && entity_total[u.entity.as_str()] >= threshold;
    if let IndustryMethod::BalanceValue { slope, band, bound, balance_value_dp, small_unit_threshold_t } = &rules.method {
        let mut by_sector: BTreeMap<&str, Vec<(Decimal, Decimal)>> = BTreeMap::new();
        for u in units.iter().filter(|u| in_scheme(u, *small_unit_threshold_t)) {
            by_sector.entry(&u.sector).or_default().push((u.verified_t, u.intensity));
        }
        for (sector, pairs) in by_sector {
            let bp = balance_value(&pairs, *slope, *band, *bound)?;
            balance_values.insert(sector.to_string(), round_to(bp, *balance_value_dp, Rounding::HalfUp));
        }
    }
    let mut out = Vec::with_capacity(units.len());
    for u in units {
        if u.verified_t < Decimal::ZERO {
            return Err(RuleError::input("verified emissions", u.verified_t, "must not be negative"));
        }
        let (deviation, adjustment_value, exact) = match &rules.method {
            IndustryMethod::VerifiedEmissions => (None, None, u.verified_t),
            IndustryMethod::BalanceValue { slope, band, bound, small_unit_threshold_t, .. } => {
                if in_scheme(u, *small_unit_threshold_t) {
                    let bp = balance_values[&u.sector];
                    let x = (bp - u.intensity) / bp;
                    let a = adjustment(x, *slope, *band, *bound);
                    (Some(x), Some(a), crate::num::mul(u.verified_t, Decimal::ONE + a, "industry allocation")?)
                } else {
                    (None, None, u.verified_t)
                }
            }
        };
        let final_t = rules.rounding.whole_tonnes(exact)?;
        let pre = match rules.pre_allocation_share {
            Some(share) => floor_tonnes(share * u.previous_verified_t)?,
            None => 0,
        };
        out.push(IndustryAllocation {
            unit: u.unit.clone(),
            entity: u.entity.clone(),
            sector: u.sector.clone(),
            deviation,
            adjustment: adjustment_value,
            final_t,
            pre_allocated_t: pre,
            true_up_t: final_t as i64 - pre as i64,
        });
    }
    Ok(IndustryResult { balance_values, units: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn draft() -> IndustryRules {
        IndustryRules {
            method: IndustryMethod::BalanceValue {
                slope: d("0.15"),
                band: d("0.20"),
                bound: d("0.03"),
                balance_value_dp: 4,
                small_unit_threshold_t: d("26000"),
            },
            pre_allocation_share: Some(d("0.5")),
            rounding: Rounding::Down,
        }
    }

    fn unit(id: &str, e: &str, i: &str) -> IndustryUnit {
        IndustryUnit {
            unit: id.into(),
            entity: format!("E-{id}"),
            sector: "cement".into(),
            verified_t: d(e),
            intensity: d(i),
            special_case: false,
            previous_verified_t: Decimal::ZERO,
        }
    }

    #[test]
    fn allocation_equals_verified_emissions_in_2024() {
        let rules = IndustryRules { method: IndustryMethod::VerifiedEmissions, pre_allocation_share: None, rounding: Rounding::Down };
        let r = allocate(&rules, &[unit("L1", "812345.6", "0.85")]).unwrap();
        assert_eq!(r.units[0].final_t, 812_345);
        assert_eq!(r.units[0].true_up_t, 812_345);
    }

    #[test]
    fn two_lines_inside_the_band() {
        // E = 100,000 each, I = 0.80 and 0.90: BP = 0.15 × (80,000 + 90,000) / (0.15 × 200,000)
        // = 0.85. X = ±0.0588235..., α = ±0.0088235...: A = 100,882 and 99,117 (rounded down).
        let r = allocate(&draft(), &[unit("L1", "100000", "0.80"), unit("L2", "100000", "0.90")]).unwrap();
        assert_eq!(r.balance_values["cement"], d("0.85"));
        assert_eq!(r.units[0].final_t, 100_882);
        assert_eq!(r.units[1].final_t, 99_117);
    }

    #[test]
    fn an_efficient_outlier_gets_the_bound() {
        // I = 0.5, 0.9, 0.95, E = 100,000 each. With line 1 at the +3% bound and lines 2, 3
        // inside: BP = 0.15 × (90,000 + 95,000) / (0.15 × 200,000 + 0.03 × 100,000) = 27,750 / 33,000
        // = 0.840909...; X1 = 0.405 ≥ 0.2 (bound), X2 = −0.0703, X3 = −0.1297 (inside).
        let units = [unit("L1", "100000", "0.5"), unit("L2", "100000", "0.9"), unit("L3", "100000", "0.95")];
        let exact =
            balance_value(&units.iter().map(|u| (u.verified_t, u.intensity)).collect::<Vec<_>>(), d("0.15"), d("0.2"), d("0.03")).unwrap();
        assert_eq!(exact, d("27750") / d("33000"));
        let r = allocate(&draft(), &units).unwrap();
        assert_eq!(r.balance_values["cement"], d("0.8409"));
        assert_eq!(r.units[0].adjustment, Some(d("0.03")));
        assert_eq!(r.units[0].final_t, 103_000);
        // Σ A ≈ Σ E: the published (rounded) BP and rounding down leave a few tonnes.
        let total: u64 = r.units.iter().map(|u| u.final_t).sum();
        assert!((299_990..=300_000).contains(&total), "{total}");
    }

    #[test]
    fn the_small_emitter_test_is_on_the_entity() {
        // Two lines of 20,000 t of one entity: 40,000 t together, so both are in the scheme.
        let mut a = unit("A1", "20000", "0.80");
        let mut b = unit("A2", "20000", "0.90");
        a.entity = "BIG".into();
        b.entity = "BIG".into();
        let r = allocate(&draft(), &[a, b, unit("L1", "100000", "0.85")]).unwrap();
        assert!(r.units[0].adjustment.is_some() && r.units[1].adjustment.is_some(), "{r:?}");
    }

    #[test]
    fn special_cases_and_small_units_get_their_emissions() {
        let mut white = unit("W", "50000", "1.5");
        white.special_case = true;
        let small = unit("S", "20000", "2.0");
        let r = allocate(&draft(), &[unit("L1", "100000", "0.80"), unit("L2", "100000", "0.90"), white, small]).unwrap();
        assert_eq!(r.balance_values["cement"], d("0.85"), "the special and small units do not move BP");
        assert_eq!(r.units[2].final_t, 50_000);
        assert_eq!(r.units[3].final_t, 20_000);
        assert_eq!(r.units[2].adjustment, None);
    }

    #[test]
    fn the_balance_equation_holds_at_the_solved_value_for_many_units() {
        // 50 lines with intensities spread over ±40% of 0.85: Σ E·α(BP) = 0 at the exact BP.
        let pairs: Vec<(Decimal, Decimal)> =
            (0..50).map(|k| (Decimal::from(50_000 + 3_000 * k), d("0.51") + Decimal::from(k) * d("0.0136"))).collect();
        let bp = balance_value(&pairs, d("0.15"), d("0.2"), d("0.03")).unwrap();
        let f: Decimal = pairs.iter().map(|(e, i)| *e * adjustment(Decimal::ONE - *i / bp, d("0.15"), d("0.2"), d("0.03"))).sum();
        assert!(f.abs() < d("0.000001"), "residual {f} at BP {bp}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(balance_value(&[(d("1"), d("0"))], d("0.15"), d("0.2"), d("0.03")).unwrap_err().to_string().contains("intensity"));
        assert!(balance_value(&[], d("0.15"), d("0.2"), d("0.03")).is_err());
        assert!(allocate(&draft(), &[unit("L1", "-5", "0.8")]).is_err());
    }
}
