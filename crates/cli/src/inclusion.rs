//! `ets inclusion ...`: carbon-inclusion (碳普惠) credits for small emitters and individuals
//! (`ets_finance::inclusion`), journaled in the finance journal like the desk's commands.
//! A surrender for compliance reads the entity's verified emissions from the MRV journal, its
//! allocation and what it already surrendered for the year from the registry, and is judged by
//! the pilot rulebook's offset rules.

use crate::finance::{open, tonnes, Session};
use crate::output::{table, Output};
use crate::{now, CliError, ExitCode};
use clap::Subcommand;
use ets_compliance::{self as cycle_data, ProjectCatalog};
use ets_core::{Date, Tonnes};
use ets_finance::inclusion::{self, ActivityRecord, Catalog, Command, Envelope, Event, RejectKind, Status};
use ets_registry::UnitRef;
use ets_rules::compliance::Lot;
use ets_store::{FinanceReceipt, Ledger, Location};
use rust_decimal::Decimal;
use serde_json::json;

#[derive(Subcommand)]
pub enum InclusionCmd {
    /// Set up carbon inclusion for every pilot in the registry that has a scheme in the catalog
    /// (default: the shipped data/inclusion-methodologies.json)
    Init {
        #[arg(long, default_value = "inclusion")]
        operator: String,
        /// A catalog file instead of the shipped one
        #[arg(long)]
        catalog: Option<std::path::PathBuf>,
    },
    /// The pilots' schemes and the methodologies with their factors, caps and crediting periods
    Methodologies,
    /// Register an aggregator (a platform pooling participants' activity) with its registry account
    Aggregator {
        aggregator: String,
        #[arg(long)]
        pilot: String,
        #[arg(long)]
        account: String,
    },
    /// Register a verifier
    Verifier { verifier: String },
    /// Submit participants' activity records: a CSV file `record,participant,date,quantity,evidence_sha256`
    Submit {
        submission: String,
        #[arg(long = "as")]
        aggregator: String,
        #[arg(long)]
        methodology: String,
        #[arg(long)]
        year: u16,
        #[arg(long)]
        records: std::path::PathBuf,
    },
    /// Accept or reject a submission (a registered verifier other than the aggregator)
    Verify {
        submission: String,
        #[arg(long = "as")]
        verifier: String,
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        accept: bool,
        #[arg(long)]
        reject: bool,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Issue an accepted submission's credits to the aggregator's account (the pilot authority)
    Issue {
        submission: String,
        #[arg(long = "as")]
        authority: String,
    },
    /// Trade credits to another account (holders the pilot's rulebook admits to trading)
    Transfer {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        quantity: String,
        #[arg(long = "as")]
        actor: String,
    },
    /// Surrender credits for an obligation year, within the pilot's offset limits and locality rules
    Surrender {
        #[arg(long)]
        account: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        quantity: String,
        #[arg(long)]
        year: u16,
        #[arg(long = "as")]
        actor: String,
        /// Other offset projects the account surrendered for the year (`ets comply --projects` format)
        #[arg(long)]
        projects: Option<String>,
    },
    /// Submissions, and credits issued, traded and used for compliance per pilot
    Report,
}

fn invalid(m: impl Into<String>) -> CliError {
    CliError::new(ExitCode::Invalid, m)
}

/// Reads a submission's CSV file: every problem with its row and column, nothing if any.
pub fn read_records(path: &std::path::Path) -> Result<Vec<ActivityRecord>, CliError> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {name}: {e}")))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    const HEADER: [&str; 5] = ["record", "participant", "date", "quantity", "evidence_sha256"];
    match lines.next() {
        Some((_, h)) if h.split(',').map(str::trim).eq(HEADER) => {}
        _ => return Err(invalid(format!("{name}: row 1 must be the header {}", HEADER.join(",")))),
    }
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in lines {
        let row = n + 1;
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 5 {
            problems.push(format!("{name}: row {row}: {} fields, expected 5 ({})", f.len(), HEADER.join(",")));
            continue;
        }
        let date = Date::parse(f[2]).map_err(|e| problems.push(format!("{name}: row {row}, column date: {e}")));
        let quantity = f[3]
            .parse::<Decimal>()
            .map_err(|_| problems.push(format!("{name}: row {row}, column quantity: '{}' is not a decimal number", f[3])));
        if let (Ok(date), Ok(quantity)) = (date, quantity) {
            records.push(ActivityRecord { record: f[0].into(), participant: f[1].into(), date, quantity, evidence_sha256: f[4].into() });
        }
        if problems.len() > inclusion::PROBLEMS_SHOWN_MAX {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems.join("\n")));
    }
    if records.len() > inclusion::RECORDS_MAX {
        return Err(invalid(format!("{name}: {} records; at most {} per submission", records.len(), inclusion::RECORDS_MAX)));
    }
    Ok(records)
}

