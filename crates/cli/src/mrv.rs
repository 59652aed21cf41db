//! `ets mrv ...`: registration, monitoring plans, import of monthly data, calculation, checks,
//! annual reports and their verification, export. Each write is one MRV journal record (an
//! import is one batch: all of it or none of it).

use crate::output::table;
use crate::{now, CliError, ExitCode, Output, WriteArgs};
use clap::{Args, Subcommand};
use ets_core::chain::hex;
use ets_mrv::entity::{Cooling, EmissionUnit, Entity, Installation, PowerCategory, Sector, UnitKind};
use ets_mrv::eu_mrr::Category;
use ets_mrv::monthly::{unit_year_emissions, MonthlyRecord, YearMonth};
use ets_mrv::plan::MonitoringPlan;
use ets_mrv::quality::{self, QualityParams};
use ets_mrv::state::{Anomaly, Command, Evidence, MrvParams, MrvState};
use ets_mrv::verification::{self, Finding, OpinionKind, RejectKind, Rejection, ReportState};
use ets_mrv::FactorSet;
use ets_store::{sha256_hex, EvidenceFile, Location, MrvError, MrvLog, MrvSubmission};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest evidence file accepted (the evidence store keeps the bytes).
pub const EVIDENCE_BYTES_MAX: u64 = 64 * 1024 * 1024;

