//! Our matching core side by side with published order-book crates, fed the very same order flow
//! in one run (a bench binary, not a timed test).
//!
//!     cargo bench -p ets-exchange --bench compare                      # 200,000 operations
//!     ETS_BENCH_SCALE=full cargo bench -p ets-exchange --bench compare # 10,000,000 operations
//!
//! Engines: `ets` (this crate's `OrderBook`), `matchcore` 0.4.0, `lobster` 0.7.0 and
//! `orderbook-rs` 0.15.3, each behind a thin adapter. Each engine's commands are built in its own
//! types before the clock starts; the timed loop is the engine's call plus reading its trades.
//!
//! The flow (seeded, ChaCha8): one instrument at ¥80.00 (8,000 ticks of 0.01), a mid price that
//! walks ±2 ticks every 1,000 operations inside a ±10% band; about 10% IOC limit orders that
//! cross into the opposite side (up to 3 ticks through the best price, 1–300 lots), cancels of
//! resting orders (about 35% of operations when the book holds its target of 5,000 resting
//! orders, fewer below it), and GTC limit orders (1–100 lots) at a triangular distance from the
//! mid (mostly passive, a few percent marketable). The generator runs our book to know which
//! orders rest, so every cancel names a resting order. Every order has its own owner, so our
//! self-trade prevention never applies (the other engines have none configured). matchcore 0.4.0
//! matches a crossing limit order as if it had no limit (it trades on into levels beyond its
//! price), so the generator cuts a crossing order to what rests within its limit: a crossing
//! order fills completely and never rests, on every engine alike.
//!
//! Per engine: throughput over the whole flow (a fresh book per round, rounds interleaved across
//! engines, best and median round), then a separate pass on a fresh book timing each operation
//! with `Instant` (timer overhead subtracted), and the number of trades and lots traded, which
//! must be equal across engines.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const BASE: i64 = 8_000;
const TARGET_RESTING: usize = 5_000;

/// One operation of the flow, engine-neutral. `id` is the operation's sequence number (1-based),
/// so an order's id is the sequence number of the operation that placed it.
#[derive(Clone, Copy, Debug)]
enum Op {
    Limit { id: u64, buy: bool, price: i64, qty: u64, ioc: bool },
    Cancel { id: u64, order: u64 },
}

struct Flow {
    ops: Vec<Op>,
    places: usize,
    iocs: usize,
    cancels: usize,
    capped: usize,
    max_resting: usize,
    trades: u64,
    traded: u64,
}

