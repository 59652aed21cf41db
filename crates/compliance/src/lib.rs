//! A compliance year read from the MRV register and the registry: which entities a market
//! covers, their units' output and verified emissions, what they were allocated and
//! surrendered, and each one's assessment under the market's rulebook. Pure functions over the
//! two states; the CLI's cycle commands and the server's compliance views decide what to do
//! with them.

pub mod allocation;

use ets_core::Date;
use ets_core::Fen;
use ets_mrv::entity::{Cooling, PowerCategory, UnitKind};
use ets_mrv::state::MrvState;
use ets_registry::{AccountIdx, Registry, TxKind, UnitClass};
use ets_rules::allocation::power::{Category, PowerUnit};
use ets_rules::compliance::{Assessment, Lot, Project, Units};
use ets_rules::rulebook::{self, Allocation, Rulebook};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

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
    let mut books = scan(registry, &BTreeSet::from([account]), year, projects);
    let book = books.remove(&account).unwrap_or_default();
    (book.lots(), book.unknown)
}

/// Allowances of the year's vintage allocated to an account (the basis of allocation-based
/// offset limits), reversed allocations excluded.
pub fn allocated_to(registry: &Registry, account: AccountIdx, vintage: u16) -> u64 {
    scan(registry, &BTreeSet::from([account]), vintage, &ProjectCatalog::new()).remove(&account).map_or(0, |b| b.allocated_t)
}

/// One account's compliance year as the registry's transactions show it.
#[derive(Default)]
struct AccountYear {
    /// Allowances of the year's vintage allocated to it.
    allocated_t: u64,
    /// Surrendered for the year, by what was surrendered.
    surrendered: BTreeMap<String, (Units, u64)>,
    /// Surrendered offsets of projects compliance does not know.
    unknown: Vec<(u64, String)>,
}

impl AccountYear {
    fn lots(&self) -> Vec<Lot> {
        self.surrendered.values().map(|(units, quantity)| Lot { units: units.clone(), quantity: *quantity }).collect()
    }
}

/// One pass over the registry's transactions for every account in `accounts` (reversed
/// transactions excluded): a market's year costs one scan, not one per entity.
fn scan(registry: &Registry, accounts: &BTreeSet<AccountIdx>, year: u16, projects: &ProjectCatalog) -> BTreeMap<AccountIdx, AccountYear> {
    let mut out: BTreeMap<AccountIdx, AccountYear> = BTreeMap::new();
    for t in registry.transactions() {
        if t.reversed_by.is_some() {
            continue;
        }
        let q = || t.blocks.iter().map(|b| b.len()).sum::<u64>();
        let spec = &registry.unit(t.unit).spec;
        if t.kind == TxKind::Allocation && accounts.contains(&t.to) {
            if spec.vintage == year && spec.class == UnitClass::Allowance {
                out.entry(t.to).or_default().allocated_t += q();
            }
            continue;
        }
        let Some(from) = t.from.filter(|f| accounts.contains(f)) else { continue };
        if t.kind != (TxKind::Surrender { compliance_year: year }) {
            continue;
        }
        let book = out.entry(from).or_default();
        let units = match &spec.class {
            UnitClass::Allowance => Units::Allowance { vintage: spec.vintage },
            UnitClass::Offset { project, standard } => match projects.get(project) {
                Some(p) => Units::Offset { project: p.clone(), vintage: spec.vintage },
                None => {
                    book.unknown.push((q(), format!("{standard} project {project} is not in the project catalog")));
                    continue;
                }
            },
        };
        let key = format!("{units:?}");
        book.surrendered.entry(key).or_insert((units, 0)).1 += q();
    }
    out
}

/// Each covered entity with its account and its assessment (or why it could not be assessed).
pub type Assessed = Vec<(String, Option<String>, Result<Assessment, String>)>;

/// Assessments of every entity the rulebook's market covers in the year: verified emissions
/// from the MRV register, allocation and surrenders from the registry, fines at `price`.
pub fn assess_all(rb: &Rulebook, state: &MrvState, registry: &Registry, year: i32, price: Fen, projects: &ProjectCatalog) -> Assessed {
    let y = year as u16;
    let covered = covered(state, &rb.rulebook.market, year);
    let accounts: BTreeSet<AccountIdx> =
        covered.iter().filter_map(|c| c.account.as_deref().and_then(|a| registry.find_account(a))).collect();
    let books = scan(registry, &accounts, y, projects);
    let empty = AccountYear::default();
    let mut out = Vec::new();
    for c in covered {
        let result = (|| {
            let verified = c.verified_t.ok_or_else(|| format!("no accepted {year} report"))?;
            let account = c.account.as_deref().ok_or("no registry account in its coverage")?;
            let idx = registry.find_account(account).ok_or_else(|| format!("unknown registry account {account}"))?;
            let book = books.get(&idx).unwrap_or(&empty);
            let mut a = rb.compliance.assess(y, verified, book.allocated_t, &book.lots(), price).map_err(|e| e.to_string())?;
            a.not_counted.extend(book.unknown.iter().cloned());
            Ok(a)
        })();
        out.push((c.entity, c.account, result));
    }
    out
}

/// The shipped rulebooks, validated once per process (a shipped rulebook that does not load is
/// a build defect, caught by the rules crate's tests; here it is skipped rather than fatal).
/// Compliance views, listings and the rulebook endpoints read them on every request.
pub fn shipped() -> &'static [Rulebook] {
    static SHIPPED: std::sync::OnceLock<Vec<Rulebook>> = std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| rulebook::builtin().iter().filter_map(|(file, text)| Rulebook::from_toml(file, text).ok()).collect())
}

