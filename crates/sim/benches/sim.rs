//! Policy simulation benchmarks (issue 8 targets: equilibrium of 100,000 firms across 9 markets
//! under 100 ms; an agent-based year of 10,000 firms trading daily under 10 s).
//!
//!     cargo bench -p ets-sim --bench sim

use criterion::{criterion_group, criterion_main, Criterion};
use ets_sim::equilibrium::{solve, Regime};
use ets_sim::scenario::{AgentSpec, Draw, Scenario};
use std::hint::black_box;
use std::time::Duration;

/// The calibrated 9 markets split into `per_market` firms each (gamma = 1: linear, closed form;
/// other gamma: power law, the bracketing solver).
fn markets(per_market: usize, gamma: f64) -> Vec<ets_sim::market::Market> {
    let text = format!("[scenario]\nname = \"bench\"\nseed = 1\nfirms_per_market = {per_market}\n[equilibrium]\n");
    let mut s = Scenario::parse(&text).unwrap();
    for m in &mut s.markets {
        if let ets_sim::scenario::MacSpec::Calibrated { gamma: g, .. } = &mut m.mac {
            *g = gamma;
        }
    }
    s.build_markets(&vec![Draw::default(); s.markets.len()]).unwrap()
}

fn equilibrium(c: &mut Criterion) {
    let mut g = c.benchmark_group("equilibrium");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    // 11,112 firms × 9 markets = 100,008 firms.
    for (name, gamma) in [("linear (closed form)", 1.0), ("power law 1.5 (solver)", 1.5)] {
        let m = markets(11_112, gamma);
        g.bench_function(format!("100k firms, 9 markets, autarky + integrated, {name}"), |b| {
            b.iter(|| {
                let a = solve(black_box(&m), &Regime::Autarky).unwrap();
                let i = solve(black_box(&m), &Regime::Integrated).unwrap();
                (a.total_cost, i.total_cost)
            })
        });
    }
    g.finish();
}

fn banking(c: &mut Criterion) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sim/banking-msr.toml")).unwrap();
    let s = Scenario::parse(&text).unwrap();
    let b = s.banking.clone().unwrap();
    let mut g = c.benchmark_group("banking");
    g.sample_size(20);
    let with_msr = ets_sim::run::path_model(&s, &b, &vec![Draw::default(); s.markets.len()]).unwrap();
    let mut without = with_msr.clone();
    without.msr = None;
    g.bench_function("10 periods, floor, no MSR", |bch| bch.iter(|| black_box(&without).solve().unwrap().present_cost));
    g.bench_function("10 periods, floor, MSR fixed point", |bch| bch.iter(|| black_box(&with_msr).solve().unwrap().present_cost));
    g.finish();
}

fn monte_carlo(c: &mut Criterion) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sim/integration.toml")).unwrap();
    let s = Scenario::parse(&text.replace("draws = 500", "draws = 1000")).unwrap();
    let mut g = c.benchmark_group("monte_carlo");
    g.sample_size(10);
    g.bench_function("1,000 draws, 9 markets, autarky + integrated (integration.toml)", |b| {
        b.iter(|| ets_sim::run::run(black_box(&s), &mut |_, _, _| {}).unwrap().files.len())
    });
    g.finish();
}

fn agents(c: &mut Criterion) {
    let mut s = Scenario::parse("[scenario]\nname = \"bench\"\nseed = 1\nmarkets = [\"CN\"]\n[equilibrium]\n").unwrap();
    s.markets[0].firms = 10_000;
    let market = s.markets[0].build(1, 0.8, Draw::default()).unwrap();
    let spec = AgentSpec {
        market: "CN".into(),
        firms: 10_000,
        days: 242,
        listed_band: 0.10,
        participation: 0.2,
        deadline_rush: 4.0,
        learning: 0.3,
        noise: 0.05,
        shock_sd: 0.02,
        start_price: None,
    };
    let mut g = c.benchmark_group("agents");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("10,000 firms, 242 trading days through the order book", |b| {
        b.iter(|| ets_sim::agents::run(black_box(&market), &spec, 1, 95.96, &mut |_, _| {}).unwrap().trades)
    });
    g.finish();
}

criterion_group!(benches, equilibrium, banking, monte_carlo, agents);
criterion_main!(benches);
