//! Compliance under a market's rules: the obligation from verified emissions, which surrendered
//! units count (allowance vintages, offsets within each market's limits and locality rules),
//! the shortfall, the penalty and what carries into the next year; carry-over (banking) of
//! the national market's 2019–2024 vintages; and a surrender plan that uses the entity's
//! holdings as the rules allow.
//!
//! The registry records every surrender; this module decides what a surrender is worth under
//! the rules. Offsets beyond a limit, ineligible projects and vintages that may not be used for
//! the year do not count (china-ets.md §3, §2.4, §6.1; mechanisms.md §4).

use crate::dec;
use crate::num::{floor_tonnes, Rounding};
use crate::RuleError;
use ets_core::{Date, Fen};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What an offset limit is a share of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitBasis {
    /// The surrender obligation (national CCER 5%, Chongqing 8%, Fujian).
    Obligation,
    /// The year's verified (actual) emissions (Guangdong, Tianjin, Hubei 10%).
    VerifiedEmissions,
    /// The entity's annual allocation (Beijing 5%).
    Allocation,
}

/// One group of offsets a market accepts, with its limit and locality rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetRule {
    /// Offset standards in the group (`CCER`, `PHCER`, `FFCER`, `BJCER`, ...).
    pub standards: Vec<String>,
    #[serde(deserialize_with = "dec::exact")]
    pub limit_share: Decimal,
    pub basis: LimitBasis,
    /// Provinces whose projects are local.
    #[serde(default)]
    pub local_provinces: Vec<String>,
    /// Only local projects count (Hubei 2014).
    #[serde(default)]
    pub local_only: bool,
    /// At least this share of the offsets counted must be local (Guangdong 70%, Beijing 50%).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub min_local_share: Option<Decimal>,
    /// Non-local offsets count up to this share of the basis (Beijing 2.5%).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub non_local_limit_share: Option<Decimal>,
    /// Project types that do not count (hydro, fossil fuel).
    #[serde(default)]
    pub excluded_project_types: Vec<String>,
    /// Only projects registered on or after this date count (national CCER: 2024-01-22).
    #[serde(default)]
    pub registered_from: Option<Date>,
    /// Tonnes one credit of the group counts for (a market recognising another's credits at a
    /// discount: 0.8); 1 when absent. Limits apply to the tonnes counted.
    #[serde(default, deserialize_with = "dec::exact_opt", skip_serializing_if = "Option::is_none")]
    pub rate: Option<Decimal>,
}

impl OffsetRule {
    /// The whole tonnes `credits` of this group count for.
    pub fn tonnes(&self, credits: u64) -> Result<u64, RuleError> {
        match self.rate {
            None => Ok(credits),
            Some(r) if r <= Decimal::ZERO || r > Decimal::ONE => Err(RuleError::input("offset rate", r, "must be in (0, 1]")),
            Some(r) => floor_tonnes(crate::num::mul(Decimal::from(credits), r, "offset rate")?),
        }
    }

    /// The fewest credits that count for `tonnes`.
    pub fn credits_for(&self, tonnes: u64) -> Result<u64, RuleError> {
        match self.rate {
            None => Ok(tonnes),
            Some(r) => Rounding::Up.whole_tonnes(crate::num::div(Decimal::from(tonnes), r, "offset rate")?),
        }
    }
}

/// Vintage rules: which allowance vintages may be used for an obligation year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VintageRules {
    /// Vintages earlier than the obligation year may be used.
    pub banking: bool,
    /// Later vintages may be used (borrowing).
    pub borrowing: bool,
    /// Vintages before this one cannot be used for obligation years from `cut_from_year`
    /// (national: 2019–2024 vintages not usable for 2025+ unless converted).
    #[serde(default)]
    pub cut_before_vintage: Option<u16>,
    #[serde(default)]
    pub cut_from_year: Option<u16>,
}

