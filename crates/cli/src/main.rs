//! `ets`: the command line of the ets registry. Thin glue: parse and validate arguments (no side
//! effects), open the ledger, submit one command, print the result.
//!
//! Process contract: data to stdout, errors to stderr, and an exit code per kind of failure
//! (see `ExitCode` below and README.md).

mod catalog;
mod cbam;
mod cycle;
mod demo;
mod demo_cycle;
mod demo_exchange;
mod demo_finance;
mod demo_mrv;
mod exchange;
mod finance;
mod inclusion;
mod mrv;
mod output;
mod serve;
mod sim;
mod stress;

use clap::{Args, Parser, Subcommand};
use ets_core::{Date, Timestamp, Tonnes};
use ets_registry::{
    AccountKind, AccountStatus, Command, Envelope, HolderType, MarketLevel, MarketSpec, PendingPurpose, RejectKind, Rejection, TxId,
    UnitRef,
};
use ets_store::{Ledger, LedgerOptions, Location, StoreError, SubmitError, Submitted};
use output::Output;
use std::process::ExitCode as ProcessExit;

#[derive(Parser)]
#[command(name = "ets", version, about = "ets: a multi-level emissions trading registry (national market and pilots)")]
struct Cli {
    /// SQLite file, or postgres://user@host/db
    #[arg(long, global = true, env = "ETS_DATABASE_URL", default_value = "ets.db")]
    database: String,
    /// PostgreSQL schema to keep this registry in (default: the connection's search_path)
    #[arg(long, global = true, env = "ETS_DATABASE_SCHEMA")]
    schema: Option<String>,
    /// Print JSON instead of tables
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the registry database and name its administrators
    Init {
        /// Registry administrator (repeatable)
        #[arg(long = "admin", default_value = "admin")]
        admins: Vec<String>,
    },
    /// Add, list and configure markets
    #[command(subcommand)]
    Market(MarketCmd),
    /// The trading venue: instruments, members, orders, block deals, auctions, market data
    #[command(subcommand)]
    Exchange(exchange::ExchangeCmd),
    /// Carbon finance: pledges, repos, forwards and futures on registry units
    Finance(finance::FinanceArgs),
    /// Carbon inclusion (碳普惠): small-scale methodologies, aggregated submissions, verification, pilot credits
    #[command(subcommand)]
    Inclusion(inclusion::InclusionCmd),
    /// Open, list and manage accounts
    #[command(subcommand)]
    Account(AccountCmd),
    /// Issue units into a market's issuance (or reserve) account (market authority only)
    Issue {
        /// Unit type: CODE:VINTAGE (CEA:2024) or STANDARD:PROJECT:VINTAGE (CCER:P001:2024)
        #[arg(long)]
        unit: String,
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        /// The market's issuance (default) or reserve account
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Allocate: a year under a rulebook from the verified MRV data (--rulebook, --year; --issue puts it
    /// into the registry), or units from the issuance or reserve account to one holder (--from, --to, --unit,
    /// --quantity; market authority only)
    Allocate {
        #[arg(long, required_unless_present = "rulebook", conflicts_with = "rulebook")]
        from: Option<String>,
        #[arg(long, required_unless_present = "rulebook")]
        to: Option<String>,
        #[arg(long, required_unless_present = "rulebook")]
        unit: Option<String>,
        #[arg(long, allow_hyphen_values = true, required_unless_present = "rulebook")]
        quantity: Option<String>,
        #[command(flatten)]
        engine: cycle::AllocateArgs,
        /// Idempotency id (one holder's allocation)
        #[arg(long)]
        id: Option<String>,
    },
    /// Transfer units between holder accounts
    Transfer {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        unit: String,
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Surrender units for a compliance year
    Surrender {
        #[arg(long)]
        account: String,
        #[arg(long)]
        unit: String,
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        /// The emission year the units are surrendered for
        #[arg(long, allow_hyphen_values = true)]
        year: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Cancel units voluntarily (they leave circulation for good)
    Cancel {
        #[arg(long)]
        account: String,
        #[arg(long)]
        unit: String,
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Withdraw free units from a holder's account into the market's cancellation account (market authority only)
    Withdraw {
        #[arg(long)]
        account: String,
        #[arg(long)]
        unit: String,
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Pending transfers: reserve units now, post or void later
    #[command(subcommand)]
    Pending(PendingCmd),
    /// Freeze units in an account under a judicial order (market authority only)
    Freeze {
        /// Freeze id, chosen by the caller
        freeze: String,
        #[arg(long)]
        account: String,
        #[arg(long)]
        unit: String,
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        /// Reference of the order
        #[arg(long)]
        order: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Lift a freeze
    Unfreeze {
        freeze: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Correct a transaction by a reversing record (market authority only)
    Reverse {
        /// Transaction number, e.g. T42 or 42
        tx: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Holdings of an account, free and encumbered
    Holdings {
        account: String,
        /// Also list the serial blocks held
        #[arg(long)]
        blocks: bool,
    },
    /// Transactions of an account, with running balances; --at gives balances at the end of a day
    History {
        account: String,
        /// YYYY-MM-DD: only what happened up to the end of this day (UTC)
        #[arg(long)]
        at: Option<String>,
    },
    /// Market rulebooks: list, check, show, diff
    #[command(subcommand)]
    Rulebook(cycle::RulebookCmd),
    /// Compliance of a market's covered entities for a year under its rulebook; --surrender ENTITY surrenders what counts
    Comply(cycle::ComplyArgs),
    /// Convert an account's unconverted old vintages into the new vintage under the rulebook's carry-over rule (market authority)
    CarryOver(cycle::CarryOverArgs),
    /// Regulatory experiments: rerun a year's allocation and compliance under changed rules, side by side, writing nothing
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// Monitoring, reporting and verification: entities, plans, monthly data, checks, reports, verification
    #[command(subcommand)]
    Mrv(mrv::MrvCmd),
    /// EU CBAM: goods, embedded emissions, communication to importers, liability, scenarios, QReport
    #[command(subcommand)]
    Cbam(cbam::CbamCmd),
    /// Integrity checks
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Policy simulation: scenario files with equilibrium, linking, banking, agents, Monte Carlo, CBAM
    #[command(subcommand)]
    Sim(sim::SimCmd),
    /// Build a demo registry: the national market, eight pilots, thousands of accounts, a compliance year
    Demo(demo::DemoArgs),
    /// Run the HTTP API (with its OpenAPI document) and the web dashboard; --demo for a living demo market
    Serve(serve::ServeArgs),
    /// Crash-test feeder: submits a deterministic stream of transfers, printing each acknowledgement
    #[command(hide = true)]
    Stress(stress::StressArgs),
}

#[derive(Subcommand)]
enum MarketCmd {
    /// Add a market; CN, BJ, TJ, SH, CQ, HB, GD, SZ and FJ come with their details from data/markets-china.json
    Add {
        code: String,
        #[arg(long)]
        name: Option<String>,
        /// national or pilot
        #[arg(long)]
        level: Option<String>,
        #[arg(long)]
        allowance_code: Option<String>,
        /// Offset standard the market issues (repeatable)
        #[arg(long = "offset-standard")]
        offset_standards: Vec<String>,
        /// Admit individuals to trading accounts
        #[arg(long)]
        individuals: bool,
        /// Market authority person (repeatable)
        #[arg(long = "authority")]
        authorities: Vec<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// List markets with their issued totals
    List,
    /// Set the cap on allowances of one vintage
    Cap {
        market: String,
        #[arg(long, allow_hyphen_values = true)]
        vintage: String,
        #[arg(long, allow_hyphen_values = true)]
        tonnes: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Move an entity from a pilot to another market (the national one): coverage, and the pilot allowances as its rulebook says
    Migrate(cycle::MigrateArgs),
    /// Link two markets (a registry administrator): each accepts the other's units; --quota caps transfers across the link
    Link {
        a: String,
        b: String,
        /// Most tonnes transferred between the two markets' holders, both ways together
        #[arg(long)]
        quota: Option<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Let MARKET accept units issued by another market
    Recognise {
        market: String,
        #[arg(long)]
        issuer: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Open an operator holding account or a trading account
    Open {
        #[arg(long)]
        market: String,
        /// operator or trading
        #[arg(long)]
        kind: String,
        #[arg(long)]
        holder: String,
        /// entity, institution or individual (default: entity)
        #[arg(long, default_value = "entity")]
        holder_type: String,
        /// Representative (repeatable)
        #[arg(long = "rep", required = true)]
        representatives: Vec<String>,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// List accounts
    List {
        #[arg(long)]
        market: Option<String>,
    },
    /// Set an account's status: open, blocked or closed
    Status {
        account: String,
        status: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Add a representative to an account
    AddRep {
        account: String,
        person: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Remove a representative from an account
    RemoveRep {
        account: String,
        person: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

#[derive(Subcommand)]
enum PendingCmd {
    /// Reserve units for a later transfer
    Create {
        pending: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        unit: String,
        #[arg(long, allow_hyphen_values = true)]
        quantity: String,
        /// settlement, pledge, approval or escrow
        #[arg(long, default_value = "escrow")]
        purpose: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Complete a pending transfer
    Post {
        pending: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Release a pending transfer's units back to the sender
    Void {
        pending: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

#[derive(Subcommand)]
enum SandboxCmd {
    /// Rerun allocation and compliance under a changed copy of a rulebook
    Run(cycle::SandboxArgs),
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the journal's hash chain, replay it, and compare state, snapshots and query tables
    Verify,
}

#[derive(Args)]
struct WriteArgs {
    /// The person acting (a market authority, administrator or account representative)
    #[arg(long = "as", env = "ETS_ACTOR")]
    actor: String,
    /// Idempotency id: repeating a command with the same id changes nothing (default: a new random id)
    #[arg(long)]
    id: Option<String>,
}

/// Exit codes, one per kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    Internal = 1,
    // 2 is clap's usage error.
    Invalid = 3,
    NotFound = 4,
    Refused = 5,
    Forbidden = 6,
    Conflict = 7,
    AuditFailed = 8,
}

#[derive(Debug)]
pub struct CliError {
    pub code: ExitCode,
    pub message: String,
}

impl CliError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> CliError {
        CliError { code, message: message.into() }
    }

    fn invalid(message: impl Into<String>) -> CliError {
        CliError::new(ExitCode::Invalid, message)
    }
}

impl From<Rejection> for CliError {
    fn from(r: Rejection) -> CliError {
        let code = match r.kind {
            RejectKind::Invalid => ExitCode::Invalid,
            RejectKind::NotFound => ExitCode::NotFound,
            RejectKind::Forbidden => ExitCode::Forbidden,
            RejectKind::Refused => ExitCode::Refused,
            RejectKind::Conflict => ExitCode::Conflict,
        };
        CliError::new(code, r.message)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        match e {
            StoreError::Corrupt(m) => {
                CliError::new(ExitCode::AuditFailed, format!("integrity failure: {m}; run `ets audit verify` for a full report"))
            }
            other => CliError::new(ExitCode::Internal, other.to_string()),
        }
    }
}

impl From<SubmitError> for CliError {
    fn from(e: SubmitError) -> CliError {
        match e {
            SubmitError::Rejected(r) => r.into(),
            SubmitError::Store(s) => s.into(),
        }
    }
}

fn main() -> ProcessExit {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    match run(&cli, &out) {
        Ok(()) => ProcessExit::SUCCESS,
        Err(e) => {
            out.error(&e);
            ProcessExit::from(e.code as u8)
        }
    }
}

/// The clock of the shell. ETS_CLOCK=YYYY-MM-DD (or milliseconds) pins it, for back-dated
/// entry of records and for tests.
pub fn now() -> Result<Timestamp, CliError> {
    match std::env::var("ETS_CLOCK") {
        Ok(text) => match Date::parse(&text) {
            Ok(d) => Ok(Timestamp(d.start().0 + 12 * 3_600_000)),
            Err(_) => text
                .parse::<i64>()
                .map(Timestamp)
                .map_err(|_| CliError::invalid(format!("ETS_CLOCK '{text}' must be YYYY-MM-DD or milliseconds"))),
        },
        Err(_) => {
            let elapsed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
            Ok(Timestamp(elapsed.as_millis() as i64))
        }
    }
}

fn location(cli: &Cli) -> Location {
    Location::parse(&cli.database, cli.schema.clone())
}

/// Opens an existing registry. A missing SQLite file is an error, not a new empty registry.
fn open_existing(cli: &Cli) -> Result<Ledger, CliError> {
    let location = location(cli);
    if let Location::Sqlite(path) = &location {
        if !path.exists() {
            return Err(CliError::new(
                ExitCode::NotFound,
                format!("no registry at {}; create one with `ets init` or `ets demo`, or name it with --database", path.display()),
            ));
        }
    }
    Ok(Ledger::open(&location, LedgerOptions::default())?)
}

fn parse_quantity(text: &str) -> Result<Tonnes, CliError> {
    Tonnes::parse_positive(text).map_err(|e| CliError::invalid(e.0))
}

fn parse_year(what: &str, text: &str) -> Result<u16, CliError> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|y| (ets_registry::VINTAGE_FIRST..=ets_registry::VINTAGE_LAST).contains(y))
        .ok_or_else(|| CliError::invalid(format!("{what} '{text}' must be a year such as 2024")))
}

fn parse_unit(text: &str) -> Result<UnitRef, CliError> {
    UnitRef::parse(text).map_err(CliError::invalid)
}

fn new_command_id() -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::thread_rng().gen();
    format!("cli-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Submits one command, retrying if another writer appended in between.
fn submit(cli: &Cli, out: &Output, write: &WriteArgs, command: Command) -> Result<(), CliError> {
    let envelope = Envelope { id: write.id.clone().unwrap_or_else(new_command_id), actor: write.actor.clone(), command };
    let at = now()?;
    let mut attempts = 0;
    loop {
        let mut ledger = open_existing(cli)?;
        match ledger.submit(at, &envelope) {
            Ok(submitted) => {
                // A snapshot keeps the next start fast; failing to write one loses nothing.
                let _ = ledger.snapshot_if_behind(10_000);
                out.submitted(ledger.registry(), &envelope, &submitted);
                return Ok(());
            }
            Err(SubmitError::Store(StoreError::Conflict(_))) if attempts < 5 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

fn run(cli: &Cli, out: &Output) -> Result<(), CliError> {
    match &cli.command {
        Cmd::Init { admins } => {
            let location = location(cli);
            let mut ledger = Ledger::open(&location, LedgerOptions::default())?;
            if ledger.registry().seq() > 0 {
                return Err(CliError::new(
                    ExitCode::Refused,
                    format!("{location} already holds a registry ({} journal records)", ledger.registry().seq()),
                ));
            }
            let envelope =
                Envelope { id: "init".into(), actor: admins[0].clone(), command: Command::InitRegistry { admins: admins.clone() } };
            let submitted = ledger.submit(now()?, &envelope)?;
            out.submitted(ledger.registry(), &envelope, &submitted);
            Ok(())
        }
        Cmd::Market(m) => run_market(cli, out, m),
        Cmd::Account(a) => run_account(cli, out, a),
        Cmd::Issue { unit, quantity, to, write } => {
            let command = Command::Issue { unit: parse_unit(unit)?, quantity: parse_quantity(quantity)?, to: to.clone() };
            submit(cli, out, write, command)
        }
        Cmd::Allocate { from, to, unit, quantity, engine, id } => {
            if engine.rulebook.is_some() {
                return cycle::run_allocate(&location(cli), out, engine);
            }
            let (Some(from), Some(to), Some(unit), Some(quantity)) = (from, to, unit, quantity) else {
                return Err(CliError::invalid("give --from, --to, --unit and --quantity, or --rulebook and --year"));
            };
            let actor = engine.actor.clone().ok_or_else(|| CliError::invalid("give --as: the market authority allocating"))?;
            let write = WriteArgs { actor, id: id.clone() };
            let command =
                Command::Allocate { from: from.clone(), to: to.clone(), unit: parse_unit(unit)?, quantity: parse_quantity(quantity)? };
            submit(cli, out, &write, command)
        }
        Cmd::Transfer { from, to, unit, quantity, write } => {
            let command =
                Command::Transfer { from: from.clone(), to: to.clone(), unit: parse_unit(unit)?, quantity: parse_quantity(quantity)? };
            submit(cli, out, write, command)
        }
        Cmd::Surrender { account, unit, quantity, year, write } => {
            let command = Command::Surrender {
                account: account.clone(),
                unit: parse_unit(unit)?,
                quantity: parse_quantity(quantity)?,
                compliance_year: parse_year("year", year)?,
            };
            submit(cli, out, write, command)
        }
        Cmd::Cancel { account, unit, quantity, write } => {
            let command = Command::Cancel { account: account.clone(), unit: parse_unit(unit)?, quantity: parse_quantity(quantity)? };
            submit(cli, out, write, command)
        }
        Cmd::Withdraw { account, unit, quantity, write } => {
            let command = Command::Withdraw { account: account.clone(), unit: parse_unit(unit)?, quantity: parse_quantity(quantity)? };
            submit(cli, out, write, command)
        }
        Cmd::Pending(p) => match p {
            PendingCmd::Create { pending, from, to, unit, quantity, purpose, write } => {
                let purpose = PendingPurpose::parse(purpose)
                    .ok_or_else(|| CliError::invalid(format!("purpose '{purpose}' must be settlement, pledge, approval or escrow")))?;
                let command = Command::CreatePending {
                    pending: pending.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    unit: parse_unit(unit)?,
                    quantity: parse_quantity(quantity)?,
                    purpose,
                };
                submit(cli, out, write, command)
            }
            PendingCmd::Post { pending, write } => submit(cli, out, write, Command::PostPending { pending: pending.clone() }),
            PendingCmd::Void { pending, write } => submit(cli, out, write, Command::VoidPending { pending: pending.clone() }),
        },
        Cmd::Freeze { freeze, account, unit, quantity, order, write } => {
            let command = Command::Freeze {
                freeze: freeze.clone(),
                account: account.clone(),
                unit: parse_unit(unit)?,
                quantity: parse_quantity(quantity)?,
                order: order.clone(),
            };
            submit(cli, out, write, command)
        }
        Cmd::Unfreeze { freeze, write } => submit(cli, out, write, Command::Unfreeze { freeze: freeze.clone() }),
        Cmd::Reverse { tx, reason, write } => {
            let number = tx.trim_start_matches(['T', 't']);
            let tx = number.parse::<u64>().map_err(|_| CliError::invalid(format!("transaction '{tx}' must look like T42 or 42")))?;
            submit(cli, out, write, Command::Reverse { tx: TxId(tx), reason: reason.clone() })
        }
        Cmd::Holdings { account, blocks } => {
            let ledger = open_existing(cli)?;
            let registry = ledger.registry();
            let idx =
                registry.find_account(account).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown account '{account}'")))?;
            out.holdings(registry, idx, *blocks);
            Ok(())
        }
        Cmd::History { account, at } => {
            let before = match at {
                Some(text) => Some(Date::parse(text).map_err(|e| CliError::invalid(e.0))?),
                None => None,
            };
            let mut ledger = open_existing(cli)?;
            if ledger.registry().find_account(account).is_none() {
                return Err(CliError::new(ExitCode::NotFound, format!("unknown account '{account}'")));
            }
            let rows = ledger.transactions(account, before.map(Date::end_exclusive))?;
            out.history(account, before, &rows);
            Ok(())
        }
        Cmd::Audit(AuditCmd::Verify) => {
            let location = location(cli);
            if let Location::Sqlite(path) = &location {
                if !path.exists() {
                    return Err(CliError::new(ExitCode::NotFound, format!("no registry at {}", path.display())));
                }
            }
            let mut backend = location.open()?;
            match ets_store::audit(backend.as_mut()) {
                Ok(report) => {
                    // The running state (snapshot + journal tail) must equal the full replay.
                    let ledger = Ledger::with_backend(backend, LedgerOptions { snapshot_every: 0 })?;
                    if ledger.registry().state_hash() != report.state_hash {
                        return Err(CliError::new(
                            ExitCode::AuditFailed,
                            "audit failed: the state loaded from the latest snapshot differs from a full replay",
                        ));
                    }
                    let mrv = mrv::audit(&location)?;
                    out.audit(&report, &mrv);
                    exchange::audit(&location, ledger.registry(), out)?;
                    finance::audit(&location, ledger.registry(), out)?;
                    Ok(())
                }
                Err(StoreError::Corrupt(m)) => Err(CliError::new(ExitCode::AuditFailed, format!("audit failed: {m}"))),
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Mrv(m) => mrv::run(&location(cli), out, m),
        Cmd::Exchange(x) => exchange::run(&location(cli), out, x),
        Cmd::Finance(f) => finance::run(&location(cli), out, f),
        Cmd::Inclusion(i) => inclusion::run(&location(cli), out, i),
        Cmd::Cbam(c) => cbam::run(&location(cli), out, c),
        Cmd::Rulebook(r) => cycle::run_rulebook(out, r),
        Cmd::Comply(a) => cycle::run_comply(&location(cli), out, a),
        Cmd::CarryOver(a) => cycle::run_carry_over(&location(cli), out, a),
        Cmd::Sandbox(SandboxCmd::Run(a)) => cycle::run_sandbox(&location(cli), out, a),
        Cmd::Sim(c) => sim::run(out, c),
        Cmd::Demo(args) => demo::run(cli_location(cli), args, out),
        Cmd::Serve(args) => serve::run(cli_location(cli), location(cli), args, out),
        Cmd::Stress(args) => stress::run(location(cli), args),
    }
}

fn cli_location(cli: &Cli) -> Option<Location> {
    // The demo writes to its own file unless --database was given explicitly.
    let explicit = std::env::args().any(|a| a == "--database" || a.starts_with("--database=")) || std::env::var("ETS_DATABASE_URL").is_ok();
    explicit.then(|| location(cli))
}

fn run_market(cli: &Cli, out: &Output, command: &MarketCmd) -> Result<(), CliError> {
    match command {
        MarketCmd::Add { code, name, level, allowance_code, offset_standards, individuals, authorities, write } => {
            let preset = catalog::market(code);
            let level = match level.as_deref() {
                Some("national") => MarketLevel::National,
                Some("pilot") => MarketLevel::Pilot,
                Some(other) => return Err(CliError::invalid(format!("level '{other}' must be national or pilot"))),
                None => preset.as_ref().map_or(MarketLevel::Pilot, |p| p.level),
            };
            let missing =
                |what: &str| CliError::invalid(format!("market {code} is not in the catalog (CN and the eight pilots): give --{what}"));
            let spec = MarketSpec {
                code: code.clone(),
                name: name.clone().or_else(|| preset.as_ref().map(|p| p.name.clone())).ok_or_else(|| missing("name"))?,
                level,
                allowance_code: allowance_code
                    .clone()
                    .or_else(|| preset.as_ref().map(|p| p.allowance_code.clone()))
                    .ok_or_else(|| missing("allowance-code"))?,
                offset_standards: if offset_standards.is_empty() {
                    preset.as_ref().map(|p| p.offset_standards.clone()).unwrap_or_default()
                } else {
                    offset_standards.clone()
                },
                individuals_may_trade: *individuals || preset.as_ref().is_some_and(|p| p.individuals_may_trade),
                authorities: if authorities.is_empty() {
                    preset.as_ref().map(|p| p.authorities.clone()).ok_or_else(|| missing("authority"))?
                } else {
                    authorities.clone()
                },
            };
            submit(cli, out, write, Command::AddMarket(spec))
        }
        MarketCmd::List => {
            let ledger = open_existing(cli)?;
            out.markets(ledger.registry());
            Ok(())
        }
        MarketCmd::Cap { market, vintage, tonnes, write } => {
            let cap = parse_quantity(tonnes)?;
            submit(cli, out, write, Command::SetCap { market: market.clone(), vintage: parse_year("vintage", vintage)?, cap })
        }
        MarketCmd::Migrate(a) => cycle::run_migrate(&location(cli), out, a),
        MarketCmd::Link { a, b, quota, write } => {
            let quota = quota.as_deref().map(parse_quantity).transpose()?;
            submit(cli, out, write, Command::LinkMarkets { a: a.clone(), b: b.clone(), quota })
        }
        MarketCmd::Recognise { market, issuer, write } => {
            submit(cli, out, write, Command::RecogniseUnits { market: market.clone(), issuer: issuer.clone() })
        }
    }
}

fn run_account(cli: &Cli, out: &Output, command: &AccountCmd) -> Result<(), CliError> {
    match command {
        AccountCmd::Open { market, kind, holder, holder_type, representatives, write } => {
            let kind =
                AccountKind::parse(kind).ok_or_else(|| CliError::invalid(format!("account kind '{kind}' must be operator or trading")))?;
            let holder_type = HolderType::parse(holder_type)
                .ok_or_else(|| CliError::invalid(format!("holder type '{holder_type}' must be entity, institution or individual")))?;
            let command = Command::OpenAccount {
                market: market.clone(),
                kind,
                holder: holder.clone(),
                holder_type,
                representatives: representatives.clone(),
            };
            submit(cli, out, write, command)
        }
        AccountCmd::List { market } => {
            let mut ledger = open_existing(cli)?;
            if let Some(m) = market {
                if ledger.registry().find_market(m).is_none() {
                    return Err(CliError::new(ExitCode::NotFound, format!("unknown market '{m}'")));
                }
            }
            let rows = ledger.backend().accounts(market.as_deref())?;
            out.accounts(&rows);
            Ok(())
        }
        AccountCmd::Status { account, status, write } => {
            let status = AccountStatus::parse(status)
                .ok_or_else(|| CliError::invalid(format!("status '{status}' must be open, blocked or closed")))?;
            submit(cli, out, write, Command::SetAccountStatus { account: account.clone(), status })
        }
        AccountCmd::AddRep { account, person, write } => {
            submit(cli, out, write, Command::AddRepresentative { account: account.clone(), person: person.clone() })
        }
        AccountCmd::RemoveRep { account, person, write } => {
            submit(cli, out, write, Command::RemoveRepresentative { account: account.clone(), person: person.clone() })
        }
    }
}

/// Result printing for commands submitted by the demo and the CLI alike.
pub fn describe(registry: &ets_registry::Registry, submitted: &Submitted) -> String {
    let r = submitted.receipt;
    let mut parts = vec![format!("journal record {}", r.seq)];
    if let Some(tx) = r.tx {
        parts.push(format!("transaction {tx}"));
    }
    if let Some(a) = r.account {
        if r.market.is_none() {
            parts.push(format!("account {}", registry.account(a).number));
        }
    }
    if let Some(m) = r.market {
        parts.push(format!("market {}", registry.market(m).spec.code));
    }
    parts.join(", ")
}