/// The carbon-inclusion catalog in force: the one carbon inclusion was set up with, else the
/// shipped one.
pub fn catalog_of(location: &Location) -> Result<Catalog, CliError> {
    if let Location::Sqlite(p) = location {
        if !p.exists() {
            return Ok(Catalog::builtin());
        }
    }
    let log = ets_store::FinanceLog::open(location.open()?)?;
    Ok(log.inclusion().map(|i| i.catalog().clone()).unwrap_or_else(Catalog::builtin))
}

/// What a surrender is judged against: the verified emissions of the entity whose account it
/// is (MRV), its allocation of the year and what it already surrendered for the year (registry).
pub fn context(
    ledger: &Ledger,
    mrv: &ets_mrv::state::MrvState,
    catalog: &Catalog,
    account: &str,
    year: u16,
    mut other_projects: ProjectCatalog,
) -> Result<(Decimal, u64, Vec<Lot>), CliError> {
    let registry = ledger.registry();
    let idx =
        registry.find_account(account).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("no registry account '{account}'")))?;
    let market = registry.market(registry.account(idx).market).spec.code.clone();
    let covered = cycle_data::covered(mrv, &market, year as i32);
    let c = covered.iter().find(|c| c.account.as_deref() == Some(account)).ok_or_else(|| {
        CliError::new(
            ExitCode::Refused,
            format!("account {account} is not the account of an entity {market} covers in {year} (MRV coverage)"),
        )
    })?;
    let verified = c.verified_t.ok_or_else(|| {
        CliError::new(ExitCode::Refused, format!("{} has no accepted {year} emissions report: its obligation is not known yet", c.entity))
    })?;
    other_projects.extend(catalog.projects_of(&market));
    let (already, unknown) = cycle_data::surrendered(registry, idx, year, &other_projects);
    if let Some((t, why)) = unknown.first() {
        return Err(CliError::new(
            ExitCode::Refused,
            format!("{account} already surrendered {t} t for {year} that cannot be judged ({why}); name its projects with --projects"),
        ));
    }
    Ok((verified, crate::cycle::allocated_to(ledger, idx, year), already))
}

fn code_of(kind: RejectKind) -> ExitCode {
    match kind {
        RejectKind::NotFound => ExitCode::NotFound,
        RejectKind::Forbidden => ExitCode::Forbidden,
        RejectKind::Invalid => ExitCode::Invalid,
        RejectKind::Conflict => ExitCode::Conflict,
        RejectKind::Rule | RejectKind::Insufficient => ExitCode::Refused,
    }
}

fn submit(s: &mut Session, out: &Output, actor: &str, command: Command, what: &str) -> Result<Vec<Event>, CliError> {
    let envelope = Envelope { id: format!("inc-{what}-{}", s.log.head().0 + 1), actor: actor.to_string(), command };
    match s.log.submit_inclusion(&envelope, &mut s.ledger, now()?)? {
        Ok(FinanceReceipt::Accepted(outcome)) => {
            print_events(out, &outcome.events);
            Ok(outcome.events)
        }
        Ok(FinanceReceipt::Repeated) => {
            out.line(&format!("command {} was already carried out", envelope.id));
            Ok(Vec::new())
        }
        Err(r) => Err(CliError::new(code_of(r.kind), r.message)),
    }
}

fn print_events(out: &Output, events: &[Event]) {
    if out.is_json() {
        out.print_json(serde_json::to_value(events).expect("json"));
        return;
    }
    for e in events {
        println!(
            "{}",
            match e {
                Event::AggregatorAdded { aggregator, pilot } => format!("aggregator {aggregator} registered in {pilot}"),
                Event::VerifierAdded { verifier } => format!("verifier {verifier} registered"),
                Event::Submitted { submission, participants, records, credits_t } => format!(
                    "submission {submission}: {records} record(s) of {participants} participant(s) pass the checks: {} t of credits claimed; awaiting verification",
                    Tonnes(*credits_t)
                ),
                Event::Verified { submission, verifier, accepted } => {
                    format!("submission {submission} {} by {verifier}", if *accepted { "accepted" } else { "rejected" })
                }
                Event::Issued { submission, unit, quantity, to } => {
                    format!("submission {submission}: {} t of {unit} issued to {to}", Tonnes(*quantity))
                }
                Event::Transferred { from, to, unit, quantity } => format!("{} t of {unit} from {from} to {to}", Tonnes(*quantity)),
                Event::Surrendered { account, unit, quantity, year, offsets_counted_t, .. } => format!(
                    "{account} surrendered {} t of {unit} for {year}; offsets now counted: {} t",
                    Tonnes(*quantity),
                    Tonnes(*offsets_counted_t)
                ),
            }
        );
    }
}

