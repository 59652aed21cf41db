//! In-memory core throughput: `cargo bench -p ets-registry --bench core`.
//!
//! Each sample executes fresh, distinct transfer commands (unique idempotency ids, random
//! accounts, 1-1,000 t) against a registry of 10,000 operator accounts, on one core. `execute`
//! is the state machine alone (validation, serial-block selection, apply, idempotency index,
//! release-build invariant asserts); `execute+seal` adds the journal record encoding and its
//! SHA-256 chain link, i.e. everything but the disk. `trial copy` clones a registry after
//! 100,000 and 1,000,000 transfers (what a trial of several commands costs before it runs
//! anything) and checks one transfer in place (`Registry::trial` of one command: no copy).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ets_core::Timestamp;
use ets_registry::journal::{GENESIS_HASH, JOURNAL_FORMAT};
use ets_registry::{workload, Envelope, Outcome, Record, Registry};
use std::time::{Duration, Instant};

const ACCOUNTS: u32 = 10_000;

fn registry() -> Registry {
    let mut r = Registry::new();
    for command in workload::setup(ACCOUNTS, 100_000_000) {
        r.execute(&command).expect("setup command accepted");
    }
    r
}

fn transfers(n: u64, seed: u64) -> Vec<Envelope> {
    workload::Transfers::new(ACCOUNTS, seed).take(n as usize).collect()
}

fn bench(c: &mut Criterion) {
    let base = registry();
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let mut seed = 0;
    group.bench_function("execute transfer", |b| {
        b.iter_custom(|iters| {
            seed += 1;
            let mut r = base.clone();
            let commands = transfers(iters, seed);
            let start = Instant::now();
            for c in &commands {
                match r.execute(c) {
                    Ok(Outcome::Accepted { .. }) => {}
                    other => panic!("transfer not accepted: {other:?}"),
                }
            }
            start.elapsed()
        })
    });
    group.bench_function("execute_batch transfer", |b| {
        b.iter_custom(|iters| {
            seed += 1;
            let mut r = base.clone();
            let commands = transfers(iters, seed);
            let start = Instant::now();
            for batch in commands.chunks(8192) {
                for outcome in r.execute_batch(batch) {
                    assert!(matches!(outcome, Ok(Outcome::Accepted { .. })), "transfer not accepted");
                }
            }
            start.elapsed()
        })
    });
    group.bench_function("execute+seal transfer", |b| {
        b.iter_custom(|iters| {
            seed += 1;
            let mut r = base.clone();
            let commands = transfers(iters, seed);
            let mut prev = GENESIS_HASH;
            let start = Instant::now();
            for c in &commands {
                let Ok(Outcome::Accepted { seq, fingerprint, events, .. }) = r.execute(c) else { panic!("transfer not accepted") };
                let record = Record {
                    format: JOURNAL_FORMAT,
                    seq,
                    at: Timestamp(0),
                    command_id: c.id.clone(),
                    actor: c.actor.clone(),
                    fingerprint,
                    events,
                };
                prev = record.seal(prev).hash;
            }
            std::hint::black_box(prev);
            start.elapsed()
        })
    });
    group.finish();

    // The fixed cost of a trial on a copy (the finance journal before each command with
    // registry instructions, an allocation issue): cloning the registry, which grows with its
    // transaction history and idempotency index.
    let mut group = c.benchmark_group("trial copy");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    for history in [100_000u64, 1_000_000] {
        let mut r = base.clone();
        for batch in transfers(history, 7_000 + history).chunks(8192) {
            for outcome in r.execute_batch(batch) {
                assert!(matches!(outcome, Ok(Outcome::Accepted { .. })), "transfer not accepted");
            }
        }
        group.bench_function(format!("clone, 10,000 accounts, {history} transactions"), |b| b.iter(|| std::hint::black_box(r.clone())));
        // One command is checked in place: no copy.
        let one = transfers(1, 9_000 + history);
        group.bench_function(format!("trial of one transfer, {history} transactions"), |b| {
            b.iter(|| std::hint::black_box(r.trial(&one)).expect("accepted"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
