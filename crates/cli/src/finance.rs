//! `ets finance ...`: the carbon-finance desk (pledges, repos, futures) over the registry.
//! Every command opens the finance journal and the registry ledger, carries out any registry
//! instruction an interruption left undone, then decides, journals and carries out one desk
//! command (write-ahead, then outbox: `ets_store::FinanceLog`). Arguments are parsed and checked
//! before anything is opened.

use crate::output::{table, Output};
use crate::{now, CliError, ExitCode};
use clap::{Args, Subcommand};
use ets_core::{Date, Fen, Tonnes};
use ets_finance::desk::{
    Command, ContractSpec, ContractStatus, EnforceReason, Envelope, Event, PledgeStatus, RejectKind, RepoStatus, Settlement,
};
use ets_finance::{Side, Tif};
use ets_registry::UnitRef;
use ets_store::{FinanceLog, FinanceReceipt, Ledger, LedgerOptions, Location};
use serde_json::json;

#[derive(Subcommand)]
pub enum FinanceCmd {
    /// Set up the desk: its operator, and the registrar (the market authority) under which
    /// pledges are released and enforced in the registry
    Init {
        #[arg(long, default_value = "desk")]
        operator: String,
        #[arg(long)]
        registrar: String,
    },
    /// Admit a party with its registry account (the party's name is the account's representative)
    Party {
        party: String,
        #[arg(long)]
        account: String,
    },
    /// Record cash received for a party (yuan)
    Deposit { party: String, amount: String },
    /// Pay cash out to a party (yuan)
    Withdraw { party: String, amount: String },
    /// Register a pledge: the borrower's units locked in the registry (a pledge pending transfer
    /// to the lender) against a loan paid from the lender's cash
    Pledge(PledgeArgs),
    /// The day's closing price of a unit (yuan): values every pledge of it; margin calls
    Mark {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        close: String,
    },
    /// Pledge more units (another pending transfer)
    TopUp {
        pledge: String,
        #[arg(long)]
        quantity: String,
        #[arg(long = "as")]
        actor: Option<String>,
    },
    /// Repay part or all of a pledge's loan (yuan); full repayment releases the units
    Repay {
        pledge: String,
        #[arg(long)]
        amount: String,
        #[arg(long = "as")]
        actor: Option<String>,
    },
    /// A repurchase agreement: units sold now for --start, bought back for --repurchase on --on
    Repo(RepoArgs),
    /// List a forward or futures contract
    Contract(ContractArgs),
    /// A limit order on a contract's order book
    Order(OrderArgs),
    /// Cancel a working order
    Cancel {
        order: u64,
        #[arg(long = "as")]
        actor: String,
    },
    /// A bilateral (reported) trade of contracts
    Trade {
        #[arg(long)]
        contract: String,
        #[arg(long)]
        buyer: String,
        #[arg(long)]
        seller: String,
        #[arg(long)]
        contracts: u64,
        #[arg(long)]
        price: String,
    },
    /// The day's settlement price of a contract (yuan): variation margin on every position
    Settle {
        contract: String,
        #[arg(long)]
        price: String,
    },
    /// End of the business day: margin-call deadlines and maturities of pledges (enforcement),
    /// second legs of repos, futures expiry (delivery or cash settlement)
    EndOfDay,
    /// Cash and margin per party, collateral and encumbrance per account, pledges, repos,
    /// open interest and settlement prices
    Report,
}

#[derive(Args)]
pub struct PledgeArgs {
    pledge: String,
    #[arg(long)]
    lender: String,
    #[arg(long)]
    borrower: String,
    #[arg(long)]
    unit: String,
    #[arg(long)]
    quantity: String,
    /// Loan in yuan
    #[arg(long)]
    loan: String,
    /// Valuation haircut, basis points
    #[arg(long, default_value_t = 3_000)]
    haircut_bp: u32,
    /// Haircut value must stay at least this share of the loan, basis points
    #[arg(long, default_value_t = 12_000)]
    maintenance_bp: u32,
    /// Days after a margin call to top up or repay
    #[arg(long, default_value_t = 3)]
    topup_days: u16,
    /// YYYY-MM-DD
    #[arg(long)]
    maturity: String,
}

