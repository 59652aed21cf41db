//! The compliance cycle of `ets demo`, on the MRV year's verified data: the register says which
//! market covers each entity and from which registry account; one Tianjin entity moves to the
//! national market (its Tianjin allowances withdrawn, as Tianjin's rulebook says); the national
//! 2025 allocation is computed under the 2025–2026 draft rulebook from verified emissions and
//! metered output and issued into the registry; entities short of allowances buy at a
//! compliance auction from the national reserve, except two that default; everyone surrenders
//! what the rules count (CCERs first, within 5%); and each entity is assessed: compliant,
//! shortfall, fine at 5 × ¥74.63, and the deduction from next year's allocation.

use crate::cycle::{self, Migration};
use crate::{CliError, ExitCode, Output};
use ets_compliance::allocation::{self, Allocated};
use ets_compliance::{self as cycle_data, ProjectCatalog};
use ets_core::{Date, Fen, Timestamp, Tonnes};
use ets_mrv::entity::{Coverage, Sector};
use ets_mrv::sample;
use ets_mrv::state::{Command as MrvCommand, MrvParams};
use ets_registry::{AccountKind, Command, Envelope, HolderType};
use ets_rules::allocation::pilot::{self, PilotEntity};
use ets_rules::compliance::Project;
use ets_rules::rulebook::Allocation;
use ets_store::{Ledger, Location, MrvLog};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// The national rulebook the demo allocates and assesses under, and the Tianjin one.
pub const NATIONAL_RULEBOOK: &str = "cn-power-2025-2026-draft";
pub const TIANJIN_RULEBOOK: &str = "tj-2025";
/// The migrating entity.
pub const MIGRANT: &str = "TJ-E0001";
/// Entities that buy nothing and default.
const DEFAULTERS: usize = 2;
/// The 2025 year-end close of the national market, ¥74.63 (china-ets.md §1.3, `[RUN2025]`),
/// standing in for the average price of the month before the deadline.
const PRICE_FEN: i64 = 7_463;
/// The pilots' penalty price in the demo: Guangdong's 2024 average, ¥51.37 (china-ets.md §6.1).
const PILOT_PRICE_FEN: i64 = 5_137;

pub struct CycleDemo {
    pub year: i32,
    pub migration: Vec<String>,
    /// Every market, the national one first.
    pub markets: Vec<MarketCycle>,
    /// Guangdong's carbon-inclusion credits, surrendered before the pilot's surrender plan.
    pub inclusion: crate::demo_finance::InclusionDemo,
}

fn at(y: i32, m: u32, d: u32) -> Timestamp {
    Timestamp(Date::from_ymd(y, m, d).expect("demo date").start().0 + 10 * 3_600_000)
}

fn submit(ledger: &mut Ledger, at: Timestamp, id: String, actor: &str, command: Command) -> Result<ets_registry::Receipt, CliError> {
    let envelope = Envelope { id, actor: actor.to_string(), command };
    match ledger.submit(at, &envelope) {
        Ok(s) => Ok(s.receipt),
        Err(ets_store::SubmitError::Rejected(r)) => {
            Err(CliError::new(ExitCode::Internal, format!("demo cycle command {} was refused: {}", envelope.id, r.message)))
        }
        Err(ets_store::SubmitError::Store(e)) => Err(e.into()),
    }
}

/// The demo's national CCER projects as compliance knows them (registered after the national
/// voluntary market restarted on 2024-01-22, so they count within the 5% limit).
fn projects() -> ProjectCatalog {
    let kinds = ["wind", "solar", "forestry", "mangrove"];
    let provinces = ["Gansu", "Inner Mongolia", "Yunnan", "Guangxi"];
    (1..=12)
        .map(|p| {
            let id = format!("CN-P{p:03}");
            let project = Project {
                id: id.clone(),
                standard: "CCER".into(),
                province: provinces[p % provinces.len()].into(),
                project_type: kinds[p % kinds.len()].into(),
                registered: Date::from_ymd(2024, 3, 1 + p as u32).expect("date"),
            };
            (id, project)
        })
        .collect()
}

/// The demo's markets, the national one first.
const MARKETS: [&str; 9] = ["CN", "BJ", "TJ", "SH", "CQ", "HB", "GD", "SZ", "FJ"];