fn register(s: &Session) -> Result<&inclusion::Inclusion, CliError> {
    s.log.inclusion().ok_or_else(|| CliError::new(ExitCode::NotFound, "carbon inclusion is not set up: run `ets inclusion init` first"))
}

pub fn run(location: &Location, out: &Output, command: &InclusionCmd) -> Result<(), CliError> {
    // Parse and check files and values before opening anything.
    let records = match command {
        InclusionCmd::Submit { records, .. } => Some(read_records(records)?),
        _ => None,
    };
    let quantity = match command {
        InclusionCmd::Transfer { quantity, unit, .. } | InclusionCmd::Surrender { quantity, unit, .. } => {
            Some((tonnes(quantity)?, UnitRef::parse(unit).map_err(invalid)?))
        }
        _ => None,
    };
    let catalog_file = match command {
        InclusionCmd::Init { catalog: Some(path), .. } => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {}: {e}", path.display())))?;
            Some(Catalog::from_json(&path.display().to_string(), &text).map_err(|p| invalid(p.join("\n")))?)
        }
        _ => None,
    };
    let other_projects = match command {
        InclusionCmd::Surrender { projects, .. } => crate::cycle::read_projects(projects.as_deref())?,
        _ => ProjectCatalog::new(),
    };
    if let InclusionCmd::Methodologies = command {
        // Works without a database: the register's catalog if set up, else the shipped one.
        let catalog = match location {
            Location::Sqlite(p) if !p.exists() => Catalog::builtin(),
            _ => open(location)?.log.inclusion().map(|i| i.catalog().clone()).unwrap_or_else(Catalog::builtin),
        };
        return methodologies(&catalog, out);
    }
    let mut s = open(location)?;
    match command {
        InclusionCmd::Init { operator, .. } => {
            ets_core::check_identifier("operator", operator).map_err(invalid)?;
            let catalog = catalog_file.unwrap_or_else(Catalog::builtin);
            let config = inclusion::config_from_registry(operator, catalog, s.ledger.registry()).map_err(invalid)?;
            if config.pilots.is_empty() {
                return Err(CliError::new(
                    ExitCode::Refused,
                    "no pilot with a carbon-inclusion scheme is in the registry: add one first (ets market add GD ...)",
                ));
            }
            let pilots: Vec<String> = config.pilots.iter().map(|(m, p)| format!("{m} (rulebook {})", p.rulebook)).collect();
            s.log.init_inclusion(config, now()?).map_err(|e| match e {
                ets_store::StoreError::Conflict(m) => CliError::new(ExitCode::Conflict, m),
                e => e.into(),
            })?;
            out.line(&format!("carbon inclusion set up, operated by {operator}, for {}", pilots.join(", ")));
        }
        InclusionCmd::Methodologies => unreachable!("answered above"),
        InclusionCmd::Aggregator { aggregator, pilot, account } => {
            let op = register(&s)?.config().operator.clone();
            let c = Command::AddAggregator { aggregator: aggregator.clone(), pilot: pilot.clone(), account: account.clone() };
            submit(&mut s, out, &op, c, "aggregator")?;
        }
        InclusionCmd::Verifier { verifier } => {
            let op = register(&s)?.config().operator.clone();
            submit(&mut s, out, &op, Command::AddVerifier { verifier: verifier.clone() }, "verifier")?;
        }
        InclusionCmd::Submit { submission, aggregator, methodology, year, .. } => {
            register(&s)?;
            let c = Command::Submit {
                submission: submission.clone(),
                aggregator: aggregator.clone(),
                methodology: methodology.clone(),
                year: *year,
                records: records.expect("read above"),
            };
            submit(&mut s, out, aggregator, c, "submit")?;
        }
        InclusionCmd::Verify { submission, verifier, accept, note, .. } => {
            register(&s)?;
            let c = Command::Verify { submission: submission.clone(), accept: *accept, note: note.clone() };
            submit(&mut s, out, verifier, c, "verify")?;
        }
        InclusionCmd::Issue { submission, authority } => {
            register(&s)?;
            submit(&mut s, out, authority, Command::Issue { submission: submission.clone() }, "issue")?;
        }
        InclusionCmd::Transfer { from, to, actor, .. } => {
            register(&s)?;
            let (quantity, unit) = quantity.expect("parsed above");
            submit(&mut s, out, actor, Command::Transfer { from: from.clone(), to: to.clone(), unit, quantity }, "transfer")?;
        }
        InclusionCmd::Surrender { account, year, actor, .. } => {
            let catalog = register(&s)?.catalog().clone();
            let (quantity, unit) = quantity.expect("parsed above");
            let mrv = crate::cycle::open_mrv(location)?;
            let (verified_t, allocation_t, already) = context(&s.ledger, mrv.state(), &catalog, account, *year, other_projects)?;
            let c = Command::Surrender { account: account.clone(), unit, quantity, year: *year, verified_t, allocation_t, already };
            submit(&mut s, out, actor, c, "surrender")?;
        }
        InclusionCmd::Report => report(register(&s)?, out),
    }
    Ok(())
}