#[derive(Args)]
pub struct RepoArgs {
    repo: String,
    #[arg(long)]
    seller: String,
    #[arg(long)]
    buyer: String,
    #[arg(long)]
    unit: String,
    #[arg(long)]
    quantity: String,
    /// First-leg price of the whole quantity, yuan
    #[arg(long)]
    start: String,
    /// Second-leg price, yuan
    #[arg(long)]
    repurchase: String,
    /// Repurchase date, YYYY-MM-DD
    #[arg(long = "on")]
    on: String,
    /// What the side failing the second leg pays, basis points of the repurchase price
    #[arg(long, default_value_t = 500)]
    penalty_bp: u32,
}

#[derive(Args)]
pub struct ContractArgs {
    code: String,
    #[arg(long)]
    unit: String,
    /// Tonnes per contract
    #[arg(long, default_value_t = 1_000)]
    size: u64,
    /// Last trading day, YYYY-MM-DD
    #[arg(long)]
    expiry: String,
    /// physical or cash
    #[arg(long, default_value = "physical")]
    settlement: String,
    /// Initial margin per contract, yuan
    #[arg(long)]
    initial_margin: String,
    #[arg(long, default_value_t = 1_000)]
    position_limit: u64,
    /// Settlement price before the first daily settlement, yuan per tonne
    #[arg(long)]
    reference: String,
    /// Physical delivery failure penalty, basis points of the delivery value
    #[arg(long, default_value_t = 1_000)]
    delivery_penalty_bp: u32,
}

#[derive(Args)]
pub struct OrderArgs {
    #[arg(long = "as")]
    party: String,
    #[arg(long)]
    contract: String,
    #[arg(long)]
    side: String,
    /// Yuan per tonne
    #[arg(long)]
    price: String,
    #[arg(long)]
    contracts: u64,
    #[arg(long, default_value = "gtc")]
    tif: String,
    /// Client order id (default: derived from the journal position)
    #[arg(long)]
    order: Option<u64>,
}

/// Options every `ets finance` command takes.
#[derive(Args)]
pub struct FinanceArgs {
    /// Business date, YYYY-MM-DD (default: today, or ETS_CLOCK's day)
    #[arg(long, global = true)]
    pub date: Option<String>,
    /// Command id: a retry with the same id and command is answered as done, not done twice
    /// (default: derived from the journal's position)
    #[arg(long, global = true)]
    pub id: Option<String>,
    #[command(subcommand)]
    pub command: FinanceCmd,
}

fn invalid(m: impl Into<String>) -> CliError {
    CliError::new(ExitCode::Invalid, m)
}

pub fn tonnes(text: &str) -> Result<u64, CliError> {
    Tonnes::parse_positive(text).map(|t| t.0).map_err(|e| invalid(e.to_string()))
}

pub fn yuan_fen(what: &str, text: &str) -> Result<i64, CliError> {
    let f = Fen::parse_yuan(text).map_err(|e| invalid(format!("{what}: {e}")))?;
    if f.0 <= 0 {
        return Err(invalid(format!("{what} '{text}' must be positive")));
    }
    Ok(f.0)
}

pub fn date(what: &str, text: &str) -> Result<Date, CliError> {
    Date::parse(text).map_err(|e| invalid(format!("{what}: {e}")))
}

fn unit(text: &str) -> Result<UnitRef, CliError> {
    UnitRef::parse(text).map_err(invalid)
}

fn yuan(fen: i64) -> String {
    Fen(fen).to_string()
}

/// The ledger and the finance journal, with undone instructions carried out.
pub struct Session {
    pub log: FinanceLog,
    pub ledger: Ledger,
}