/// What the demo's compliance year is decided by: the national 2025–2026 draft rulebook and
/// each pilot's shipped one, the demo's CCER projects everywhere and Guangdong's
/// carbon-inclusion credits in Guangdong, and the demo's fine prices. `ets serve --demo` shows
/// compliance under the same setup, so its pages agree with what `ets demo` printed.
pub fn compliance_setup() -> Result<ets_compliance::Setup, CliError> {
    let mut setup = ets_compliance::Setup { projects: projects(), ..Default::default() };
    let shipped = ets_compliance::shipped();
    for code in MARKETS {
        let rb = if code == "CN" {
            shipped.iter().find(|rb| rb.rulebook.id == NATIONAL_RULEBOOK)
        } else {
            shipped.iter().find(|rb| rb.rulebook.market == code)
        };
        let rb = rb.ok_or_else(|| CliError::new(ExitCode::Internal, format!("no shipped rulebook for {code}")))?;
        setup.rulebooks.insert(code.to_string(), rb.clone());
        setup.prices.insert(code.to_string(), if code == "CN" { Fen(PRICE_FEN) } else { Fen(PILOT_PRICE_FEN) });
    }
    setup.market_projects.insert("GD".into(), ets_finance::inclusion::Catalog::builtin().projects_of("GD"));
    Ok(setup)
}

pub fn run(location: &Location, ledger: &mut Ledger, year: i32) -> Result<CycleDemo, CliError> {
    let factors = ets_mrv::FactorSet::builtin().map_err(|e| CliError::new(ExitCode::Internal, e.to_string()))?;
    let mut mrv = MrvLog::open(location.open()?, factors, MrvParams::default())?;
    let official = sample::AUTHORITY;
    let quiet = Output::new(true);

    // 1. Coverage: each MRV entity in its market, from its operator account.
    let entities: Vec<_> = mrv.state().entities().cloned().collect();
    for e in &entities {
        let market = e.markets.iter().next().expect("a sample entity has a market").clone();
        let rep = e.representatives.iter().next().expect("a sample entity has a representative");
        let registry = ledger.registry();
        let account = registry
            .accounts()
            .iter()
            .find(|a| a.kind == AccountKind::Operator && registry.market(a.market).spec.code == market && a.representatives.contains(rep))
            .map(|a| a.number.clone());
        let coverage = Coverage {
            market: market.clone(),
            sector: Sector::Power,
            gases: ["CO2".to_string()].into(),
            from_year: if market == "CN" { 2021 } else { 2016 },
            to_year: None,
            account,
        };
        mrv.submit(&format!("cover-{}", e.id), official, at(year + 1, 1, 5), &MrvCommand::Cover { entity: e.id.clone(), coverage }, &[])?;
    }

    // 2. One Tianjin entity moves to the national market: a national account, then the move.
    let cn_authority = ledger.registry().market(ledger.registry().find_market("CN").expect("CN")).spec.authorities[0].clone();
    let tj_authority = ledger.registry().market(ledger.registry().find_market("TJ").expect("TJ")).spec.authorities[0].clone();
    let migrant =
        mrv.state().entity(MIGRANT).cloned().ok_or_else(|| CliError::new(ExitCode::Internal, "the demo has no Tianjin entity"))?;
    let rep = migrant.representatives.iter().next().expect("representative").clone();
    let receipt = submit(
        ledger,
        at(year + 1, 1, 6),
        format!("open-cn-{MIGRANT}"),
        "admin",
        Command::OpenAccount {
            market: "CN".into(),
            kind: AccountKind::Operator,
            holder: format!("{} (national market)", migrant.name),
            holder_type: HolderType::Entity,
            representatives: vec![rep],
        },
    )?;
    let cn_account = ledger.registry().account(receipt.account.expect("an opened account")).number.clone();
    let (_, tianjin) = cycle::load_rulebook(TIANJIN_RULEBOOK)?;
    let m = Migration {
        entity: MIGRANT.into(),
        from: "TJ".into(),
        to: "CN".into(),
        year,
        account: cn_account,
        reason: "power generation is covered by the national market; Tianjin's coverage ends".into(),
        official: official.into(),
        from_authority: tj_authority,
        to_authority: Some(cn_authority.clone()),
    };
    let (_, treatment, mut migration) = cycle::migrate(&mut mrv, ledger, &tianjin, &m, at(year + 1, 1, 7))?;
    migration.insert(0, format!("{MIGRANT} moves from TJ to CN in {year} ({treatment:?} under {TIANJIN_RULEBOOK})"));

    // 3–5. Every market under its rulebook: allocation, a compliance auction for the short,
    // surrender of what counts, assessment.
    // 2b. Carbon inclusion in Guangdong: households' PHCER issued, bought and surrendered by
    // the covered entities within gd-2024's offset limit; compliance counts them.
    let inclusion = crate::demo_finance::inclusion(location, ledger, mrv.state(), year)?;
    let setup = compliance_setup()?;
    let mut markets = Vec::new();
    for code in MARKETS {
        let rb = setup.rulebook(code, year).ok_or_else(|| CliError::new(ExitCode::Internal, format!("no shipped rulebook for {code}")))?;
        let defaulters = if code == "CN" { DEFAULTERS } else { 0 };
        let price = setup.prices.get(code).copied().unwrap_or_default();
        markets.push(market_cycle(ledger, &mut mrv, code, &rb.rulebook.id, year, defaulters, &setup.projects_for(code), price, &quiet)?);
    }
    Ok(CycleDemo { year, migration, markets, inclusion })
}