fn methodologies(catalog: &Catalog, out: &Output) -> Result<(), CliError> {
    if out.is_json() {
        out.print_json(serde_json::to_value(catalog).expect("json"));
        return Ok(());
    }
    let schemes: Vec<Vec<String>> = catalog
        .pilots
        .iter()
        .map(|s| vec![s.market.clone(), s.standard.clone(), s.province.clone(), s.rulebook.clone(), s.uncertain.join("; ")])
        .collect();
    println!("carbon-inclusion schemes (catalog version {}):", catalog.version);
    print!("{}", table(&["pilot", "credit", "province", "rulebook", "uncertain"], &schemes));
    let rows: Vec<Vec<String>> = catalog
        .methodologies
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.name.clone(),
                m.activity_unit.clone(),
                m.factor_t_per_unit.to_string(),
                Tonnes(m.cap_t_per_participant_year).to_string(),
                format!("{} to {}", m.crediting_from, m.crediting_to),
                m.pilots.join(" "),
                if m.uncertain { "ets default".into() } else { "sourced".into() },
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["methodology", "activity", "unit", "t per unit", "cap t/participant/yr", "crediting", "pilots", "figures"], &rows)
    );
    Ok(())
}

fn report(r: &inclusion::Inclusion, out: &Output) {
    let subs: Vec<Vec<String>> = r
        .submissions()
        .iter()
        .map(|(id, s)| {
            vec![
                id.clone(),
                s.pilot.clone(),
                s.aggregator.clone(),
                s.methodology.clone(),
                s.year.to_string(),
                s.records.len().to_string(),
                s.credits.len().to_string(),
                Tonnes(s.credits_t()).to_string(),
                match s.status {
                    Status::Submitted => "awaiting verification".into(),
                    Status::Accepted => format!("accepted by {}", s.verifier.clone().unwrap_or_default()),
                    Status::Rejected => format!("rejected by {}: {}", s.verifier.clone().unwrap_or_default(), s.note),
                    Status::Issued => "issued".into(),
                },
            ]
        })
        .collect();
    let pilots: Vec<Vec<String>> = r
        .config()
        .pilots
        .keys()
        .map(|p| {
            let t = r.totals().get(p).cloned().unwrap_or_default();
            let standard = r.catalog().scheme(p).map(|s| s.standard.clone()).unwrap_or_default();
            vec![
                p.clone(),
                standard,
                Tonnes(t.issued_t).to_string(),
                Tonnes(t.transferred_t).to_string(),
                Tonnes(t.surrendered_t).to_string(),
            ]
        })
        .collect();
    if out.is_json() {
        out.print_json(json!({
            "submissions": r.submissions(),
            "pilots": r.config().pilots.keys().map(|p| (p.clone(), json!(r.totals().get(p).cloned().unwrap_or_default()))).collect::<serde_json::Map<_, _>>(),
        }));
        return;
    }
    println!("submissions:");
    print!(
        "{}",
        table(&["submission", "pilot", "aggregator", "methodology", "year", "records", "participants", "credits t", "status"], &subs)
    );
    println!("credits per pilot:");
    print!("{}", table(&["pilot", "credit", "issued t", "traded t", "used for compliance t"], &pilots));
}