pub fn open(location: &Location) -> Result<Session, CliError> {
    if let Location::Sqlite(path) = location {
        if !path.exists() {
            return Err(CliError::new(
                ExitCode::NotFound,
                format!("no registry at {}; create one with `ets init` or `ets demo`, or name it with --database", path.display()),
            ));
        }
    }
    let mut ledger = Ledger::open(location, LedgerOptions::default())?;
    let mut log = FinanceLog::open(location.open()?)?;
    let redone = log.reconcile(&mut ledger, now()?)?;
    if redone > 0 {
        eprintln!("finance: {redone} registry instruction(s) left undone by an interruption were carried out");
    }
    Ok(Session { log, ledger })
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

/// Decides, journals and carries out one desk command; prints what it did.
pub fn submit(s: &mut Session, out: &Output, envelope: Envelope) -> Result<Vec<Event>, CliError> {
    match s.log.submit_desk(&envelope, &mut s.ledger, now()?)? {
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
        let line = match e {
            Event::PartyAdded { party } => format!("party {party} admitted"),
            Event::Cash { party, delta_fen, balance_fen } => format!(
                "{party}: cash {}¥{}, balance ¥{}",
                if *delta_fen < 0 { "-" } else { "+" },
                yuan(delta_fen.abs()),
                yuan(*balance_fen)
            ),
            Event::PledgeRegistered { pledge, quantity, loan_fen } => {
                format!("pledge {pledge}: {} t locked against a loan of ¥{}", Tonnes(*quantity), yuan(*loan_fen))
            }
            Event::PledgeToppedUp { pledge, quantity, total } => {
                format!("pledge {pledge}: {} t more pledged, {} t in all", Tonnes(*quantity), Tonnes(*total))
            }
            Event::Valued { pledge, value_fen, required_fen } => {
                format!("pledge {pledge}: collateral worth ¥{} after haircut, ¥{} required", yuan(*value_fen), yuan(*required_fen))
            }
            Event::MarginCall { pledge, deadline } => format!("pledge {pledge}: MARGIN CALL, top up or repay by {deadline}"),
            Event::CallCleared { pledge } => format!("pledge {pledge}: margin call cleared"),
            Event::Repaid { pledge, amount_fen, outstanding_fen } => {
                format!("pledge {pledge}: ¥{} repaid, ¥{} outstanding", yuan(*amount_fen), yuan(*outstanding_fen))
            }
            Event::PledgeReleased { pledge, quantity } => format!("pledge {pledge}: repaid, {} t released", Tonnes(*quantity)),
            Event::PledgeEnforced { pledge, quantity, lender, reason } => format!(
                "pledge {pledge}: ENFORCED ({}), {} t to {lender}",
                match reason {
                    EnforceReason::MarginCallUnmet => "margin call unmet",
                    EnforceReason::UnpaidAtMaturity => "unpaid at maturity",
                },
                Tonnes(*quantity)
            ),
            Event::RepoOpened { repo } => format!("repo {repo}: first leg settled"),
            Event::RepoSettled { repo } => format!("repo {repo}: second leg settled"),
            Event::RepoFailed { repo, defaulters, penalty_fen } => {
                format!("repo {repo}: second leg FAILED by {}, penalty ¥{}", defaulters.join(", "), yuan(*penalty_fen))
            }
            Event::ContractListed { contract } => format!("contract {contract} listed"),
            Event::Traded { contract, buyer, seller, contracts, price_fen } => {
                format!("{contract}: {contracts} contract(s) at ¥{}, {buyer} buys from {seller}", yuan(*price_fen))
            }
            Event::OrderAccepted { order } => format!("order {order} accepted"),
            Event::OrderRested { order, contracts } => format!("order {order} rests with {contracts} contract(s)"),
            Event::OrderDone { order, cancelled } if *cancelled > 0 => format!("order {order}: {cancelled} contract(s) cancelled"),
            Event::OrderDone { .. } => String::new(),
            Event::VariationMargin { contract, party, fen } => {
                format!("{contract}: variation margin {party} {}¥{}", if *fen < 0 { "-" } else { "+" }, yuan(fen.abs()))
            }
            Event::MarginShortfall { party, balance_fen, required_fen } => {
                format!("{party}: MARGIN SHORTFALL, balance ¥{} below the ¥{} margin held", yuan(*balance_fen), yuan(*required_fen))
            }
            Event::SettlementPrice { contract, price_fen, open_interest } => {
                format!("{contract}: settlement price ¥{}, open interest {open_interest}", yuan(*price_fen))
            }
            Event::Delivered { contract, short, long, tonnes, cash_fen } => {
                format!("{contract}: {short} delivered {} t to {long} against ¥{}", Tonnes(*tonnes), yuan(*cash_fen))
            }
            Event::DeliveryFailed { contract, short, long, tonnes, defaulters, penalty_fen } => format!(
                "{contract}: delivery of {} t from {short} to {long} FAILED by {}, penalty ¥{}",
                Tonnes(*tonnes),
                defaulters.join(", "),
                yuan(*penalty_fen)
            ),
            Event::ContractExpired { contract, settlement, price_fen } => {
                format!("{contract}: expired ({settlement:?}) at ¥{}", yuan(*price_fen))
            }
        };
        if !line.is_empty() {
            println!("{line}");
        }
    }
}

fn tif(text: &str) -> Result<Tif, CliError> {
    match text {
        "gtc" => Ok(Tif::Gtc),
        "ioc" => Ok(Tif::Ioc),
        "fok" => Ok(Tif::Fok),
        t => Err(invalid(format!("tif '{t}' must be gtc, ioc or fok"))),
    }
}

/// The command, parsed and checked without touching storage.
fn parse(command: &FinanceCmd) -> Result<Option<(Option<String>, Command)>, CliError> {
    let c = match command {
        FinanceCmd::Init { .. } | FinanceCmd::Report => return Ok(None),
        FinanceCmd::Party { party, account } => (None, Command::AddParty { party: party.clone(), account: account.clone() }),
        FinanceCmd::Deposit { party, amount } => (None, Command::Deposit { party: party.clone(), amount_fen: yuan_fen("amount", amount)? }),
        FinanceCmd::Withdraw { party, amount } => {
            (None, Command::Withdraw { party: party.clone(), amount_fen: yuan_fen("amount", amount)? })
        }
        FinanceCmd::Pledge(a) => (
            None,
            Command::Pledge {
                pledge: a.pledge.clone(),
                lender: a.lender.clone(),
                borrower: a.borrower.clone(),
                unit: unit(&a.unit)?,
                quantity: tonnes(&a.quantity)?,
                loan_fen: yuan_fen("loan", &a.loan)?,
                haircut_bp: a.haircut_bp,
                maintenance_bp: a.maintenance_bp,
                topup_days: a.topup_days,
                maturity: date("maturity", &a.maturity)?,
            },
        ),
        FinanceCmd::Mark { unit: u, close } => (None, Command::Mark { unit: unit(u)?, close_fen: yuan_fen("close", close)? }),
        FinanceCmd::TopUp { pledge, quantity, actor } => {
            (actor.clone(), Command::TopUp { pledge: pledge.clone(), quantity: tonnes(quantity)? })
        }
        FinanceCmd::Repay { pledge, amount, actor } => {
            (actor.clone(), Command::Repay { pledge: pledge.clone(), amount_fen: yuan_fen("amount", amount)? })
        }
        FinanceCmd::Repo(a) => (
            None,
            Command::Repo {
                repo: a.repo.clone(),
                seller: a.seller.clone(),
                buyer: a.buyer.clone(),
                unit: unit(&a.unit)?,
                quantity: tonnes(&a.quantity)?,
                start_fen: yuan_fen("start", &a.start)?,
                repurchase_fen: yuan_fen("repurchase", &a.repurchase)?,
                repurchase_date: date("repurchase date", &a.on)?,
                penalty_bp: a.penalty_bp,
            },
        ),
        FinanceCmd::Contract(a) => (
            None,
            Command::ListContract(ContractSpec {
                code: a.code.clone(),
                unit: unit(&a.unit)?,
                size_t: a.size,
                expiry: date("expiry", &a.expiry)?,
                settlement: match a.settlement.as_str() {
                    "physical" => Settlement::Physical,
                    "cash" => Settlement::Cash,
                    s => return Err(invalid(format!("settlement '{s}' must be physical or cash"))),
                },
                initial_margin_fen: yuan_fen("initial margin", &a.initial_margin)?,
                position_limit: a.position_limit,
                reference_price_fen: yuan_fen("reference", &a.reference)?,
                delivery_penalty_bp: a.delivery_penalty_bp,
            }),
        ),
        FinanceCmd::Order(a) => (
            Some(a.party.clone()),
            Command::PlaceOrder {
                contract: a.contract.clone(),
                order: a.order.unwrap_or(0),
                party: a.party.clone(),
                side: match a.side.as_str() {
                    "buy" => Side::Buy,
                    "sell" => Side::Sell,
                    s => return Err(invalid(format!("side '{s}' must be buy or sell"))),
                },
                price_fen: yuan_fen("price", &a.price)?,
                contracts: a.contracts,
                tif: tif(&a.tif)?,
            },
        ),
        FinanceCmd::Cancel { order, actor } => (Some(actor.clone()), Command::CancelOrder { order: *order }),
        FinanceCmd::Trade { contract, buyer, seller, contracts, price } => (
            None,
            Command::Trade {
                contract: contract.clone(),
                buyer: buyer.clone(),
                seller: seller.clone(),
                contracts: *contracts,
                price_fen: yuan_fen("price", price)?,
            },
        ),
        FinanceCmd::Settle { contract, price } => {
            (None, Command::SettlePrice { contract: contract.clone(), price_fen: yuan_fen("price", price)? })
        }
        FinanceCmd::EndOfDay => (None, Command::EndOfDay),
    };
    Ok(Some(c))
}

fn name(command: &Command) -> &'static str {
    match command {
        Command::AddParty { .. } => "party",
        Command::Deposit { .. } => "deposit",
        Command::Withdraw { .. } => "withdraw",
        Command::Pledge { .. } => "pledge",
        Command::TopUp { .. } => "top-up",
        Command::Repay { .. } => "repay",
        Command::Mark { .. } => "mark",
        Command::Repo { .. } => "repo",
        Command::ListContract(_) => "contract",
        Command::Trade { .. } => "trade",
        Command::PlaceOrder { .. } => "order",
        Command::CancelOrder { .. } => "cancel",
        Command::SettlePrice { .. } => "settle",
        Command::EndOfDay => "end-of-day",
    }
}