/// The national carry-over of unconverted vintages: T = B + NS × R, at most the holdings,
/// rounded down (china-ets.md §2.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarryOver {
    #[serde(deserialize_with = "dec::exact")]
    pub base_t: Decimal,
    #[serde(deserialize_with = "dec::exact")]
    pub rate: Decimal,
    pub net_sales_from: Date,
    pub net_sales_to: Date,
    /// Vintages that may be carried over, and the vintage they become.
    pub vintages: Vec<u16>,
    pub into_vintage: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    /// Average market price in the month before the surrender deadline (national).
    MonthBeforeDeadline,
    /// The year's average market price (Hubei).
    YearAverage,
    /// Average market price of the six months before (Shenzhen).
    PriorSixMonthsAverage,
}

/// What a shortfall costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Penalty {
    /// A multiple of a market price on the shortfall, within [min, max] (the authority picks;
    /// `applied` is the one ets uses), optionally capped, plus a deduction of `deduct_multiple`
    /// × the shortfall from next year's allocation.
    PriceMultiple {
        #[serde(deserialize_with = "dec::exact")]
        min_multiple: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        max_multiple: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        applied_multiple: Decimal,
        price_basis: PriceBasis,
        /// Cap on the fine, in fen (Hubei ¥150,000).
        #[serde(default)]
        cap_fen: Option<i64>,
        #[serde(deserialize_with = "dec::exact")]
        deduct_multiple: Decimal,
    },
    /// A fixed amount per tonne short, in minor units of `currency` (EU EUR 100 = 10,000 cents);
    /// the obligation is carried forward when the rules say so.
    FixedPerTonne { amount_minor: i64, currency: String, carried_forward: bool },
    /// Untimely surrender (WCI): `ratio` × the shortfall is owed, at least `min_allowance_share`
    /// of it in allowances.
    UntimelySurrender {
        #[serde(deserialize_with = "dec::exact")]
        ratio: Decimal,
        #[serde(deserialize_with = "dec::exact")]
        min_allowance_share: Decimal,
    },
    /// No fine; another sanction, described.
    NonMonetary { sanction: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceRules {
    /// Rounding of verified emissions to the whole-tonne obligation.
    pub obligation_rounding: Rounding,
    /// Deadline as month and day of the year after the emission year.
    pub deadline_month: u32,
    pub deadline_day: u32,
    #[serde(default)]
    pub offsets: Vec<OffsetRule>,
    /// Limit on all offsets together, as a share of the obligation (Fujian 10%).
    #[serde(default, deserialize_with = "dec::exact_opt")]
    pub total_offset_limit_share: Option<Decimal>,
    pub vintages: VintageRules,
    #[serde(default)]
    pub carry_over: Option<CarryOver>,
    pub penalty: Penalty,
}

/// An offset project as the rules need to know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub standard: String,
    pub province: String,
    pub project_type: String,
    pub registered: Date,
}

/// A quantity of units an entity surrendered (or could surrender) for a year.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Units {
    /// Allowances of a market's product and vintage.
    Allowance {
        vintage: u16,
    },
    Offset {
        project: Project,
        vintage: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub units: Units,
    pub quantity: u64,
}

/// What the entity's surrenders are worth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub obligation_t: u64,
    pub allowances_counted_t: u64,
    pub offsets_counted_t: u64,
    /// Surrendered but not counted, with why.
    pub not_counted: Vec<(u64, String)>,
    pub shortfall_t: u64,
    pub compliant: bool,
    /// Fine in fen (China) or minor units of the rulebook's currency.
    pub fine_minor: i64,
    /// To deduct from next year's allocation.
    pub next_year_deduction_t: u64,
    /// Obligation carried into next year (EU) or the untimely obligation (WCI).
    pub carried_obligation_t: u64,
}

impl ComplianceRules {
    /// The obligation of verified emissions, in whole tonnes.
    pub fn obligation(&self, verified_t: Decimal) -> Result<u64, RuleError> {
        self.obligation_rounding.whole_tonnes(verified_t)
    }

    /// The surrender deadline for an emission year.
    pub fn deadline(&self, year: i32) -> Result<Date, RuleError> {
        Date::from_ymd(year + 1, self.deadline_month, self.deadline_day).map_err(|e| RuleError::NoRule(format!("deadline: {}", e.0)))
    }