fn flow(n: usize, seed: u64) -> Flow {
    use ets_exchange::{Event, OrderBook, Side};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ops = Vec::with_capacity(n);
    let mut book = OrderBook::new();
    let mut events = Vec::with_capacity(64);
    // Resting orders as the generator knows them: ids (for a random pick) and remaining lots.
    let mut live: Vec<u64> = Vec::new();
    let mut resting: HashMap<u64, (usize, u64)> = HashMap::new();
    let (mut places, mut iocs, mut cancels, mut capped, mut max_resting, mut trades, mut traded) = (0, 0, 0, 0, 0, 0u64, 0u64);
    let mut mid = BASE;
    let band = BASE / 10;
    for i in 0..n {
        let seq = i as u64 + 1;
        if i % 1_000 == 999 {
            mid = (mid + rng.gen_range(-2..=2)).clamp(BASE - band + 100, BASE + band - 100);
        }
        let r = rng.gen_range(0..100u32) as f64;
        let cancel_share = (35.0 * live.len() as f64 / TARGET_RESTING as f64).min(60.0);
        let op = if r < 10.0 {
            let buy = rng.gen_bool(0.5);
            let through = rng.gen_range(0..=3);
            let price = if buy {
                book.best_ask().map_or(mid + 1, |(p, _)| p) + through
            } else {
                book.best_bid().map_or(mid - 1, |(p, _)| p) - through
            };
            iocs += 1;
            Op::Limit { id: seq, buy, price, qty: rng.gen_range(1..=300), ioc: true }
        } else if r < 10.0 + cancel_share && !live.is_empty() {
            let order = live[rng.gen_range(0..live.len())];
            cancels += 1;
            Op::Cancel { id: seq, order }
        } else {
            let buy = rng.gen_bool(0.5);
            let distance = rng.gen_range(0..20) + rng.gen_range(0..20) - 4;
            let price = if buy { mid - distance } else { mid + distance };
            places += 1;
            Op::Limit { id: seq, buy, price, qty: rng.gen_range(1..=100), ioc: false }
        };
        // matchcore 0.4.0 matches a crossing limit order without its limit price (it sweeps on
        // into worse levels), so no order asks for more than rests within its limit.
        let op = match op {
            Op::Limit { id, buy, price, qty, ioc } => {
                let opposite = if buy { Side::Sell } else { Side::Buy };
                let within: u64 =
                    book.depth(opposite, 64).iter().take_while(|(p, _)| if buy { *p <= price } else { *p >= price }).map(|l| l.1).sum();
                if within > 0 && qty > within {
                    capped += 1;
                }
                Op::Limit { id, buy, price, qty: if within > 0 { qty.min(within) } else { qty }, ioc }
            }
            cancel => cancel,
        };
        ops.push(op);
        let command = ets_command(&op);
        events.clear();
        book.execute(&command, &mut events).expect("the generator's flow is valid");
        let remove = |live: &mut Vec<u64>, resting: &mut HashMap<u64, (usize, u64)>, id: u64| {
            let (pos, _) = resting.remove(&id).expect("resting");
            live.swap_remove(pos);
            if pos < live.len() {
                resting.get_mut(&live[pos]).expect("resting").0 = pos;
            }
        };
        for e in &events {
            match *e {
                Event::Trade { maker, qty, .. } => {
                    trades += 1;
                    traded += qty;
                    let left = {
                        let r = resting.get_mut(&maker).expect("maker rests");
                        r.1 -= qty;
                        r.1
                    };
                    if left == 0 {
                        remove(&mut live, &mut resting, maker);
                    }
                }
                Event::Rested { id, qty } => {
                    resting.insert(id, (live.len(), qty));
                    live.push(id);
                }
                Event::Cancelled { id, .. } if resting.contains_key(&id) => remove(&mut live, &mut resting, id),
                _ => {}
            }
        }
        max_resting = max_resting.max(live.len());
    }
    Flow { ops, places, iocs, cancels, capped, max_resting, trades, traded }
}

