//! Daily mark-to-market and margining of 100,000 open positions (issue 9: under 1 s):
//! - `settle_100k_futures_positions`: one settlement price, variation margin on 100,000 open
//!   futures positions (50,000 long, 50,000 short, one party each) with the shortfall check;
//! - `mark_100k_pledges`: one closing price valuing 100,000 active pledges with haircut and
//!   maintenance level (margin calls opened and cleared as the price alternates).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ets_core::Date;
use ets_finance::desk::ContractSpec;
use ets_finance::{Command, Desk, Envelope, Settlement};
use ets_registry::UnitRef;
use std::collections::BTreeMap;

const N: usize = 100_000;

fn env(date: Date, actor: &str, command: Command) -> Envelope {
    Envelope { id: String::new(), actor: actor.into(), date, command }
}

fn setup() -> (Desk, BTreeMap<(String, String), u64>, Date) {
    let date = Date::from_ymd(2025, 6, 2).unwrap();
    let unit = UnitRef::allowance("CEA", 2025);
    let mut holdings = BTreeMap::new();
    let mut desk = Desk::new("desk", "auth");
    let run = |desk: &mut Desk, holdings: &BTreeMap<(String, String), u64>, actor: &str, c: Command| {
        desk.execute(&env(date, actor, c), holdings).unwrap();
    };
    let party = |i: usize| format!("m{i:06}");
    for i in 0..=N {
        holdings.insert((format!("acct-{i}"), unit.to_string()), 1_000);
    }
    for i in 0..=N {
        run(&mut desk, &holdings, "desk", Command::AddParty { party: party(i), account: format!("acct-{i}") });
        run(&mut desk, &holdings, "desk", Command::Deposit { party: party(i), amount_fen: 1_000_000_000_000 });
    }
    let spec = ContractSpec {
        code: "F".into(),
        unit: unit.clone(),
        size_t: 1_000,
        expiry: date.plus_days(30),
        settlement: Settlement::Physical,
        initial_margin_fen: 1_000_000,
        position_limit: 100,
        reference_price_fen: 10_000,
        delivery_penalty_bp: 0,
    };
    run(&mut desk, &holdings, "desk", Command::ListContract(spec));
    for i in (1..=N).step_by(2) {
        let c = Command::Trade {
            contract: "F".into(),
            buyer: party(i),
            seller: party(i + 1),
            contracts: 1 + (i % 7) as u64,
            price_fen: 10_000,
        };
        run(&mut desk, &holdings, "desk", c);
    }
    assert_eq!(desk.contract("F").unwrap().positions.len(), N);
    for i in 1..=N {
        let c = Command::Pledge {
            pledge: format!("P{i}"),
            lender: party(0),
            borrower: party(i),
            unit: unit.clone(),
            quantity: 1_000,
            loan_fen: 5_000_000,
            haircut_bp: 3_000,
            maintenance_bp: 12_000,
            topup_days: 3,
            maturity: date.plus_days(90),
        };
        run(&mut desk, &holdings, "desk", c);
    }
    (desk, holdings, date)
}

fn bench(c: &mut Criterion) {
    let (mut desk, holdings, date) = setup();
    let mut g = c.benchmark_group("margin");
    g.sample_size(10);
    let mut flip = false;
    g.bench_function("settle_100k_futures_positions", |b| {
        b.iter(|| {
            flip = !flip;
            let price = if flip { 10_300 } else { 9_700 };
            let out = desk.execute(&env(date, "desk", Command::SettlePrice { contract: "F".into(), price_fen: price }), &holdings).unwrap();
            black_box(out.events.len())
        })
    });
    g.bench_function("mark_100k_pledges", |b| {
        b.iter(|| {
            flip = !flip;
            // ¥100 keeps every pledge above 120% (70m ≥ 60m per 1,000 t); ¥80 calls them all.
            let close = if flip { 10_000 } else { 8_000 };
            let out = desk
                .execute(&env(date, "desk", Command::Mark { unit: UnitRef::allowance("CEA", 2025), close_fen: close }), &holdings)
                .unwrap();
            black_box(out.events.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