    /// Whether an allowance vintage may be used for an obligation year.
    pub fn vintage_usable(&self, vintage: u16, year: u16) -> bool {
        let v = &self.vintages;
        if vintage < year && !v.banking || vintage > year && !v.borrowing {
            return false;
        }
        !matches!((v.cut_before_vintage, v.cut_from_year), (Some(cut), Some(from)) if year >= from && vintage < cut)
    }

    fn offset_group(&self, project: &Project) -> Option<(usize, &OffsetRule)> {
        self.offsets.iter().enumerate().find(|(_, r)| r.standards.iter().any(|s| s == &project.standard))
    }

    /// Why an offset project does not count at all, if it does not.
    pub fn offset_ineligible(&self, project: &Project) -> Option<String> {
        let Some((_, rule)) = self.offset_group(project) else {
            return Some(format!("{} offsets are not accepted in this market", project.standard));
        };
        if rule.excluded_project_types.iter().any(|t| t == &project.project_type) {
            return Some(format!("{} projects ({}) are excluded", project.project_type, project.id));
        }
        if let Some(from) = rule.registered_from {
            if project.registered < from {
                return Some(format!("project {} was registered on {}, before {from}", project.id, project.registered));
            }
        }
        if rule.local_only && !rule.local_provinces.iter().any(|p| p == &project.province) {
            return Some(format!("project {} is in {}; only local projects count", project.id, project.province));
        }
        None
    }

    /// Assesses the surrenders for one obligation year. `allocation_t` is the entity's
    /// allocation for the year (for limits on it); `price_fen` the market price the penalty
    /// uses (per tonne, in fen or minor units).
    pub fn assess(
        &self,
        year: u16,
        verified_t: Decimal,
        allocation_t: u64,
        surrendered: &[Lot],
        price_fen: Fen,
    ) -> Result<Assessment, RuleError> {
        let obligation = self.obligation(verified_t)?;
        let basis_value = |b: LimitBasis| match b {
            LimitBasis::Obligation => Decimal::from(obligation),
            LimitBasis::VerifiedEmissions => verified_t,
            LimitBasis::Allocation => Decimal::from(allocation_t),
        };
        let mut not_counted = Vec::new();
        let mut allowances = 0u64;
        // Offsets per group: (local, non-local) quantities that are eligible.
        let mut groups: Vec<(u64, u64)> = vec![(0, 0); self.offsets.len()];
        for lot in surrendered {
            match &lot.units {
                Units::Allowance { vintage } => {
                    if self.vintage_usable(*vintage, year) {
                        allowances += lot.quantity;
                    } else {
                        not_counted.push((lot.quantity, format!("vintage {vintage} may not be used for {year}")));
                    }
                }
                Units::Offset { project, .. } => {
                    if let Some(why) = self.offset_ineligible(project) {
                        not_counted.push((lot.quantity, why));
                        continue;
                    }
                    let (g, rule) = self.offset_group(project).expect("eligible offsets have a group");
                    let local = rule.local_provinces.iter().any(|p| p == &project.province);
                    let tonnes = rule.tonnes(lot.quantity)?;
                    if tonnes < lot.quantity {
                        not_counted.push((
                            lot.quantity - tonnes,
                            format!("{} credits of {} count at {} t each", lot.quantity, project.id, rule.rate.unwrap_or(Decimal::ONE)),
                        ));
                    }
                    if local {
                        groups[g].0 += tonnes;
                    } else {
                        groups[g].1 += tonnes;
                    }
                }
            }
        }
        let mut offsets = 0u64;
        for (g, rule) in self.offsets.iter().enumerate() {
            let (local, mut non_local) = groups[g];
            if let Some(share) = rule.non_local_limit_share {
                let cap = floor_tonnes(share * basis_value(rule.basis))?;
                if non_local > cap {
                    not_counted.push((
                        non_local - cap,
                        format!(
                            "non-local {} offsets beyond {}% of the {:?}",
                            rule.standards.join("/"),
                            share * Decimal::ONE_HUNDRED,
                            rule.basis
                        ),
                    ));
                    non_local = cap;
                }
            }
            if let Some(min_local) = rule.min_local_share {
                // Non-local offsets count only while local ones are at least `min_local` of the total.
                if min_local < Decimal::ONE {
                    let allowed = floor_tonnes(Decimal::from(local) * (Decimal::ONE - min_local) / min_local)?;
                    if non_local > allowed {
                        not_counted.push((
                            non_local - allowed,
                            format!("non-local offsets beyond {}% of the offsets used", (Decimal::ONE - min_local) * Decimal::ONE_HUNDRED),
                        ));
                        non_local = allowed;
                    }
                }
            }
            let mut used = local + non_local;
            let cap = floor_tonnes(rule.limit_share * basis_value(rule.basis))?;
            if used > cap {
                not_counted.push((
                    used - cap,
                    format!(
                        "{} offsets beyond the limit of {}% of the {:?} ({cap} t)",
                        rule.standards.join("/"),
                        rule.limit_share * Decimal::ONE_HUNDRED,
                        rule.basis
                    ),
                ));
                used = cap;
            }
            offsets += used;
        }
        if let Some(total) = self.total_offset_limit_share {
            let cap = floor_tonnes(total * Decimal::from(obligation))?;
            if offsets > cap {
                not_counted.push((
                    offsets - cap,
                    format!("offsets beyond the overall limit of {}% of the obligation", total * Decimal::ONE_HUNDRED),
                ));
                offsets = cap;
            }
        }
        // Offsets never count for more than the obligation they meet.
        let offsets = offsets.min(obligation);
        let counted = allowances + offsets;
        let shortfall = obligation.saturating_sub(counted);
        let (fine, deduction, carried) = self.penalty(shortfall, price_fen)?;
        Ok(Assessment {
            obligation_t: obligation,
            allowances_counted_t: allowances,
            offsets_counted_t: offsets,
            not_counted,
            shortfall_t: shortfall,
            compliant: shortfall == 0,
            fine_minor: fine,
            next_year_deduction_t: deduction,
            carried_obligation_t: carried,
        })
    }

