//! The demo's trading year: every market's allowances listed on the venue, the demo's entities
//! as members (the biggest holders lodge units to sell, others deposit cash to buy), and a
//! year of seeded order flow around a drifting fair value, with weekly block deals in the
//! national market. Everything goes through the exchange journal and settles into the registry,
//! so `ets exchange bars` and `ets audit verify` see it afterwards.

use crate::output::table;
use crate::CliError;
use ets_core::{Date, Fen, Timestamp, Tonnes};
use ets_exchange::venue::{Command, Envelope, InstrumentSpec};
use ets_exchange::{Mode, Side, Tif};
use ets_registry::{AccountKind, Command as R, HolderType, PendingPurpose};
use ets_store::{ExchangeLog, Ledger, Location, VenueConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const YEAR: i32 = 2026;
const OPERATOR: &str = "exchange";
/// Members per market: the biggest holders of its allowances.
const MEMBERS: usize = 12;

/// Starting prices (yuan): Beijing ¥102 and Guangdong ¥51.37 are the 2024 averages in
/// china-ets.md §6.1; the others are demo values chosen to keep the observed ordering (the
/// national market between Beijing and the cheaper pilots).
const REFERENCE: [(&str, i64); 9] = [
    ("CN", 9_000),
    ("BJ", 10_200),
    ("SH", 7_000),
    ("GD", 5_137),
    ("SZ", 4_500),
    ("TJ", 3_000),
    ("HB", 4_000),
    ("CQ", 3_500),
    ("FJ", 2_500),
];

pub struct MarketTrading {
    pub market: String,
    pub instrument: String,
    pub trades: u64,
    pub listed_t: u64,
    pub block_t: u64,
    pub value_fen: i64,
    pub first_close: i64,
    pub last_close: i64,
    pub high: i64,
    pub low: i64,
    /// Month-end closes.
    pub monthly: Vec<i64>,
}

pub struct ExchangeDemo {
    pub days: u32,
    pub orders: u64,
    pub markets: Vec<MarketTrading>,
    pub head_hash: String,
}

fn at(date: Date, h: i64, m: i64) -> i64 {
    date.start().0 + (h * 60 + m - 8 * 60) * 60_000
}

fn registry_submit(ledger: &mut Ledger, at: i64, id: String, actor: &str, command: R) -> Result<(), CliError> {
    ledger.submit(Timestamp(at), &ets_registry::Envelope { id, actor: actor.to_string(), command })?;
    Ok(())
}

pub fn run(location: &Location, ledger: &mut Ledger, seed: u64) -> Result<ExchangeDemo, CliError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xe7c4);
    let mut log = ExchangeLog::open(location.open()?)?;
    let start = Date::from_ymd(YEAR, 1, 5).expect("date");
    let setup_at = at(start, 8, 0);
    // Clearing accounts, one per market, represented by the exchange.
    let markets: Vec<(String, String, String)> = ledger
        .registry()
        .markets()
        .iter()
        .map(|m| (m.spec.code.clone(), m.spec.allowance_code.clone(), m.spec.authorities[0].clone()))
        .collect();
    let mut clearing = BTreeMap::new();
    for (code, _, authority) in &markets {
        registry_submit(
            ledger,
            setup_at,
            format!("demo-clearing-{code}"),
            authority,
            R::OpenAccount {
                market: code.clone(),
                kind: AccountKind::Trading,
                holder: format!("{code} exchange clearing"),
                holder_type: HolderType::Institution,
                representatives: vec![OPERATOR.into()],
            },
        )?;
        clearing.insert(code.clone(), ledger.registry().accounts().last().expect("opened").number.clone());
    }
    log.init(VenueConfig { operator: OPERATOR.into(), clearing: clearing.clone(), holidays: holidays() }, Timestamp(setup_at))?;
    let mut n = 0u64;
    let mut batch: Vec<Envelope> = Vec::new();
    let send = |log: &mut ExchangeLog, ledger: &mut Ledger, batch: &mut Vec<Envelope>| -> Result<u64, CliError> {
        let results = log.submit_batch(batch, ledger)?;
        let accepted = results.iter().filter(|r| r.is_ok()).count() as u64;
        batch.clear();
        Ok(accepted)
    };
    let env = |n: &mut u64, actor: &str, at_ms: i64, command: Command| {
        *n += 1;
        Envelope { id: format!("demo-x{n}"), actor: actor.to_string(), at_ms, command }
    };
    // Instruments and members: per market, the allowance vintage with the most free units held
    // by operator accounts; its biggest holders sell, the next ones buy.
    let mut plan = Vec::new();
    for (code, allowance, _) in &markets {
        let r = ledger.registry();
        let mut by_unit: BTreeMap<u32, Vec<(u64, String, String)>> = BTreeMap::new();
        for (i, account) in r.accounts().iter().enumerate() {
            if account.kind != AccountKind::Operator || r.market(account.market).spec.code != *code {
                continue;
            }
            for (u, h) in r.holdings_of(ets_registry::AccountIdx(i as u32)) {
                let unit = r.unit_ref(u);
                if unit.code == *allowance && unit.project.is_none() && h.free_total() > 0 {
                    by_unit.entry(u.0).or_default().push((h.free_total(), account.number.clone(), account.representatives[0].clone()));
                }
            }
        }
        let Some((unit, mut holders)) = by_unit.into_iter().max_by_key(|(_, v)| v.iter().map(|x| x.0).sum::<u64>()) else { continue };
        holders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        if holders.len() < 2 {
            continue;
        }
        let unit = r.unit_ref(ets_registry::UnitTypeIdx(unit));
        let reference = REFERENCE.iter().find(|(m, _)| m == code).map_or(5_000, |(_, p)| *p);
        let mut spec = InstrumentSpec::national(unit.vintage, reference);
        spec.code = format!("{}-{}", unit.code, unit.vintage);
        spec.unit = unit;
        spec.market = code.clone();
        // Every member both lodges units and deposits cash, so units and cash circulate.
        let members: Vec<(u64, String, String)> = holders.iter().take(MEMBERS).cloned().collect();
        plan.push((spec, members.clone(), members));
    }
    for (spec, _, buyers) in &plan {
        batch.push(env(&mut n, OPERATOR, setup_at, Command::ListInstrument(spec.clone())));
        for (held, account, rep) in buyers {
            let member = rep.clone();
            batch.push(env(
                &mut n,
                OPERATOR,
                setup_at,
                Command::AddMember { member: member.clone(), accounts: BTreeMap::from([(spec.market.clone(), account.clone())]) },
            ));
            // Cash for a third of the holding at the reference price.
            batch.push(env(
                &mut n,
                OPERATOR,
                setup_at,
                Command::Deposit { member: member.clone(), amount_fen: spec.reference_price * (*held as i64 / 3).max(1_000) },
            ));
        }
    }
    send(&mut log, ledger, &mut batch)?;
    // Members lodge a third of their units: the registry pending first, then the venue.
    for (spec, sellers, _) in &plan {
        for (held, account, rep) in sellers {
            let qty = (held / 3).max(1);
            let pending = format!("demo-lodge-{}-{account}", spec.code);
            registry_submit(
                ledger,
                setup_at,
                pending.clone(),
                rep,
                R::CreatePending {
                    pending: pending.clone(),
                    from: account.clone(),
                    to: clearing[&spec.market].clone(),
                    unit: spec.unit.clone(),
                    quantity: Tonnes(qty),
                    purpose: PendingPurpose::Settlement,
                },
            )?;
            batch.push(env(
                &mut n,
                OPERATOR,
                setup_at,
                Command::Lodge { member: rep.clone(), instrument: spec.code.clone(), qty, pending },
            ));
        }
    }
    send(&mut log, ledger, &mut batch)?;

    // The year: each trading day, each instrument's fair value drifts; members quote around it.
    // Prices stay in integer ticks; moves are in basis points of the fair value.
    let mut fair: Vec<i64> = plan.iter().map(|(s, _, _)| s.reference_price).collect();
    let bp = |price: i64, points: i64| price * points / 10_000;
    let mut orders = 0u64;
    let mut order_id = 1u64;
    let mut days = 0u32;
    let mut date = start;
    let end = Date::from_ymd(YEAR, 12, 31).expect("date");
    let venue_day = |log: &ExchangeLog, d: Date| log.venue().expect("set up").is_trading_day(d);
    while date <= end {
        if !venue_day(&log, date) {
            date = date.plus_days(1);
            continue;
        }
        days += 1;
        batch.push(env(&mut n, OPERATOR, at(date, 9, 0), Command::OpenDay { date }));
        for (i, (spec, sellers, buyers)) in plan.iter().enumerate() {
            let close = log.venue().expect("set up").previous_close(&spec.code).expect("listed");
            let (low, high) = spec.rules.band(Mode::Listed, close);
            // Fair value: a mean-reverting walk (1.2% daily noise), inside the band.
            let noise_bp = rng.gen_range(-120..120);
            fair[i] = (fair[i] + bp(fair[i], noise_bp) + (spec.reference_price - fair[i]) / 50).clamp(low, high);
            // Thin pilots trade less: the national market gets the most order flow.
            let flow = if spec.market == "CN" { 60 } else { 16 };
            for k in 0..flow {
                let minute = 10 * 60 + k as i64 * (if k < flow / 2 { 1 } else { 2 });
                let t = if k < flow / 2 { at(date, 9, 30) + (minute - 600) * 60_000 } else { at(date, 13, 0) + (minute - 600) * 60_000 };
                let buy = rng.gen_bool(0.5);
                let (member, qty) = if buy {
                    let b = &buyers[rng.gen_range(0..buyers.len())];
                    (b.2.clone(), rng.gen_range(100..3_000u64).min(spec.rules.block_min_t - 1))
                } else {
                    let s = &sellers[rng.gen_range(0..sellers.len())];
                    (s.2.clone(), rng.gen_range(100..3_000u64))
                };
                let spread_bp = rng.gen_range(-60..60) + if buy { 40 } else { -40 };
                let price = (fair[i] + bp(fair[i], spread_bp)).clamp(low, high);
                let tif = if rng.gen_bool(0.2) { Tif::Ioc } else { Tif::Gtc };
                order_id += 1;
                orders += 1;
                batch.push(env(
                    &mut n,
                    &member,
                    t,
                    Command::Place {
                        order: order_id,
                        member: member.clone(),
                        instrument: spec.code.clone(),
                        side: if buy { Side::Buy } else { Side::Sell },
                        price: Some(price),
                        qty,
                        tif,
                    },
                ));
            }
            // A weekly block deal in the national market, negotiated near the fair value.
            if spec.market == "CN" && days % 5 == 2 {
                let deal = format!("blk-{date}");
                let (seller, buyer) = (&sellers[days as usize % sellers.len()].2, &buyers[(days as usize + 1) % buyers.len()].2);
                let (blow, bhigh) = spec.rules.band(Mode::Block, close);
                let price = (fair[i] - bp(fair[i], 300)).clamp(blow, bhigh);
                batch.push(env(
                    &mut n,
                    seller,
                    at(date, 13, 30),
                    Command::ProposeBlock {
                        deal: deal.clone(),
                        member: seller.clone(),
                        counterparty: buyer.clone(),
                        instrument: spec.code.clone(),
                        side: Side::Sell,
                        price,
                        qty: spec.rules.block_min_t,
                    },
                ));
                batch.push(env(&mut n, buyer, at(date, 14, 0), Command::ConfirmBlock { deal, member: buyer.clone() }));
            }
        }
        batch.push(env(&mut n, OPERATOR, at(date, 15, 30), Command::CloseDay));
        send(&mut log, ledger, &mut batch)?;
        date = date.plus_days(1);
    }
    let venue = log.venue().expect("set up");
    let mut out = Vec::new();
    for (spec, _, _) in &plan {
        let bars = venue.bars(&spec.code);
        let mut monthly = Vec::new();
        for (k, bar) in bars.iter().enumerate() {
            let month = bar.date.ymd().1;
            if bars.get(k + 1).is_none_or(|next| next.date.ymd().1 != month) {
                monthly.push(bar.close);
            }
        }
        let trades: Vec<&ets_exchange::venue::Trade> = venue.trades().iter().filter(|t| *t.instrument == *spec.code).collect();
        out.push(MarketTrading {
            market: spec.market.clone(),
            instrument: spec.code.clone(),
            trades: trades.len() as u64,
            listed_t: bars.iter().map(|b| b.listed_volume).sum(),
            block_t: bars.iter().map(|b| b.block_volume).sum(),
            value_fen: bars.iter().map(|b| b.value_fen).sum(),
            first_close: bars.first().map_or(spec.reference_price, |b| b.close),
            last_close: bars.last().map_or(spec.reference_price, |b| b.close),
            high: bars.iter().filter_map(|b| b.high).max().unwrap_or(spec.reference_price),
            low: bars.iter().filter_map(|b| b.low).min().unwrap_or(spec.reference_price),
            monthly,
        });
    }
    venue.check_invariants().map_err(|m| CliError::new(crate::ExitCode::Internal, format!("exchange invariant broken: {m}")))?;
    Ok(ExchangeDemo { days, orders, markets: out, head_hash: ets_registry::journal::hex(&log.head().1) })
}

