//! `ets exchange ...`: the trading venue over the registry. Every command opens the exchange
//! journal and the registry ledger, re-applies any registry instruction a crash left undone,
//! and then decides, journals and carries out one venue command.

use crate::output::{table, Output};
use crate::{now, CliError, ExitCode};
use clap::{Args, Subcommand};
use ets_core::{Date, Fen, Tonnes};
use ets_exchange::auction::{AuctionRules, Bid, Undersubscribed};
use ets_exchange::venue::{Command, Envelope, Event, RejectKind, Style, Window};
use ets_exchange::{Side, Tif};
use ets_registry::{PendingPurpose, UnitRef};
use ets_store::{ExchangeLog, ExchangeReceipt, Ledger, LedgerOptions, Location, VenueConfig};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Subcommand)]
pub enum ExchangeCmd {
    /// Set up the venue: its operator and a clearing account per market (trading accounts the
    /// operator represents)
    Init {
        #[arg(long, default_value = "exchange")]
        operator: String,
        /// MARKET=ACCOUNT (repeatable)
        #[arg(long = "clearing", required = true)]
        clearing: Vec<String>,
        /// A non-trading weekday, YYYY-MM-DD (repeatable)
        #[arg(long = "holiday")]
        holidays: Vec<String>,
    },
    /// List a registry unit as an instrument (national SEEE rules unless told otherwise)
    List(ListArgs),
    /// The instruments, their previous close and today's figures
    Instruments,
    /// Admit a member with its registry account per market
    Member {
        member: String,
        /// MARKET=ACCOUNT (repeatable)
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
    },
    /// Record cash received for a member (yuan)
    Deposit { member: String, amount: String },
    /// Lodge units for sale: a settlement pending transfer from the member's account to clearing
    Lodge {
        member: String,
        #[arg(long)]
        instrument: String,
        #[arg(long)]
        quantity: String,
    },
    /// Open a trading day
    OpenDay { date: String },
    /// Close the trading day: cancel resting orders, fix the close, settle what is due
    CloseDay,
    /// Submit a listed order
    Order(OrderArgs),
    /// Cancel an open order
    Cancel {
        order: u64,
        #[arg(long = "as")]
        actor: String,
        #[arg(long)]
        time: Option<String>,
    },
    /// Listed agreement: take part of a resting order among the best five levels
    Take {
        maker: u64,
        #[arg(long = "as")]
        member: String,
        #[arg(long)]
        quantity: String,
        #[arg(long)]
        order: Option<u64>,
        #[arg(long)]
        time: Option<String>,
    },
    /// Propose a block deal to a named counterparty
    Block(BlockArgs),
    /// Confirm a block deal addressed to you
    Confirm {
        deal: String,
        #[arg(long = "as")]
        member: String,
        #[arg(long)]
        time: Option<String>,
    },
    /// Run a uniform-price primary auction from a bid file (CSV: bidder,price,quantity)
    Auction(AuctionArgs),
    /// The book of an instrument (best levels)
    Book {
        instrument: String,
        #[arg(long, default_value_t = 5)]
        levels: usize,
    },
    /// Daily bars and closing prices of an instrument
    Bars { instrument: String },
    /// Cash and positions of a member
    Account { member: String },
}

#[derive(Args)]
pub struct ListArgs {
    /// Registry unit, e.g. CEA:2025
    #[arg(long)]
    unit: String,
    #[arg(long)]
    market: String,
    /// The previous close before the first day (yuan)
    #[arg(long)]
    reference: String,
    /// Trading code (default: the unit with '-' for ':')
    #[arg(long)]
    code: Option<String>,
    /// Settle T+1 instead of T+0
    #[arg(long)]
    t1: bool,
    /// Continuous trading with opening (09:00-09:30) and closing (15:00-15:05) call auctions
    #[arg(long)]
    continuous: bool,
    /// Most a member may hold through the venue (tonnes)
    #[arg(long)]
    position_limit: Option<String>,
    /// The rulebook whose [trading] rules apply (a shipped id or a TOML file; default the
    /// market's shipped rulebook for the vintage's year, else the national rules)
    #[arg(long)]
    rulebook: Option<String>,
}

