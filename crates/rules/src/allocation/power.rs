//! National power-sector benchmark allocation (china-ets.md §2.1–2.5, `[ALLOC2324]`,
//! `[DRAFT2526]`, `[ICAP-1920]`).
//!
//! Per unit: `A = Q × Be × F_cool × F_heat × F_load + Qh × Bh`, with `Q` the generated or the
//! supplied electricity (MWh) by period, `Be` the category's benchmark for the year, `Qh` the
//! heat supplied (GJ) and `Bh` the coal or gas heat benchmark. Which correction factors exist is
//! the rulebook's: 2019–22 had cooling, heat-ratio and load factors; 2023–24 only the
//! peak-shaving factor `Ff` for conventional coal; the 2025–26 draft a new `Ff` formula.
//!
//! Then, in the order of the entity-level procedure (§2.5): unit allocations are rounded as the
//! rulebook says (down to whole tonnes); a gas unit whose allocation is below its verified
//! emissions is topped up to them (gas exemption); the units are summed to the entity; an entity
//! whose allocation is below `(1 − gap cap)` of its verified emissions is topped up to that
//! (20% gap cap). Pre-allocation is a share of the previous year's verified emissions (2023 on)
//! or of base-year output × benchmark (2019–22), rounded down; the true-up is final minus
//! pre-allocated, negative when allowances go back.
//!
//! Every factor is an exact decimal; `1.015^(16 − 20F)` with a fractional exponent is computed
//! with `rust_decimal`'s `powd` and rounded to the rulebook's places (6 in the draft).

use crate::dec;
use crate::num::{floor_tonnes, round_to, Rounding};
use crate::RuleError;
use rust_decimal::{Decimal, MathematicalOps};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Unit categories of the allocation plans (china-ets.md §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    I,
    II,
    III,
    IV,
}

impl Category {
    pub fn is_gas(self) -> bool {
        self == Category::IV
    }

    pub fn parse(text: &str) -> Result<Category, String> {
        match text.trim() {
            "I" | "1" => Ok(Category::I),
            "II" | "2" => Ok(Category::II),
            "III" | "3" => Ok(Category::III),
            "IV" | "4" => Ok(Category::IV),
            other => Err(format!("unit category '{other}' must be I, II, III or IV")),
        }
    }
}

/// Which electricity output the formula multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputBasis {
    /// 供电量, 2019–2022.
    Supplied,
    /// 发电量, from 2023.
    Generated,
}

/// One year's benchmarks: tCO2/MWh per category, tCO2/GJ for heat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benchmarks {
    #[serde(deserialize_with = "dec::exact")]
    pub cat_i: Decimal,
    #[serde(deserialize_with = "dec::exact")]
    pub cat_ii: Decimal,
    #[serde(deserialize_with = "dec::exact")]
    pub cat_iii: Decimal,
    #[serde(deserialize_with = "dec::exact")]
    pub cat_iv: Decimal,
    #[serde(deserialize_with = "dec::exact")]
    pub heat_coal: Decimal,
    #[serde(deserialize_with = "dec::exact")]
    pub heat_gas: Decimal,
}

impl Benchmarks {
    pub fn electricity(&self, c: Category) -> Decimal {
        match c {
            Category::I => self.cat_i,
            Category::II => self.cat_ii,
            Category::III => self.cat_iii,
            Category::IV => self.cat_iv,
        }
    }

    pub fn heat(&self, c: Category) -> Decimal {
        if c.is_gas() {
            self.heat_gas
        } else {
            self.heat_coal
        }
    }
}

/// The load (peak-shaving) factor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "formula", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoadFactor {
    /// No load factor (Ff = 1).
    None,
    /// 2019–22 piecewise (U): F ≥ 85%: 1; 80–85%: 1 + 0.0014 × (85 − 100F); 75–80%:
    /// 1.007 + 0.0016 × (80 − 100F); F < 75%: 1.015^(16 − 20F).
    Piecewise2019,
    /// 2023–24: F < threshold: base^(a − b·F); otherwise 1.
    Exponential {
        #[serde(deserialize_with = "dec::exact")]
        threshold: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        base: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        a: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        b: Decimal,
    },
    /// 2025–26 draft: F (in %) < threshold: 7.254 − 0.633·(1 − e^(−F/29.822)) − 5.643·(1 − e^(−F/6.871)).
    Draft2526 {
        #[serde(deserialize_with = "dec::exact")]
        threshold_percent: Decimal,
    },
}

