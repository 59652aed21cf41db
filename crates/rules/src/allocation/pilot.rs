//! Pilot allocation methods (china-ets.md §6.1) and the split of a cap into free allocation,
//! paid allocation (auction) and reserves.
//!
//! - Grandfathering (historical emissions): `A = mean(base-year emissions) × control factor`.
//! - Historical intensity: `A = current output × mean(base-year emissions / base-year output) ×
//!   control factor` (Tianjin: building materials and paper, control factor 0.98).
//! - Benchmark: `A = current output × the product's benchmark`.
//! - A first batch (Tianjin: 50% of the previous year's compliance emissions) is a
//!   pre-allocation; the rest follows once the year's data are verified.
//!
//! Which sectors use which method, the control factors and benchmarks are the rulebook's.

use crate::dec;
use crate::num::{add, div, floor_tonnes, mul, Rounding};
use crate::RuleError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum PilotMethod {
    Grandfathering {
        #[serde(deserialize_with = "dec::exact")]
        control_factor: Decimal,
    },
    HistoricalIntensity {
        #[serde(deserialize_with = "dec::exact")]
        control_factor: Decimal,
    },
    Benchmark,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PilotRules {
    /// Method per sector; `default` for sectors not listed.
    pub methods: BTreeMap<String, PilotMethod>,
    /// Product benchmarks, tCO2 per unit of output.
    #[serde(default)]
    pub benchmarks: BTreeMap<String, crate::dec::Exact>,
    /// First batch as a share of the previous year's compliance (verified) emissions.
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub first_batch_share: Option<Decimal>,
    pub rounding: Rounding,
}

/// One pilot entity's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PilotEntity {
    pub entity: String,
    pub sector: String,
    /// Verified emissions of the base years.
    #[serde(default)]
    pub base_emissions_t: Vec<Decimal>,
    /// Output of the same base years.
    #[serde(default)]
    pub base_output: Vec<Decimal>,
    /// Output of the allocation year.
    #[serde(default)]
    pub output: Decimal,
    /// Product for benchmark allocation.
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub previous_verified_t: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PilotAllocation {
    pub entity: String,
    pub method: &'static str,
    pub final_t: u64,
    pub first_batch_t: u64,
    pub true_up_t: i64,
}

fn mean(values: &[Decimal], what: &'static str) -> Result<Decimal, RuleError> {
    if values.is_empty() {
        return Err(RuleError::NoRule(format!("{what}: no base years given")));
    }
    let mut sum = Decimal::ZERO;
    for v in values {
        sum = add(sum, *v, what)?;
    }
    div(sum, Decimal::from(values.len()), what)
}

pub fn allocate(rules: &PilotRules, entities: &[PilotEntity]) -> Result<Vec<PilotAllocation>, RuleError> {
    let mut out = Vec::with_capacity(entities.len());
    for e in entities {
        let method = rules
            .methods
            .get(&e.sector)
            .or_else(|| rules.methods.get("default"))
            .ok_or_else(|| RuleError::NoRule(format!("no allocation method for sector '{}' (and no default)", e.sector)))?;
        for v in e.base_emissions_t.iter().chain(&e.base_output).chain([&e.output, &e.previous_verified_t]) {
            if *v < Decimal::ZERO {
                return Err(RuleError::input("pilot allocation input", *v, "must not be negative"));
            }
        }
        let (name, exact) = match method {
            PilotMethod::Grandfathering { control_factor } => {
                ("grandfathering", mul(mean(&e.base_emissions_t, "grandfathering")?, *control_factor, "grandfathering")?)
            }
            PilotMethod::HistoricalIntensity { control_factor } => {
                if e.base_emissions_t.len() != e.base_output.len() {
                    return Err(RuleError::NoRule(format!("entity '{}': base-year emissions and output differ in length", e.entity)));
                }
                let mut intensities = Vec::with_capacity(e.base_output.len());
                for (em, out) in e.base_emissions_t.iter().zip(&e.base_output) {
                    if out.is_zero() {
                        return Err(RuleError::input("base-year output", *out, "must be positive for historical intensity"));
                    }
                    intensities.push(div(*em, *out, "historical intensity")?);
                }
                let i = mean(&intensities, "historical intensity")?;
                ("historical_intensity", mul(mul(e.output, i, "historical intensity")?, *control_factor, "historical intensity")?)
            }
            PilotMethod::Benchmark => {
                let product = e.product.as_deref().unwrap_or(&e.sector);
                let b = rules.benchmarks.get(product).ok_or_else(|| RuleError::NoRule(format!("no benchmark for product '{product}'")))?;
                ("benchmark", mul(e.output, b.0, "benchmark allocation")?)
            }
        };
        let final_t = rules.rounding.whole_tonnes(exact)?;
        let first = match rules.first_batch_share {
            Some(s) => floor_tonnes(mul(s, e.previous_verified_t, "first batch")?)?,
            None => 0,
        };
        out.push(PilotAllocation {
            entity: e.entity.clone(),
            method: name,
            final_t,
            first_batch_t: first,
            true_up_t: final_t as i64 - first as i64,
        });
    }
    Ok(out)
}

/// Shares of a cap set aside before free allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapSplit {
    /// Sold at auction (paid allocation).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub auction_share: Option<Decimal>,
    /// New-entrant (new project) reserve.
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub new_entrant_reserve_share: Option<Decimal>,
    /// Price-stabilisation (market-adjustment) reserve.
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub price_stability_reserve_share: Option<Decimal>,
    /// Government reserve (Tianjin 6%).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub government_reserve_share: Option<Decimal>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CapVolumes {
    pub cap_t: u64,
    pub auction_t: u64,
    pub new_entrant_reserve_t: u64,
    pub price_stability_reserve_t: u64,
    pub government_reserve_t: u64,
    /// What is left for free allocation.
    pub free_t: u64,
}

