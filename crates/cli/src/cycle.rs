//! The compliance cycle from the command line: rulebooks (`ets rulebook`), allocation under a
//! rulebook from the MRV register's verified data (`ets allocate`), compliance assessment and
//! surrender (`ets comply`), moving an entity from a pilot to the national market
//! (`ets market migrate`) and rule experiments on recorded data (`ets sandbox run`).
//!
//! Writes go through the registry ledger and the MRV journal with ids derived from what they
//! carry out (`alloc-<rulebook>-<year>-<entity>`, `migrate-<entity>-<year>-...`), so a command
//! interrupted half-way is finished by running it again: every step already done is answered
//! as a duplicate.

use crate::output::table;
use crate::{now, CliError, ExitCode, Output};
use clap::{Args, Subcommand};
use ets_compliance::allocation::{self, AllocationError, AllocationRun};
use ets_compliance::{self as cycle_data, ProjectCatalog};
use ets_core::{Fen, Timestamp, Tonnes};
use ets_mrv::state::MrvParams;
use ets_registry::{Command, Envelope, UnitRef};
use ets_rules::allocation::power;
use ets_rules::compliance::{Assessment, Units};
use ets_rules::rulebook::{self, Allocation, DualTrack, Rulebook};
use ets_store::{Ledger, LedgerOptions, Location, MrvLog, SubmitError};
use rust_decimal::Decimal;
use serde_json::json;
use std::path::Path;

#[derive(Subcommand)]
pub enum RulebookCmd {
    /// The rulebooks shipped with ets
    List,
    /// Load and validate rulebook files; every problem is reported with file, key and reason
    Check { files: Vec<String> },
    /// Show a rulebook (a shipped id such as cn-power-2023-2024, or a file) as JSON
    Show { rulebook: String },
    /// What differs between two rulebooks, key by key
    Diff { a: String, b: String },
}

#[derive(Args)]
pub struct AllocateArgs {
    /// Rulebook: a shipped id (cn-power-2023-2024) or a TOML file
    #[arg(long, requires = "year")]
    pub rulebook: Option<String>,
    #[arg(long)]
    pub year: Option<i32>,
    /// Issue the allocation into the registry (the market authority acts; otherwise only computed)
    #[arg(long, requires = "rulebook")]
    pub issue: bool,
    /// Inputs of the industry and pilot engines (and optionally power): a JSON array of unit or entity records
    #[arg(long, requires = "rulebook")]
    pub data: Option<String>,
    /// The market authority
    #[arg(long = "as", env = "ETS_ACTOR")]
    pub actor: Option<String>,
}

#[derive(Args)]
pub struct ComplyArgs {
    #[arg(long)]
    rulebook: String,
    #[arg(long)]
    year: i32,
    /// Market price per tonne for the penalty, in yuan (e.g. the average of the month before the deadline)
    #[arg(long, default_value = "0")]
    price: String,
    /// Offset projects (CSV: id,standard,province,type,registered) for judging offsets
    #[arg(long)]
    projects: Option<String>,
    /// Surrender for this entity what its holdings allow, as the rules count it (its representative acts)
    #[arg(long, requires = "actor")]
    surrender: Option<String>,
    #[arg(long = "as", env = "ETS_ACTOR")]
    actor: Option<String>,
}

#[derive(Args)]
pub struct MigrateArgs {
    #[arg(long)]
    entity: String,
    #[arg(long)]
    from: String,
    #[arg(long)]
    to: String,
    /// First year in the new market
    #[arg(long)]
    year: i32,
    /// The entity's registry account in the new market
    #[arg(long)]
    account: String,
    /// The pilot's rulebook, which says what happens to the pilot allowances
    #[arg(long)]
    rulebook: String,
    #[arg(long)]
    reason: String,
    /// An official of the MRV register (records the migration)
    #[arg(long = "as")]
    actor: String,
    /// Authority of the pilot market (withdraws allowances)
    #[arg(long)]
    from_authority: String,
    /// Authority of the new market (issues converted allowances)
    #[arg(long)]
    to_authority: Option<String>,
}

#[derive(Args)]
pub struct CarryOverArgs {
    /// The rulebook with the carry-over rule (cn-power-2023-2024)
    #[arg(long)]
    rulebook: String,
    #[arg(long)]
    account: String,
    /// The market authority converting
    #[arg(long = "as")]
    actor: String,
}

#[derive(Args)]
pub struct SandboxArgs {
    #[arg(long)]
    rulebook: String,
    /// A change to the rulebook: dotted.key=value (TOML value; repeatable)
    #[arg(long = "set", required = true)]
    changes: Vec<String>,
    #[arg(long)]
    year: i32,
    #[arg(long, default_value = "0")]
    price: String,
}

