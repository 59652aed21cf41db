//! A bare loop of in-memory transfers, for profilers and long runs: `cargo run --release -p
//! ets-registry --example transfer_loop -- 2000000`. Setup is done before the timed loop; the
//! loop runs the workload of the `core` criterion bench (`ets_registry::workload`) in batches
//! of 8,192 as the ledger does (`ONE_BY_ONE=1` calls `execute` per command instead).

use ets_registry::{workload, Registry};
use std::time::Instant;

const ACCOUNTS: u32 = 10_000;

fn main() {
    let setup = Instant::now();
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3_000_000);
    let mut r = Registry::new();
    for command in workload::setup(ACCOUNTS, 100_000_000) {
        r.execute(&command).expect("setup command accepted");
    }
    let commands: Vec<_> = workload::Transfers::new(ACCOUNTS, 1).take(n).collect();
    eprintln!("setup done after {:.3} s", setup.elapsed().as_secs_f64());
    let start = Instant::now();
    if std::env::var_os("ONE_BY_ONE").is_some() {
        for c in &commands {
            r.execute(c).expect("transfer accepted");
        }
    } else {
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