#[derive(Subcommand)]
pub enum MrvCmd {
    /// Officials of the competent authority
    #[command(subcommand)]
    Official(OfficialCmd),
    /// Register and list reporting entities
    #[command(subcommand)]
    Entity(EntityCmd),
    /// Installations (sites) of entities
    #[command(subcommand)]
    Installation(InstallationCmd),
    /// Emission units of installations
    #[command(subcommand)]
    Unit(UnitCmd),
    /// Verification bodies
    #[command(subcommand)]
    Verifier(VerifierCmd),
    /// Monitoring plans
    #[command(subcommand)]
    Plan(PlanCmd),
    /// Coverage: which market an entity complies in, for which sector, gases and years
    #[command(subcommand)]
    Coverage(CoverageCmd),
    /// Import monthly activity data from a CSV or Excel (.xlsx) file: every problem is reported and nothing is imported unless all is valid
    Import {
        file: PathBuf,
        /// Evidence file to store and hash into each submission of this import (repeatable)
        #[arg(long = "evidence")]
        evidence: Vec<PathBuf>,
        /// Why, when the import corrects months already submitted
        #[arg(long)]
        reason: Option<String>,
        /// Check everything against the stored plans and data, write nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Emissions of an entity's year from stored data, or of a file's data (--file)
    Calculate {
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        entity: Option<String>,
        #[arg(long, required_unless_present = "file")]
        year: Option<i32>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Data-quality checks: the regulator's ranked anomaly queue for a year, one entity's, or a file's
    Check {
        #[arg(long, required_unless_present = "file")]
        year: Option<i32>,
        #[arg(long, conflicts_with = "file")]
        entity: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Submit an entity's annual report (its figure is computed from the monthly data)
    Submit {
        report: String,
        #[arg(long)]
        entity: String,
        #[arg(long)]
        year: i32,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Submit a new version of a returned report, recomputed from the latest monthly data
    Resubmit {
        report: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// The verifier's steps
    #[command(subcommand)]
    Verify(VerifyCmd),
    /// Accept a report with an unqualified opinion (competent authority): its figure becomes the verified emissions
    Accept {
        report: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Return a report to the entity (competent authority)
    Return {
        report: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Export a report (with its versions, monthly emissions and evidence hashes) as JSON, CSV or an Excel workbook
    Report {
        report: String,
        /// json, csv or xlsx (xlsx needs --output)
        #[arg(long, default_value = "json")]
        format: String,
        /// Write to this file instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// List reports and where they stand (the verifiers' and the authority's queues)
    Reports {
        #[arg(long)]
        year: Option<i32>,
    },
    /// Versions of one unit's submission for a month
    Submissions {
        unit: String,
        /// YYYY-MM
        month: String,
    },
    /// Is this file recorded as evidence? Checks its SHA-256 against the MRV journal and the evidence store
    Evidence { file: PathBuf },
    /// Write a template: monthly.csv, monthly.xlsx or plan.json
    Template {
        /// monthly-csv, monthly-xlsx or plan
        kind: String,
        #[arg(long)]
        output: PathBuf,
        /// Plan template: the entity it is for
        #[arg(long)]
        entity: Option<String>,
        /// Plan template: the reporting year
        #[arg(long)]
        year: Option<i32>,
        /// Plan template: an emission unit with a coal stream (repeatable)
        #[arg(long = "unit")]
        units: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum OfficialCmd {
    /// Add an official of the competent authority (the first one may be added by anyone)
    Add {
        person: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

#[derive(Subcommand)]
pub enum InstallationCmd {
    /// Add an installation (a site) of an entity
    Add {
        id: String,
        #[arg(long)]
        entity: String,
        #[arg(long)]
        name: String,
        /// EU MRR installation category (A, B or C) where monitored under an EU-style plan
        #[arg(long)]
        eu_category: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
}

#[derive(Subcommand)]
pub enum UnitCmd {
    /// Add an emission unit to an installation
    Add(UnitArgs),
}

#[derive(Subcommand)]
pub enum VerifierCmd {
    /// Register a verification body (competent authority)
    Add {
        id: String,
        /// Staff member who acts for the verifier (repeatable)
        #[arg(long = "staff", required = true)]
        staff: Vec<String>,
        /// Not (or no longer) accredited
        #[arg(long)]
        unaccredited: bool,
        /// Entity the verifier helped prepare reports for (repeatable)
        #[arg(long = "prepared-for")]
        prepared_for: Vec<String>,
        /// Province where the verifier prepared reports (repeatable)
        #[arg(long = "prepared-in")]
        prepared_in: Vec<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
}

#[derive(Subcommand)]
pub enum CoverageCmd {
    /// Cover an entity in a market from a year (an official); refused if another market covers it for the same sector and gas
    Add {
        entity: String,
        #[arg(long)]
        market: String,
        /// Gas (repeatable; default CO2)
        #[arg(long = "gas", default_values_t = vec!["CO2".to_string()])]
        gases: Vec<String>,
        #[arg(long)]
        from: i32,
        #[arg(long)]
        to: Option<i32>,
        /// The entity's registry account in that market
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// End an entity's coverage in a market with a year (an official)
    End {
        entity: String,
        #[arg(long)]
        market: String,
        #[arg(long)]
        last_year: i32,
        /// Which coverage, if the entity has several in the market
        #[arg(long)]
        sector: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// List coverage: of one entity, or of a market in a year
    List {
        #[arg(long)]
        entity: Option<String>,
        #[arg(long)]
        market: Option<String>,
        #[arg(long)]
        year: Option<i32>,
    },
}

#[derive(Subcommand)]
pub enum EntityCmd {
    /// Register an entity (competent authority)
    Add {
        id: String,
        #[arg(long)]
        name: String,
        /// power, steel, cement, aluminium, petrochemicals, chemicals, flat_glass, copper, paper, aviation or other
        #[arg(long)]
        sector: String,
        #[arg(long)]
        province: String,
        /// Market covering the entity (repeatable): CN, GD, ...
        #[arg(long = "market", required = true)]
        markets: Vec<String>,
        /// Representative (repeatable)
        #[arg(long = "rep", required = true)]
        representatives: Vec<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// List entities with their units
    List,
}

#[derive(Args)]
pub struct UnitArgs {
    id: String,
    #[arg(long)]
    installation: String,
    /// generating-unit, clinker-line, aluminium-electrolysis, steel-process or other
    #[arg(long)]
    kind: String,
    /// Rated capacity: MW (generating unit), t clinker/day, t aluminium/year
    #[arg(long)]
    capacity: Option<String>,
    /// Generating-unit category of the allocation plan: I, II, III or IV
    #[arg(long)]
    category: Option<String>,
    /// water or air (generating units)
    #[arg(long, default_value = "water")]
    cooling: String,
    /// The generating unit also supplies heat
    #[arg(long)]
    supplies_heat: bool,
    /// Steel process name, or a description for other units
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    write: WriteArgs,
}

#[derive(Subcommand)]
pub enum PlanCmd {
    /// Set (a new version of) an entity's monitoring plan from a JSON file (see `ets mrv template plan`)
    Set {
        file: PathBuf,
        /// Why, for every version after the first
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Show the plan in force (or a given version) as JSON
    Show {
        entity: String,
        year: i32,
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Subcommand)]
pub enum VerifyCmd {
    /// Assign a verifier to a submitted report (authority or the entity)
    Assign {
        report: String,
        #[arg(long)]
        verifier: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Record a finding: a misstatement (tCO2e, + overstated / - understated) or a non-conformity
    Finding {
        report: String,
        #[arg(long, allow_hyphen_values = true, conflicts_with = "non_conformity", required_unless_present = "non_conformity")]
        misstatement: Option<String>,
        #[arg(long, requires = "misstatement")]
        description: Option<String>,
        #[arg(long)]
        non_conformity: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Mark a non-conformity (by its number in the findings list, from 0) resolved
    Resolve {
        report: String,
        finding: usize,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Give the opinion; it is computed from materiality, --stated must agree with it
    Opinion {
        report: String,
        /// qualified or unqualified
        #[arg(long)]
        stated: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
}

impl From<Rejection> for CliError {
    fn from(r: Rejection) -> CliError {
        let code = match r.kind {
            RejectKind::Invalid => ExitCode::Invalid,
            RejectKind::NotFound => ExitCode::NotFound,
            RejectKind::Forbidden => ExitCode::Forbidden,
            RejectKind::OutOfOrder | RejectKind::Conflict => ExitCode::Refused,
            RejectKind::Inconsistent => ExitCode::Conflict,
        };
        CliError::new(code, r.message)
    }
}

impl From<MrvError> for CliError {
    fn from(e: MrvError) -> CliError {
        match e {
            MrvError::Rejected(r) => r.into(),
            MrvError::Store(s) => s.into(),
        }
    }
}

fn factors() -> Result<FactorSet, CliError> {
    FactorSet::builtin().map_err(|e| CliError::new(ExitCode::Internal, e.to_string()))
}

/// Opens the MRV journal; `create` lets a write start a new database file.
fn open(location: &Location, create: bool) -> Result<MrvLog, CliError> {
    if let Location::Sqlite(path) = location {
        if !create && !path.exists() {
            return Err(CliError::new(ExitCode::NotFound, format!("no database at {}; name one with --database", path.display())));
        }
    }
    Ok(MrvLog::open(location.open()?, factors()?, MrvParams::default())?)
}

fn invalid(message: impl Into<String>) -> CliError {
    CliError::new(ExitCode::Invalid, message)
}

fn decimal(what: &str, text: &str) -> Result<Decimal, CliError> {
    ets_mrv::import::parse_decimal(text.trim()).map_err(|why| invalid(format!("{what} '{text}': {why}")))
}

fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {}: {e}", path.display())))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|e| CliError::new(ExitCode::Internal, format!("cannot write {}: {e}", path.display())))
}

/// Reads monthly records from a .csv or .xlsx file; every problem is reported, none imported.
pub fn read_monthly(path: &Path) -> Result<Vec<MonthlyRecord>, CliError> {
    let bytes = read_file(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let result = match ext.as_str() {
        "csv" => ets_mrv::import::import_reader(bytes.as_slice()),
        "xlsx" => ets_mrv::xlsx::import_xlsx(&bytes),
        _ => return Err(invalid(format!("{}: expected a .csv or .xlsx file", path.display()))),
    };
    result.map_err(|e| invalid(format!("{}: {e}", path.display())))
}

fn submit_one(location: &Location, out: &Output, write: &WriteArgs, command: Command) -> Result<(), CliError> {
    let mut log = open(location, true)?;
    let id = write.id.clone().unwrap_or_else(crate::new_command_id);
    let receipt = log.submit(&id, &write.actor, now()?, &command, &[])?;
    let summary: Vec<String> = receipt.events.iter().map(describe_event).collect();
    if out.is_json() {
        out.print_json(json!({
            "status": if receipt.repeated { "duplicate" } else { "accepted" },
            "command_id": id,
            "mrv_seq": receipt.seq,
            "events": summary,
        }));
    } else if receipt.repeated {
        println!("already applied: command id '{id}' is MRV record {}; nothing changed", receipt.seq);
    } else {
        println!("accepted '{id}': MRV record {}: {}", receipt.seq, summary.join("; "));
    }
    Ok(())
}

fn describe_event(e: &ets_mrv::state::Event) -> String {
    use ets_mrv::state::Event;
    use ets_mrv::verification::EventKind;
    match e {
        Event::OfficialAdded { person } => format!("official {person} added"),
        Event::EntityRegistered { entity } => format!("entity {} registered", entity.id),
        Event::VerifierRegistered { verifier } => format!("verifier {} registered", verifier.id),
        Event::InstallationAdded { installation } => format!("installation {} added", installation.id),
        Event::UnitAdded { unit } => format!("emission unit {} added", unit.id),
        Event::PlanSet { entity, year, version } => format!("monitoring plan of {entity} for {year}: version {}", version.version),
        Event::MonthlySubmitted { submission: s } => format!(
            "{} {} version {} ({} records, {} evidence files{})",
            s.unit,
            s.month,
            s.version,
            s.records.len(),
            s.evidence.len(),
            if s.late { format!(", late: due {}", s.due) } else { String::new() }
        ),
        Event::CoverageAdded { entity, coverage } => format!("{entity} covered in {}", coverage.describe()),
        Event::CoverageEnded { entity, market, sector, last_year } => {
            format!("{entity}'s {sector} coverage in {market} ends with {last_year}")
        }
        Event::Migrated { entity, from_market, to_market, year, reason } => {
            format!("{entity} migrates from {from_market} to {to_market} in {year}: {reason}")
        }
        Event::Verification { event } => match &event.kind {
            EventKind::Submitted { reported_emissions_t, .. } => format!("report {} submitted: {reported_emissions_t} tCO2e", event.report),
            EventKind::Resubmitted { version, reported_emissions_t, .. } => {
                format!("report {} version {version} submitted: {reported_emissions_t} tCO2e", event.report)
            }
            EventKind::VerifierAssigned { verifier, .. } => format!("report {} assigned to {verifier}", event.report),
            EventKind::FindingRecorded { index, .. } => format!("finding {index} recorded on report {}", event.report),
            EventKind::NonConformityResolved { index, .. } => format!("finding {index} of report {} resolved", event.report),
            EventKind::OpinionGiven { opinion, .. } => format!(
                "opinion on report {}: {:?} (misstatement {} t against threshold {} t, {} open non-conformities)",
                event.report, opinion.kind, opinion.total_misstatement_t, opinion.threshold_t, opinion.unresolved_non_conformities
            ),
            EventKind::Accepted { verified_emissions_t, .. } => {
                format!("report {} accepted: verified emissions {verified_emissions_t} tCO2e", event.report)
            }
            EventKind::Returned { reason, .. } => format!("report {} returned: {reason}", event.report),
        },
    }
}

pub fn run(location: &Location, out: &Output, command: &MrvCmd) -> Result<(), CliError> {
    match command {
        MrvCmd::Official(OfficialCmd::Add { person, write }) => {
            submit_one(location, out, write, Command::AddOfficial { person: person.clone() })
        }
        MrvCmd::Entity(EntityCmd::Add { id, name, sector, province, markets, representatives, write }) => {
            let entity = Entity {
                id: id.clone(),
                name: name.clone(),
                sector: Sector::parse(sector).map_err(invalid)?,
                province: province.clone(),
                markets: markets.iter().cloned().collect(),
                representatives: representatives.iter().cloned().collect(),
            };
            submit_one(location, out, write, Command::RegisterEntity { entity })
        }
        MrvCmd::Entity(EntityCmd::List) => {
            let log = open(location, false)?;
            list_entities(log.state(), out);
            Ok(())
        }
        MrvCmd::Installation(InstallationCmd::Add { id, entity, name, eu_category, write }) => {
            let eu_category = match eu_category.as_deref() {
                None => None,
                Some("A") => Some(Category::A),
                Some("B") => Some(Category::B),
                Some("C") => Some(Category::C),
                Some(other) => return Err(invalid(format!("EU category '{other}' must be A, B or C"))),
            };
            let installation = Installation { id: id.clone(), entity: entity.clone(), name: name.clone(), eu_category };
            submit_one(location, out, write, Command::AddInstallation { installation })
        }
        MrvCmd::Unit(UnitCmd::Add(args)) => {
            let unit = EmissionUnit { id: args.id.clone(), installation: args.installation.clone(), kind: unit_kind(args)? };
            submit_one(location, out, &args.write, Command::AddUnit { unit })
        }
        MrvCmd::Verifier(VerifierCmd::Add { id, staff, unaccredited, prepared_for, prepared_in, write }) => {
            let verifier = verification::Verifier {
                id: id.clone(),
                accredited: !unaccredited,
                staff: staff.iter().cloned().collect(),
                prepared_for_entities: prepared_for.iter().cloned().collect(),
                prepared_in_provinces: prepared_in.iter().cloned().collect(),
            };
            submit_one(location, out, write, Command::RegisterVerifier { verifier })
        }
        MrvCmd::Plan(PlanCmd::Set { file, reason, write }) => {
            let text = String::from_utf8(read_file(file)?).map_err(|_| invalid(format!("{}: not UTF-8 text", file.display())))?;
            let plan: MonitoringPlan =
                serde_json::from_str(&text).map_err(|e| invalid(format!("{}: not a monitoring plan: {e}", file.display())))?;
            let problems = plan.problems(&factors()?);
            if !problems.is_empty() {
                return Err(invalid(format!(
                    "{}: the plan has {} problem(s), nothing stored:\n  {}",
                    file.display(),
                    problems.len(),
                    problems.join("\n  ")
                )));
            }
            submit_one(location, out, write, Command::SetPlan { plan, reason: reason.clone() })
        }
        MrvCmd::Coverage(CoverageCmd::Add { entity, market, gases, from, to, account, write }) => {
            let sector = open(location, false)?
                .state()
                .entity(entity)
                .map(|e| e.sector)
                .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("no entity '{entity}'")))?;
            let coverage = ets_mrv::entity::Coverage {
                market: market.clone(),
                sector,
                gases: gases.iter().cloned().collect(),
                from_year: *from,
                to_year: *to,
                account: account.clone(),
            };
            submit_one(location, out, write, Command::Cover { entity: entity.clone(), coverage })
        }
        MrvCmd::Coverage(CoverageCmd::End { entity, market, last_year, sector, write }) => {
            let sector = sector.as_deref().map(Sector::parse).transpose().map_err(invalid)?;
            let command = Command::EndCoverage { entity: entity.clone(), market: market.clone(), last_year: *last_year, sector };
            submit_one(location, out, write, command)
        }
        MrvCmd::Coverage(CoverageCmd::List { entity, market, year }) => {
            let log = open(location, false)?;
            let state = log.state();
            let rows: Vec<(String, ets_mrv::entity::Coverage)> = state
                .entities()
                .filter(|e| entity.as_deref().is_none_or(|x| x == e.id))
                .flat_map(|e| state.coverage(&e.id).iter().map(move |c| (e.id.clone(), c.clone())))
                .filter(|(_, c)| market.as_deref().is_none_or(|m| m == c.market) && year.is_none_or(|y| c.covers_year(y)))
                .collect();
            if out.is_json() {
                out.print_json(json!(rows.iter().map(|(e, c)| json!({"entity": e, "coverage": c})).collect::<Vec<_>>()));
            } else {
                let table_rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|(e, c)| {
                        vec![
                            e.clone(),
                            c.market.clone(),
                            c.sector.to_string(),
                            c.gases.iter().cloned().collect::<Vec<_>>().join("+"),
                            c.from_year.to_string(),
                            c.to_year.map(|y| y.to_string()).unwrap_or_default(),
                            c.account.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print!("{}", table(&["entity", "market", "sector", "gases", "from", "to", "account"], &table_rows));
            }
            Ok(())
        }
        MrvCmd::Plan(PlanCmd::Show { entity, year, version }) => {
            let log = open(location, false)?;
            let versions = log.state().plan_versions(entity, *year);
            let v = match version {
                Some(n) => versions.iter().find(|v| v.version == *n),
                None => versions.last(),
            }
            .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("no monitoring plan of '{entity}' for {year}")))?;
            out.print_json(json!({
                "entity": entity, "year": year, "version": v.version, "versions": versions.len(), "reason": v.reason,
                "set_by": v.set_by, "set_at": v.set_at.to_string(), "plan": v.plan,
            }));
            Ok(())
        }
        MrvCmd::Import { file, evidence, reason, dry_run, write } => import(location, out, file, evidence, reason, *dry_run, write),
        MrvCmd::Calculate { entity, year, file } => calculate(location, out, entity.as_deref(), *year, file.as_deref()),
        MrvCmd::Check { year, entity, file } => check(location, out, *year, entity.as_deref(), file.as_deref()),
        MrvCmd::Submit { report, entity, year, write } => {
            submit_one(location, out, write, Command::SubmitReport { report: report.clone(), entity: entity.clone(), year: *year })
        }
        MrvCmd::Resubmit { report, reason, write } => {
            submit_one(location, out, write, Command::ResubmitReport { report: report.clone(), reason: reason.clone() })
        }
        MrvCmd::Verify(v) => match v {
            VerifyCmd::Assign { report, verifier, write } => {
                submit_one(location, out, write, Command::AssignVerifier { report: report.clone(), verifier: verifier.clone() })
            }
            VerifyCmd::Finding { report, misstatement, description, non_conformity, write } => {
                let finding = match (misstatement, non_conformity) {
                    (Some(amount), None) => Finding::Misstatement {
                        amount_t: decimal("misstatement", amount)?,
                        description: description.clone().unwrap_or_else(|| "misstatement".into()),
                    },
                    (None, Some(text)) => Finding::NonConformity { text: text.clone() },
                    _ => return Err(invalid("give either --misstatement TONNES or --non-conformity TEXT")),
                };
                submit_one(location, out, write, Command::RecordFinding { report: report.clone(), finding })
            }
            VerifyCmd::Resolve { report, finding, write } => {
                submit_one(location, out, write, Command::ResolveNonConformity { report: report.clone(), finding: *finding })
            }
            VerifyCmd::Opinion { report, stated, write } => {
                let stated = match stated.as_deref() {
                    None => None,
                    Some("qualified") => Some(OpinionKind::Qualified),
                    Some("unqualified") => Some(OpinionKind::Unqualified),
                    Some(other) => return Err(invalid(format!("opinion '{other}' must be qualified or unqualified"))),
                };
                submit_one(location, out, write, Command::GiveOpinion { report: report.clone(), stated })
            }
        },
        MrvCmd::Accept { report, write } => submit_one(location, out, write, Command::Accept { report: report.clone() }),
        MrvCmd::Return { report, reason, write } => {
            submit_one(location, out, write, Command::Return { report: report.clone(), reason: reason.clone() })
        }
        MrvCmd::Report { report, format, output } => export(location, out, report, format, output.as_deref()),
        MrvCmd::Reports { year } => {
            let log = open(location, false)?;
            list_reports(log.state(), *year, out);
            Ok(())
        }
        MrvCmd::Submissions { unit, month } => {
            let month = YearMonth::parse(month).map_err(|e| invalid(e.to_string()))?;
            let log = open(location, false)?;
            let versions = log.state().monthly_versions(unit, month);
            if versions.is_empty() {
                return Err(CliError::new(ExitCode::NotFound, format!("no submission of unit '{unit}' for {month}")));
            }
            if out.is_json() {
                out.print_json(serde_json::to_value(versions).expect("json"));
            } else {
                let rows: Vec<Vec<String>> = versions
                    .iter()
                    .map(|s| {
                        vec![
                            s.version.to_string(),
                            s.submitted_at.to_string(),
                            s.submitted_by.clone(),
                            s.records.len().to_string(),
                            s.evidence.iter().map(|e| format!("{} {}", e.name, &e.sha256[..12])).collect::<Vec<_>>().join(", "),
                            if s.late { format!("late (due {})", s.due) } else { format!("on time (due {})", s.due) },
                            s.reason.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print!("{}", table(&["version", "submitted", "by", "records", "evidence", "deadline", "reason"], &rows));
            }
            Ok(())
        }
        MrvCmd::Evidence { file } => {
            let bytes = read_file(file)?;
            let sha = sha256_hex(&bytes);
            let mut log = open(location, false)?;
            let named: Vec<_> = log.state().submissions().filter(|s| s.evidence.iter().any(|e| e.sha256 == sha)).cloned().collect();
            let stored = log.backend().mrv_evidence(&sha)?.is_some();
            if named.is_empty() {
                return Err(CliError::new(
                    ExitCode::NotFound,
                    format!(
                        "{} (sha256 {sha}) is not recorded as evidence of any submission: it is not the file that was submitted",
                        file.display()
                    ),
                ));
            }
            if out.is_json() {
                out.print_json(json!({"sha256": sha, "stored": stored, "submissions": named.iter().map(|s| json!({"unit": s.unit, "month": s.month, "version": s.version})).collect::<Vec<_>>()}));
            } else {
                println!("{} matches sha256 {sha}, recorded in:", file.display());
                for s in &named {
                    println!("  {} {} version {} (submitted {} by {})", s.unit, s.month, s.version, s.submitted_at, s.submitted_by);
                }
                println!("  bytes {} in the evidence store", if stored { "kept" } else { "not kept" });
            }
            Ok(())
        }
        MrvCmd::Template { kind, output, entity, year, units } => {
            let bytes = match kind.as_str() {
                "monthly-csv" => ets_mrv::import::template_csv().into_bytes(),
                "monthly-xlsx" => ets_mrv::xlsx::template_xlsx(),
                "plan" => plan_template(entity.as_deref(), *year, units)?,
                other => return Err(invalid(format!("template '{other}' must be monthly-csv, monthly-xlsx or plan"))),
            };
            write_file(output, &bytes)?;
            if !out.is_json() {
                println!("wrote {} ({} bytes)", output.display(), bytes.len());
            }
            Ok(())
        }
    }
}

/// The MRV half of `ets audit verify`.
pub fn audit(location: &Location) -> Result<ets_store::MrvAudit, CliError> {
    let failed = |e: ets_store::StoreError| match e {
        ets_store::StoreError::Corrupt(m) => CliError::new(ExitCode::AuditFailed, format!("audit failed: {m}")),
        other => other.into(),
    };
    let mut log = MrvLog::open(location.open()?, factors()?, MrvParams::default()).map_err(failed)?;
    log.audit().map_err(failed)
}

/// A complete plan (one measured coal stream per unit, a belt scale each) to edit.
fn plan_template(entity: Option<&str>, year: Option<i32>, units: &[String]) -> Result<Vec<u8>, CliError> {
    let markets = [ets_mrv::sample::Market { code: "CN".into(), province: "Shandong".into(), entities: 1 }];
    let sc = ets_mrv::sample::scenario(1, year.unwrap_or(2025), &markets, 0);
    let mut plan = sc
        .commands
        .iter()
        .find_map(|(_, _, c)| match c {
            Command::SetPlan { plan, .. } => Some(plan.clone()),
            _ => None,
        })
        .expect("the sample year has a plan");
    if let Some(e) = entity {
        plan.entity = e.to_string();
    }
    if !units.is_empty() {
        let stream = plan.source_streams[0].clone();
        let instrument = plan.instruments[0].clone();
        plan.source_streams.clear();
        plan.instruments.clear();
        for u in units {
            let meter = format!("{u}-BELT");
            let mut s = stream.clone();
            s.unit = u.clone();
            for p in &mut s.parameters {
                if let ets_mrv::plan::Determination::Measured { instrument: Some(i), .. } = &mut p.determination {
                    *i = meter.clone();
                }
            }
            plan.source_streams.push(s);
            plan.instruments.push(ets_mrv::plan::Instrument { id: meter, ..instrument.clone() });
        }
    }
    let problems = plan.problems(&factors()?);
    if !problems.is_empty() {
        return Err(invalid(format!("the plan template would not be valid: {}", problems.join("; "))));
    }
    let mut text = serde_json::to_vec_pretty(&plan).expect("json");
    text.push(b'\n');
    Ok(text)
}

fn unit_kind(a: &UnitArgs) -> Result<UnitKind, CliError> {
    let capacity = || -> Result<Decimal, CliError> {
        decimal("capacity", a.capacity.as_deref().ok_or_else(|| invalid(format!("a {} needs --capacity", a.kind)))?)
    };
    Ok(match a.kind.as_str() {
        "generating-unit" => UnitKind::GeneratingUnit {
            capacity_mw: capacity()?,
            category: match a.category.as_deref() {
                Some("I") => PowerCategory::I,
                Some("II") => PowerCategory::II,
                Some("III") => PowerCategory::III,
                Some("IV") => PowerCategory::IV,
                Some(other) => return Err(invalid(format!("category '{other}' must be I, II, III or IV"))),
                None => return Err(invalid("a generating unit needs --category I, II, III or IV")),
            },
            cooling: match a.cooling.as_str() {
                "water" => Cooling::Water,
                "air" => Cooling::Air,
                other => return Err(invalid(format!("cooling '{other}' must be water or air"))),
            },
            supplies_heat: a.supplies_heat,
        },
        "clinker-line" => UnitKind::ClinkerLine { capacity_t_per_day: capacity()? },
        "aluminium-electrolysis" => UnitKind::AluminiumElectrolysis { capacity_t_per_year: capacity()? },
        "steel-process" => UnitKind::SteelProcess {
            process: a.description.clone().ok_or_else(|| invalid("a steel process needs --description (e.g. sintering)"))?,
        },
        "other" => UnitKind::Other { description: a.description.clone().ok_or_else(|| invalid("an other unit needs --description"))? },
        other => {
            return Err(invalid(format!(
                "unit kind '{other}' must be generating-unit, clinker-line, aluminium-electrolysis, steel-process or other"
            )))
        }
    })
}

fn import(
    location: &Location,
    out: &Output,
    file: &Path,
    evidence_paths: &[PathBuf],
    reason: &Option<String>,
    dry_run: bool,
    write: &WriteArgs,
) -> Result<(), CliError> {
    let records = read_monthly(file)?;
    let mut evidence = Vec::new();
    let mut files = Vec::new();
    for path in evidence_paths {
        let len =
            std::fs::metadata(path).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {}: {e}", path.display())))?.len();
        if len > EVIDENCE_BYTES_MAX {
            return Err(invalid(format!("evidence {} is {len} bytes; the limit is {EVIDENCE_BYTES_MAX}", path.display())));
        }
        let content = read_file(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let sha = sha256_hex(&content);
        evidence.push(Evidence { name: name.clone(), sha256: sha.clone(), bytes: len });
        files.push(EvidenceFile { sha256: sha, name, content });
    }
    // One submission per entity, unit and month, in file order of first appearance.
    let mut groups: BTreeMap<(String, String, YearMonth), Vec<MonthlyRecord>> = BTreeMap::new();
    for r in records {
        groups.entry((r.entity().to_string(), r.unit().to_string(), r.month())).or_default().push(r);
    }
    let mut log = open(location, !dry_run)?;
    let base = write.id.clone().unwrap_or_else(crate::new_command_id);
    let at = now()?;
    let batch: Vec<MrvSubmission> = groups
        .iter()
        .enumerate()
        .map(|(i, ((entity, unit, month), records))| {
            // A correction (a month already submitted) needs the reason; a first version may go without.
            let corrects = !log.state().monthly_versions(unit, *month).is_empty();
            MrvSubmission {
                command_id: format!("{base}-{}", i + 1),
                actor: write.actor.clone(),
                at,
                command: Command::SubmitMonthly {
                    entity: entity.clone(),
                    unit: unit.clone(),
                    month: *month,
                    records: records.clone(),
                    production: None,
                    evidence: evidence.clone(),
                    reason: if corrects || reason.is_some() { reason.clone() } else { None },
                },
            }
        })
        .collect();
    let keys: Vec<_> = groups.keys().collect();
    if dry_run {
        let mut scratch: MrvState = log.state().clone();
        let mut problems = Vec::new();
        for (i, item) in batch.iter().enumerate() {
            if let Err(r) = scratch.execute(&item.actor, at, &item.command) {
                problems.push(format!("{} {}: {}", keys[i].1, keys[i].2, r.message));
            }
        }
        if !problems.is_empty() {
            return Err(invalid(format!(
                "{}: {} submission(s) would be refused:\n  {}",
                file.display(),
                problems.len(),
                problems.join("\n  ")
            )));
        }
        if out.is_json() {
            out.print_json(json!({"status": "valid", "submissions": batch.len()}));
        } else {
            println!("{}: valid; {} submission(s) would be recorded (dry run, nothing written)", file.display(), batch.len());
        }
        return Ok(());
    }
    let receipts = log.submit_batch(&batch, &files).map_err(|(i, e)| {
        let mut err: CliError = e.into();
        if let Some(i) = i {
            err.message = format!("{}: {} {}: {}; nothing imported", file.display(), keys[i].1, keys[i].2, err.message);
        }
        err
    })?;
    let repeated = receipts.iter().all(|r| r.repeated);
    if out.is_json() {
        out.print_json(json!({
            "status": if repeated { "duplicate" } else { "accepted" },
            "submissions": receipts.len(),
            "first_mrv_seq": receipts.first().map(|r| r.seq),
            "last_mrv_seq": receipts.last().map(|r| r.seq),
            "evidence": evidence.iter().map(|e| json!({"name": e.name, "sha256": e.sha256})).collect::<Vec<_>>(),
        }));
    } else if repeated {
        println!("already imported under id '{base}': nothing changed");
    } else {
        let late = receipts
            .iter()
            .flat_map(|r| &r.events)
            .filter(|e| matches!(e, ets_mrv::state::Event::MonthlySubmitted { submission } if submission.late))
            .count();
        println!(
            "imported {}: {} submission(s) as MRV records {}..{} ({} late), {} evidence file(s)",
            file.display(),
            receipts.len(),
            receipts.first().map_or(0, |r| r.seq),
            receipts.last().map_or(0, |r| r.seq),
            late,
            files.len()
        );
    }
    Ok(())
}

fn calculate(location: &Location, out: &Output, entity: Option<&str>, year: Option<i32>, file: Option<&Path>) -> Result<(), CliError> {
    let f = factors()?;
    let mut results = Vec::new();
    if let Some(path) = file {
        let records = read_monthly(path)?;
        let mut by_unit: BTreeMap<(String, String, i32), Vec<MonthlyRecord>> = BTreeMap::new();
        for r in records {
            if year.is_none_or(|y| y == r.month().year()) {
                by_unit.entry((r.entity().to_string(), r.unit().to_string(), r.month().year())).or_default().push(r);
            }
        }
        for records in by_unit.values() {
            results.push(unit_year_emissions(records, &Default::default(), &f).map_err(|e| invalid(e.to_string()))?);
        }
    } else {
        let (entity, year) = (entity.expect("clap requires it"), year.expect("clap requires it"));
        let log = open(location, false)?;
        let annual = log.state().annual(entity, year)?;
        results.extend(annual.units.into_iter().map(|u| u.emissions));
    }
    let total: Decimal = results.iter().map(|r| r.annual_co2_t).sum();
    if out.is_json() {
        out.print_json(json!({
            "units": results.iter().map(|u| json!({
                "entity": u.entity, "unit": u.unit, "year": u.year, "annual_co2_t": u.annual_co2_t.to_string(),
                "monthly": u.monthly.iter().map(|m| json!({"month": m.month, "co2_t": m.co2_t.to_string(), "records": m.records, "default_records": m.default_records})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "total_co2_t": total.to_string(),
        }));
        return Ok(());
    }
    let mut rows = Vec::new();
    for u in &results {
        for m in &u.monthly {
            rows.push(vec![
                u.entity.clone(),
                u.unit.clone(),
                m.month.to_string(),
                m.records.to_string(),
                m.default_records.to_string(),
                m.co2_t.to_string(),
            ]);
        }
        rows.push(vec![
            u.entity.clone(),
            u.unit.clone(),
            format!("{} total", u.year),
            String::new(),
            String::new(),
            u.annual_co2_t.to_string(),
        ]);
    }
    print!("{}", table(&["entity", "unit", "month", "records", "default CC", "tCO2"], &rows));
    println!("total {total} tCO2 ({} unit-years; method {})", results.len(), ets_mrv::cn_power::METHOD_ID);
    Ok(())
}

fn check(location: &Location, out: &Output, year: Option<i32>, entity: Option<&str>, file: Option<&Path>) -> Result<(), CliError> {
    let anomalies: Vec<Anomaly> = if let Some(path) = file {
        let f = factors()?;
        let records = read_monthly(path)?;
        let mut by_unit: BTreeMap<(String, String, i32), Vec<MonthlyRecord>> = BTreeMap::new();
        for r in records {
            if year.is_none_or(|y| y == r.month().year()) {
                by_unit.entry((r.entity().to_string(), r.unit().to_string(), r.month().year())).or_default().push(r);
            }
        }
        let mut out = Vec::new();
        for ((entity, unit, y), records) in &by_unit {
            let params = QualityParams::defaults(&f, *y).map_err(|e| invalid(e.to_string()))?;
            for q in quality::run_checks(records, *y, &params).map_err(|e| invalid(e.to_string()))? {
                out.push(Anomaly {
                    entity: entity.clone(),
                    unit: unit.clone(),
                    check: q.check,
                    severity: q.severity,
                    month: Some(q.month),
                    source_stream: Some(q.source_stream),
                    value: q.value,
                    expected: q.expected,
                    reason: q.reason,
                });
            }
        }
        out.sort_by_key(|a| std::cmp::Reverse(a.severity));
        out
    } else {
        let year = year.expect("clap requires it");
        let log = open(location, false)?;
        match entity {
            Some(e) => log.state().entity_anomalies(e, year)?,
            None => log.state().anomalies(year)?,
        }
    };
    if out.is_json() {
        out.print_json(json!({"anomalies": anomalies, "count": anomalies.len()}));
        return Ok(());
    }
    if anomalies.is_empty() {
        println!("no anomalies");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = anomalies
        .iter()
        .enumerate()
        .map(|(i, a)| {
            vec![
                (i + 1).to_string(),
                a.severity.to_string(),
                a.check.to_string(),
                a.entity.clone(),
                a.unit.clone(),
                a.month.map(|m| m.to_string()).unwrap_or_else(|| "year".into()),
                a.value.clone(),
                a.expected.clone(),
                a.reason.clone(),
            ]
        })
        .collect();
    print!("{}", table(&["#", "severity", "check", "entity", "unit", "month", "value", "expected", "reason"], &rows));
    Ok(())
}

fn state_name(s: ReportState) -> &'static str {
    match s {
        ReportState::Submitted => "awaiting verifier",
        ReportState::Assigned => "in verification",
        ReportState::Opined => "awaiting authority",
        ReportState::Accepted => "accepted",
        ReportState::Returned => "returned",
    }
}

fn list_reports(state: &MrvState, year: Option<i32>, out: &Output) {
    let reports: Vec<_> = state.workflow().reports().filter(|r| year.is_none_or(|y| r.year == y)).collect();
    if out.is_json() {
        out.print_json(json!(reports
            .iter()
            .map(|r| json!({
                "report": r.id, "entity": r.entity, "year": r.year, "state": state_name(r.state), "version": r.current().version,
                "reported_t": r.current().reported_emissions_t.to_string(), "verifier": r.current().verifier,
                "verified_t": r.verified_emissions_t.map(|v| v.to_string()),
            }))
            .collect::<Vec<_>>()));
        return;
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.entity.clone(),
                r.year.to_string(),
                state_name(r.state).into(),
                r.current().version.to_string(),
                r.current().reported_emissions_t.to_string(),
                r.current().verifier.clone().unwrap_or_default(),
                r.verified_emissions_t.map(|v| v.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    print!("{}", table(&["report", "entity", "year", "state", "version", "reported tCO2", "verifier", "verified tCO2"], &rows));
}

fn list_entities(state: &MrvState, out: &Output) {
    let entities: Vec<&Entity> = state.entities().collect();
    if out.is_json() {
        out.print_json(json!(entities
            .iter()
            .map(|e| json!({"entity": e, "units": state.units_of(&e.id).collect::<Vec<_>>()}))
            .collect::<Vec<_>>()));
        return;
    }
    let rows: Vec<Vec<String>> = entities
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.name.clone(),
                e.sector.to_string(),
                e.province.clone(),
                e.markets.iter().cloned().collect::<Vec<_>>().join(","),
                state.units_of(&e.id).map(|u| u.id.clone()).collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    print!("{}", table(&["entity", "name", "sector", "province", "markets", "units"], &rows));
}

/// The export of a report: what an importer of verified data (compliance, CBAM, a researcher)
/// needs to rely on it, including the journal position that proves it.
fn report_value(log: &MrvLog, report: &verification::Report) -> Result<Value, CliError> {
    let state = log.state();
    let annual = state.annual(&report.entity, report.year)?;
    let units: Vec<Value> = annual
        .units
        .iter()
        .map(|u| {
            let subs = state.monthly_latest(&u.unit, report.year);
            json!({
                "unit": u.unit,
                "annual_co2_t": u.emissions.annual_co2_t.to_string(),
                "production": u.production.map(|p| p.to_string()),
                "heat_input_gj": u.heat_input_gj.to_string(),
                "months": u.emissions.monthly.iter().map(|m| {
                    let sub = subs.iter().find(|s| s.month == m.month);
                    json!({
                        "month": m.month, "co2_t": m.co2_t.to_string(), "records": m.records, "default_records": m.default_records,
                        "submission_version": sub.map(|s| s.version),
                        "evidence": sub.map(|s| s.evidence.iter().map(|e| json!({"name": e.name, "sha256": e.sha256})).collect::<Vec<_>>()),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let (seq, head) = log.head();
    Ok(json!({
        "report": report.id,
        "entity": report.entity,
        "year": report.year,
        "province": report.province,
        "state": state_name(report.state),
        "verified_emissions_t": report.verified_emissions_t.map(|v| v.to_string()),
        "method": ets_mrv::cn_power::METHOD_ID,
        "versions": report.versions.iter().map(|v| json!({
            "version": v.version, "reported_emissions_t": v.reported_emissions_t.to_string(), "submitted_by": v.submitted_by,
            "submitted_at": v.submitted_at.to_string(), "reason": v.reason, "verifier": v.verifier,
            "findings": v.findings, "opinion": v.opinion, "returned_reason": v.returned_reason,
        })).collect::<Vec<_>>(),
        "current_monthly_total_t": annual.total_t.to_string(),
        "units": units,
        "mrv_journal": {"records": seq, "head_hash": hex(&head)},
    }))
}

fn export(location: &Location, out: &Output, id: &str, format: &str, output: Option<&Path>) -> Result<(), CliError> {
    let log = open(location, false)?;
    let report = log.state().report(id).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("no report '{id}'")))?.clone();
    let text = match format {
        "json" => {
            let mut t = serde_json::to_string_pretty(&report_value(&log, &report)?).expect("json");
            t.push('\n');
            t
        }
        "csv" => {
            let annual = log.state().annual(&report.entity, report.year)?;
            let verified = report.verified_emissions_t.map(|v| v.to_string()).unwrap_or_default();
            let mut w = String::from("report,entity,year,state,verified_emissions_t,unit,month,records,default_records,co2_t\n");
            for u in &annual.units {
                for m in &u.emissions.monthly {
                    w.push_str(&format!(
                        "{},{},{},{},{verified},{},{},{},{},{}\n",
                        report.id,
                        report.entity,
                        report.year,
                        state_name(report.state),
                        u.unit,
                        m.month,
                        m.records,
                        m.default_records,
                        m.co2_t
                    ));
                }
                w.push_str(&format!(
                    "{},{},{},{},{verified},{},total,,,{}\n",
                    report.id,
                    report.entity,
                    report.year,
                    state_name(report.state),
                    u.unit,
                    u.emissions.annual_co2_t
                ));
            }
            w
        }
        "xlsx" => {
            let path = output.ok_or_else(|| invalid("--format xlsx writes a workbook: give --output FILE.xlsx"))?;
            let bytes = report_workbook(&report_value(&log, &report)?)
                .map_err(|e| CliError::new(ExitCode::Internal, format!("cannot build the workbook: {e}")))?;
            write_file(path, &bytes)?;
            if !out.is_json() {
                println!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
            return Ok(());
        }
        other => return Err(invalid(format!("format '{other}' must be json, csv or xlsx"))),
    };
    match output {
        Some(path) => {
            write_file(path, text.as_bytes())?;
            if !out.is_json() {
                println!("wrote {} ({} bytes)", path.display(), text.len());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// A decimal as an Excel number where one is exact (at most 15 significant digits, so the
/// shortest text of the double is the same decimal), as text otherwise.
fn write_decimal(ws: &mut rust_xlsxwriter::Worksheet, row: u32, col: u16, text: &str) -> Result<(), rust_xlsxwriter::XlsxError> {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    match text.parse::<f64>() {
        Ok(v) if digits <= 15 && v.to_string().parse::<Decimal>().ok() == text.parse::<Decimal>().ok() => {
            ws.write_number(row, col, v)?;
        }
        _ => {
            ws.write_string(row, col, text)?;
        }
    }
    Ok(())
}

/// The report as a workbook: `report` (summary), `monthly` (per unit and month, with the
/// submission version and evidence hashes) and `versions` (the report's versions and opinions).
fn report_workbook(v: &Value) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let bold = Format::new().set_bold();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("report")?;
    let rows = [
        ("report", text(&v["report"])),
        ("entity", text(&v["entity"])),
        ("year", text(&v["year"])),
        ("province", text(&v["province"])),
        ("state", text(&v["state"])),
        ("verified emissions (tCO2)", text(&v["verified_emissions_t"])),
        ("emissions from the current monthly data (tCO2)", text(&v["current_monthly_total_t"])),
        ("method", text(&v["method"])),
        ("MRV journal records", text(&v["mrv_journal"]["records"])),
        ("MRV journal head hash", text(&v["mrv_journal"]["head_hash"])),
    ];
    for (r, (k, val)) in rows.iter().enumerate() {
        ws.write_string_with_format(r as u32, 0, *k, &bold)?;
        if k.contains("tCO2") && !val.is_empty() {
            write_decimal(ws, r as u32, 1, val)?;
        } else {
            ws.write_string(r as u32, 1, val)?;
        }
    }
    ws.set_column_width(0, 48)?;
    ws.set_column_width(1, 68)?;
    let ws = wb.add_worksheet();
    ws.set_name("monthly")?;
    for (c, h) in
        ["unit", "month", "records", "default carbon records", "tCO2", "submission version", "evidence (name sha256)"].iter().enumerate()
    {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    let mut r = 1u32;
    for u in v["units"].as_array().into_iter().flatten() {
        for m in u["months"].as_array().into_iter().flatten() {
            ws.write_string(r, 0, text(&u["unit"]))?;
            ws.write_string(r, 1, text(&m["month"]))?;
            ws.write_number(r, 2, m["records"].as_f64().unwrap_or(0.0))?;
            ws.write_number(r, 3, m["default_records"].as_f64().unwrap_or(0.0))?;
            write_decimal(ws, r, 4, &text(&m["co2_t"]))?;
            ws.write_string(r, 5, text(&m["submission_version"]))?;
            let evidence: Vec<String> =
                m["evidence"].as_array().into_iter().flatten().map(|e| format!("{} {}", text(&e["name"]), text(&e["sha256"]))).collect();
            ws.write_string(r, 6, evidence.join("; "))?;
            r += 1;
        }
        ws.write_string_with_format(r, 0, text(&u["unit"]), &bold)?;
        ws.write_string_with_format(r, 1, "total", &bold)?;
        write_decimal(ws, r, 4, &text(&u["annual_co2_t"]))?;
        r += 1;
    }
    let ws = wb.add_worksheet();
    ws.set_name("versions")?;
    for (c, h) in
        ["version", "reported tCO2", "submitted by", "submitted at", "reason", "verifier", "opinion", "returned because"].iter().enumerate()
    {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, ver) in v["versions"].as_array().into_iter().flatten().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, text(&ver["version"]))?;
        write_decimal(ws, r, 1, &text(&ver["reported_emissions_t"]))?;
        ws.write_string(r, 2, text(&ver["submitted_by"]))?;
        ws.write_string(r, 3, text(&ver["submitted_at"]))?;
        ws.write_string(r, 4, text(&ver["reason"]))?;
        ws.write_string(r, 5, text(&ver["verifier"]))?;
        ws.write_string(r, 6, text(&ver["opinion"]["kind"]))?;
        ws.write_string(r, 7, text(&ver["returned_reason"]))?;
    }
    wb.save_to_buffer()
}
