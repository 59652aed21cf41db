//! A year's free allocation under a rulebook, whatever its engine, and the registry commands
//! that issue it. Pure: the CLI (`ets allocate`) and the server (`POST /api/v1/allocations`)
//! compute the same allocation from the same inputs and submit the same commands under the same
//! ids, so an issue interrupted half-way is finished by either one running it again (every step
//! already done is answered as a duplicate).

use crate::{covered, power_units};
use ets_core::Tonnes;
use ets_mrv::state::MrvState;
use ets_registry::{Command, Registry, UnitRef};
use ets_rules::allocation::pilot::CapVolumes;
use ets_rules::allocation::{industry, pilot, power};
use ets_rules::rulebook::{Allocation, Rulebook};
use std::collections::BTreeMap;

/// Why an allocation cannot be computed or issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocationError {
    /// The request is malformed: a year outside the rulebook, input data that does not parse,
    /// an engine that needs data and got none, values the engine refuses.
    Invalid(String),
    /// Well formed but not possible in the registry's state: an entity without a coverage
    /// account, a market the registry does not hold.
    Refused(String),
}

impl std::fmt::Display for AllocationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllocationError::Invalid(m) | AllocationError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AllocationError {}

/// One entity's allocation, whatever the engine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Allocated {
    pub entity: String,
    pub final_t: u64,
    pub pre_allocated_t: u64,
    pub true_up_t: i64,
    /// What the engine adds: gap-cap top-up, balance-value adjustment, method.
    pub note: String,
}

/// A computed allocation: per entity, the entities left out and why, and the rulebook's cap
/// split when it sets a cap.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AllocationRun {
    pub rulebook: String,
    pub market: String,
    pub year: i32,
    pub entities: Vec<Allocated>,
    /// (entity, why) for covered entities the engine could not allocate to.
    pub skipped: Vec<(String, String)>,
    pub total_t: u64,
    pub cap: Option<CapVolumes>,
}

pub fn engine_name(a: &Allocation) -> &'static str {
    match a {
        Allocation::Power(_) => "power",
        Allocation::Industry(_) => "industry",
        Allocation::Pilot(_) => "pilot",
    }
}

/// Computes `year`'s allocation under `rb`: the power engine from the MRV register's verified
/// data (or from `data`), the industry and pilot engines from `data`, a JSON array of their
/// unit or entity records.
pub fn allocate(rb: &Rulebook, state: &MrvState, year: i32, data: Option<&str>) -> Result<AllocationRun, AllocationError> {
    if year < rb.rulebook.first_year || year > rb.rulebook.last_year {
        return Err(AllocationError::Invalid(format!(
            "rulebook {} covers {}–{}, not {year}",
            rb.rulebook.id, rb.rulebook.first_year, rb.rulebook.last_year
        )));
    }
    let input = |what: &str| -> Result<&str, AllocationError> {
        data.ok_or_else(|| {
            AllocationError::Invalid(format!(
                "the {what} engine of {} takes its inputs as data: a JSON array of {what} records",
                rb.rulebook.id
            ))
        })
    };
    let bad = |e: serde_json::Error| AllocationError::Invalid(format!("data: {e}"));
    let rule = |e: ets_rules::RuleError| AllocationError::Invalid(e.to_string());
    let mut skipped = Vec::new();
    let entities = match &rb.allocation {
        Allocation::Power(rules) => {
            let units = match data {
                Some(text) => serde_json::from_str::<Vec<power::PowerUnit>>(text).map_err(bad)?,
                None => {
                    let (units, left_out) = power_units(state, &rb.rulebook.market, year);
                    skipped = left_out;
                    units
                }
            };
            power::allocate(rules, year, &units)
                .map_err(rule)?
                .into_iter()
                .map(|e| Allocated {
                    note: format!("{} units; gap top-up {} t; gap rate {}", e.units.len(), Tonnes(e.gap_top_up_t), e.gap_rate),
                    entity: e.entity,
                    final_t: e.final_t,
                    pre_allocated_t: e.pre_allocated_t,
                    true_up_t: e.true_up_t,
                })
                .collect()
        }
        Allocation::Industry(rules) => {
            let units: Vec<industry::IndustryUnit> = serde_json::from_str(input("industry")?).map_err(bad)?;
            let result = industry::allocate(rules, &units).map_err(rule)?;
            let mut by_entity: BTreeMap<String, Allocated> = BTreeMap::new();
            for u in &result.units {
                let e = by_entity.entry(u.entity.clone()).or_insert_with(|| Allocated {
                    entity: u.entity.clone(),
                    final_t: 0,
                    pre_allocated_t: 0,
                    true_up_t: 0,
                    note: String::new(),
                });
                let overflow = || AllocationError::Invalid(format!("{}: the allocation's sums overflow", u.entity));
                e.final_t = e.final_t.checked_add(u.final_t).ok_or_else(overflow)?;
                e.pre_allocated_t = e.pre_allocated_t.checked_add(u.pre_allocated_t).ok_or_else(overflow)?;
                e.true_up_t = e.true_up_t.checked_add(u.true_up_t).ok_or_else(overflow)?;
                let bp = result.balance_values.get(&u.sector).map(|b| format!(" BP {b}")).unwrap_or_default();
                let alpha = u.adjustment.map(|a| format!(" α {}", a.round_dp(4))).unwrap_or_else(|| " A = E".into());
                e.note.push_str(&format!("{}{bp}{alpha}; ", u.unit));
            }
            by_entity.into_values().collect()
        }
        Allocation::Pilot(rules) => {
            let records: Vec<pilot::PilotEntity> = serde_json::from_str(input("pilot")?).map_err(bad)?;
            pilot::allocate(rules, &records)
                .map_err(rule)?
                .into_iter()
                .map(|a| Allocated {
                    note: a.method.to_string(),
                    entity: a.entity,
                    final_t: a.final_t,
                    pre_allocated_t: a.first_batch_t,
                    true_up_t: a.true_up_t,
                })
                .collect()
        }
    };
    let cap = match rb.cap.cap_t {
        Some(cap) => Some(rb.cap.split.volumes(cap).map_err(rule)?),
        None => None,
    };
    run_of(rb, year, entities, skipped, cap)
}