    /// (fine in minor units, next-year deduction, carried or untimely obligation) of a shortfall.
    pub fn penalty(&self, shortfall: u64, price_fen: Fen) -> Result<(i64, u64, u64), RuleError> {
        if shortfall == 0 {
            return Ok((0, 0, 0));
        }
        let s = Decimal::from(shortfall);
        Ok(match &self.penalty {
            Penalty::PriceMultiple { min_multiple, max_multiple, applied_multiple, cap_fen, deduct_multiple, .. } => {
                if applied_multiple < min_multiple || applied_multiple > max_multiple {
                    return Err(RuleError::input("applied penalty multiple", *applied_multiple, "must lie within the rule's range"));
                }
                let fine = (s * Decimal::from(price_fen.0) * *applied_multiple)
                    .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
                let mut fine = i64::try_from(fine).map_err(|_| RuleError::Overflow("fine"))?;
                if let Some(cap) = cap_fen {
                    fine = fine.min(*cap);
                }
                (fine, floor_tonnes(s * *deduct_multiple)?, 0)
            }
            Penalty::FixedPerTonne { amount_minor, carried_forward, .. } => {
                let fine = amount_minor
                    .checked_mul(i64::try_from(shortfall).map_err(|_| RuleError::Overflow("fine"))?)
                    .ok_or(RuleError::Overflow("fine"))?;
                (fine, 0, if *carried_forward { shortfall } else { 0 })
            }
            Penalty::UntimelySurrender { ratio, .. } => (0, 0, Rounding::Up.whole_tonnes(s * *ratio)?),
            Penalty::NonMonetary { .. } => (0, 0, 0),
        })
    }

    /// The carry-over quantity: T = B + max(NS, 0) × R, at most the holdings, rounded down.
    pub fn carry_over_quantity(&self, net_sales_t: i64, holdings_t: u64) -> Result<u64, RuleError> {
        let c = self.carry_over.as_ref().ok_or_else(|| RuleError::NoRule("these rules have no carry-over".into()))?;
        let t = c.base_t + Decimal::from(net_sales_t.max(0)) * c.rate;
        Ok(floor_tonnes(t)?.min(holdings_t))
    }