impl CapSplit {
    /// Each set-aside is its share of the cap rounded down; free allocation gets the rest, so the
    /// parts always add up to the cap.
    pub fn volumes(&self, cap_t: u64) -> Result<CapVolumes, RuleError> {
        let part = |s: Option<Decimal>| -> Result<u64, RuleError> {
            match s {
                None => Ok(0),
                Some(s) if s < Decimal::ZERO || s > Decimal::ONE => Err(RuleError::input("cap share", s, "must be a fraction")),
                Some(s) => floor_tonnes(mul(s, Decimal::from(cap_t), "cap share")?),
            }
        };
        let auction = part(self.auction_share)?;
        let ne = part(self.new_entrant_reserve_share)?;
        let ps = part(self.price_stability_reserve_share)?;
        let gov = part(self.government_reserve_share)?;
        let set_aside = auction + ne + ps + gov;
        let free = cap_t
            .checked_sub(set_aside)
            .ok_or_else(|| RuleError::NoRule(format!("set-asides of {set_aside} t exceed the cap of {cap_t} t")))?;
        Ok(CapVolumes {
            cap_t,
            auction_t: auction,
            new_entrant_reserve_t: ne,
            price_stability_reserve_t: ps,
            government_reserve_t: gov,
            free_t: free,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn tianjin() -> PilotRules {
        PilotRules {
            methods: [
                ("building_materials".to_string(), PilotMethod::HistoricalIntensity { control_factor: d("0.98") }),
                ("default".to_string(), PilotMethod::Grandfathering { control_factor: d("0.98") }),
                ("power".to_string(), PilotMethod::Benchmark),
            ]
            .into(),
            benchmarks: [("electricity".to_string(), crate::dec::Exact(d("0.8")))].into(),
            first_batch_share: Some(d("0.5")),
            rounding: Rounding::Down,
        }
    }

    #[test]
    fn the_three_methods_with_control_factor_and_first_batch() {
        let e = |id: &str, sector: &str| PilotEntity {
            entity: id.into(),
            sector: sector.into(),
            base_emissions_t: vec![d("100000"), d("110000"), d("120000")],
            base_output: vec![d("50000"), d("50000"), d("60000")],
            output: d("55000"),
            product: None,
            previous_verified_t: d("105001"),
        };
        let mut power = e("P", "power");
        power.product = Some("electricity".into());
        let r = allocate(&tianjin(), &[e("G", "chemicals"), e("H", "building_materials"), power]).unwrap();
        // Grandfathering: mean 110,000 × 0.98 = 107,800.
        assert_eq!((r[0].method, r[0].final_t), ("grandfathering", 107_800));
        // Intensity: mean(2.0, 2.2, 2.0) = 6.2/3; × 55,000 × 0.98 = 111,393.33... → 111,393.
        assert_eq!((r[1].method, r[1].final_t), ("historical_intensity", 111_393));
        // Benchmark: 55,000 × 0.8 = 44,000.
        assert_eq!((r[2].method, r[2].final_t), ("benchmark", 44_000));
        // First batch: 50% of 105,001 = 52,500.5 → 52,500; true-up 107,800 − 52,500.
        assert_eq!(r[0].first_batch_t, 52_500);
        assert_eq!(r[0].true_up_t, 55_300);
    }

    #[test]
    fn a_cap_splits_into_parts_that_add_up() {
        // Shenzhen 2022: ≈26 Mt, 2% new-project reserve, 2% price-stabilisation reserve.
        let split =
            CapSplit { new_entrant_reserve_share: Some(d("0.02")), price_stability_reserve_share: Some(d("0.02")), ..Default::default() };
        let v = split.volumes(26_000_001).unwrap();
        assert_eq!(v.new_entrant_reserve_t, 520_000);
        assert_eq!(v.price_stability_reserve_t, 520_000);
        assert_eq!(v.free_t, 24_960_001);
        assert_eq!(v.free_t + v.new_entrant_reserve_t + v.price_stability_reserve_t + v.auction_t + v.government_reserve_t, v.cap_t);
        let too_much = CapSplit { auction_share: Some(d("0.7")), government_reserve_share: Some(d("0.5")), ..Default::default() };
        assert!(too_much.volumes(100).unwrap_err().to_string().contains("exceed the cap"));
    }

    #[test]
    fn extreme_inputs_are_refused_not_a_panic() {
        let e = PilotEntity {
            entity: "P".into(),
            sector: "power".into(),
            base_emissions_t: vec![],
            base_output: vec![],
            output: Decimal::from_str_exact("70000000000000000000000000000").unwrap(),
            product: Some("electricity".into()),
            previous_verified_t: Decimal::ZERO,
        };
        let err = allocate(&tianjin(), &[e]).unwrap_err();
        assert!(err.to_string().contains("overflow"), "{err}");
    }

    #[test]
    fn missing_methods_and_benchmarks_are_named() {
        let mut rules = tianjin();
        rules.methods.remove("default");
        let e = PilotEntity {
            entity: "X".into(),
            sector: "glass".into(),
            base_emissions_t: vec![d("1")],
            base_output: vec![],
            output: d("1"),
            product: None,
            previous_verified_t: d("0"),
        };
        assert!(allocate(&rules, std::slice::from_ref(&e)).unwrap_err().to_string().contains("no allocation method for sector 'glass'"));
        let mut p = e;
        p.sector = "power".into();
        p.product = Some("steam".into());
        assert!(allocate(&tianjin(), &[p]).unwrap_err().to_string().contains("no benchmark for product 'steam'"));
    }
}