#[derive(Args)]
pub struct OrderArgs {
    #[arg(long = "as")]
    member: String,
    #[arg(long)]
    instrument: String,
    /// buy or sell
    #[arg(long)]
    side: String,
    /// Limit price in yuan; leave out for a market order (IOC)
    #[arg(long)]
    price: Option<String>,
    #[arg(long)]
    quantity: String,
    /// gtc, ioc or fok
    #[arg(long, default_value = "gtc")]
    tif: String,
    /// Client order id (default: next free)
    #[arg(long)]
    order: Option<u64>,
    /// Local time HH:MM on the open trading day (default: now)
    #[arg(long)]
    time: Option<String>,
}

#[derive(Args)]
pub struct BlockArgs {
    deal: String,
    #[arg(long = "as")]
    member: String,
    #[arg(long)]
    counterparty: String,
    #[arg(long)]
    instrument: String,
    #[arg(long)]
    side: String,
    #[arg(long)]
    price: String,
    #[arg(long)]
    quantity: String,
    #[arg(long)]
    time: Option<String>,
}

#[derive(Args)]
pub struct AuctionArgs {
    auction: String,
    #[arg(long)]
    instrument: String,
    /// The member (the authority) selling, whose account delivers
    #[arg(long)]
    seller: String,
    /// The market's registry authority, who sets the volume aside from the seller's account
    #[arg(long)]
    authority: String,
    #[arg(long)]
    volume: String,
    /// Reserve price (yuan)
    #[arg(long, required_unless_present = "reserve_vwap")]
    reserve: Option<String>,
    /// Reserve price as a multiple of the listed VWAP over --vwap-days trading days (Shanghai: 1.2)
    #[arg(long, conflicts_with = "reserve")]
    reserve_vwap: Option<String>,
    #[arg(long, default_value_t = 120)]
    vwap_days: usize,
    /// Most one bidder may win, percent of the volume (WCI-style purchase limit)
    #[arg(long)]
    bidder_limit: Option<u32>,
    /// CSV file: bidder,price,quantity
    #[arg(long)]
    bids: std::path::PathBuf,
    #[arg(long, default_value_t = 1)]
    lot: u64,
    /// The pre-committed seed of the tie-break draw
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sell what is bid when undersubscribed (WCI) instead of cancelling (EU)
    #[arg(long)]
    sell_undersubscribed: bool,
}

fn invalid(m: impl Into<String>) -> CliError {
    CliError::new(ExitCode::Invalid, m)
}

fn pairs(items: &[String], what: &str) -> Result<BTreeMap<String, String>, CliError> {
    items
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| invalid(format!("{what} '{p}' must be MARKET=ACCOUNT")))
        })
        .collect()
}

fn tonnes(text: &str) -> Result<u64, CliError> {
    Tonnes::parse_positive(text).map(|t| t.0).map_err(|e| invalid(e.to_string()))
}

fn price(text: &str) -> Result<i64, CliError> {
    let p = Fen::parse_yuan(text).map_err(|e| invalid(e.to_string()))?;
    if p.0 <= 0 {
        return Err(invalid(format!("price '{text}' must be positive")));
    }
    Ok(p.0)
}

fn side(text: &str) -> Result<Side, CliError> {
    match text {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(invalid(format!("side '{text}' must be buy or sell"))),
    }
}

fn yuan(ticks: i64) -> String {
    Fen(ticks).to_string()
}

struct Session {
    log: ExchangeLog,
    ledger: Ledger,
}

fn open(location: &Location) -> Result<Session, CliError> {
    let mut ledger = Ledger::open(location, LedgerOptions::default())?;
    let mut log = ExchangeLog::open(location.open()?)?;
    let redone = log.reconcile(&mut ledger, now()?)?;
    if redone > 0 {
        eprintln!("exchange: {redone} registry instruction(s) left undone by an interruption were carried out");
    }
    Ok(Session { log, ledger })
}

/// The command time: `HH:MM` local (UTC+8) on the open trading day, or the shell clock.
fn time_of(s: &Session, time: &Option<String>) -> Result<i64, CliError> {
    let Some(t) = time else { return Ok(now()?.0) };
    let (h, m) = t.split_once(':').ok_or_else(|| invalid(format!("time '{t}' must be HH:MM")))?;
    let (h, m): (i64, i64) = (
        h.parse().map_err(|_| invalid(format!("time '{t}' must be HH:MM")))?,
        m.parse().map_err(|_| invalid(format!("time '{t}' must be HH:MM")))?,
    );
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(invalid(format!("time '{t}' must be HH:MM")));
    }
    let day = s
        .log
        .venue()
        .and_then(|v| v.day())
        .ok_or_else(|| CliError::new(ExitCode::Refused, "the market is closed: no trading day is open"))?;
    Ok(day.start().0 + (h * 60 + m - 8 * 60) * 60_000)
}