/// A run of `entities` computed elsewhere (the demo's own engine inputs), with its total;
/// refused if the total overflows.
pub fn run_of(
    rb: &Rulebook,
    year: i32,
    entities: Vec<Allocated>,
    skipped: Vec<(String, String)>,
    cap: Option<CapVolumes>,
) -> Result<AllocationRun, AllocationError> {
    let total_t = entities
        .iter()
        .try_fold(0u64, |sum, e| sum.checked_add(e.final_t))
        .ok_or_else(|| AllocationError::Invalid("the allocation's total overflows".into()))?;
    Ok(AllocationRun { rulebook: rb.rulebook.id.clone(), market: rb.rulebook.market.clone(), year, entities, skipped, total_t, cap })
}

/// The registry commands that issue `run`, each with its id, in order: the total into the
/// market's issuance account (`alloc-{rulebook}-{year}-issue`), then each entity's allowances
/// from there to the registry account of its coverage in the MRV register
/// (`alloc-{rulebook}-{year}-{entity}`). Entities allocated nothing get no command. Refused,
/// with nothing to submit, if any entity has no coverage account.
pub fn issue_commands(registry: &Registry, state: &MrvState, run: &AllocationRun) -> Result<Vec<(String, Command)>, AllocationError> {
    let market =
        registry.find_market(&run.market).ok_or_else(|| AllocationError::Refused(format!("the registry has no market {}", run.market)))?;
    let code = registry.market(market).spec.allowance_code.clone();
    let vintage = u16::try_from(run.year).map_err(|_| AllocationError::Invalid(format!("year {} out of range", run.year)))?;
    let unit = UnitRef::allowance(&code, vintage);
    let accounts: BTreeMap<String, Option<String>> =
        covered(state, &run.market, run.year).into_iter().map(|c| (c.entity, c.account)).collect();
    let mut lines = Vec::new();
    for a in run.entities.iter().filter(|a| a.final_t > 0) {
        let Some(Some(account)) = accounts.get(&a.entity) else {
            return Err(AllocationError::Refused(format!(
                "{} has no registry account in its {} coverage for {}: set one in the MRV register (coverage) first",
                a.entity, run.market, run.year
            )));
        };
        lines.push((a.entity.as_str(), account.clone(), a.final_t));
    }
    let base = format!("alloc-{}-{}", run.rulebook, run.year);
    let mut commands = Vec::with_capacity(lines.len() + 1);
    if run.total_t > 0 {
        commands.push((format!("{base}-issue"), Command::Issue { unit: unit.clone(), quantity: Tonnes(run.total_t), to: None }));
    }
    let from = format!("{}-ISSUANCE", run.market);
    for (entity, to, quantity) in lines {
        commands.push((
            format!("{base}-{entity}"),
            Command::Allocate { from: from.clone(), to, unit: unit.clone(), quantity: Tonnes(quantity) },
        ));
    }
    Ok(commands)
}