pub fn run(location: &Location, out: &Output, args: &FinanceArgs) -> Result<(), CliError> {
    let parsed = parse(&args.command)?;
    let business_date = match &args.date {
        Some(d) => date("date", d)?,
        None => now()?.date(),
    };
    let mut s = open(location)?;
    match (&args.command, parsed) {
        (FinanceCmd::Init { operator, registrar }, _) => {
            ets_core::check_identifier("operator", operator).map_err(invalid)?;
            ets_core::check_identifier("registrar", registrar).map_err(invalid)?;
            s.log.init_desk(operator, registrar, now()?).map_err(|e| match e {
                ets_store::StoreError::Conflict(m) => CliError::new(ExitCode::Conflict, m),
                e => e.into(),
            })?;
            out.line(&format!("finance desk set up, operated by {operator}; pledges released and enforced as {registrar}"));
        }
        (FinanceCmd::Report, _) => report(&s, out)?,
        (_, Some((actor, mut command))) => {
            let operator = s
                .log
                .desk()
                .map(|d| d.operator().to_string())
                .ok_or_else(|| CliError::new(ExitCode::NotFound, "the finance desk is not set up: run `ets finance init` first"))?;
            let seq = s.log.head().0 + 1;
            if let Command::PlaceOrder { order, .. } = &mut command {
                if *order == 0 {
                    *order = seq * 1_000 + 1;
                }
            }
            let id = args.id.clone().unwrap_or_else(|| format!("{}-{seq}", name(&command)));
            let envelope = Envelope { id, actor: actor.unwrap_or(operator), date: business_date, command };
            submit(&mut s, out, envelope)?;
        }
        (_, None) => unreachable!("every other command parses to a desk command"),
    }
    Ok(())
}