/// A rulebook by shipped id or file path, validated.
pub fn load_rulebook(spec: &str) -> Result<(String, Rulebook), CliError> {
    let (name, text) = if Path::new(spec).exists() {
        let text = std::fs::read_to_string(spec).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {spec}: {e}")))?;
        (spec.to_string(), text)
    } else {
        let found = rulebook::builtin().iter().find(|(file, _)| file.trim_end_matches(".toml") == spec || *file == spec);
        match found {
            Some((file, text)) => (file.to_string(), text.to_string()),
            None => {
                let ids: Vec<&str> = rulebook::builtin().iter().map(|(f, _)| f.trim_end_matches(".toml")).collect();
                return Err(CliError::new(
                    ExitCode::NotFound,
                    format!("no rulebook '{spec}': not a file, and not one of the shipped rulebooks ({})", ids.join(", ")),
                ));
            }
        }
    };
    let rb = Rulebook::from_toml(&name, &text).map_err(|e| CliError::new(ExitCode::Invalid, e.to_string()))?;
    Ok((text, rb))
}

pub(crate) fn open_mrv(location: &Location) -> Result<MrvLog, CliError> {
    if let Location::Sqlite(path) = location {
        if !path.exists() {
            return Err(CliError::new(ExitCode::NotFound, format!("no database at {}", path.display())));
        }
    }
    let factors = ets_mrv::FactorSet::builtin().map_err(|e| CliError::new(ExitCode::Internal, e.to_string()))?;
    Ok(MrvLog::open(location.open()?, factors, MrvParams::default())?)
}

fn price_fen(text: &str) -> Result<Fen, CliError> {
    Fen::parse_yuan(text).map_err(|e| CliError::new(ExitCode::Invalid, format!("price '{text}': {}", e.0)))
}

pub fn run_rulebook(out: &Output, cmd: &RulebookCmd) -> Result<(), CliError> {
    match cmd {
        RulebookCmd::List => {
            let mut rows = Vec::new();
            for (file, text) in rulebook::builtin() {
                let rb = Rulebook::from_toml(file, text).map_err(|e| CliError::new(ExitCode::Internal, e.to_string()))?;
                let m = &rb.rulebook;
                rows.push(vec![
                    file.trim_end_matches(".toml").to_string(),
                    m.market.clone(),
                    format!("{}–{}", m.first_year, m.last_year),
                    format!("{:?}", m.status).to_lowercase(),
                    rb.uncertain.len().to_string(),
                    m.title.clone(),
                ]);
            }
            if out.is_json() {
                out.print_json(json!(rows
                    .iter()
                    .map(|r| json!({"id": r[0], "market": r[1], "years": r[2], "status": r[3], "uncertain": r[4], "title": r[5]}))
                    .collect::<Vec<_>>()));
            } else {
                print!("{}", table(&["rulebook", "market", "years", "status", "uncertain", "title"], &rows));
            }
            Ok(())
        }
        RulebookCmd::Check { files } => {
            let mut failed = Vec::new();
            for f in files {
                match load_rulebook(f) {
                    Ok((_, rb)) => {
                        if !out.is_json() {
                            println!(
                                "{f}: ok ({} {}–{}, {} values marked uncertain)",
                                rb.rulebook.market,
                                rb.rulebook.first_year,
                                rb.rulebook.last_year,
                                rb.uncertain.len()
                            );
                        }
                    }
                    Err(e) => failed.push(e.message),
                }
            }
            if failed.is_empty() {
                if out.is_json() {
                    out.print_json(json!({"status": "ok", "files": files.len()}));
                }
                Ok(())
            } else {
                Err(CliError::new(ExitCode::Invalid, failed.join("\n")))
            }
        }
        RulebookCmd::Show { rulebook } => {
            let (_, rb) = load_rulebook(rulebook)?;
            out.print_json(serde_json::to_value(&rb).expect("json"));
            Ok(())
        }
        RulebookCmd::Diff { a, b } => {
            let (_, ra) = load_rulebook(a)?;
            let (_, rb) = load_rulebook(b)?;
            let diff = ra.diff(&rb);
            if out.is_json() {
                out.print_json(json!(diff.iter().map(|(k, x, y)| json!({"key": k, "a": x, "b": y})).collect::<Vec<_>>()));
            } else {
                let rows: Vec<Vec<String>> = diff.iter().map(|(k, x, y)| vec![k.clone(), x.clone(), y.clone()]).collect();
                print!("{}", table(&["key", a, b], &rows));
            }
            Ok(())
        }
    }
}

/// Entities left out of an allocation, with why.
pub type Skipped = Vec<(String, String)>;

