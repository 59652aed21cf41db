//! The matching core on one core: a bench binary (not a timed test).
//!
//!     cargo bench -p ets-exchange --bench book                     # 2,000,000 operations
//!     ETS_BENCH_SCALE=full cargo bench -p ets-exchange --bench book   # 20,000,000
//!
//! A seeded flow around a moving mid price: 60% limit orders (GTC, a third of them crossing),
//! 30% cancels of resting orders, 10% IOC orders; throughput over the whole run and the latency
//! of single operations (p50, p99) from a timed sample.

use ets_exchange::{Command, OrderBook, Side, Tif};
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn flow(n: usize) -> Vec<Command> {
    let mut rng = Rng(7);
    let mut out = Vec::with_capacity(n);
    let mut live: Vec<u64> = Vec::new();
    let mut id = 0u64;
    let mid = 8_000i64; // ¥80.00 in ticks of 0.01
    for _ in 0..n {
        let r = rng.below(100);
        if r < 30 && !live.is_empty() {
            let i = rng.below(live.len() as u64) as usize;
            out.push(Command::Cancel { id: live.swap_remove(i) });
            continue;
        }
        id += 1;
        let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
        let offset = rng.below(40) as i64 - 10; // a quarter cross the spread
        let price = match side {
            Side::Buy => mid - offset,
            Side::Sell => mid + offset,
        };
        let tif = if r >= 90 { Tif::Ioc } else { Tif::Gtc };
        if tif == Tif::Gtc {
            live.push(id);
        }
        out.push(Command::Place { id, owner: rng.below(500) as u32, side, price: Some(price), qty: 1 + rng.below(200), tif });
    }
    out
}

fn main() {
    let n = if std::env::var("ETS_BENCH_SCALE").as_deref() == Ok("full") { 20_000_000 } else { 2_000_000 };
    let commands = flow(n);
    let mut book = OrderBook::new();
    let mut events = Vec::with_capacity(64);
    let mut refused = 0usize;
    let started = Instant::now();
    for c in &commands {
        events.clear();
        // Cancels of orders that already traded away are refused: part of the mix.
        if book.execute(c, &mut events).is_err() {
            refused += 1;
        }
    }
    let elapsed = started.elapsed();
    // Latency of single operations on a fresh book with the same flow (every 100th timed).
    let mut book = OrderBook::new();
    let mut samples = Vec::with_capacity(n / 100);
    for (i, c) in commands.iter().enumerate() {
        events.clear();
        if i % 100 == 0 {
            let t = Instant::now();
            let _ = book.execute(c, &mut events);
            samples.push(t.elapsed().as_nanos() as u64);
        } else {
            let _ = book.execute(c, &mut events);
        }
    }
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!("| figure | value | conditions |\n|---|---|---|");
    println!(
        "| matching core, one core | {:.2} M operations/s ({} operations in {:.3} s; {} cancels of already-filled orders refused) | 60% limit, 30% cancel, 10% IOC |",
        n as f64 / elapsed.as_secs_f64() / 1e6,
        n,
        elapsed.as_secs_f64(),
        refused
    );
    println!("| latency per operation | p50 {} ns, p99 {} ns | every 100th operation timed |", pct(50), pct(99));
}