fn report(s: &Session, out: &Output) -> Result<(), CliError> {
    let desk =
        s.log.desk().ok_or_else(|| CliError::new(ExitCode::NotFound, "the finance desk is not set up: run `ets finance init` first"))?;
    let registry = s.ledger.registry();
    let parties: Vec<Vec<String>> = desk
        .parties()
        .iter()
        .map(|p| {
            let status = if p.balance_fen < p.margin_fen { "SHORTFALL" } else { "ok" };
            vec![
                p.name.clone(),
                p.account.clone(),
                yuan(p.balance_fen),
                yuan(p.margin_fen),
                yuan(p.reserved_fen),
                yuan(p.available()),
                status.into(),
            ]
        })
        .collect();
    // Collateral per account: units pledged (still owned, encumbered) and the registry's view.
    let collateral: Vec<Vec<String>> = desk
        .encumbrance()
        .into_iter()
        .map(|((party, unit), pledged)| {
            let account = desk.party(&party).map(|p| p.account.clone()).unwrap_or_default();
            let (held, encumbered) = UnitRef::parse(&unit)
                .ok()
                .and_then(|u| {
                    let a = registry.find_account(&account)?;
                    let h = registry.holding(a, registry.unit_named(&u).ok()?)?;
                    Some((h.total(), h.total() - h.free_total()))
                })
                .unwrap_or((0, 0));
            vec![account, party, unit, Tonnes(pledged).to_string(), Tonnes(encumbered).to_string(), Tonnes(held).to_string()]
        })
        .collect();
    let pledges: Vec<Vec<String>> = desk
        .pledges()
        .iter()
        .map(|(id, p)| {
            vec![
                id.clone(),
                desk.parties()[p.borrower].name.clone(),
                desk.parties()[p.lender].name.clone(),
                p.unit.to_string(),
                Tonnes(p.quantity()).to_string(),
                yuan(p.outstanding_fen),
                p.maturity.to_string(),
                match (p.status, p.call) {
                    (PledgeStatus::Active, Some(d)) => format!("margin call, due {d}"),
                    (s, _) => format!("{s:?}").to_lowercase(),
                },
            ]
        })
        .collect();
    let repos: Vec<Vec<String>> = desk
        .repos()
        .iter()
        .map(|(id, r)| {
            vec![
                id.clone(),
                desk.parties()[r.seller].name.clone(),
                desk.parties()[r.buyer].name.clone(),
                r.unit.to_string(),
                Tonnes(r.quantity).to_string(),
                yuan(r.repurchase_fen),
                r.repurchase_date.to_string(),
                match &r.status {
                    RepoStatus::Open => "open".into(),
                    RepoStatus::Settled => "settled".into(),
                    RepoStatus::Failed { defaulters } => format!("failed by {}", defaulters.join(", ")),
                },
            ]
        })
        .collect();
    let contracts: Vec<Vec<String>> = desk
        .market_data()
        .into_iter()
        .map(|c| {
            let spec = &desk.contract(&c.contract).expect("listed").spec;
            vec![
                c.contract.clone(),
                spec.unit.to_string(),
                spec.expiry.to_string(),
                format!("{:?}", spec.settlement).to_lowercase(),
                yuan(c.settlement_price_fen),
                c.open_interest.to_string(),
                match c.status {
                    ContractStatus::Open => "open",
                    ContractStatus::Delivered => "delivered",
                    ContractStatus::Settled => "cash-settled",
                }
                .into(),
            ]
        })
        .collect();
    if out.is_json() {
        let rows = |h: &[&str], rows: &[Vec<String>]| -> serde_json::Value {
            rows.iter().map(|r| h.iter().zip(r).map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()).collect()
        };
        out.print_json(json!({
            "parties": rows(&PARTY_HEADER, &parties),
            "collateral": rows(&COLLATERAL_HEADER, &collateral),
            "pledges": rows(&PLEDGE_HEADER, &pledges),
            "repos": rows(&REPO_HEADER, &repos),
            "contracts": rows(&CONTRACT_HEADER, &contracts),
            "margin_calls": desk.margin_calls().iter().map(|(p, d)| json!({"pledge": p, "deadline": d.to_string()})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!("parties (cash, margin status):");
    print!("{}", table(&PARTY_HEADER, &parties));
    println!("collateral and encumbrance per account:");
    print!("{}", table(&COLLATERAL_HEADER, &collateral));
    println!("pledges:");
    print!("{}", table(&PLEDGE_HEADER, &pledges));
    println!("repos:");
    print!("{}", table(&REPO_HEADER, &repos));
    println!("futures and forwards (open interest, settlement prices):");
    print!("{}", table(&CONTRACT_HEADER, &contracts));
    Ok(())
}

const PARTY_HEADER: [&str; 7] = ["party", "account", "cash", "margin held", "reserved", "available", "margin status"];
const COLLATERAL_HEADER: [&str; 6] = ["account", "party", "unit", "pledged t", "encumbered in registry t", "held t"];
const PLEDGE_HEADER: [&str; 8] = ["pledge", "borrower", "lender", "unit", "quantity t", "outstanding", "maturity", "status"];
const REPO_HEADER: [&str; 8] = ["repo", "seller", "buyer", "unit", "quantity t", "repurchase", "repurchase date", "status"];
const CONTRACT_HEADER: [&str; 7] = ["contract", "unit", "expiry", "settlement", "settlement price", "open interest", "status"];

/// `ets audit verify`'s finance part: the journal's chain, its replay, and whether every
/// instruction is in the registry.
pub fn audit(location: &Location, registry: &ets_registry::Registry, out: &Output) -> Result<(), CliError> {
    let log = FinanceLog::open(location.open()?).map_err(|e| match e {
        ets_store::StoreError::Corrupt(m) => CliError::new(ExitCode::AuditFailed, format!("audit failed: {m}")),
        e => e.into(),
    })?;
    if log.head().0 == 0 {
        return Ok(());
    }
    let undone = log.undone(registry);
    if !out.is_json() {
        println!(
            "finance journal ok: {} records, hash chain intact, replayed; {} pledges, {} repos, {} contracts, {} inclusion submissions; {}",
            log.head().0,
            log.desk().map_or(0, |d| d.pledges().len()),
            log.desk().map_or(0, |d| d.repos().len()),
            log.desk().map_or(0, |d| d.contracts().len()),
            log.inclusion().map_or(0, |i| i.submissions().len()),
            if undone == 0 {
                "every registry instruction is in the registry".to_string()
            } else {
                format!("{undone} registry instruction(s) not carried out yet (the next finance command carries them out)")
            }
        );
    }
    Ok(())
}