/// Correction factors of 2019–22 (U): absent from 2023.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoolingFactor {
    #[serde(deserialize_with = "dec::exact")]
    pub air: Decimal,
    #[serde(deserialize_with = "dec::exact")]
    pub water: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case", deny_unknown_fields)]
pub enum PreAllocation {
    /// share × the unit's previous-year verified emissions (2023–24: 70%; 2025–26 draft: 50%).
    PreviousYearVerified {
        #[serde(deserialize_with = "dec::exact")]
        share: Decimal,
    },
    /// share × base-year output × benchmark (× factors) (2019–22: 70%).
    BaseYearOutput {
        #[serde(deserialize_with = "dec::exact")]
        share: Decimal,
    },
    /// No pre-allocation.
    None,
}

/// The power rules of one period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerRules {
    pub output_basis: OutputBasis,
    /// Benchmarks by year of the period.
    pub benchmarks: BTreeMap<i32, Benchmarks>,
    pub load_factor: LoadFactor,
    /// Categories the load factor applies to (conventional coal: I and II from 2023).
    pub load_factor_categories: Vec<Category>,
    /// Places the load factor is rounded to (half up), if the rules round it.
    #[serde(default)]
    pub load_factor_dp: Option<u32>,
    #[serde(default)]
    pub cooling: Option<CoolingFactor>,
    /// F_heat = 1 − slope × heat-supply ratio, coal units (2019–22: 0.22, U).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub heat_factor_coal: Option<Decimal>,
    /// F_heat = 1 − slope × heat-supply ratio, gas units (2019–22 draft: 0.6, V).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub heat_factor_gas: Option<Decimal>,
    /// Gas units are topped up to their verified emissions.
    pub gas_exemption: bool,
    /// Entities are topped up to (1 − gap cap) × verified emissions (0.20).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub gap_cap: Option<Decimal>,
    pub pre_allocation: PreAllocation,
    /// Rounding of unit and entity allowances to whole tonnes.
    pub rounding: Rounding,
}

/// One generating unit's data for an allocation year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerUnit {
    pub unit: String,
    pub entity: String,
    pub category: Category,
    /// Generated electricity, MWh.
    pub generated_mwh: Decimal,
    /// Supplied electricity, MWh (2019–22 basis).
    pub supplied_mwh: Decimal,
    /// Heat supplied, GJ.
    pub heat_gj: Decimal,
    /// Load factor as a fraction (0.70 = 70%).
    pub load_factor: Decimal,
    pub air_cooled: bool,
    /// Heat-supply ratio (heat / total output, as a fraction), for the 2019–22 heat factor.
    pub heat_ratio: Decimal,
    /// Verified emissions of the allocation year, tCO2.
    pub verified_t: Decimal,
    /// Verified emissions of the previous year, tCO2 (pre-allocation from 2023).
    pub previous_verified_t: Decimal,
    /// Base-year output for 2019–22 pre-allocation, MWh and GJ.
    #[serde(default)]
    pub base_year_mwh: Decimal,
    #[serde(default)]
    pub base_year_heat_gj: Decimal,
}

/// A unit's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitAllocation {
    pub unit: String,
    pub entity: String,
    pub load_factor: Decimal,
    /// Exact formula value before rounding.
    pub formula_t: Decimal,
    /// Rounded initial allocation.
    pub initial_t: u64,
    /// Gas exemption top-up.
    pub gas_top_up_t: u64,
    pub pre_allocated_t: u64,
}

/// An entity's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntityAllocation {
    pub entity: String,
    pub units: Vec<UnitAllocation>,
    /// Σ units after the gas exemption.
    pub units_t: u64,
    /// Gap-cap top-up.
    pub gap_top_up_t: u64,
    pub final_t: u64,
    pub pre_allocated_t: u64,
    /// final − pre-allocated (negative: allowances go back).
    pub true_up_t: i64,
    pub verified_t: Decimal,
    /// (verified − final) / verified, 2 places (as the draft's tables show it).
    pub gap_rate: Decimal,
}

fn d(v: &str) -> Decimal {
    v.parse().expect("constant")
}