pub fn power_allocation(
    rb: &Rulebook,
    state: &ets_mrv::state::MrvState,
    year: i32,
) -> Result<(Vec<power::EntityAllocation>, Skipped), CliError> {
    let Allocation::Power(rules) = &rb.allocation else {
        return Err(CliError::new(
            ExitCode::Refused,
            format!("rulebook {} uses the {} engine; allocation from the MRV register is for the power engine (give the data of other engines in a file: not yet supported)", rb.rulebook.id, allocation::engine_name(&rb.allocation)),
        ));
    };
    if year < rb.rulebook.first_year || year > rb.rulebook.last_year {
        return Err(CliError::new(
            ExitCode::Invalid,
            format!("rulebook {} covers {}–{}, not {year}", rb.rulebook.id, rb.rulebook.first_year, rb.rulebook.last_year),
        ));
    }
    let (units, skipped) = cycle_data::power_units(state, &rb.rulebook.market, year);
    let result = power::allocate(rules, year, &units).map_err(|e| CliError::new(ExitCode::Invalid, e.to_string()))?;
    Ok((result, skipped))
}

fn submit_registry(ledger: &mut Ledger, at: Timestamp, id: String, actor: &str, command: Command) -> Result<bool, CliError> {
    let envelope = Envelope { id, actor: actor.to_string(), command };
    match ledger.submit(at, &envelope) {
        Ok(s) => Ok(!s.duplicate),
        Err(SubmitError::Rejected(r)) => Err(CliError::from(r)),
        Err(SubmitError::Store(e)) => Err(e.into()),
    }
}

impl From<AllocationError> for CliError {
    fn from(e: AllocationError) -> CliError {
        match e {
            AllocationError::Invalid(m) => CliError::new(ExitCode::Invalid, m),
            AllocationError::Refused(m) => CliError::new(ExitCode::Refused, m),
        }
    }
}

