//! Inputs of allocation and compliance taken from the stored MRV register and registry: which
//! entities a market covers, their units' output and verified emissions, and what they
//! surrendered. Pure functions over the two states; the commands in `cycle.rs` decide what to
//! do with them.

use ets_core::Date;
use ets_mrv::entity::{Cooling, PowerCategory, UnitKind};
use ets_mrv::state::MrvState;
use ets_registry::{AccountIdx, Registry, TxKind, UnitClass};
use ets_rules::allocation::power::{Category, PowerUnit};
use ets_rules::compliance::{Lot, Project, Units};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A covered entity of a market and year, with what compliance needs.
#[derive(Clone, Debug)]
pub struct Covered {
    pub entity: String,
    pub account: Option<String>,
    /// Verified emissions of the year, if its report is accepted.
    pub verified_t: Option<Decimal>,
}

pub fn covered(state: &MrvState, market: &str, year: i32) -> Vec<Covered> {
    state
        .covered(market, year)
        .into_iter()
        .map(|(e, c)| Covered { entity: e.id.clone(), account: c.account.clone(), verified_t: state.verified_emissions(&e.id, year) })
        .collect()
}

fn hours_in(year: i32) -> Decimal {
    let days = Date::from_ymd(year + 1, 1, 1).map(|d| d.0).unwrap_or(0) - Date::from_ymd(year, 1, 1).map(|d| d.0).unwrap_or(0);
    Decimal::from(days * 24)
}

/// Generating units of the entities a market covers in `year` whose reports are accepted,
/// as the power allocation engine takes them: generated electricity is the metered production,
/// supplied electricity is taken equal to it (the MRV data carry no auxiliary consumption), heat
/// supplied is zero, the load factor is generation over capacity × hours of the year, and
/// verified emissions are the unit's share of the accepted annual figure. Entities without an
/// accepted report are listed in the second vector with the reason.
pub fn power_units(state: &MrvState, market: &str, year: i32) -> (Vec<PowerUnit>, Vec<(String, String)>) {
    let mut units = Vec::new();
    let mut skipped = Vec::new();
    for c in covered(state, market, year) {
        if c.verified_t.is_none() {
            skipped.push((c.entity.clone(), format!("no accepted {year} report")));
            continue;
        }
        let annual = match state.annual(&c.entity, year) {
            Ok(a) => a,
            Err(e) => {
                skipped.push((c.entity.clone(), e.message));
                continue;
            }
        };
        // Pre-allocation rests on the previous year's verified emissions: without an accepted
        // previous-year report there is none (the true-up is then the whole allocation).
        let previous = state.verified_emissions(&c.entity, year - 1).and_then(|_| state.annual(&c.entity, year - 1).ok());
        if let Some(u) = annual.units.iter().find(|u| u.production.is_none()) {
            skipped.push((c.entity.clone(), format!("unit {} has no metered production for every month of {year}", u.unit)));
            continue;
        }
        for u in &annual.units {
            let Some(UnitKind::GeneratingUnit { capacity_mw, category, cooling, .. }) = state.unit(&u.unit).map(|x| &x.kind) else {
                continue;
            };
            let production = u.production.unwrap_or_default();
            let Some(capacity_hours) = capacity_mw.checked_mul(hours_in(year)) else {
                skipped.push((c.entity.clone(), format!("unit {}: capacity {capacity_mw} MW is out of range", u.unit)));
                continue;
            };
            let load = if capacity_hours.is_zero() { Decimal::ZERO } else { (production / capacity_hours).min(Decimal::ONE).round_dp(6) };
            let previous_t = previous
                .as_ref()
                .and_then(|p| p.units.iter().find(|x| x.unit == u.unit))
                .map(|x| x.emissions.annual_co2_t)
                .unwrap_or_default();
            units.push(PowerUnit {
                unit: u.unit.clone(),
                entity: c.entity.clone(),
                category: match category {
                    PowerCategory::I => Category::I,
                    PowerCategory::II => Category::II,
                    PowerCategory::III => Category::III,
                    PowerCategory::IV => Category::IV,
                },
                generated_mwh: production,
                supplied_mwh: production,
                heat_gj: Decimal::ZERO,
                load_factor: load,
                air_cooled: *cooling == Cooling::Air,
                heat_ratio: Decimal::ZERO,
                verified_t: u.emissions.annual_co2_t,
                previous_verified_t: previous_t,
                base_year_mwh: production,
                base_year_heat_gj: Decimal::ZERO,
            });
        }
    }
    (units, skipped)
}

/// Offset projects known to compliance: id → project.
pub type ProjectCatalog = BTreeMap<String, Project>;

/// What an account surrendered for a compliance year (reversed surrenders excluded), as lots;
/// offsets of projects missing from the catalog come back separately, as they cannot be judged.
pub fn surrendered(registry: &Registry, account: AccountIdx, year: u16, projects: &ProjectCatalog) -> (Vec<Lot>, Vec<(u64, String)>) {
    let mut by_units: BTreeMap<String, (Units, u64)> = BTreeMap::new();
    let mut unknown = Vec::new();
    for t in registry.transactions() {
        if t.from != Some(account) || t.reversed_by.is_some() || t.kind != (TxKind::Surrender { compliance_year: year }) {
            continue;
        }
        let q: u64 = t.blocks.iter().map(|b| b.len()).sum();
        let spec = &registry.unit(t.unit).spec;
        let units = match &spec.class {
            UnitClass::Allowance => Units::Allowance { vintage: spec.vintage },
            UnitClass::Offset { project, standard } => match projects.get(project) {
                Some(p) => Units::Offset { project: p.clone(), vintage: spec.vintage },
                None => {
                    unknown.push((q, format!("{standard} project {project} is not in the project catalog")));
                    continue;
                }
            },
        };
        let key = format!("{units:?}");
        by_units.entry(key).or_insert((units, 0)).1 += q;
    }
    (by_units.into_values().map(|(units, quantity)| Lot { units, quantity }).collect(), unknown)
}