/// The load factor of a unit under the rules (1 if it does not apply).
pub fn load_factor(rules: &PowerRules, category: Category, f: Decimal) -> Result<Decimal, RuleError> {
    if !rules.load_factor_categories.contains(&category) {
        return Ok(Decimal::ONE);
    }
    if f < Decimal::ZERO || f > Decimal::ONE {
        return Err(RuleError::input("load factor", f, "must be a fraction between 0 and 1"));
    }
    let value = match &rules.load_factor {
        LoadFactor::None => Decimal::ONE,
        LoadFactor::Piecewise2019 => {
            let pct = f * Decimal::ONE_HUNDRED;
            if pct >= d("85") {
                Decimal::ONE
            } else if pct >= d("80") {
                Decimal::ONE + d("0.0014") * (d("85") - pct)
            } else if pct >= d("75") {
                d("1.007") + d("0.0016") * (d("80") - pct)
            } else {
                d("1.015").powd(d("16") - d("20") * f)
            }
        }
        LoadFactor::Exponential { threshold, base, a, b } => {
            if f < *threshold {
                base.powd(*a - *b * f)
            } else {
                Decimal::ONE
            }
        }
        LoadFactor::Draft2526 { threshold_percent } => {
            let pct = f * Decimal::ONE_HUNDRED;
            if pct < *threshold_percent {
                d("7.254")
                    - d("0.633") * (Decimal::ONE - (-pct / d("29.822")).exp())
                    - d("5.643") * (Decimal::ONE - (-pct / d("6.871")).exp())
            } else {
                Decimal::ONE
            }
        }
    };
    Ok(match rules.load_factor_dp {
        Some(dp) => round_to(value, dp, Rounding::HalfUp),
        None => value,
    })
}

fn check_non_negative(what: &'static str, v: Decimal) -> Result<(), RuleError> {
    if v < Decimal::ZERO {
        return Err(RuleError::input(what, v, "must not be negative"));
    }
    Ok(())
}

/// The formula value of one unit (exact, before rounding) and its load factor.
pub fn unit_formula(rules: &PowerRules, year: i32, u: &PowerUnit) -> Result<(Decimal, Decimal), RuleError> {
    for (what, v) in [
        ("generated electricity (MWh)", u.generated_mwh),
        ("supplied electricity (MWh)", u.supplied_mwh),
        ("heat (GJ)", u.heat_gj),
        ("verified emissions (t)", u.verified_t),
        ("previous-year verified emissions (t)", u.previous_verified_t),
    ] {
        check_non_negative(what, v)?;
    }
    let b = rules.benchmarks.get(&year).ok_or_else(|| RuleError::NoRule(format!("no power benchmarks for {year} in these rules")))?;
    let q = match rules.output_basis {
        OutputBasis::Generated => u.generated_mwh,
        OutputBasis::Supplied => u.supplied_mwh,
    };
    let ff = load_factor(rules, u.category, u.load_factor)?;
    let mut factor = ff;
    if let Some(c) = &rules.cooling {
        if !u.category.is_gas() {
            factor *= if u.air_cooled { c.air } else { c.water };
        }
    }
    let slope = if u.category.is_gas() { rules.heat_factor_gas } else { rules.heat_factor_coal };
    if let Some(s) = slope {
        if u.heat_ratio < Decimal::ZERO || u.heat_ratio > Decimal::ONE {
            return Err(RuleError::input("heat-supply ratio", u.heat_ratio, "must be a fraction between 0 and 1"));
        }
        factor *= Decimal::ONE - s * u.heat_ratio;
    }
    let value = q
        .checked_mul(b.electricity(u.category))
        .and_then(|x| x.checked_mul(factor))
        .and_then(|x| x.checked_add(u.heat_gj.checked_mul(b.heat(u.category))?))
        .ok_or(RuleError::Overflow("unit allocation"))?;
    Ok((value, ff))
}

/// Allocates every unit of every entity for `year`; entities in first-appearance order.
pub fn allocate(rules: &PowerRules, year: i32, units: &[PowerUnit]) -> Result<Vec<EntityAllocation>, RuleError> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_entity: BTreeMap<&str, Vec<&PowerUnit>> = BTreeMap::new();
    for u in units {
        if !by_entity.contains_key(u.entity.as_str()) {
            order.push(&u.entity);
        }
        by_entity.entry(&u.entity).or_default().push(u);
    }
    let mut out = Vec::with_capacity(order.len());
    for entity in order {
        out.push(allocate_entity(rules, year, entity, &by_entity[entity])?);
    }
    Ok(out)
}