    /// Which lots to surrender from `holdings` to meet what is still owed after `already`
    /// (the lots surrendered for the year so far): eligible offsets first (each only as far as
    /// it still counts, judged together with what was already surrendered), then allowances of
    /// the oldest usable vintage first.
    pub fn plan(
        &self,
        year: u16,
        verified_t: Decimal,
        allocation_t: u64,
        holdings: &[Lot],
        already: &[Lot],
    ) -> Result<Vec<Lot>, RuleError> {
        let counted = |lots: &[Lot]| -> Result<(u64, u64), RuleError> {
            let a = self.assess(year, verified_t, allocation_t, lots, Fen(0))?;
            Ok((a.allowances_counted_t + a.offsets_counted_t, a.offsets_counted_t))
        };
        let obligation = self.obligation(verified_t)?;
        let mut all: Vec<Lot> = already.to_vec();
        let mut plan: Vec<Lot> = Vec::new();
        let mut remaining = obligation.saturating_sub(counted(&all)?.0);
        let mut offsets: Vec<&Lot> = holdings.iter().filter(|l| matches!(l.units, Units::Offset { .. })).collect();
        // Local projects first, so that locality shares are met with what counts.
        offsets.sort_by_key(|l| match &l.units {
            Units::Offset { project, .. } => {
                let local = self.offset_group(project).is_some_and(|(_, r)| r.local_provinces.iter().any(|p| p == &project.province));
                (!local, project.id.clone())
            }
            Units::Allowance { .. } => (true, String::new()),
        });
        for lot in offsets {
            if remaining == 0 {
                break;
            }
            // Keep only what raises the counted offsets when added to everything so far.
            let before = counted(&all)?.1;
            all.push(Lot { units: lot.units.clone(), quantity: lot.quantity });
            let useful = counted(&all)?.1 - before;
            all.pop();
            if useful > 0 {
                // The credits that count for those tonnes (more than the tonnes at a discount rate).
                let rule = match &lot.units {
                    Units::Offset { project, .. } => self.offset_group(project).map(|(_, r)| r),
                    Units::Allowance { .. } => None,
                };
                let credits = match rule {
                    Some(r) => r.credits_for(useful)?.min(lot.quantity),
                    None => useful,
                };
                let l = Lot { units: lot.units.clone(), quantity: credits };
                all.push(l.clone());
                let gained = counted(&all)?.1 - before;
                plan.push(l);
                remaining = remaining.saturating_sub(gained);
            }
        }
        let mut allowances: Vec<&Lot> =
            holdings.iter().filter(|l| matches!(l.units, Units::Allowance { vintage } if self.vintage_usable(vintage, year))).collect();
        allowances.sort_by_key(|l| match l.units {
            Units::Allowance { vintage } => vintage,
            Units::Offset { .. } => u16::MAX,
        });
        for lot in allowances {
            if remaining == 0 {
                break;
            }
            let q = lot.quantity.min(remaining);
            plan.push(Lot { units: lot.units.clone(), quantity: q });
            remaining -= q;
        }
        Ok(plan)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    pub(crate) fn national() -> ComplianceRules {
        ComplianceRules {
            obligation_rounding: Rounding::Up,
            deadline_month: 12,
            deadline_day: 31,
            offsets: vec![OffsetRule {
                standards: vec!["CCER".into()],
                limit_share: d("0.05"),
                basis: LimitBasis::Obligation,
                local_provinces: vec![],
                local_only: false,
                min_local_share: None,
                non_local_limit_share: None,
                excluded_project_types: vec![],
                registered_from: Some(day("2024-01-22")),
                rate: None,
            }],
            total_offset_limit_share: None,
            vintages: VintageRules { banking: true, borrowing: false, cut_before_vintage: Some(2025), cut_from_year: Some(2025) },
            carry_over: Some(CarryOver {
                base_t: d("10000"),
                rate: d("1.5"),
                net_sales_from: day("2024-01-01"),
                net_sales_to: day("2025-12-31"),
                vintages: vec![2019, 2020, 2021, 2022, 2023, 2024],
                into_vintage: 2025,
            }),
            penalty: Penalty::PriceMultiple {
                min_multiple: d("5"),
                max_multiple: d("10"),
                applied_multiple: d("5"),
                price_basis: PriceBasis::MonthBeforeDeadline,
                cap_fen: None,
                deduct_multiple: Decimal::ONE,
            },
        }
    }

    pub(crate) fn ccer(id: &str, province: &str, registered: &str) -> Units {
        Units::Offset {
            project: Project {
                id: id.into(),
                standard: "CCER".into(),
                province: province.into(),
                project_type: "wind".into(),
                registered: day(registered),
            },
            vintage: 2024,
        }
    }

    #[test]
    fn example_9_ccer_cap() {
        // Verified 2,000,000 t; 150,000 eligible CCERs: at most 5% = 100,000 count; 1,900,000
        // allowances are needed; 50,000 CCERs are not counted.
        let r = national();
        let holdings = [
            Lot { units: ccer("P1", "Gansu", "2024-06-01"), quantity: 150_000 },
            Lot { units: Units::Allowance { vintage: 2024 }, quantity: 3_000_000 },
        ];
        let plan = r.plan(2024, d("2000000"), 0, &holdings, &[]).unwrap();
        assert_eq!(plan[0].quantity, 100_000);
        assert_eq!(plan[1], Lot { units: Units::Allowance { vintage: 2024 }, quantity: 1_900_000 });
        let all = [
            Lot { units: ccer("P1", "Gansu", "2024-06-01"), quantity: 150_000 },
            Lot { units: Units::Allowance { vintage: 2024 }, quantity: 1_900_000 },
        ];
        let a = r.assess(2024, d("2000000"), 0, &all, Fen(0)).unwrap();
        assert_eq!((a.offsets_counted_t, a.allowances_counted_t, a.shortfall_t), (100_000, 1_900_000, 0));
        assert_eq!(a.not_counted[0].0, 50_000);
        assert!(a.compliant);
    }

    #[test]
    fn old_ccers_and_cut_vintages_do_not_count() {
        let r = national();
        let lots = [
            Lot { units: ccer("OLD", "Gansu", "2016-03-01"), quantity: 10 },
            Lot { units: Units::Allowance { vintage: 2023 }, quantity: 100 },
            Lot { units: Units::Allowance { vintage: 2026 }, quantity: 100 },
        ];
        // For 2025: 2023 vintage cut (not converted), 2026 is borrowing: nothing counts.
        let a = r.assess(2025, d("200"), 0, &lots, Fen(0)).unwrap();
        assert_eq!(a.allowances_counted_t + a.offsets_counted_t, 0);
        assert_eq!(a.not_counted.len(), 3);
        assert!(a.not_counted[0].1.contains("before 2024-01-22"));
        // For 2024 the 2023 vintage is banked and counts.
        assert_eq!(r.assess(2024, d("200"), 0, &lots, Fen(0)).unwrap().allowances_counted_t, 100);
    }

    #[test]
    fn national_penalty_five_times_the_price_and_next_year_deduction() {
        // Obligation 1,000.2 → 1,001 (rounded up); 900 surrendered → 101 short; price ¥62.36 →
        // 5 × 101 × 6,236 fen = 3,149,180 fen (¥31,491.80); 101 t deducted next year.
        let r = national();
        let a = r.assess(2024, d("1000.2"), 0, &[Lot { units: Units::Allowance { vintage: 2024 }, quantity: 900 }], Fen(6_236)).unwrap();
        assert_eq!(a.obligation_t, 1_001);
        assert_eq!(a.shortfall_t, 101);
        assert_eq!(a.fine_minor, 3_149_180);
        assert_eq!(a.next_year_deduction_t, 101);
    }

    #[test]
    fn hubei_eu_and_wci_penalties() {
        let mut hubei = national();
        hubei.penalty = Penalty::PriceMultiple {
            min_multiple: d("1"),
            max_multiple: d("3"),
            applied_multiple: d("3"),
            price_basis: PriceBasis::YearAverage,
            cap_fen: Some(15_000_000),
            deduct_multiple: d("2"),
        };
        // 10,000 t short at ¥40: 3 × 10,000 × 4,000 fen = ¥1.2 m → capped at ¥150,000; double deduction.
        assert_eq!(hubei.penalty(10_000, Fen(4_000)).unwrap(), (15_000_000, 20_000, 0));
        let mut eu = national();
        eu.penalty = Penalty::FixedPerTonne { amount_minor: 10_000, currency: "EUR".into(), carried_forward: true };
        assert_eq!(eu.penalty(250, Fen(0)).unwrap(), (2_500_000, 0, 250));
        let mut wci = national();
        wci.penalty = Penalty::UntimelySurrender { ratio: d("4"), min_allowance_share: d("0.75") };
        assert_eq!(wci.penalty(250, Fen(0)).unwrap(), (0, 0, 1_000));
        let mut bad = national();
        if let Penalty::PriceMultiple { applied_multiple, .. } = &mut bad.penalty {
            *applied_multiple = d("11");
        }
        assert!(bad.penalty(1, Fen(1)).is_err());
    }

    #[test]
    fn carry_over_formula() {
        let r = national();
        // T = 10,000 + 1.5 × 20,001 = 40,001.5 → 40,001; capped at holdings 35,000.
        assert_eq!(r.carry_over_quantity(20_001, 1_000_000).unwrap(), 40_001);
        assert_eq!(r.carry_over_quantity(20_001, 35_000).unwrap(), 35_000);
        // Negative net sales count as zero.
        assert_eq!(r.carry_over_quantity(-50_000, 1_000_000).unwrap(), 10_000);
    }

    #[test]
    fn locality_rules_guangdong_and_beijing() {
        // Guangdong: offsets ≤ 10% of verified emissions; ≥ 70% from Guangdong.
        let mut gd = national();
        gd.offsets = vec![OffsetRule {
            standards: vec!["CCER".into(), "PHCER".into()],
            limit_share: d("0.10"),
            basis: LimitBasis::VerifiedEmissions,
            local_provinces: vec!["Guangdong".into()],
            local_only: false,
            min_local_share: Some(d("0.70")),
            non_local_limit_share: None,
            excluded_project_types: vec!["hydro".into()],
            registered_from: None,
            rate: None,
        }];
        gd.vintages.cut_before_vintage = None;
        // Verified 100,000: limit 10,000. 7,000 local + 5,000 non-local: non-local counts up to
        // 7,000 × 30/70 = 3,000; total 10,000.
        let lots = [
            Lot { units: ccer("L", "Guangdong", "2020-01-01"), quantity: 7_000 },
            Lot { units: ccer("N", "Yunnan", "2020-01-01"), quantity: 5_000 },
        ];
        let a = gd.assess(2024, d("100000"), 0, &lots, Fen(0)).unwrap();
        assert_eq!(a.offsets_counted_t, 10_000);
        assert_eq!(a.not_counted[0].0, 2_000);
        // Beijing: ≤ 5% of allocation; non-Beijing ≤ 2.5% of allocation.
        let mut bj = gd.clone();
        bj.offsets[0].limit_share = d("0.05");
        bj.offsets[0].basis = LimitBasis::Allocation;
        bj.offsets[0].local_provinces = vec!["Beijing".into()];
        bj.offsets[0].min_local_share = None;
        bj.offsets[0].non_local_limit_share = Some(d("0.025"));
        let lots = [
            Lot { units: ccer("N", "Hebei", "2020-01-01"), quantity: 4_000 },
            Lot { units: ccer("B", "Beijing", "2020-01-01"), quantity: 4_000 },
        ];
        // Allocation 100,000: non-local ≤ 2,500; total ≤ 5,000 → 2,500 + 2,500 of the local.
        let a = bj.assess(2024, d("120000"), 100_000, &lots, Fen(0)).unwrap();
        assert_eq!(a.offsets_counted_t, 5_000);
        // A hydro project does not count at all.
        let hydro = Units::Offset {
            project: Project {
                id: "H".into(),
                standard: "CCER".into(),
                province: "Guangdong".into(),
                project_type: "hydro".into(),
                registered: day("2020-01-01"),
            },
            vintage: 2020,
        };
        let a = gd.assess(2024, d("100000"), 0, &[Lot { units: hydro, quantity: 100 }], Fen(0)).unwrap();
        assert_eq!(a.offsets_counted_t, 0);
        assert!(a.not_counted[0].1.contains("hydro"));
    }

    #[test]
    fn the_plan_uses_local_offsets_first_and_oldest_vintages() {
        let mut gd = national();
        gd.offsets[0].limit_share = d("0.10");
        gd.offsets[0].local_provinces = vec!["Guangdong".into()];
        gd.offsets[0].min_local_share = Some(d("0.70"));
        gd.offsets[0].registered_from = None;
        gd.vintages.cut_before_vintage = None;
        let holdings = [
            Lot { units: ccer("N", "Yunnan", "2020-01-01"), quantity: 10_000 },
            Lot { units: ccer("L", "Guangdong", "2020-01-01"), quantity: 3_500 },
            Lot { units: Units::Allowance { vintage: 2024 }, quantity: 100_000 },
            Lot { units: Units::Allowance { vintage: 2023 }, quantity: 50_000 },
        ];
        let plan = gd.plan(2024, d("100000"), 0, &holdings, &[]).unwrap();
        // 3,500 local, then non-local up to 30/70 of it (1,500), then 2023 allowances, then 2024.
        assert_eq!(plan.iter().map(|l| l.quantity).collect::<Vec<_>>(), vec![3_500, 1_500, 50_000, 45_000]);
        let a = gd.assess(2024, d("100000"), 0, &plan, Fen(0)).unwrap();
        assert!(a.compliant && a.not_counted.is_empty(), "{a:?}");
    }

    #[test]
    fn credits_recognised_at_a_rate_count_for_less() {
        // A pilot accepting national CCERs at 0.8 t each, within 10% of the obligation.
        let mut r = national();
        r.offsets[0].rate = Some(d("0.8"));
        r.offsets[0].limit_share = d("0.10");
        let lots = [
            Lot { units: ccer("P1", "Gansu", "2024-06-01"), quantity: 1_001 },
            Lot { units: Units::Allowance { vintage: 2024 }, quantity: 99_000 },
        ];
        // 1,001 credits × 0.8 = 800.8 → 800 t.
        let a = r.assess(2024, d("100000"), 0, &lots, Fen(0)).unwrap();
        assert_eq!(a.offsets_counted_t, 800);
        assert_eq!(a.shortfall_t, 200);
        // The plan uses 12,500 credits for the 10,000 t limit (10,000 / 0.8), then allowances.
        let holdings = [
            Lot { units: ccer("P1", "Gansu", "2024-06-01"), quantity: 50_000 },
            Lot { units: Units::Allowance { vintage: 2024 }, quantity: 200_000 },
        ];
        let plan = r.plan(2024, d("100000"), 0, &holdings, &[]).unwrap();
        assert_eq!(plan.iter().map(|l| l.quantity).collect::<Vec<_>>(), vec![12_500, 90_000]);
        let a = r.assess(2024, d("100000"), 0, &plan, Fen(0)).unwrap();
        assert!(a.compliant, "{a:?}");
        r.offsets[0].rate = Some(d("1.5"));
        assert!(r.assess(2024, d("100000"), 0, &lots, Fen(0)).is_err(), "a rate above 1 is refused");
    }

    #[test]
    fn the_plan_counts_what_was_already_surrendered() {
        // Obligation 100,000; 5,000 CCER already surrendered (the 5% limit is used up): the
        // plan adds no CCER and 95,000 allowances.
        let r = national();
        let already = [Lot { units: ccer("P1", "Gansu", "2024-06-01"), quantity: 5_000 }];
        let holdings = [
            Lot { units: ccer("P1", "Gansu", "2024-06-01"), quantity: 10_000 },
            Lot { units: Units::Allowance { vintage: 2024 }, quantity: 200_000 },
        ];
        let plan = r.plan(2024, d("100000"), 0, &holdings, &already).unwrap();
        assert_eq!(plan, vec![Lot { units: Units::Allowance { vintage: 2024 }, quantity: 95_000 }]);
        let mut all = already.to_vec();
        all.extend(plan);
        let a = r.assess(2024, d("100000"), 0, &all, Fen(0)).unwrap();
        assert!(a.compliant && a.not_counted.is_empty(), "{a:?}");
    }
}