fn submit(s: &mut Session, out: &Output, actor: &str, at_ms: i64, id: String, command: Command) -> Result<Vec<Event>, CliError> {
    let envelope = Envelope { id, actor: actor.to_string(), at_ms, command };
    let mut results = s.log.submit_batch(std::slice::from_ref(&envelope), &mut s.ledger)?;
    match results.pop().expect("one result") {
        Ok(ExchangeReceipt::Accepted(outcome)) => {
            print_events(out, &outcome.events);
            Ok(outcome.events)
        }
        Ok(ExchangeReceipt::Repeated) => {
            out.line(&format!("command {} was already carried out", envelope.id));
            Ok(Vec::new())
        }
        Err(r) => {
            let code = match r.kind {
                RejectKind::NotFound => ExitCode::NotFound,
                RejectKind::Forbidden => ExitCode::Forbidden,
                RejectKind::Invalid => ExitCode::Invalid,
                RejectKind::Conflict => ExitCode::Conflict,
                RejectKind::Rule | RejectKind::Insufficient => ExitCode::Refused,
            };
            Err(CliError::new(code, r.message))
        }
    }
}

fn print_events(out: &Output, events: &[Event]) {
    if out.is_json() {
        out.print_json(serde_json::to_value(events).expect("json"));
        return;
    }
    for e in events {
        let line = match e {
            Event::Traded(t) => format!(
                "trade {}: {} t {} at ¥{} ({:?}), {} buys from {}, settles {}",
                t.id,
                Tonnes(t.qty),
                t.instrument,
                yuan(t.price),
                t.kind,
                t.buyer,
                t.seller,
                t.settles
            ),
            Event::OrderRested { order, qty } => format!("order {order} rests with {} t", Tonnes(*qty)),
            Event::OrderDone { order, cancelled } if *cancelled > 0 => format!("order {order}: {} t cancelled", Tonnes(*cancelled)),
            Event::OrderAccepted { order } => format!("order {order} accepted"),
            Event::DayClosed { bars } => bars
                .iter()
                .map(|(code, b)| {
                    format!("{code}: close ¥{} (listed {} t, block {} t)", yuan(b.close), Tonnes(b.listed_volume), Tonnes(b.block_volume))
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Event::Settled { date, trades, value_fen } => format!("settled {trades} trade(s) due {date}: ¥{}", yuan(*value_fen)),
            Event::AuctionCleared { auction, price, sold } => format!("auction {auction}: {} t sold at ¥{}", Tonnes(*sold), yuan(*price)),
            Event::AuctionCancelled { auction, reason } => format!("auction {auction} {reason}"),
            Event::InstrumentListed { code } => format!("instrument {code} listed"),
            Event::MemberAdded { member } => format!("member {member} admitted"),
            Event::Cash { member, delta_fen, balance_fen } => format!(
                "{member}: cash {}¥{}, balance ¥{}",
                if *delta_fen < 0 { "-" } else { "+" },
                yuan(delta_fen.abs()),
                yuan(*balance_fen)
            ),
            Event::Lodged { member, instrument, qty } => format!("{member} lodged {} t of {instrument}", Tonnes(*qty)),
            Event::Unlodged { member, instrument, qty } => format!("{member} unlodged {} t of {instrument}", Tonnes(*qty)),
            Event::DayOpened { date } => format!("trading day {date} open"),
            Event::OrderDone { .. } => String::new(),
            Event::OrderAmended { order, qty } => format!("order {order} now {} t", Tonnes(*qty)),
            Event::BlockProposed { deal } => format!("block deal {deal} proposed; waiting for the counterparty's confirmation"),
            Event::BlockWithdrawn { deal } => format!("block deal {deal} withdrawn"),
            Event::BiddingOpened { bidding } => format!("bidding {bidding} open"),
            Event::BidAccepted { bidding, bid } => format!("bid {} in bidding {bidding} accepted", bid + 1),
            Event::BiddingClosed { bidding, filled } => format!("bidding {bidding} closed: {} t filled", Tonnes(*filled)),
            Event::AuctionOpened { auction } => format!("auction {auction} open for bids"),
            Event::AuctionBidAccepted { .. } => String::new(),
            Event::AuctionBidWithdrawn { auction, member, bid } => format!("{member} withdrew bid {bid} in auction {auction}"),
            Event::AuctionBidsClosed { auction, bids, bidders, bid_qty } => {
                format!("auction {auction}: bidding closed with {bids} bid(s) from {bidders} bidder(s), {} t", Tonnes(*bid_qty))
            }
        };
        if !line.is_empty() {
            println!("{line}");
        }
    }
}

fn next_order_id(s: &Session) -> u64 {
    // Client order ids are the caller's; the CLI picks the next after the journal head.
    s.log.head().0 * 1_000 + 1
}

pub fn run(location: &Location, out: &Output, command: &ExchangeCmd) -> Result<(), CliError> {
    let mut s = open(location)?;
    let operator = s.log.venue().map(|v| v.operator().to_string()).unwrap_or_default();
    let seq = s.log.head().0 + 1;
    let cid = |what: &str| format!("{what}-{seq}");
    match command {
        ExchangeCmd::Init { operator, clearing, holidays } => {
            let clearing = pairs(clearing, "clearing account")?;
            for account in clearing.values() {
                let idx = s
                    .ledger
                    .registry()
                    .find_account(account)
                    .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown account '{account}'")))?;
                let reps = &s.ledger.registry().account(idx).representatives;
                if !reps.iter().any(|r| r == operator) {
                    return Err(CliError::new(
                        ExitCode::Refused,
                        format!("clearing account {account} must have {operator} as a representative"),
                    ));
                }
            }
            let holidays: BTreeSet<Date> =
                holidays.iter().map(|h| Date::parse(h).map_err(|e| invalid(e.to_string()))).collect::<Result<_, _>>()?;
            s.log.init(VenueConfig { operator: operator.clone(), clearing, holidays }, now()?)?;
            out.line(&format!("exchange set up, operated by {operator}"));
        }
        ExchangeCmd::List(a) => {
            let unit = UnitRef::parse(&a.unit).map_err(invalid)?;
            // The market's trading rules from its rulebook for the vintage's year.
            let rulebook = match &a.rulebook {
                Some(r) => Some(crate::cycle::load_rulebook(r)?.1),
                None => ets_compliance::default_rulebook(&a.market, i32::from(unit.vintage)),
            };
            if let Some(rb) = rulebook.as_ref().filter(|rb| rb.rulebook.market != a.market) {
                return Err(invalid(format!("rulebook {} is market {}'s, not {}'s", rb.rulebook.id, rb.rulebook.market, a.market)));
            }
            let code = a.code.clone().unwrap_or_else(|| a.unit.replace(':', "-"));
            let mut spec = ets_server::listing::instrument_spec(rulebook.as_ref(), &a.market, unit, code, price(&a.reference)?)
                .map_err(|e| CliError::new(ExitCode::Refused, e))?;
            spec.settlement_days = u8::from(a.t1);
            spec.position_limit_t = a.position_limit.as_deref().map(tonnes).transpose()?;
            if a.continuous {
                spec.style = Style::Continuous;
                spec.opening_call = Some(Window::new((9, 0), (9, 30)));
                spec.closing_call = Some(Window::new((15, 0), (15, 5)));
                spec.close_rule = ets_exchange::venue::CloseRule::ClosingAuction;
            }
            submit(&mut s, out, &operator, now()?.0, cid("list"), Command::ListInstrument(spec))?;
        }
        ExchangeCmd::Instruments => {
            let v = s.log.venue().ok_or_else(|| CliError::new(ExitCode::NotFound, "the exchange is not set up"))?;
            let mut rows = Vec::new();
            for code in v.instrument_codes() {
                let spec = v.spec(&code).expect("listed");
                let close = v.previous_close(&code).expect("listed");
                let (low, high) = spec.rules.band(ets_exchange::Mode::Listed, close);
                rows.push(vec![
                    code.clone(),
                    spec.unit.to_string(),
                    spec.market.clone(),
                    format!("{:?}", spec.style),
                    yuan(close),
                    format!("{} - {}", yuan(low), yuan(high)),
                    format!("T+{}", spec.settlement_days),
                ]);
            }
            if out.is_json() {
                out.print_json(json!(rows));
            } else {
                print!("{}", table(&["instrument", "unit", "market", "style", "previous close", "listed band", "settlement"], &rows));
            }
        }
        ExchangeCmd::Member { member, accounts } => {
            let accounts = pairs(accounts, "account")?;
            submit(&mut s, out, &operator, now()?.0, cid("member"), Command::AddMember { member: member.clone(), accounts })?;
        }
        ExchangeCmd::Deposit { member, amount } => {
            let amount_fen = Fen::parse_yuan(amount).map_err(|e| invalid(e.to_string()))?.0;
            submit(&mut s, out, &operator, now()?.0, cid("deposit"), Command::Deposit { member: member.clone(), amount_fen })?;
        }
        ExchangeCmd::Lodge { member, instrument, quantity } => {
            let qty = tonnes(quantity)?;
            let v = s.log.venue().ok_or_else(|| CliError::new(ExitCode::NotFound, "the exchange is not set up"))?;
            let spec =
                v.spec(instrument).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown instrument {instrument}")))?.clone();
            let (from, clearing) = lodge_accounts(&s, member, &spec.market)?;
            let pending = cid("lodge");
            let env = ets_registry::Envelope {
                id: pending.clone(),
                actor: member.clone(),
                command: ets_registry::Command::CreatePending {
                    pending: pending.clone(),
                    from,
                    to: clearing,
                    unit: spec.unit.clone(),
                    quantity: Tonnes(qty),
                    purpose: PendingPurpose::Settlement,
                },
            };
            s.ledger.submit(now()?, &env)?;
            submit(
                &mut s,
                out,
                &operator,
                now()?.0,
                cid("lodged"),
                Command::Lodge { member: member.clone(), instrument: instrument.clone(), qty, pending },
            )?;
        }
        ExchangeCmd::OpenDay { date } => {
            let date = Date::parse(date).map_err(|e| invalid(e.to_string()))?;
            submit(&mut s, out, &operator, date.start().0, cid("open"), Command::OpenDay { date })?;
        }
        ExchangeCmd::CloseDay => {
            let at = s.log.venue().and_then(|v| v.day()).map_or(now()?.0, |d| d.start().0 + 8 * 3_600_000);
            submit(&mut s, out, &operator, at, cid("close"), Command::CloseDay)?;
        }
        ExchangeCmd::Order(a) => {
            let at = time_of(&s, &a.time)?;
            let tif = match a.tif.as_str() {
                "gtc" => Tif::Gtc,
                "ioc" => Tif::Ioc,
                "fok" => Tif::Fok,
                t => return Err(invalid(format!("tif '{t}' must be gtc, ioc or fok"))),
            };
            let p = a.price.as_deref().map(price).transpose()?;
            let tif = if p.is_none() && tif == Tif::Gtc { Tif::Ioc } else { tif };
            let order = a.order.unwrap_or_else(|| next_order_id(&s));
            let command = Command::Place {
                order,
                member: a.member.clone(),
                instrument: a.instrument.clone(),
                side: side(&a.side)?,
                price: p,
                qty: tonnes(&a.quantity)?,
                tif,
            };
            submit(&mut s, out, &a.member, at, cid("order"), command)?;
        }
        ExchangeCmd::Cancel { order, actor, time } => {
            let at = time_of(&s, time)?;
            submit(&mut s, out, actor, at, cid("cancel"), Command::Cancel { order: *order })?;
        }
        ExchangeCmd::Take { maker, member, quantity, order, time } => {
            let at = time_of(&s, time)?;
            let order = order.unwrap_or_else(|| next_order_id(&s));
            submit(
                &mut s,
                out,
                member,
                at,
                cid("take"),
                Command::Take { order, member: member.clone(), maker: *maker, qty: tonnes(quantity)? },
            )?;
        }
        ExchangeCmd::Block(a) => {
            let at = time_of(&s, &a.time)?;
            let command = Command::ProposeBlock {
                deal: a.deal.clone(),
                member: a.member.clone(),
                counterparty: a.counterparty.clone(),
                instrument: a.instrument.clone(),
                side: side(&a.side)?,
                price: price(&a.price)?,
                qty: tonnes(&a.quantity)?,
            };
            submit(&mut s, out, &a.member, at, cid("block"), command)?;
        }
        ExchangeCmd::Confirm { deal, member, time } => {
            let at = time_of(&s, time)?;
            submit(&mut s, out, member, at, cid("confirm"), Command::ConfirmBlock { deal: deal.clone(), member: member.clone() })?;
        }
        ExchangeCmd::Auction(a) => {
            let text = std::fs::read_to_string(&a.bids).map_err(|e| invalid(format!("{}: {e}", a.bids.display())))?;
            let bids = parse_bids(&a.bids.display().to_string(), &text)?;
            let reserve_price = match (&a.reserve, &a.reserve_vwap) {
                (Some(r), _) => price(r)?,
                (None, Some(multiple)) => {
                    let bp = Fen::parse_yuan(multiple).map_err(|e| invalid(e.to_string()))?.0;
                    if bp <= 0 {
                        return Err(invalid(format!("--reserve-vwap '{multiple}' must be positive")));
                    }
                    let v = s.log.venue().ok_or_else(|| CliError::new(ExitCode::NotFound, "the exchange is not set up"))?;
                    let vwap = v.listed_vwap(&a.instrument, a.vwap_days).ok_or_else(|| {
                        CliError::new(
                            ExitCode::Refused,
                            format!(
                                "{} has no listed trades in the last {} trading days: no VWAP for the reserve price",
                                a.instrument, a.vwap_days
                            ),
                        )
                    })?;
                    // `bp` is the multiple in hundredths (1.2 → 120); basis points are 100 times that.
                    ets_exchange::auction::reserve_from_vwap(vwap, (bp * 100) as u32)
                }
                (None, None) => unreachable!("clap requires one"),
            };
            if a.bidder_limit.is_some_and(|p| p == 0 || p > 100) {
                return Err(invalid("--bidder-limit is a percentage from 1 to 100"));
            }
            let rules = AuctionRules {
                lot_t: a.lot.max(1),
                reserve_price,
                bidder_limit_bp: a.bidder_limit.map(|p| p * 100),
                undersubscribed: if a.sell_undersubscribed { Undersubscribed::SellWhatIsBid } else { Undersubscribed::Cancel },
                cancel_below_secondary_bp: Some(1_000),
            };
            let volume = tonnes(&a.volume)?;
            let v = s.log.venue().ok_or_else(|| CliError::new(ExitCode::NotFound, "the exchange is not set up"))?;
            let spec = v
                .spec(&a.instrument)
                .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown instrument {}", a.instrument)))?
                .clone();
            let from = v.member_account(&a.seller, &spec.market).ok_or_else(|| {
                CliError::new(ExitCode::NotFound, format!("member {} has no registry account in market {}", a.seller, spec.market))
            })?;
            let clearing = v
                .clearing_account(&spec.market)
                .ok_or_else(|| CliError::new(ExitCode::NotFound, format!("no clearing account for market {}", spec.market)))?;
            // The bid file is taken whole or not at all: every bid from a member other than the
            // seller, in whole lots, not below the reserve, covered by the bidder's free cash.
            let mut problems = Vec::new();
            let mut used: BTreeMap<&str, i64> = BTreeMap::new();
            for (i, b) in bids.iter().enumerate() {
                let Some((balance, reserved, owed)) = v.cash(&b.bidder) else {
                    problems.push(format!("bid {}: unknown member {}", i + 1, b.bidder));
                    continue;
                };
                let takes_units = v.member_account(&b.bidder, &spec.market).is_some_and(|number| {
                    let r = s.ledger.registry();
                    r.find_account(&number).map(|x| r.account(x)).is_some_and(|x| {
                        matches!(x.kind, ets_registry::AccountKind::Operator | ets_registry::AccountKind::Trading)
                            && x.status == ets_registry::AccountStatus::Open
                    })
                });
                if b.bidder == a.seller {
                    problems.push(format!("bid {}: {} sells in this auction", i + 1, b.bidder));
                } else if !takes_units {
                    problems.push(format!("bid {}: {} has no open account in market {} to receive units", i + 1, b.bidder, spec.market));
                } else if b.qty == 0 || b.qty % rules.lot_t != 0 {
                    problems.push(format!("bid {}: {} t is not a whole number of {} t lots", i + 1, b.qty, rules.lot_t));
                } else if b.price < rules.reserve_price {
                    problems.push(format!("bid {}: ¥{} is below the reserve price ¥{}", i + 1, yuan(b.price), yuan(rules.reserve_price)));
                } else {
                    let cost = b.price.saturating_mul(b.qty as i64);
                    let free = balance - reserved - owed;
                    let so_far = used.entry(b.bidder.as_str()).or_insert(0);
                    if so_far.saturating_add(cost) > free {
                        problems.push(format!(
                            "bid {} of {}: ¥{} is not covered by the bid guarantee (¥{} free)",
                            i + 1,
                            b.bidder,
                            yuan(cost),
                            yuan(free - *so_far)
                        ));
                    }
                    *so_far = so_far.saturating_add(cost);
                }
            }
            if bids.len() > ets_exchange::venue::MAX_BIDS_PER_AUCTION {
                problems.push(format!("{} bids: an auction takes at most {}", bids.len(), ets_exchange::venue::MAX_BIDS_PER_AUCTION));
            }
            let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
            for b in &bids {
                *per_member.entry(b.bidder.as_str()).or_default() += 1;
            }
            let cap = ets_exchange::venue::MAX_BIDS_PER_MEMBER_PER_AUCTION as usize;
            for (member, n) in per_member.into_iter().filter(|(_, n)| *n > cap) {
                problems.push(format!("{member} has {n} bids: a member places at most {cap} in an auction"));
            }
            if !problems.is_empty() {
                return Err(CliError::new(ExitCode::Refused, problems.join("; ")));
            }
            // The volume is set aside in the registry first (the authority's escrow for the
            // clearing account), then the window opens, each bidder's bid goes in under its own
            // name, and the auction clears: units delivered out of the escrow, the rest returned.
            let escrow = format!("auction-{}", a.auction);
            let env = ets_registry::Envelope {
                id: cid("auction-escrow"),
                actor: a.authority.clone(),
                command: ets_registry::Command::CreatePending {
                    pending: escrow.clone(),
                    from,
                    to: clearing,
                    unit: spec.unit.clone(),
                    quantity: Tonnes(volume),
                    purpose: PendingPurpose::Escrow,
                },
            };
            s.ledger.submit(now()?, &env)?;
            let at = now()?.0;
            let mut envelopes = vec![Envelope {
                id: cid("auction-open"),
                actor: operator.clone(),
                at_ms: at,
                command: Command::OpenAuction {
                    auction: a.auction.clone(),
                    instrument: a.instrument.clone(),
                    seller: a.seller.clone(),
                    volume,
                    rules,
                    pending: escrow.clone(),
                    secondary_reference: None,
                    seed: a.seed,
                },
            }];
            for (i, b) in bids.into_iter().enumerate() {
                envelopes.push(Envelope {
                    id: format!("{}-{i}", cid("auction-bid")),
                    actor: b.bidder.clone(),
                    at_ms: at,
                    command: Command::AuctionBid { auction: a.auction.clone(), member: b.bidder, price: b.price, qty: b.qty },
                });
            }
            envelopes.push(Envelope {
                id: cid("auction-clear"),
                actor: operator.clone(),
                at_ms: at,
                command: Command::ClearAuction { auction: a.auction.clone() },
            });
            let results = s.log.submit_batch(&envelopes, &mut s.ledger)?;
            let mut refused = Vec::new();
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(ExchangeReceipt::Accepted(outcome)) => print_events(out, &outcome.events),
                    Ok(ExchangeReceipt::Repeated) => {}
                    Err(r) if i == 0 => {
                        // The window did not open: nothing may stay set aside for it.
                        let void = ets_registry::Envelope {
                            id: cid("auction-void"),
                            actor: a.authority.clone(),
                            command: ets_registry::Command::VoidPending { pending: escrow.clone() },
                        };
                        s.ledger.submit(now()?, &void)?;
                        return Err(CliError::new(ExitCode::Refused, format!("auction {}: {}", a.auction, r.message)));
                    }
                    Err(r) => refused.push(r.message),
                }
            }
            if !refused.is_empty() {
                return Err(CliError::new(ExitCode::Refused, format!("auction {}: {}", a.auction, refused.join("; "))));
            }
        }
        ExchangeCmd::Book { instrument, levels } => {
            let v = s.log.venue().ok_or_else(|| CliError::new(ExitCode::NotFound, "the exchange is not set up"))?;
            let book = v.book(instrument).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown instrument {instrument}")))?;
            let bids = book.depth(Side::Buy, *levels);
            let asks = book.depth(Side::Sell, *levels);
            if out.is_json() {
                out.print_json(json!({"bids": bids, "asks": asks}));
            } else {
                let rows: Vec<Vec<String>> = (0..bids.len().max(asks.len()))
                    .map(|i| {
                        let b = bids.get(i).map_or((String::new(), String::new()), |(p, q)| (Tonnes(*q).to_string(), yuan(*p)));
                        let a = asks.get(i).map_or((String::new(), String::new()), |(p, q)| (yuan(*p), Tonnes(*q).to_string()));
                        vec![b.0, b.1, a.0, a.1]
                    })
                    .collect();
                print!("{}", table(&["bid t", "bid", "ask", "ask t"], &rows));
            }
        }
        ExchangeCmd::Bars { instrument } => {
            let v = s.log.venue().ok_or_else(|| CliError::new(ExitCode::NotFound, "the exchange is not set up"))?;
            let bars = v.bars(instrument);
            if out.is_json() {
                out.print_json(serde_json::to_value(bars).expect("json"));
            } else {
                let opt = |p: Option<i64>| p.map_or("-".to_string(), yuan);
                let rows: Vec<Vec<String>> = bars
                    .iter()
                    .map(|b| {
                        vec![
                            b.date.to_string(),
                            opt(b.open),
                            opt(b.high),
                            opt(b.low),
                            yuan(b.close),
                            Tonnes(b.listed_volume).to_string(),
                            Tonnes(b.block_volume).to_string(),
                            yuan(b.value_fen),
                        ]
                    })
                    .collect();
                print!("{}", table(&["date", "open", "high", "low", "close", "listed t", "block t", "value ¥"], &rows));
            }
        }
        ExchangeCmd::Account { member } => {
            let v = s.log.venue().ok_or_else(|| CliError::new(ExitCode::NotFound, "the exchange is not set up"))?;
            let (balance, reserved, owed) =
                v.cash(member).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown member {member}")))?;
            let positions: Vec<Vec<String>> = v
                .instrument_codes()
                .into_iter()
                .map(|code| {
                    let (lodged, reserved, owed, receivable) = v.position(member, &code);
                    vec![
                        code,
                        Tonnes(lodged).to_string(),
                        Tonnes(reserved).to_string(),
                        Tonnes(owed).to_string(),
                        Tonnes(receivable).to_string(),
                    ]
                })
                .collect();
            if out.is_json() {
                out.print_json(json!({"cash_fen": balance, "reserved_fen": reserved, "owed_fen": owed, "positions": positions}));
            } else {
                println!("cash ¥{} (reserved ¥{}, owed ¥{})", yuan(balance), yuan(reserved), yuan(owed));
                print!("{}", table(&["instrument", "lodged t", "reserved t", "sold, to deliver t", "bought, to receive t"], &positions));
            }
        }
    }
    Ok(())
}