pub fn run_allocate(location: &Location, out: &Output, args: &AllocateArgs) -> Result<(), CliError> {
    let (_, rb) = load_rulebook(args.rulebook.as_deref().expect("dispatched on --rulebook"))?;
    let year = args.year.expect("clap requires --year with --rulebook");
    let data = match args.data.as_deref() {
        Some(path) => {
            Some(std::fs::read_to_string(path).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {path}: {e}")))?)
        }
        None => None,
    };
    let mrv = open_mrv(location)?;
    let run = allocation::allocate(&rb, mrv.state(), year, data.as_deref()).map_err(|e| match (e, args.data.as_deref()) {
        (AllocationError::Invalid(m), Some(path)) if m.starts_with("data: ") => {
            CliError::new(ExitCode::Invalid, format!("{path}: {}", m.trim_start_matches("data: ")))
        }
        (AllocationError::Invalid(m), None) if m.contains("takes its inputs as data") => {
            CliError::new(ExitCode::Invalid, format!("{m}: give them with --data FILE.json"))
        }
        (e, _) => e.into(),
    })?;
    let mut issued = 0usize;
    if args.issue {
        let actor = args.actor.as_deref().ok_or_else(|| CliError::new(ExitCode::Invalid, "--issue needs --as: the market authority"))?;
        let mut ledger = Ledger::open(location, LedgerOptions::default())?;
        issued = issue_allocation(&mut ledger, mrv.state(), &run, actor, now()?)?;
    }
    if out.is_json() {
        out.print_json(json!({
            "rulebook": run.rulebook, "year": year, "total_t": run.total_t, "allocations_issued": issued, "cap": run.cap,
            "entities": run.entities, "skipped": run.skipped.iter().map(|(e, why)| json!({"entity": e, "why": why})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = run
        .entities
        .iter()
        .map(|e| {
            vec![
                e.entity.clone(),
                Tonnes(e.final_t).to_string(),
                Tonnes(e.pre_allocated_t).to_string(),
                e.true_up_t.to_string(),
                e.note.clone(),
            ]
        })
        .collect();
    print!("{}", table(&["entity", "final_t", "pre_allocated_t", "true_up_t", "detail"], &rows));
    println!("{} entities, {} t under {} for {}", run.entities.len(), Tonnes(run.total_t), rb.rulebook.id, year);
    if let Some(v) = run.cap {
        println!(
            "cap {} t: free {} t, auction {} t, new-entrant reserve {} t, price-stability reserve {} t, government reserve {} t",
            Tonnes(v.cap_t),
            Tonnes(v.free_t),
            Tonnes(v.auction_t),
            Tonnes(v.new_entrant_reserve_t),
            Tonnes(v.price_stability_reserve_t),
            Tonnes(v.government_reserve_t)
        );
        if run.total_t > v.free_t {
            println!(
                "  note: the free allocation computed ({} t) exceeds the free share of the cap ({} t)",
                Tonnes(run.total_t),
                Tonnes(v.free_t)
            );
        }
    }
    for (e, why) in &run.skipped {
        println!("  not allocated: {e}: {why}");
    }
    if args.issue {
        println!(
            "issued into the registry: {issued} new allocations (re-running finishes an interrupted issue; done steps are duplicates)"
        );
    }
    Ok(())
}

/// Issues a computed allocation into the registry (`ets_compliance::allocation::issue_commands`:
/// the total into the market's issuance account, then each entity's allowances to its coverage
/// account) as `actor`, the market's authority. Returns the new allocations.
pub fn issue_allocation(
    ledger: &mut Ledger,
    state: &ets_mrv::state::MrvState,
    run: &AllocationRun,
    actor: &str,
    at: Timestamp,
) -> Result<usize, CliError> {
    let commands = allocation::issue_commands(ledger.registry(), state, run)?;
    let mut issued = 0;
    for (id, command) in commands {
        let allocates = matches!(command, Command::Allocate { .. });
        if submit_registry(ledger, at, id, actor, command)? && allocates {
            issued += 1;
        }
    }
    Ok(issued)
}

pub(crate) fn read_projects(path: Option<&str>) -> Result<ProjectCatalog, CliError> {
    let Some(path) = path else { return Ok(ProjectCatalog::new()) };
    let text = std::fs::read_to_string(path).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {path}: {e}")))?;
    cycle_data::parse_projects(path, &text).map_err(|e| CliError::new(ExitCode::Invalid, e))
}

pub use ets_compliance::Assessed;

/// Assessments of every entity the market covers in the year.
pub fn assess_all(
    rb: &Rulebook,
    state: &ets_mrv::state::MrvState,
    ledger: &Ledger,
    year: i32,
    price: Fen,
    projects: &ProjectCatalog,
) -> Assessed {
    ets_compliance::assess_all(rb, state, ledger.registry(), year, price, projects)
}

/// Allowances of the year's vintage allocated to an account (the basis of allocation-based limits).
pub(crate) fn allocated_to(ledger: &Ledger, account: ets_registry::AccountIdx, vintage: u16) -> u64 {
    ets_compliance::allocated_to(ledger.registry(), account, vintage)
}

pub fn run_comply(location: &Location, out: &Output, args: &ComplyArgs) -> Result<(), CliError> {
    let (_, rb) = load_rulebook(&args.rulebook)?;
    let price = price_fen(&args.price)?;
    let mut projects = read_projects(args.projects.as_deref())?;
    // Carbon-inclusion credits of this market count as the offsets their scheme says they are.
    projects.extend(crate::inclusion::catalog_of(location)?.projects_of(&rb.rulebook.market));
    let mrv = open_mrv(location)?;
    let mut ledger = Ledger::open(location, LedgerOptions::default())?;
    if let Some(entity) = &args.surrender {
        let actor = args.actor.as_deref().expect("clap requires --as");
        surrender(&rb, mrv.state(), &mut ledger, entity, args.year, &projects, actor, now()?, out)?;
    }
    let results = assess_all(&rb, mrv.state(), &ledger, args.year, price, &projects);
    let assessed: Vec<&Assessment> = results.iter().filter_map(|(_, _, r)| r.as_ref().ok()).collect();
    let compliant = assessed.iter().filter(|a| a.compliant).count();
    let rate = if results.is_empty() { Decimal::ZERO } else { Decimal::from(compliant * 100) / Decimal::from(results.len()) };
    let deadline = rb.compliance.deadline(args.year).map(|d| d.to_string()).unwrap_or_default();
    if out.is_json() {
        out.print_json(json!({
            "rulebook": rb.rulebook.id, "market": rb.rulebook.market, "year": args.year, "deadline": deadline,
            "entities": results.len(), "compliant": compliant, "compliance_rate_percent": rate.round_dp(2).to_string(),
            "assessments": results.iter().map(|(e, acc, r)| match r {
                Ok(a) => json!({"entity": e, "account": acc, "assessment": a}),
                Err(why) => json!({"entity": e, "account": acc, "not_assessed": why}),
            }).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(e, acc, r)| match r {
            Ok(a) => vec![
                e.clone(),
                acc.clone().unwrap_or_default(),
                Tonnes(a.obligation_t).to_string(),
                Tonnes(a.allowances_counted_t).to_string(),
                Tonnes(a.offsets_counted_t).to_string(),
                Tonnes(a.not_counted.iter().map(|x| x.0).sum()).to_string(),
                Tonnes(a.shortfall_t).to_string(),
                if a.compliant { "compliant".into() } else { "shortfall".into() },
                Fen(a.fine_minor).to_string(),
                Tonnes(a.next_year_deduction_t + a.carried_obligation_t).to_string(),
            ],
            Err(why) => vec![
                e.clone(),
                acc.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("not assessed: {why}"),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "entity",
                "account",
                "obligation",
                "allowances",
                "offsets",
                "not_counted",
                "shortfall",
                "status",
                "fine",
                "carried_or_deducted_t"
            ],
            &rows
        )
    );
    let not_assessed = results.len() - assessed.len();
    println!(
        "{}: {compliant} of {} covered entities compliant ({}%; {not_assessed} not assessed), deadline {deadline}",
        rb.rulebook.market,
        results.len(),
        rate.round_dp(1)
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn surrender(
    rb: &Rulebook,
    state: &ets_mrv::state::MrvState,
    ledger: &mut Ledger,
    entity: &str,
    year: i32,
    projects: &ProjectCatalog,
    actor: &str,
    at: Timestamp,
    out: &Output,
) -> Result<(), CliError> {
    let c = cycle_data::covered(state, &rb.rulebook.market, year)
        .into_iter()
        .find(|c| c.entity == entity)
        .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("{entity} is not covered in {} in {year}", rb.rulebook.market)))?;
    let verified = c.verified_t.ok_or_else(|| CliError::new(ExitCode::Refused, format!("{entity} has no accepted {year} report")))?;
    let account = c.account.ok_or_else(|| CliError::new(ExitCode::Refused, format!("{entity} has no registry account in its coverage")))?;
    let idx =
        ledger.registry().find_account(&account).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown account {account}")))?;
    let y = year as u16;
    // Holdings as lots, with the registry unit each lot comes from.
    let registry = ledger.registry();
    let mut lots = Vec::new();
    let mut unit_of = Vec::new();
    for (u_idx, h) in registry.holdings_of(idx) {
        let spec = &registry.unit(u_idx).spec;
        let units = match &spec.class {
            ets_registry::UnitClass::Allowance => Units::Allowance { vintage: spec.vintage },
            ets_registry::UnitClass::Offset { project, .. } => match projects.get(project) {
                Some(p) => Units::Offset { project: p.clone(), vintage: spec.vintage },
                None => continue,
            },
        };
        lots.push(ets_rules::compliance::Lot { units, quantity: h.free_total() });
        unit_of.push(registry.unit_ref(u_idx));
    }
    let (already, _) = cycle_data::surrendered(registry, idx, y, projects);
    let allocated = allocated_to(ledger, idx, y);
    let done =
        rb.compliance.assess(y, verified, allocated, &already, Fen(0)).map_err(|e| CliError::new(ExitCode::Invalid, e.to_string()))?;
    let counted_so_far = done.allowances_counted_t + done.offsets_counted_t;
    let plan = rb.compliance.plan(y, verified, allocated, &lots, &already).map_err(|e| CliError::new(ExitCode::Invalid, e.to_string()))?;
    let mut n = 0;
    for (k, lot) in plan.iter().enumerate() {
        let i = lots.iter().position(|l| l.units == lot.units).expect("planned from the holdings");
        let command =
            Command::Surrender { account: account.clone(), unit: unit_of[i].clone(), quantity: Tonnes(lot.quantity), compliance_year: y };
        submit_registry(ledger, at, format!("comply-{}-{year}-{entity}-{}-{k}", rb.rulebook.id, counted_so_far), actor, command)?;
        n += 1;
    }
    if !out.is_json() {
        println!("{entity}: {n} surrender(s) for {year} from {account}, as {} counts them", rb.rulebook.id);
    }
    Ok(())
}

pub fn run_migrate(location: &Location, out: &Output, a: &MigrateArgs) -> Result<(), CliError> {
    let (_, rb) = load_rulebook(&a.rulebook)?;
    let mut mrv = open_mrv(location)?;
    let mut ledger = Ledger::open(location, LedgerOptions::default())?;
    let m = Migration {
        entity: a.entity.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        year: a.year,
        account: a.account.clone(),
        reason: a.reason.clone(),
        official: a.actor.clone(),
        from_authority: a.from_authority.clone(),
        to_authority: a.to_authority.clone(),
    };
    let (seq, treatment, lines) = migrate(&mut mrv, &mut ledger, &rb, &m, now()?)?;
    if out.is_json() {
        out.print_json(
            json!({"entity": a.entity, "from": a.from, "to": a.to, "year": a.year, "mrv_seq": seq, "treatment": treatment, "steps": lines}),
        );
    } else {
        println!(
            "{} moves from {} to {} in {} (MRV record {seq}); {}'s allowances: {:?}",
            a.entity, a.from, a.to, a.year, a.from, treatment
        );
        for l in &lines {
            println!("  {l}");
        }
    }
    Ok(())
}

/// An entity leaving a pilot for another market.
pub struct Migration {
    pub entity: String,
    pub from: String,
    pub to: String,
    pub year: i32,
    pub account: String,
    pub reason: String,
    pub official: String,
    pub from_authority: String,
    pub to_authority: Option<String>,
}

/// Records the migration in the MRV register (refused if it would cover the entity twice) and
/// applies the pilot rulebook's treatment of its pilot allowances in the registry: withdrawn,
/// kept for N years, or converted at a rate into the new market's allowances. Ids derive from
/// the migration, so running it again finishes what an interruption left.
pub fn migrate(
    mrv: &mut MrvLog,
    ledger: &mut Ledger,
    rb: &Rulebook,
    m: &Migration,
    at: Timestamp,
) -> Result<(u64, DualTrack, Vec<String>), CliError> {
    if rb.rulebook.market != m.from {
        return Err(CliError::new(ExitCode::Invalid, format!("rulebook {} is {}'s, not {}'s", rb.rulebook.id, rb.rulebook.market, m.from)));
    }
    let treatment = rb.dual_track.clone().ok_or_else(|| {
        CliError::new(
            ExitCode::Refused,
            format!("rulebook {} does not say what happens to {}'s allowances when an entity leaves", rb.rulebook.id, m.from),
        )
    })?;
    let base = format!("migrate-{}-{}-{}", m.entity, m.from, m.year);
    // Everything checked before anything is written.
    let to_market = ledger.registry().find_market(&m.to).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("no market {}", m.to)))?;
    if matches!(treatment, DualTrack::Convert { .. }) && m.to_authority.is_none() {
        return Err(CliError::new(ExitCode::Invalid, "conversion issues the new market's allowances: give --to-authority"));
    }
    if ledger.registry().find_account(&m.account).is_none() {
        return Err(CliError::new(ExitCode::NotFound, format!("unknown account {}", m.account)));
    }
    let pilot_account = mrv
        .state()
        .coverage(&m.entity)
        .iter()
        .find(|c| c.market == m.from && c.covers_year(m.year - 1))
        .and_then(|c| c.account.clone())
        .ok_or_else(|| {
            CliError::new(ExitCode::NotFound, format!("{} has no {} coverage with a registry account in {}", m.entity, m.from, m.year - 1))
        })?;
    let command = ets_mrv::state::Command::Migrate {
        entity: m.entity.clone(),
        from_market: m.from.clone(),
        to_market: m.to.clone(),
        year: m.year,
        account: Some(m.account.clone()),
        reason: m.reason.clone(),
        sector: None,
    };
    let receipt = mrv.submit(&base, &m.official, at, &command, &[])?;
    let registry = ledger.registry();
    let idx = registry
        .find_account(&pilot_account)
        .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown account {pilot_account}")))?;
    let from_market = registry.find_market(&m.from).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("no market {}", m.from)))?;
    let held: Vec<(UnitRef, u64, u16)> = registry
        .holdings_of(idx)
        .into_iter()
        .filter(|(u, h)| {
            registry.unit(*u).spec.issuer == from_market
                && registry.unit(*u).spec.class == ets_registry::UnitClass::Allowance
                && h.free_total() > 0
        })
        .map(|(u, h)| (registry.unit_ref(u), h.free_total(), registry.unit(u).spec.vintage))
        .collect();
    let mut lines = Vec::new();
    match &treatment {
        DualTrack::CarryOver { years } => {
            lines.push(format!("{} keeps its {} allowances in {pilot_account} for {years} years", m.entity, m.from))
        }
        DualTrack::Withdraw | DualTrack::Convert { .. } => {
            if held.is_empty() {
                lines.push(format!("{pilot_account} holds no free {} allowances: nothing to withdraw", m.from));
            }
            for (unit, q, _) in &held {
                let command = Command::Withdraw { account: pilot_account.clone(), unit: unit.clone(), quantity: Tonnes(*q) };
                submit_registry(ledger, at, format!("{base}-withdraw-{unit}"), &m.from_authority, command)?;
                lines.push(format!("withdrew {} t of {unit} from {pilot_account}", Tonnes(*q)));
            }
        }
    }
    if let DualTrack::Convert { rate } = &treatment {
        let to_authority = m.to_authority.as_deref().expect("checked above");
        // Converted from what was withdrawn (as recorded), so a rerun after an interruption
        // converts exactly once; into the vintage of the first year in the new market.
        let registry = ledger.registry();
        let withdrawn: u64 = registry
            .transactions()
            .iter()
            .filter(|t| t.kind == ets_registry::TxKind::Withdrawal && t.from == Some(idx) && t.reversed_by.is_none())
            .filter(|t| {
                registry.unit(t.unit).spec.issuer == from_market && registry.unit(t.unit).spec.class == ets_registry::UnitClass::Allowance
            })
            .map(|t| t.blocks.iter().map(|b| b.len()).sum::<u64>())
            .sum();
        let converted =
            ets_rules::num::floor_tonnes(Decimal::from(withdrawn) * *rate).map_err(|e| CliError::new(ExitCode::Invalid, e.to_string()))?;
        if converted > 0 {
            let code = ledger.registry().market(to_market).spec.allowance_code.clone();
            let vintage = u16::try_from(m.year).map_err(|_| CliError::new(ExitCode::Invalid, "year out of range"))?;
            let target = UnitRef::allowance(&code, vintage);
            submit_registry(
                ledger,
                at,
                format!("{base}-convert-issue"),
                to_authority,
                Command::Issue { unit: target.clone(), quantity: Tonnes(converted), to: None },
            )?;
            let allocate = Command::Allocate {
                from: format!("{}-ISSUANCE", m.to),
                to: m.account.clone(),
                unit: target.clone(),
                quantity: Tonnes(converted),
            };
            submit_registry(ledger, at, format!("{base}-convert-allocate"), to_authority, allocate)?;
            lines.push(format!("converted {} t withdrawn into {} t of {target} in {}", Tonnes(withdrawn), Tonnes(converted), m.account));
        }
    }
    Ok((receipt.seq, treatment, lines))
}

/// The carry-over of unconverted vintages into the new vintage (china-ets.md §2.4):
/// T = B + max(NS, 0) × R, at most the free holdings of those vintages, rounded down; NS is the
/// account's net sales of those vintages (transfers out less transfers in) inside the rule's
/// window. The old units are withdrawn, oldest vintage first, and T new-vintage allowances are
/// issued and allocated to the account, under ids derived from the account and vintage.
pub fn run_carry_over(location: &Location, out: &Output, a: &CarryOverArgs) -> Result<(), CliError> {
    let (_, rb) = load_rulebook(&a.rulebook)?;
    let rule = rb
        .compliance
        .carry_over
        .clone()
        .ok_or_else(|| CliError::new(ExitCode::Refused, format!("rulebook {} has no carry-over rule", rb.rulebook.id)))?;
    let mut ledger = Ledger::open(location, LedgerOptions::default())?;
    let idx = ledger
        .registry()
        .find_account(&a.account)
        .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown account '{}'", a.account)))?;
    let market = ledger.registry().account(idx).market;
    let code = ledger.registry().market(market).spec.allowance_code.clone();
    let eligible = |unit: &str| -> Option<u16> {
        let (c, v) = unit.split_once(':')?;
        let v: u16 = v.parse().ok()?;
        (c == code && rule.vintages.contains(&v)).then_some(v)
    };
    let from = rule.net_sales_from.start();
    let to = rule.net_sales_to.end_exclusive();
    let mut net_sales: i64 = 0;
    let rows = ledger.transactions(&a.account, Some(to))?;
    // A corrected transfer is no sale: transactions reversed later are left out.
    let reversed: std::collections::BTreeSet<u64> = ledger.transactions(&a.account, None)?.iter().filter_map(|t| t.reverses).collect();
    for t in rows {
        // Direct transfers and settled (posted pending) exchange trades are sales or purchases.
        let trade = t.kind == "transfer" || t.kind == "pending-post";
        if t.at < from || !trade || reversed.contains(&t.tx) || eligible(&t.unit).is_none() {
            continue;
        }
        if t.from_account.as_deref() == Some(a.account.as_str()) {
            net_sales += t.quantity as i64;
        } else {
            net_sales -= t.quantity as i64;
        }
    }
    let registry = ledger.registry();
    let mut held: Vec<(u16, UnitRef, u64)> = registry
        .holdings_of(idx)
        .into_iter()
        .filter_map(|(u, h)| {
            let name = registry.unit_name(u);
            Some((eligible(&name)?, registry.unit_ref(u), h.free_total()))
        })
        .filter(|x| x.2 > 0)
        .collect();
    held.sort_by_key(|x| x.0);
    let holdings: u64 = held.iter().map(|x| x.2).sum();
    let t = rb.compliance.carry_over_quantity(net_sales, holdings).map_err(|e| CliError::new(ExitCode::Invalid, e.to_string()))?;
    let at = now()?;
    let base = format!("carryover-{}-{}", a.account, rule.into_vintage);
    let mut left = t;
    for (_, unit, q) in &held {
        if left == 0 {
            break;
        }
        let take = (*q).min(left);
        submit_registry(
            &mut ledger,
            at,
            format!("{base}-withdraw-{unit}"),
            &a.actor,
            Command::Withdraw { account: a.account.clone(), unit: unit.clone(), quantity: Tonnes(take) },
        )?;
        left -= take;
    }
    if t > 0 {
        let target = UnitRef::allowance(&code, rule.into_vintage);
        let market_code = ledger.registry().market(market).spec.code.clone();
        submit_registry(
            &mut ledger,
            at,
            format!("{base}-issue"),
            &a.actor,
            Command::Issue { unit: target.clone(), quantity: Tonnes(t), to: None },
        )?;
        let allocate =
            Command::Allocate { from: format!("{market_code}-ISSUANCE"), to: a.account.clone(), unit: target, quantity: Tonnes(t) };
        submit_registry(&mut ledger, at, format!("{base}-allocate"), &a.actor, allocate)?;
    }
    if out.is_json() {
        out.print_json(json!({"account": a.account, "net_sales_t": net_sales, "holdings_t": holdings, "carried_over_t": t, "into_vintage": rule.into_vintage}));
    } else {
        println!(
            "{}: net sales {} t, eligible holdings {} t → T = min({} + {} × max(NS, 0), holdings) = {} t carried into {code}:{}",
            a.account,
            net_sales,
            Tonnes(holdings),
            rule.base_t,
            rule.rate,
            Tonnes(t),
            rule.into_vintage
        );
    }
    Ok(())
}

/// Sets `dotted.key = value` in a TOML document (the value in TOML syntax, or a bare string).
fn set_key(doc: &mut toml::Table, key: &str, value: &str) -> Result<(), CliError> {
    let parsed: toml::Value = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("v").cloned())
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let missing = |p: &str| CliError::new(ExitCode::Invalid, format!("--set {key}: the rulebook has no table '{p}'"));
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        // `name[i]` steps into element i of an array of tables (as rulebook errors name them).
        let (name, index) = match p.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']').parse::<usize>().map_err(|_| missing(p))?)),
            None => (*p, None),
        };
        let value = table.get_mut(name).ok_or_else(|| missing(p))?;
        let value = match index {
            Some(i) => value.as_array_mut().and_then(|a| a.get_mut(i)).ok_or_else(|| missing(p))?,
            None => value,
        };
        table = value.as_table_mut().ok_or_else(|| missing(p))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), parsed);
    Ok(())
}