/// One market's year under its rulebook.
pub struct MarketCycle {
    pub market: String,
    pub rulebook: String,
    pub covered: usize,
    pub allocated_entities: usize,
    pub allocated_t: u64,
    pub auctioned_t: u64,
    pub assessed: usize,
    pub compliant: usize,
    pub not_assessed: usize,
    pub fines: Fen,
    pub deductions_t: u64,
    pub note: String,
    pub rows: Vec<Value>,
}

impl MarketCycle {
    fn empty(market: &str, rulebook: &str, covered: usize, note: String) -> MarketCycle {
        MarketCycle {
            market: market.into(),
            rulebook: rulebook.into(),
            covered,
            allocated_entities: 0,
            allocated_t: 0,
            auctioned_t: 0,
            assessed: 0,
            compliant: 0,
            not_assessed: 0,
            fines: Fen(0),
            deductions_t: 0,
            note,
            rows: Vec::new(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "market": self.market, "rulebook": self.rulebook, "covered": self.covered, "allocated_entities": self.allocated_entities,
            "allocated_t": self.allocated_t, "auctioned_t": self.auctioned_t, "assessed": self.assessed, "compliant": self.compliant,
            "not_assessed": self.not_assessed, "fines_fen": self.fines.0, "next_year_deductions_t": self.deductions_t, "note": self.note,
            "entities": self.rows,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn market_cycle(
    ledger: &mut Ledger,
    mrv: &mut MrvLog,
    code: &str,
    rulebook_id: &str,
    year: i32,
    defaulters: usize,
    catalog: &ProjectCatalog,
    price: Fen,
    quiet: &Output,
) -> Result<MarketCycle, CliError> {
    let (_, rb) = cycle::load_rulebook(rulebook_id)?;
    let authority = ledger.registry().market(ledger.registry().find_market(code).expect("demo market")).spec.authorities[0].clone();
    let covered = cycle_data::covered(mrv.state(), code, year);
    let mut note = String::new();
    // Inputs: the national power engine reads the MRV register; the pilots' engines take each
    // entity's verified emissions and output of the year as its (single) base year, since the
    // demo has one MRV year.
    let allocation: Vec<Allocated> = match &rb.allocation {
        Allocation::Power(_) => allocation::allocate(&rb, mrv.state(), year, None)?.entities,
        Allocation::Pilot(rules) => {
            let entities: Vec<PilotEntity> = covered
                .iter()
                .filter_map(|c| {
                    let verified = c.verified_t?;
                    let output: Decimal = mrv.state().annual(&c.entity, year).ok()?.units.iter().filter_map(|u| u.production).sum();
                    Some(PilotEntity {
                        entity: c.entity.clone(),
                        sector: "power".into(),
                        base_emissions_t: vec![verified],
                        base_output: vec![output],
                        output,
                        product: Some("electricity".into()),
                        previous_verified_t: Decimal::ZERO,
                    })
                })
                .collect();
            match pilot::allocate(rules, &entities) {
                Ok(a) => a
                    .into_iter()
                    .map(|a| Allocated {
                        note: a.method.into(),
                        entity: a.entity,
                        final_t: a.final_t,
                        pre_allocated_t: 0,
                        true_up_t: a.true_up_t,
                    })
                    .collect(),
                Err(e) => {
                    note = format!("not allocated: {e}");
                    Vec::new()
                }
            }
        }
        Allocation::Industry(_) => Vec::new(),
    };
    if !note.is_empty() {
        // The rulebook cannot allocate (values not found in the sources): the year is not run
        // rather than assessed against nothing.
        return Ok(MarketCycle { not_assessed: covered.len(), ..MarketCycle::empty(code, rulebook_id, covered.len(), note) });
    }
    let run = allocation::run_of(&rb, year, allocation, Vec::new(), None)?;
    cycle::issue_allocation(ledger, mrv.state(), &run, &authority, at(year + 1, 9, 30))?;
    let allocated_t = run.total_t;

    // A compliance auction from the market's reserve for the short, except the defaulters.
    let market = ledger.registry().find_market(code).expect("demo market");
    let unit = ets_registry::UnitRef::allowance(&ledger.registry().market(market).spec.allowance_code, year as u16);
    let mut buyers = Vec::new();
    for (i, a) in run.entities.iter().enumerate() {
        let Some(verified) = covered.iter().find(|c| c.entity == a.entity).and_then(|c| c.verified_t) else { continue };
        let obligation = rb.compliance.obligation(verified).map_err(|e| CliError::new(ExitCode::Internal, e.to_string()))?;
        let short = obligation.saturating_sub(a.final_t);
        if short > 0 && i >= defaulters {
            buyers.push((a.entity.clone(), short));
        }
    }
    let auctioned_t: u64 = buyers.iter().map(|b| b.1).sum();
    if auctioned_t > 0 {
        let reserve = format!("{code}-RESERVE");
        let issue = Command::Issue { unit: unit.clone(), quantity: Tonnes(auctioned_t), to: Some(reserve.clone()) };
        submit(ledger, at(year + 1, 11, 2), format!("auction-{code}-{year}-issue"), &authority, issue)?;
        for (entity, q) in &buyers {
            let to = covered.iter().find(|c| &c.entity == entity).and_then(|c| c.account.clone()).expect("covered with an account");
            let allocate = Command::Allocate { from: reserve.clone(), to, unit: unit.clone(), quantity: Tonnes(*q) };
            submit(ledger, at(year + 1, 11, 2), format!("auction-{code}-{year}-{entity}"), &authority, allocate)?;
        }
    }
    for a in &run.entities {
        let rep = mrv.state().entity(&a.entity).and_then(|e| e.representatives.iter().next().cloned()).expect("representative");
        cycle::surrender(&rb, mrv.state(), ledger, &a.entity, year, catalog, &rep, at(year + 1, 12, 15), quiet)?;
    }
    let results = cycle::assess_all(&rb, mrv.state(), ledger, year, price, catalog);
    let mut m = MarketCycle {
        allocated_entities: run.entities.len(),
        allocated_t,
        auctioned_t,
        ..MarketCycle::empty(code, rulebook_id, covered.len(), note)
    };
    for (entity, account, r) in &results {
        match r {
            Ok(a) => {
                m.assessed += 1;
                m.compliant += usize::from(a.compliant);
                m.fines = Fen(m.fines.0 + a.fine_minor);
                m.deductions_t += a.next_year_deduction_t;
                m.rows.push(json!({"entity": entity, "account": account, "obligation_t": a.obligation_t, "allowances_t": a.allowances_counted_t,
                    "offsets_t": a.offsets_counted_t, "shortfall_t": a.shortfall_t, "fine_fen": a.fine_minor, "next_year_deduction_t": a.next_year_deduction_t}));
            }
            Err(why) => {
                m.not_assessed += 1;
                m.rows.push(json!({"entity": entity, "account": account, "not_assessed": why}));
            }
        }
    }
    Ok(m)
}

impl CycleDemo {
    /// The national market's figures at the top level (what the demo is about), every market below.
    pub fn json(&self) -> Value {
        let mut v = self.markets[0].json();
        v["year"] = json!(self.year);
        v["migration"] = json!(self.migration);
        v["markets"] = Value::Array(self.markets.iter().map(MarketCycle::json).collect());
        v
    }

    pub fn print(&self, db: &str) {
        println!("compliance cycle {} (each market under its rulebook):", self.year);
        for line in &self.migration {
            println!("  {line}");
        }
        let rows: Vec<Vec<String>> = self
            .markets
            .iter()
            .map(|m| {
                let rate = if m.assessed == 0 { String::new() } else { format!("{:.1}%", m.compliant as f64 * 100.0 / m.assessed as f64) };
                vec![
                    m.market.clone(),
                    m.rulebook.clone(),
                    m.covered.to_string(),
                    Tonnes(m.allocated_t).to_string(),
                    Tonnes(m.auctioned_t).to_string(),
                    format!("{}/{}", m.compliant, m.assessed),
                    rate,
                    m.fines.to_string(),
                    Tonnes(m.deductions_t).to_string(),
                    if m.note.is_empty() && m.not_assessed > 0 {
                        format!("{} not assessed (no accepted report)", m.not_assessed)
                    } else {
                        m.note.clone()
                    },
                ]
            })
            .collect();
        print!(
            "{}",
            crate::output::table(
                &["MARKET", "RULEBOOK", "COVERED", "ALLOCATED_T", "AUCTIONED_T", "COMPLIANT", "RATE", "FINES", "DEDUCT_T", "NOTE"],
                &rows
            )
        );
        println!(
            "  CN: {DEFAULTERS} entities default: fined 5 × ¥74.63 a tonne short, and the shortfall is deducted from {} allocations",
            self.year + 1
        );
        println!(
            "  try: ets {db} comply --rulebook {NATIONAL_RULEBOOK} --year {}    ets {db} mrv coverage list --entity {MIGRANT}",
            self.year
        );
    }
}
