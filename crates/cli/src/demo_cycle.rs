//! The compliance cycle of `ets demo`, on the MRV year's verified data: the register says which
//! market covers each entity and from which registry account; one Tianjin entity moves to the
//! national market (its Tianjin allowances withdrawn, as Tianjin's rulebook says); the national
//! 2025 allocation is computed under the 2025–2026 draft rulebook from verified emissions and
//! metered output and issued into the registry; entities short of allowances buy at a
//! compliance auction from the national reserve, except two that default; everyone surrenders
//! what the rules count (CCERs first, within 5%); and each entity is assessed: compliant,
//! shortfall, fine at 5 × ¥74.63, and the deduction from next year's allocation.

use crate::cycle::{self, Migration};
use crate::cycle_data::ProjectCatalog;
use crate::{CliError, ExitCode, Output};
use ets_core::{Date, Fen, Timestamp, Tonnes};
use ets_mrv::entity::{Coverage, Sector};
use ets_mrv::sample;
use ets_mrv::state::{Command as MrvCommand, MrvParams};
use ets_registry::{AccountKind, Command, Envelope, HolderType};
use ets_rules::compliance::Project;
use ets_store::{Ledger, Location, MrvLog};
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

pub struct CycleDemo {
    pub year: i32,
    pub migration: Vec<String>,
    pub allocated_entities: usize,
    pub allocated_t: u64,
    pub auctioned_t: u64,
    pub assessed: usize,
    pub compliant: usize,
    pub not_assessed: usize,
    pub fines: Fen,
    pub deductions_t: u64,
    pub rows: Vec<Value>,
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

    // 3. National allocation under the rulebook, issued into the registry.
    let (_, rb) = cycle::load_rulebook(NATIONAL_RULEBOOK)?;
    let (allocation, _) = cycle::power_allocation(&rb, mrv.state(), year)?;
    let accounts: std::collections::BTreeMap<String, Option<String>> =
        mrv.state().covered("CN", year).into_iter().map(|(e, c)| (e.id.clone(), c.account.clone())).collect();
    let lines: Vec<(String, u64)> = allocation.iter().map(|a| (a.entity.clone(), a.final_t)).collect();
    cycle::issue_allocation(ledger, &rb, &lines, &accounts, year, &cn_authority, at(year + 1, 9, 30))?;
    let allocated_t: u64 = allocation.iter().map(|a| a.final_t).sum();

    // 4. A compliance auction from the national reserve for the short, except the defaulters.
    let unit = ets_registry::UnitRef::allowance("CEA", year as u16);
    let mut buyers = Vec::new();
    for (i, a) in allocation.iter().enumerate() {
        let obligation = rb.compliance.obligation(a.verified_t).map_err(|e| CliError::new(ExitCode::Internal, e.to_string()))?;
        let short = obligation.saturating_sub(a.final_t);
        if short > 0 && i >= DEFAULTERS {
            buyers.push((a.entity.clone(), short));
        }
    }
    let auctioned_t: u64 = buyers.iter().map(|b| b.1).sum();
    if auctioned_t > 0 {
        submit(
            ledger,
            at(year + 1, 11, 2),
            format!("auction-{year}-issue"),
            &cn_authority,
            Command::Issue { unit: unit.clone(), quantity: Tonnes(auctioned_t), to: Some("CN-RESERVE".into()) },
        )?;
        for (entity, q) in &buyers {
            let to = accounts[entity].clone().expect("covered with an account");
            submit(
                ledger,
                at(year + 1, 11, 2),
                format!("auction-{year}-{entity}"),
                &cn_authority,
                Command::Allocate { from: "CN-RESERVE".into(), to, unit: unit.clone(), quantity: Tonnes(*q) },
            )?;
        }
    }

    // 5. Surrender what the rules count, then the assessment.
    let catalog = projects();
    for a in &allocation {
        let rep = mrv.state().entity(&a.entity).and_then(|e| e.representatives.iter().next().cloned()).expect("representative");
        cycle::surrender(&rb, mrv.state(), ledger, &a.entity, year, &catalog, &rep, at(year + 1, 12, 15), &quiet)?;
    }
    let results = cycle::assess_all(&rb, mrv.state(), ledger, year, Fen(PRICE_FEN), &catalog);
    let mut demo = CycleDemo {
        year,
        migration,
        allocated_entities: allocation.len(),
        allocated_t,
        auctioned_t,
        assessed: 0,
        compliant: 0,
        not_assessed: 0,
        fines: Fen(0),
        deductions_t: 0,
        rows: Vec::new(),
    };
    for (entity, account, r) in &results {
        match r {
            Ok(a) => {
                demo.assessed += 1;
                demo.compliant += usize::from(a.compliant);
                demo.fines = Fen(demo.fines.0 + a.fine_minor);
                demo.deductions_t += a.next_year_deduction_t;
                demo.rows.push(json!({"entity": entity, "account": account, "obligation_t": a.obligation_t, "allowances_t": a.allowances_counted_t,
                    "offsets_t": a.offsets_counted_t, "shortfall_t": a.shortfall_t, "fine_fen": a.fine_minor, "next_year_deduction_t": a.next_year_deduction_t}));
            }
            Err(why) => {
                demo.not_assessed += 1;
                demo.rows.push(json!({"entity": entity, "account": account, "not_assessed": why}));
            }
        }
    }
    Ok(demo)
}

impl CycleDemo {
    pub fn json(&self) -> Value {
        json!({
            "year": self.year, "rulebook": NATIONAL_RULEBOOK, "migration": self.migration, "allocated_entities": self.allocated_entities,
            "allocated_t": self.allocated_t, "auctioned_t": self.auctioned_t, "assessed": self.assessed, "compliant": self.compliant,
            "not_assessed": self.not_assessed, "fines_fen": self.fines.0, "next_year_deductions_t": self.deductions_t, "entities": self.rows,
        })
    }

    pub fn print(&self, db: &str) {
        println!("compliance cycle {} under {NATIONAL_RULEBOOK}:", self.year);
        for line in &self.migration {
            println!("  {line}");
        }
        println!(
            "  allocation: {} entities, {} t CEA:{} issued from verified emissions and metered output",
            self.allocated_entities,
            Tonnes(self.allocated_t),
            self.year
        );
        println!(
            "  compliance auction from the national reserve: {} t to the short entities ({DEFAULTERS} default)",
            Tonnes(self.auctioned_t)
        );
        let rate = if self.assessed == 0 { 0.0 } else { self.compliant as f64 * 100.0 / self.assessed as f64 };
        println!(
            "  CN: {} of {} assessed entities compliant ({rate:.1}%); fines {}; {} t to deduct from {} allocations; {} not assessed (no accepted report)",
            self.compliant,
            self.assessed,
            self.fines,
            Tonnes(self.deductions_t),
            self.year + 1,
            self.not_assessed
        );
        println!(
            "  try: ets {db} comply --rulebook {NATIONAL_RULEBOOK} --year {}    ets {db} mrv coverage list --entity {MIGRANT}",
            self.year
        );
    }
}