pub fn run_sandbox(location: &Location, out: &Output, a: &SandboxArgs) -> Result<(), CliError> {
    let (text, base) = load_rulebook(&a.rulebook)?;
    let mut doc: toml::Table = text.parse().map_err(|e| CliError::new(ExitCode::Invalid, format!("{}: {e}", a.rulebook)))?;
    for change in &a.changes {
        let (k, v) =
            change.split_once('=').ok_or_else(|| CliError::new(ExitCode::Invalid, format!("--set '{change}' must be key=value")))?;
        set_key(&mut doc, k.trim(), v.trim())?;
    }
    let changed_text = toml::to_string(&doc).map_err(|e| CliError::new(ExitCode::Internal, e.to_string()))?;
    let changed = Rulebook::from_toml(&format!("{} (sandbox)", a.rulebook), &changed_text)
        .map_err(|e| CliError::new(ExitCode::Invalid, e.to_string()))?;
    let price = price_fen(&a.price)?;
    // Read only: the sandbox opens the stored data and never writes to them.
    let mrv = open_mrv(location)?;
    let ledger = Ledger::open(location, LedgerOptions { snapshot_every: 0 })?;
    let (actual, _) = power_allocation(&base, mrv.state(), a.year)?;
    let (experiment, _) = power_allocation(&changed, mrv.state(), a.year)?;
    let mut projects = ProjectCatalog::new();
    projects.extend(crate::inclusion::catalog_of(location)?.projects_of(&base.rulebook.market));
    let comply_actual = assess_all(&base, mrv.state(), &ledger, a.year, price, &projects);
    let comply_experiment = assess_all(&changed, mrv.state(), &ledger, a.year, price, &projects);
    let sum = |v: &[power::EntityAllocation]| v.iter().map(|e| e.final_t).sum::<u64>();
    let rate = |v: &Assessed| v.iter().filter(|(_, _, r)| r.as_ref().is_ok_and(|a| a.compliant)).count();
    let fines = |v: &Assessed| v.iter().filter_map(|(_, _, r)| r.as_ref().ok()).map(|a| a.fine_minor).sum::<i64>();
    if out.is_json() {
        out.print_json(json!({
            "rulebook": base.rulebook.id, "changes": a.changes, "year": a.year,
            "actual": {"allocated_t": sum(&actual), "compliant": rate(&comply_actual), "fines_fen": fines(&comply_actual)},
            "experiment": {"allocated_t": sum(&experiment), "compliant": rate(&comply_experiment), "fines_fen": fines(&comply_experiment)},
            "entities": actual.iter().zip(&experiment).map(|(x, y)| json!({"entity": x.entity, "actual_t": x.final_t, "experiment_t": y.final_t})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = actual
        .iter()
        .zip(&experiment)
        .map(|(x, y)| {
            vec![
                x.entity.clone(),
                Tonnes(x.final_t).to_string(),
                Tonnes(y.final_t).to_string(),
                (y.final_t as i64 - x.final_t as i64).to_string(),
            ]
        })
        .collect();
    print!("{}", table(&["entity", "actual_t", "experiment_t", "change_t"], &rows));
    println!(
        "allocation {}: actual {} t, with {} {} t; compliant entities {} → {}; fines {} → {} (nothing stored)",
        a.year,
        Tonnes(sum(&actual)),
        a.changes.join(", "),
        Tonnes(sum(&experiment)),
        rate(&comply_actual),
        rate(&comply_experiment),
        Fen(fines(&comply_actual)),
        Fen(fines(&comply_experiment)),
    );
    Ok(())
}