fn lodge_accounts(s: &Session, member: &str, market: &str) -> Result<(String, String), CliError> {
    let v = s.log.venue().expect("set up");
    let _ = v.cash(member).ok_or_else(|| CliError::new(ExitCode::NotFound, format!("unknown member {member}")))?;
    let account = s
        .log
        .venue()
        .and_then(|v| v.member_account(member, market))
        .ok_or_else(|| CliError::new(ExitCode::Invalid, format!("member {member} has no account in market {market}")))?;
    let clearing =
        v.clearing_account(market).ok_or_else(|| CliError::new(ExitCode::Invalid, format!("no clearing account for market {market}")))?;
    Ok((account, clearing))
}

/// Bid file: `bidder,price,quantity` per line, an optional header; every bad line is reported.
pub fn parse_bids(name: &str, text: &str) -> Result<Vec<Bid>, CliError> {
    let mut bids = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line.starts_with("bidder")) {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != 3 {
            problems.push(format!("{name} line {}: expected bidder,price,quantity", n + 1));
            continue;
        }
        match (price(cells[1]), tonnes(cells[2])) {
            (Ok(p), Ok(q)) => bids.push(Bid { bidder: cells[0].to_string(), price: p, qty: q }),
            (p, q) => {
                for e in [p.err(), q.err()].into_iter().flatten() {
                    problems.push(format!("{name} line {}: {}", n + 1, e.message));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems.join("\n")));
    }
    if bids.is_empty() {
        return Err(invalid(format!("{name}: no bids")));
    }
    Ok(bids)
}

/// `ets audit verify`'s exchange part: the journal's chain and a full replay (opening does
/// both), and whether every registry instruction it implies has been carried out.
pub fn audit(location: &Location, registry: &ets_registry::Registry, out: &Output) -> Result<(), CliError> {
    let log = ExchangeLog::open(location.open()?).map_err(|e| match e {
        ets_store::StoreError::Corrupt(m) => CliError::new(ExitCode::AuditFailed, format!("audit failed: {m}")),
        e => e.into(),
    })?;
    let Some(venue) = log.venue() else { return Ok(()) };
    let undone = log.undone(registry);
    if !out.is_json() {
        println!(
            "exchange journal ok: {} records, hash chain intact, replay gives state hash {}; {} trades; {}",
            log.head().0,
            ets_registry::journal::hex(&venue.state_hash()),
            venue.trades().len(),
            if undone == 0 {
                "every settlement instruction is in the registry".to_string()
            } else {
                format!("{undone} registry instruction(s) not carried out yet (the next exchange command carries them out)")
            }
        );
    }
    Ok(())
}
