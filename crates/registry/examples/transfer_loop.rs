//! A bare loop of in-memory transfers, for profilers: `perf record cargo run --release -p
//! ets-registry --example transfer_loop -- 3000000`. Setup is done before the loop; the loop
//! is the same work as the `core` criterion bench.

use ets_core::Tonnes;
use ets_registry::{AccountKind, Command, Envelope, HolderType, MarketLevel, MarketSpec, Registry, UnitRef};
use std::time::Instant;

const ACCOUNTS: u32 = 10_000;

fn main() {
    let setup = Instant::now();
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3_000_000);
    let mut r = Registry::new();
    let run = |r: &mut Registry, id: String, actor: &str, command: Command| {
        r.execute(&Envelope { id, actor: actor.into(), command }).expect("accepted");
    };
    run(&mut r, "init".into(), "admin", Command::InitRegistry { admins: vec!["admin".into()] });
    let spec = MarketSpec {
        code: "CN".into(),
        name: "National".into(),
        level: MarketLevel::National,
        allowance_code: "CEA".into(),
        offset_standards: vec![],
        individuals_may_trade: false,
        authorities: vec!["mee".into()],
    };
    run(&mut r, "cn".into(), "admin", Command::AddMarket(spec));
    for i in 0..ACCOUNTS {
        let open = Command::OpenAccount {
            market: "CN".into(),
            kind: AccountKind::Operator,
            holder: format!("E{i}"),
            holder_type: HolderType::Entity,
            representatives: vec![format!("r{i}")],
        };
        run(&mut r, format!("open-{i}"), "admin", open);
    }
    let unit = UnitRef::allowance("CEA", 2024);
    run(
        &mut r,
        "issue".into(),
        "mee",
        Command::Issue { unit: unit.clone(), quantity: Tonnes(u64::from(ACCOUNTS) * 100_000_000), to: None },
    );
    for i in 0..ACCOUNTS {
        let alloc = Command::Allocate {
            from: "CN-ISSUANCE".into(),
            to: format!("CN-{}", 100_001 + i),
            unit: unit.clone(),
            quantity: Tonnes(100_000_000),
        };
        run(&mut r, format!("alloc-{i}"), "mee", alloc);
    }
    // A cheap deterministic generator (xorshift) keeps the loop free of setup work.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let commands: Vec<Envelope> = (0..n)
        .map(|i| {
            let from = (next() % u64::from(ACCOUNTS)) as u32;
            let to = (from + 1 + (next() % u64::from(ACCOUNTS - 1)) as u32) % ACCOUNTS;
            Envelope {
                id: format!("t-{i}"),
                actor: format!("r{from}"),
                command: Command::Transfer {
                    from: format!("CN-{}", 100_001 + from),
                    to: format!("CN-{}", 100_001 + to),
                    unit: unit.clone(),
                    quantity: Tonnes(1 + next() % 1000),
                },
            }
        })
        .collect();
    eprintln!("setup done after {:.3} s", setup.elapsed().as_secs_f64());
    let start = Instant::now();
    if std::env::var_os("ONE_BY_ONE").is_some() {
        for c in &commands {
            r.execute(c).expect("transfer accepted");
        }
    } else {
        // As the ledger does: batches of up to 8,192 commands.
        for batch in commands.chunks(8192) {
            for outcome in r.execute_batch(batch) {
                outcome.expect("transfer accepted");
            }
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{n} transfers in {:.3} s: {:.0} transfers/s; {} free serial blocks",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        r.free_block_count()
    );
}