/// The shipped rulebook that governs `market` in `year` when the operator names none: one
/// whose years cover `year`, else one that starts before it; among those, the power engine's
/// (the national market's core sector, and the one the MRV register's data feed), then the
/// latest. `None` when the market has no shipped rulebook starting by `year`.
pub fn default_rulebook(market: &str, year: i32) -> Option<Rulebook> {
    let mut candidates: Vec<&Rulebook> =
        shipped().iter().filter(|rb| rb.rulebook.market == market && rb.rulebook.first_year <= year).collect();
    let covers = |rb: &Rulebook| rb.rulebook.last_year >= year;
    let power = |rb: &Rulebook| matches!(rb.allocation, Allocation::Power(_));
    candidates.sort_by_key(|rb| (covers(rb), power(rb), rb.rulebook.first_year));
    candidates.pop().cloned()
}

/// One entity's compliance standing.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EntityStatus {
    pub entity: String,
    pub account: Option<String>,
    /// `compliant`, `shortfall` or `not assessed`.
    pub status: &'static str,
    pub assessment: Option<Assessment>,
    /// Why the entity could not be assessed.
    pub not_assessed: Option<String>,
}

/// The figures a regulator reads over a set of entities' standings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub covered: usize,
    pub compliant: usize,
    pub shortfall: usize,
    pub not_assessed: usize,
    pub obligation_t: u64,
    pub surrendered_counted_t: u64,
    pub shortfall_t: u64,
    pub fines: Fen,
}

impl Totals {
    pub fn of<'a>(entities: impl IntoIterator<Item = &'a EntityStatus>) -> Totals {
        let mut t = Totals::default();
        for e in entities {
            t.covered += 1;
            match &e.assessment {
                Some(a) => {
                    t.obligation_t += a.obligation_t;
                    t.surrendered_counted_t += a.allowances_counted_t + a.offsets_counted_t;
                    t.shortfall_t += a.shortfall_t;
                    t.fines = Fen(t.fines.0 + a.fine_minor);
                    if a.compliant {
                        t.compliant += 1;
                    } else {
                        t.shortfall += 1;
                    }
                }
                None => t.not_assessed += 1,
            }
        }
        t
    }
}

/// A market's compliance year: every covered entity's standing.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MarketStatus {
    pub market: String,
    pub year: i32,
    pub rulebook: String,
    /// The surrender deadline of the year under the rulebook.
    pub deadline: Option<ets_core::Date>,
    /// The price fines are computed at.
    pub price: Fen,
    pub entities: Vec<EntityStatus>,
}

/// The market's compliance year under `rb`.
pub fn market_status(
    rb: &Rulebook,
    state: &MrvState,
    registry: &Registry,
    year: i32,
    price: Fen,
    projects: &ProjectCatalog,
) -> MarketStatus {
    let entities = assess_all(rb, state, registry, year, price, projects)
        .into_iter()
        .map(|(entity, account, result)| match result {
            Ok(a) => EntityStatus {
                entity,
                account,
                status: if a.compliant { "compliant" } else { "shortfall" },
                assessment: Some(a),
                not_assessed: None,
            },
            Err(why) => EntityStatus { entity, account, status: "not assessed", assessment: None, not_assessed: Some(why) },
        })
        .collect();
    MarketStatus {
        market: rb.rulebook.market.clone(),
        year,
        rulebook: rb.rulebook.id.clone(),
        deadline: rb.compliance.deadline(year).ok(),
        price,
        entities,
    }
}

/// A project catalog from CSV text (`id,standard,province,type,registered` with a header row),
/// as `ets comply --projects` and `ets serve --projects` read it. `name` labels errors.
pub fn parse_projects(name: &str, text: &str) -> Result<ProjectCatalog, String> {
    let mut catalog = ProjectCatalog::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |why: &str| format!("{name}: row {}: {why}", n + 1);
        if f.len() != 5 {
            return Err(bad("expected id,standard,province,type,registered"));
        }
        let registered = Date::parse(f[4]).map_err(|e| bad(&e.0))?;
        catalog.insert(
            f[0].to_string(),
            Project { id: f[0].into(), standard: f[1].into(), province: f[2].into(), project_type: f[3].into(), registered },
        );
    }
    Ok(catalog)
}

/// What decides a compliance year beyond the two registers: the rulebook each market is
/// governed by, the offset projects compliance knows, and the price fines are computed at.
/// Which rulebook governs a market is the operator's decision, so it is set here, not guessed
/// per request; markets left out fall back to [`default_rulebook`].
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// Market code → its rulebook.
    pub rulebooks: BTreeMap<String, Rulebook>,
    /// Projects every market knows (national CCERs and the like).
    pub projects: ProjectCatalog,
    /// Market code → projects only that market knows (its carbon-inclusion schemes).
    pub market_projects: BTreeMap<String, ProjectCatalog>,
    /// Market code → the price fines are computed at (the average price before the deadline).
    pub prices: BTreeMap<String, Fen>,
}

impl Setup {
    /// The rulebook governing `market` in `year`.
    pub fn rulebook(&self, market: &str, year: i32) -> Option<Rulebook> {
        self.rulebooks.get(market).cloned().or_else(|| default_rulebook(market, year))
    }

    /// The projects compliance in `market` knows.
    pub fn projects_for(&self, market: &str) -> ProjectCatalog {
        let mut all = self.projects.clone();
        if let Some(own) = self.market_projects.get(market) {
            all.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all
    }
}