fn ets_command(op: &Op) -> ets_exchange::Command {
    use ets_exchange::{Command, Side, Tif};
    match *op {
        Op::Limit { id, buy, price, qty, ioc } => Command::Place {
            id,
            // One owner per order: no self-trade prevention in this flow.
            owner: id as u32,
            side: if buy { Side::Buy } else { Side::Sell },
            price: Some(price),
            qty,
            tif: if ioc { Tif::Ioc } else { Tif::Gtc },
        },
        Op::Cancel { order, .. } => Command::Cancel { id: order },
    }
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Tally {
    trades: u64,
    traded: u64,
    refused: u64,
}

/// A thin adapter: commands prepared in the engine's own types, then executed one by one.
trait Engine {
    const NAME: &'static str;
    type Cmd;
    fn new() -> Self;
    fn prepare(ops: &[Op]) -> Vec<Self::Cmd>;
    fn run(&mut self, cmd: &Self::Cmd, tally: &mut Tally);
    /// Trades counted outside `run` (a listener), added at the end.
    fn finish(&mut self, _tally: &mut Tally) {}
}

struct Ets {
    book: ets_exchange::OrderBook,
    events: Vec<ets_exchange::Event>,
}

impl Engine for Ets {
    const NAME: &'static str = "ets (this crate)";
    type Cmd = ets_exchange::Command;
    fn new() -> Self {
        Ets { book: ets_exchange::OrderBook::new(), events: Vec::with_capacity(64) }
    }
    fn prepare(ops: &[Op]) -> Vec<Self::Cmd> {
        ops.iter().map(ets_command).collect()
    }
    #[inline]
    fn run(&mut self, cmd: &Self::Cmd, tally: &mut Tally) {
        self.events.clear();
        if self.book.execute(cmd, &mut self.events).is_err() {
            tally.refused += 1;
        }
        for e in &self.events {
            if let ets_exchange::Event::Trade { qty, .. } = e {
                tally.trades += 1;
                tally.traded += qty;
            }
        }
    }
}

struct Matchcore(matchcore::OrderBook);

impl Engine for Matchcore {
    const NAME: &'static str = "matchcore 0.4.0";
    type Cmd = matchcore::Command;
    fn new() -> Self {
        Matchcore(matchcore::OrderBook::new("CEA"))
    }
    fn prepare(ops: &[Op]) -> Vec<Self::Cmd> {
        use matchcore::*;
        ops.iter()
            .map(|op| match *op {
                // matchcore wants sequence numbers 0, 1, 2, … and names an order by the sequence
                // number of its submit command: both are our id less one.
                Op::Limit { id, buy, price, qty, ioc } => Command {
                    meta: CommandMeta { sequence_number: SequenceNumber(id - 1), timestamp: Timestamp(id) },
                    kind: CommandKind::Submit(SubmitCmd {
                        order: NewOrder::Limit(LimitOrder::new(
                            Price(price as u64),
                            QuantityPolicy::Standard { quantity: Quantity(qty) },
                            OrderFlags::new(
                                if buy { Side::Buy } else { Side::Sell },
                                false,
                                if ioc { TimeInForce::Ioc } else { TimeInForce::Gtc },
                            ),
                        )),
                    }),
                },
                Op::Cancel { id, order } => Command {
                    meta: CommandMeta { sequence_number: SequenceNumber(id - 1), timestamp: Timestamp(id) },
                    kind: CommandKind::Cancel(CancelCmd { order_id: OrderId(order - 1), order_kind: OrderKind::Limit }),
                },
            })
            .collect()
    }
    #[inline]
    fn run(&mut self, cmd: &Self::Cmd, tally: &mut Tally) {
        use matchcore::*;
        match self.0.execute(cmd) {
            CommandOutcome::Applied(CommandReport::Submit(effects)) => {
                if let Some(m) = effects.target_order().match_result() {
                    for t in m.trades() {
                        tally.trades += 1;
                        tally.traded += t.quantity().0;
                    }
                }
            }
            CommandOutcome::Applied(_) => {}
            CommandOutcome::Rejected(_) => tally.refused += 1,
        }
    }
}

struct Lobster(lobster::OrderBook);

impl Engine for Lobster {
    const NAME: &'static str = "lobster 0.7.0";
    /// lobster has no IOC: a limit order, then a cancel of what rested (inside the timed call).
    type Cmd = (lobster::OrderType, bool);
    fn new() -> Self {
        // Arena pre-sized for the resting orders, as its defaults intend (10,000).
        Lobster(lobster::OrderBook::default())
    }
    fn prepare(ops: &[Op]) -> Vec<Self::Cmd> {
        use lobster::{OrderType, Side};
        ops.iter()
            .map(|op| match *op {
                Op::Limit { id, buy, price, qty, ioc } => {
                    (OrderType::Limit { id: id as u128, side: if buy { Side::Bid } else { Side::Ask }, qty, price: price as u64 }, ioc)
                }
                Op::Cancel { order, .. } => (OrderType::Cancel { id: order as u128 }, false),
            })
            .collect()
    }
    #[inline]
    fn run(&mut self, cmd: &Self::Cmd, tally: &mut Tally) {
        use lobster::{OrderEvent, OrderType};
        let (order, ioc) = *cmd;
        let event = self.0.execute(order);
        let rested = match &event {
            OrderEvent::Placed { .. } => true,
            OrderEvent::PartiallyFilled { fills, .. } | OrderEvent::Filled { fills, .. } => {
                for f in fills {
                    tally.trades += 1;
                    tally.traded += f.qty;
                }
                matches!(event, OrderEvent::PartiallyFilled { .. })
            }
            _ => false,
        };
        if ioc && rested {
            if let OrderType::Limit { id, .. } = order {
                self.0.execute(OrderType::Cancel { id });
            }
        }
    }
}

struct OrderbookRs {
    book: orderbook_rs::OrderBook<()>,
    trades: Arc<AtomicU64>,
    traded: Arc<AtomicU64>,
}

impl Engine for OrderbookRs {
    const NAME: &'static str = "orderbook-rs 0.15.3";
    type Cmd = Op;
    fn new() -> Self {
        let trades = Arc::new(AtomicU64::new(0));
        let traded = Arc::new(AtomicU64::new(0));
        let (t, q) = (trades.clone(), traded.clone());
        // Its trades reach the listener on every path (an IOC's fills come back as an error
        // with the fills, not as a result); count them there.
        let listener: orderbook_rs::TradeListener = Arc::new(move |r: &orderbook_rs::TradeResult| {
            for tr in r.match_result.trades().as_vec() {
                t.fetch_add(1, Ordering::Relaxed);
                q.fetch_add(tr.quantity().as_u64(), Ordering::Relaxed);
            }
        });
        OrderbookRs { book: orderbook_rs::OrderBook::with_trade_listener("CEA", listener), trades, traded }
    }
    fn prepare(ops: &[Op]) -> Vec<Self::Cmd> {
        ops.to_vec()
    }
    #[inline]
    fn run(&mut self, cmd: &Self::Cmd, tally: &mut Tally) {
        use orderbook_rs::{Id, Side, TimeInForce};
        match *cmd {
            Op::Limit { id, buy, price, qty, ioc } => {
                let r = self.book.add_limit_order(
                    Id::from_u64(id),
                    price as u128,
                    qty,
                    if buy { Side::Buy } else { Side::Sell },
                    if ioc { TimeInForce::Ioc } else { TimeInForce::Gtc },
                    None,
                );
                // An IOC remainder that cannot fill is reported as an error: not a refusal.
                if r.is_err() && !ioc {
                    tally.refused += 1;
                }
            }
            Op::Cancel { order, .. } => {
                if !matches!(self.book.cancel_order(Id::from_u64(order)), Ok(Some(_))) {
                    tally.refused += 1;
                }
            }
        }
    }
    fn finish(&mut self, tally: &mut Tally) {
        tally.trades += self.trades.swap(0, Ordering::Relaxed);
        tally.traded += self.traded.swap(0, Ordering::Relaxed);
    }
}

struct Report {
    name: &'static str,
    rounds: Vec<f64>,
    tally: Tally,
    lat: Vec<u64>,
    lat_mean: f64,
}

fn throughput<E: Engine>(cmds: &[E::Cmd]) -> (f64, Tally) {
    let mut engine = E::new();
    let mut tally = Tally::default();
    let started = Instant::now();
    for c in cmds {
        engine.run(black_box(c), &mut tally);
    }
    let elapsed = started.elapsed().as_secs_f64();
    engine.finish(&mut tally);
    drop(black_box(engine));
    (cmds.len() as f64 / elapsed, tally)
}

/// Each operation timed on its own; `overhead` (a back-to-back pair of `Instant::now`) subtracted.
fn latency<E: Engine>(cmds: &[E::Cmd], overhead: u64) -> (Vec<u64>, f64) {
    let mut engine = E::new();
    let mut tally = Tally::default();
    let mut lat = Vec::with_capacity(cmds.len());
    for c in cmds {
        let t = Instant::now();
        engine.run(black_box(c), &mut tally);
        lat.push((t.elapsed().as_nanos() as u64).saturating_sub(overhead));
    }
    let mean = lat.iter().sum::<u64>() as f64 / lat.len() as f64;
    lat.sort_unstable();
    (lat, mean)
}

fn timer_overhead() -> u64 {
    let mut v: Vec<u64> = (0..200_000)
        .map(|_| {
            let t = Instant::now();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn pct(lat: &[u64], p: f64) -> u64 {
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)]
}

struct Prepared {
    ets: Vec<<Ets as Engine>::Cmd>,
    matchcore: Vec<<Matchcore as Engine>::Cmd>,
    lobster: Vec<<Lobster as Engine>::Cmd>,
    orderbook_rs: Vec<<OrderbookRs as Engine>::Cmd>,
}

fn main() {
    let full = std::env::var("ETS_BENCH_SCALE").as_deref() == Ok("full");
    let n: usize = std::env::var("ETS_BENCH_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(if full { 10_000_000 } else { 200_000 });
    let rounds: usize = std::env::var("ETS_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    // A subset of engines by name, e.g. ETS_BENCH_ENGINES=ets,matchcore.
    let only = std::env::var("ETS_BENCH_ENGINES").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o.split(',').any(|w| name.starts_with(w.trim())));

    let t = Instant::now();
    let f = flow(n, 2026);
    eprintln!(
        "flow: {} operations ({} GTC limit, {} IOC limit, {} cancels; {} crossing orders cut to what rests within their limit), at most {} resting, {} trades, {} lots; generated in {:.1} s",
        n,
        f.places,
        f.iocs,
        f.cancels,
        f.capped,
        f.max_resting,
        f.trades,
        f.traded,
        t.elapsed().as_secs_f64()
    );
    let p = Prepared {
        ets: Ets::prepare(&f.ops),
        matchcore: Matchcore::prepare(&f.ops),
        lobster: Lobster::prepare(&f.ops),
        orderbook_rs: OrderbookRs::prepare(&f.ops),
    };
    let names = [Ets::NAME, Matchcore::NAME, Lobster::NAME, OrderbookRs::NAME];
    let mut reports: Vec<Report> = names
        .iter()
        .filter(|n| wanted(n))
        .map(|&name| Report { name, rounds: Vec::new(), tally: Tally::default(), lat: Vec::new(), lat_mean: 0.0 })
        .collect();
    for round in 0..rounds {
        for r in reports.iter_mut() {
            let (ops, tally) = match r.name {
                n if n == Ets::NAME => throughput::<Ets>(&p.ets),
                n if n == Matchcore::NAME => throughput::<Matchcore>(&p.matchcore),
                n if n == Lobster::NAME => throughput::<Lobster>(&p.lobster),
                _ => throughput::<OrderbookRs>(&p.orderbook_rs),
            };
            eprintln!("round {}: {:<22} {:>6.2} M ops/s", round + 1, r.name, ops / 1e6);
            r.rounds.push(ops);
            r.tally = tally;
        }
    }
    let overhead = timer_overhead();
    for r in reports.iter_mut() {
        let (lat, mean) = match r.name {
            n if n == Ets::NAME => latency::<Ets>(&p.ets, overhead),
            n if n == Matchcore::NAME => latency::<Matchcore>(&p.matchcore, overhead),
            n if n == Lobster::NAME => latency::<Lobster>(&p.lobster, overhead),
            _ => latency::<OrderbookRs>(&p.orderbook_rs, overhead),
        };
        r.lat = lat;
        r.lat_mean = mean;
    }

    println!(
        "\n{} operations, one thread, {} throughput rounds per engine (interleaved); latency pass: every operation timed, timer overhead {} ns subtracted\n",
        n, rounds, overhead
    );
    println!("| engine | ops/s, best round | ops/s, median round | p50 | p99 | p99.9 | mean | trades | lots traded | refused |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &reports {
        let mut sorted = r.rounds.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "| {} | {:.2} M | {:.2} M | {} ns | {} ns | {} ns | {:.0} ns | {} | {} | {} |",
            r.name,
            sorted[sorted.len() - 1] / 1e6,
            sorted[sorted.len() / 2] / 1e6,
            pct(&r.lat, 0.50),
            pct(&r.lat, 0.99),
            pct(&r.lat, 0.999),
            r.lat_mean,
            r.tally.trades,
            r.tally.traded,
            r.tally.refused
        );
    }
    let mut agree = true;
    for r in &reports {
        if (r.tally.trades, r.tally.traded) != (f.trades, f.traded) {
            agree = false;
            println!(
                "\nDISAGREEMENT: {} made {} trades / {} lots; the generator's run of ets made {} / {}",
                r.name, r.tally.trades, r.tally.traded, f.trades, f.traded
            );
        }
    }
    if agree {
        println!("\nAll engines agree: {} trades, {} lots traded.", f.trades, f.traded);
    } else {
        std::process::exit(1);
    }
}