/// Chinese public holidays falling on weekdays in 2026 (New Year, Spring Festival, Qingming,
/// Labour Day, Dragon Boat, Mid-Autumn, National Day), as demo data for the trading calendar,
/// and New Year's Day of the next year (fixed by law; `ets serve --demo` opens the first trading
/// day after the demo year). The rest of the next year's schedule is set by the State Council
/// late in the year before, so it is not guessed here.
fn holidays() -> BTreeSet<Date> {
    let d = |m, day| Date::from_ymd(YEAR, m, day).expect("date");
    let mut h = BTreeSet::from([d(1, 1), d(1, 2), d(4, 6), d(5, 1), d(5, 4), d(5, 5), d(6, 19), d(9, 25)]);
    h.insert(Date::from_ymd(YEAR + 1, 1, 1).expect("date"));
    for day in 16..=20 {
        h.insert(d(2, day));
    }
    for day in 1..=7 {
        h.insert(d(10, day));
    }
    h
}

impl ExchangeDemo {
    pub fn json(&self) -> Value {
        json!({
            "year": YEAR, "trading_days": self.days, "orders": self.orders, "journal_head_hash": self.head_hash,
            "markets": self.markets.iter().map(|m| json!({
                "market": m.market, "instrument": m.instrument, "trades": m.trades, "listed_t": m.listed_t, "block_t": m.block_t,
                "value_fen": m.value_fen, "first_close_fen": m.first_close, "last_close_fen": m.last_close,
                "high_fen": m.high, "low_fen": m.low, "monthly_close_fen": m.monthly,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn print(&self, db: &str) {
        println!("exchange: trading year {YEAR}, {} trading days, {} orders, settled into the registry", self.days, self.orders);
        let yuan = |f: i64| Fen(f).to_string();
        let rows: Vec<Vec<String>> = self
            .markets
            .iter()
            .map(|m| {
                vec![
                    m.market.clone(),
                    m.instrument.clone(),
                    m.trades.to_string(),
                    Tonnes(m.listed_t).to_string(),
                    Tonnes(m.block_t).to_string(),
                    yuan(m.value_fen),
                    yuan(m.first_close),
                    yuan(m.low),
                    yuan(m.high),
                    yuan(m.last_close),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["MARKET", "INSTRUMENT", "TRADES", "LISTED_T", "BLOCK_T", "VALUE_CNY", "FIRST_CLOSE", "LOW", "HIGH", "LAST_CLOSE"],
                &rows
            )
        );
        for m in &self.markets {
            let series: Vec<String> = m.monthly.iter().map(|c| yuan(*c)).collect();
            println!("  {} month-end closes: {}", m.instrument, series.join(" "));
        }
        if let Some(cn) = self.markets.iter().find(|m| m.market == "CN") {
            println!("  try: ets {db} exchange bars {}   ets {db} exchange instruments", cn.instrument);
        }
    }
}