fn allocate_entity(rules: &PowerRules, year: i32, entity: &str, units: &[&PowerUnit]) -> Result<EntityAllocation, RuleError> {
    let mut results = Vec::with_capacity(units.len());
    let mut units_t: u64 = 0;
    let mut verified = Decimal::ZERO;
    let mut pre_total: u64 = 0;
    for u in units {
        let (formula, ff) = unit_formula(rules, year, u)?;
        let initial = rules.rounding.whole_tonnes(formula)?;
        let mut top_up = 0;
        if rules.gas_exemption && u.category.is_gas() && Decimal::from(initial) < u.verified_t {
            top_up = rules.rounding.whole_tonnes(u.verified_t)?.saturating_sub(initial);
        }
        let pre = match &rules.pre_allocation {
            PreAllocation::None => 0,
            PreAllocation::PreviousYearVerified { share } => floor_tonnes(*share * u.previous_verified_t)?,
            PreAllocation::BaseYearOutput { share } => {
                let b = rules.benchmarks.get(&year).ok_or_else(|| RuleError::NoRule(format!("no power benchmarks for {year}")))?;
                floor_tonnes(*share * (u.base_year_mwh * b.electricity(u.category) + u.base_year_heat_gj * b.heat(u.category)))?
            }
        };
        units_t += initial + top_up;
        pre_total += pre;
        verified += u.verified_t;
        results.push(UnitAllocation {
            unit: u.unit.clone(),
            entity: entity.to_string(),
            load_factor: ff,
            formula_t: formula,
            initial_t: initial,
            gas_top_up_t: top_up,
            pre_allocated_t: pre,
        });
    }
    let mut gap_top_up = 0;
    if let Some(cap) = rules.gap_cap {
        let floor = rules.rounding.whole_tonnes((Decimal::ONE - cap) * verified)?;
        if units_t < floor {
            gap_top_up = floor - units_t;
        }
    }
    let final_t = units_t + gap_top_up;
    let gap_rate =
        if verified.is_zero() { Decimal::ZERO } else { round_to((verified - Decimal::from(final_t)) / verified, 2, Rounding::HalfUp) };
    Ok(EntityAllocation {
        entity: entity.to_string(),
        units: results,
        units_t,
        gap_top_up_t: gap_top_up,
        final_t,
        pre_allocated_t: pre_total,
        true_up_t: final_t as i64 - pre_total as i64,
        verified_t: verified,
        gap_rate,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rules_2324() -> PowerRules {
        let bm = |i: &str, ii: &str, iii: &str, iv: &str, hc: &str, hg: &str| Benchmarks {
            cat_i: d(i),
            cat_ii: d(ii),
            cat_iii: d(iii),
            cat_iv: d(iv),
            heat_coal: d(hc),
            heat_gas: d(hg),
        };
        PowerRules {
            output_basis: OutputBasis::Generated,
            benchmarks: [
                (2023, bm("0.7950", "0.8090", "0.8285", "0.3305", "0.1038", "0.0536")),
                (2024, bm("0.7910", "0.8049", "0.8244", "0.3288", "0.1033", "0.0533")),
            ]
            .into(),
            load_factor: LoadFactor::Exponential { threshold: d("0.65"), base: d("1.015"), a: d("16"), b: d("20") },
            load_factor_categories: vec![Category::I, Category::II],
            load_factor_dp: Some(6),
            cooling: None,
            heat_factor_coal: None,
            heat_factor_gas: None,
            gas_exemption: true,
            gap_cap: Some(d("0.20")),
            pre_allocation: PreAllocation::PreviousYearVerified { share: d("0.70") },
            rounding: Rounding::Down,
        }
    }

    pub(crate) fn unit(id: &str, entity: &str, category: Category, qe: &str, qh: &str, f: &str, verified: &str) -> PowerUnit {
        PowerUnit {
            unit: id.into(),
            entity: entity.into(),
            category,
            generated_mwh: d(qe),
            supplied_mwh: d(qe),
            heat_gj: d(qh),
            load_factor: d(f),
            air_cooled: false,
            heat_ratio: Decimal::ZERO,
            verified_t: d(verified),
            previous_verified_t: Decimal::ZERO,
            base_year_mwh: Decimal::ZERO,
            base_year_heat_gj: Decimal::ZERO,
        }
    }

    #[test]
    fn example_1_coal_cat_i_2024_normal_load() {
        // 3,000,000 × 0.7910 × 1 + 2,000,000 × 0.1033 = 2,373,000 + 206,600 = 2,579,600 t.
        let u = unit("U1", "E1", Category::I, "3000000", "2000000", "0.70", "2600000");
        let a = allocate(&rules_2324(), 2024, &[u]).unwrap();
        assert_eq!(a[0].units[0].initial_t, 2_579_600);
        assert_eq!(a[0].final_t, 2_579_600);
        assert_eq!(a[0].gap_top_up_t, 0);
    }

    #[test]
    fn example_3_gas_unit_exemption_2024() {
        // 800,000 × 0.3288 + 500,000 × 0.0533 = 263,040 + 26,650 = 289,690 < 320,000 → 320,000.
        let u = unit("G1", "E2", Category::IV, "800000", "500000", "0.40", "320000");
        let a = allocate(&rules_2324(), 2024, &[u]).unwrap();
        assert_eq!(a[0].units[0].initial_t, 289_690);
        assert_eq!(a[0].units[0].gas_top_up_t, 30_310);
        assert_eq!(a[0].final_t, 320_000);
        assert_eq!(a[0].gap_rate, Decimal::ZERO);
    }

    #[test]
    fn example_5_pre_allocation_and_true_up() {
        let mut u = unit("U1", "E1", Category::I, "3000000", "2000000", "0.70", "2600000");
        u.previous_verified_t = d("2500000");
        let a = allocate(&rules_2324(), 2024, &[u.clone()]).unwrap();
        assert_eq!(a[0].pre_allocated_t, 1_750_000);
        assert_eq!(a[0].true_up_t, 829_600);
        // The 2025–26 draft: 50%, rounded down: 0.5 × 3,579.4 = 1,789.7 → 1,789 t.
        let mut draft = rules_2324();
        draft.pre_allocation = PreAllocation::PreviousYearVerified { share: d("0.5") };
        u.previous_verified_t = d("3579.4");
        assert_eq!(allocate(&draft, 2024, &[u]).unwrap()[0].pre_allocated_t, 1_789);
    }

    #[test]
    fn peak_shaving_factor_below_65_percent_load() {
        // F = 0.60 → 1.015^(16 − 12) = 1.015^4 = 1.061363550625 → 1.061364 (6 dp).
        let r = rules_2324();
        assert_eq!(load_factor(&r, Category::I, d("0.60")).unwrap(), d("1.061364"));
        // Just below the threshold: 1.015^3 = 1.045678375 → 1.045678; at it: 1.
        assert_eq!(load_factor(&r, Category::II, d("0.6499999")).unwrap(), d("1.045678"));
        assert_eq!(load_factor(&r, Category::I, d("0.65")).unwrap(), Decimal::ONE);
        // Not for unconventional coal or gas.
        assert_eq!(load_factor(&r, Category::III, d("0.30")).unwrap(), Decimal::ONE);
        // 1,000,000 MWh × 0.7910 × 1.061364 = 839,538.924 → 839,538 t (rounded down).
        let u = unit("U1", "E1", Category::I, "1000000", "0", "0.60", "900000");
        assert_eq!(allocate(&r, 2024, &[u]).unwrap()[0].units[0].initial_t, 839_538);
    }

    #[test]
    fn draft_2526_load_factor_matches_the_values_the_domain_file_quotes() {
        let mut r = rules_2324();
        r.load_factor = LoadFactor::Draft2526 { threshold_percent: d("50") };
        // china-ets.md §2.3: 1.1603 at 40%, 1.2811 at 30%; ≥ 50% → 1.
        assert_eq!(load_factor(&r, Category::I, d("0.40")).unwrap().round_dp(4), d("1.1603"));
        assert_eq!(load_factor(&r, Category::I, d("0.30")).unwrap().round_dp(4), d("1.2811"));
        assert_eq!(load_factor(&r, Category::I, d("0.50")).unwrap(), Decimal::ONE);
    }

    #[test]
    fn the_gap_cap_tops_entities_up_to_80_percent() {
        // Coal unit: 1,000,000 × 0.7910 = 791,000; verified 1,100,000 → 80% = 880,000.
        let u = unit("U1", "E1", Category::I, "1000000", "0", "0.80", "1100000");
        let a = &allocate(&rules_2324(), 2024, &[u]).unwrap()[0];
        assert_eq!(a.units_t, 791_000);
        assert_eq!(a.gap_top_up_t, 89_000);
        assert_eq!(a.final_t, 880_000);
        assert_eq!(a.gap_rate, d("0.20"));
        // Without the cap (a rule change in the sandbox) the entity keeps 791,000.
        let mut no_cap = rules_2324();
        no_cap.gap_cap = None;
        let u = unit("U1", "E1", Category::I, "1000000", "0", "0.80", "1100000");
        assert_eq!(allocate(&no_cap, 2024, &[u]).unwrap()[0].final_t, 791_000);
    }

    #[test]
    fn the_gap_cap_is_applied_after_summing_units_and_the_gas_exemption() {
        // Gas unit topped up to its 100,000; coal unit 500,000 × 0.8049 = 402,450 (verified
        // 600,000). Entity: 502,450 against 80% × 700,000 = 560,000 → +57,550.
        let units = [
            unit("C1", "E1", Category::II, "500000", "0", "0.90", "600000"),
            unit("G1", "E1", Category::IV, "200000", "0", "0.50", "100000"),
        ];
        let a = &allocate(&rules_2324(), 2024, &units).unwrap()[0];
        assert_eq!(a.units[1].initial_t, 65_760);
        assert_eq!(a.units[1].gas_top_up_t, 34_240);
        assert_eq!(a.units_t, 502_450);
        assert_eq!(a.gap_top_up_t, 57_550);
        assert_eq!(a.final_t, 560_000);
    }

    #[test]
    fn bad_inputs_are_named() {
        let r = rules_2324();
        let u = unit("U1", "E1", Category::I, "-1", "0", "0.8", "1");
        assert!(allocate(&r, 2024, &[u]).unwrap_err().to_string().contains("generated electricity"));
        let u = unit("U1", "E1", Category::I, "1", "0", "1.5", "1");
        assert!(allocate(&r, 2024, &[u]).unwrap_err().to_string().contains("load factor"));
        let u = unit("U1", "E1", Category::I, "1", "0", "0.8", "1");
        assert!(allocate(&r, 2030, &[u]).unwrap_err().to_string().contains("no power benchmarks for 2030"));
    }

    #[test]
    fn period_one_factors_cooling_heat_and_load() {
        // 2019–20 structure: A = Qsup × Be × F_cool × F_heat × F_load + Qh × Bh.
        let mut r = rules_2324();
        r.output_basis = OutputBasis::Supplied;
        r.benchmarks = [(
            2020,
            Benchmarks {
                cat_i: d("0.877"),
                cat_ii: d("0.979"),
                cat_iii: d("1.146"),
                cat_iv: d("0.392"),
                heat_coal: d("0.126"),
                heat_gas: d("0.059"),
            },
        )]
        .into();
        r.cooling = Some(CoolingFactor { air: d("1.05"), water: Decimal::ONE });
        r.heat_factor_coal = Some(d("0.22"));
        r.load_factor = LoadFactor::Piecewise2019;
        r.load_factor_categories = vec![Category::I, Category::II, Category::III];
        r.load_factor_dp = None;
        let mut u = unit("U1", "E1", Category::II, "0", "100000", "0.82", "0");
        u.supplied_mwh = d("1000000");
        u.air_cooled = true;
        u.heat_ratio = d("0.10");
        // F_load(82%) = 1 + 0.0014 × 3 = 1.0042; F_heat = 1 − 0.022 = 0.978; F_cool = 1.05.
        // 1,000,000 × 0.979 = 979,000; × 1.05 = 1,027,950; × 0.978 = 1,005,335.1;
        // × 1.0042 = 1,009,557.50742; + 100,000 × 0.126 = 1,022,157.50742 → 1,022,157 (down).
        let (formula, ff) = unit_formula(&r, 2020, &u).unwrap();
        assert_eq!(ff, d("1.0042"));
        assert_eq!(formula, d("1000000") * d("0.979") * d("1.05") * d("0.978") * d("1.0042") + d("12600"));
        assert_eq!(formula, d("1022157.50742"));
        assert_eq!(allocate(&r, 2020, &[u]).unwrap()[0].units[0].initial_t, 1_022_157);
    }
}
