//! Durable throughput, replay and memory: a bench binary (not a timed test).
//!
//!     cargo bench -p ets-store --bench durable                       # CI size, a few seconds
//!     ETS_BENCH_SCALE=full cargo bench -p ets-store --bench durable  # the figures in BENCHMARKS.md
//!
//! Parts can be chosen: `-- sqlite postgres replay memory` (default: all). PostgreSQL is
//! ETS_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test), in a schema of
//! its own that is dropped afterwards.
//!
//! Every transfer is acknowledged only after its batch committed (SQLite WAL with
//! synchronous=FULL; PostgreSQL synchronous commit), exactly as in `ets` and the crash test.

use ets_core::Timestamp;
use ets_registry::holding::Holding;
use ets_registry::{workload, Block, Envelope};
use ets_store::{Ledger, LedgerOptions, LedgerService, Location, SubmitError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes, for the memory figures.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ACCOUNTS: u32 = 10_000;
/// Commands in flight, in groups of GROUP.
const WINDOW: usize = 16_384;
const GROUP: usize = 256;

struct Scale {
    sqlite_transfers: u64,
    postgres_transfers: u64,
    replay_records: u64,
    memory_blocks: u64,
}

fn scale() -> Scale {
    match std::env::var("ETS_BENCH_SCALE").as_deref() {
        Ok("full") => {
            Scale { sqlite_transfers: 2_000_000, postgres_transfers: 1_000_000, replay_records: 10_000_000, memory_blocks: 5_000_000 }
        }
        _ => Scale { sqlite_transfers: 100_000, postgres_transfers: 50_000, replay_records: 200_000, memory_blocks: 1_000_000 },
    }
}

fn setup_commands() -> Vec<Envelope> {
    workload::setup(ACCOUNTS, 1_000_000_000)
}

fn transfers(seed: u64) -> workload::Transfers {
    workload::Transfers::new(ACCOUNTS, seed)
}

fn now() -> Timestamp {
    Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
}

/// Submits `n` transfers through the single-writer service and waits for every acknowledgement.
fn durable_transfers(location: &Location, n: u64) -> f64 {
    let mut ledger = Ledger::open(location, LedgerOptions { snapshot_every: 0 }).expect("open");
    for r in ledger.submit_batch(now(), &setup_commands()).expect("setup") {
        r.expect("setup command accepted");
    }
    let service = LedgerService::start(ledger, now, 8_192);
    // Clients send groups of commands, as a client library batches what its callers submit.
    let mut groups: Vec<Vec<Envelope>> = Vec::new();
    let mut transfers = transfers(1);
    let mut left = n as usize;
    while left > 0 {
        let size = left.min(GROUP);
        groups.push(transfers.by_ref().take(size).collect());
        left -= size;
    }
    let start = Instant::now();
    let mut window = VecDeque::with_capacity(WINDOW / GROUP);
    for group in groups {
        window.push_back(service.submit_all(group));
        if window.len() == WINDOW / GROUP {
            window.pop_front().unwrap().wait_all().into_iter().for_each(check);
        }
    }
    for s in window {
        s.wait_all().into_iter().for_each(check);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut ledger = service.stop();
    ledger.audit().expect("audit after the run");
    n as f64 / elapsed
}

fn check(result: Result<ets_store::Submitted, SubmitError>) {
    match result {
        Ok(s) => assert!(!s.duplicate),
        Err(e) => panic!("transfer failed: {e}"),
    }
}

fn sqlite(scale: &Scale) {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("bench.db"));
    let rate = durable_transfers(&location, scale.sqlite_transfers);
    println!(
        "| durable transfers, SQLite (WAL, synchronous=FULL, batches <= 8,192) | {rate:.0} transfers/s | {} transfers, 10,000 accounts |",
        scale.sqlite_transfers
    );
}

fn postgres(scale: &Scale) {
    let url = std::env::var("ETS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("ets_bench_{}", std::process::id());
    let location = Location::Postgres { url: url.clone(), schema: Some(schema.clone()) };
    let rate = durable_transfers(&location, scale.postgres_transfers);
    if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
    }
    println!("| durable transfers, PostgreSQL 15 on 127.0.0.1 (binary COPY, batches <= 8,192) | {rate:.0} transfers/s | {} transfers, 10,000 accounts |", scale.postgres_transfers);
}

fn replay(scale: &Scale) {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("replay.db"));
    let mut ledger = Ledger::open(&location, LedgerOptions { snapshot_every: 0 }).expect("open");
    let setup = setup_commands();
    let setup_len = setup.len() as u64;
    for r in ledger.submit_batch(now(), &setup).expect("setup") {
        r.expect("setup accepted");
    }
    let mut transfers = transfers(2);
    let build = Instant::now();
    let mut written = setup_len;
    while written < scale.replay_records {
        let batch: Vec<Envelope> = transfers.by_ref().take(8_192.min((scale.replay_records - written) as usize)).collect();
        written += batch.len() as u64;
        for r in ledger.submit_batch(now(), &batch).expect("batch") {
            r.expect("accepted");
        }
    }
    let expected = ledger.registry().state_hash();
    drop(ledger);
    eprintln!("replay: wrote {written} records in {:.1} s", build.elapsed().as_secs_f64());
    let start = Instant::now();
    let ledger = Ledger::open(&location, LedgerOptions { snapshot_every: 0 }).expect("reopen");
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(ledger.registry().seq(), written);
    assert_eq!(ledger.registry().state_hash(), expected, "replayed state equals the live state");
    println!(
        "| replay of the journal from SQLite (chain check + decode + apply + full invariant check) | {elapsed:.1} s for {written} records ({:.0} records/s) | state hash equal to the live one |",
        written as f64 / elapsed
    );
}

fn memory(scale: &Scale) {
    // Serial blocks as the ledger holds them: free blocks spread over 10,000 holdings, none
    // contiguous with its neighbour (the worst case: no merging).
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut holdings: Vec<Holding> = (0..ACCOUNTS).map(|_| Holding::default()).collect();
    for b in 0..scale.memory_blocks {
        let start = b * 2 + 1;
        holdings[(b % u64::from(ACCOUNTS)) as usize].receive(&[Block { start, end: start + 1 }]);
    }
    let bytes = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64;
    let per_million = bytes / scale.memory_blocks as f64 * 1_000_000.0;
    println!(
        "| memory per million serial blocks held | {:.1} MiB | {} blocks over 10,000 holdings |",
        per_million / 1_048_576.0,
        scale.memory_blocks
    );
    drop(holdings);

    // The whole registry per transfer: blocks plus the transaction log and the idempotency index.
    let mut registry = ets_registry::Registry::new();
    for c in setup_commands() {
        registry.execute(&c).expect("setup");
    }
    let n = scale.memory_blocks.min(1_000_000);
    let commands: Vec<Envelope> = transfers(3).take(n as usize).collect();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let blocks_before = registry.free_block_count();
    for c in &commands {
        registry.execute(c).expect("transfer");
    }
    let bytes = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64;
    println!(
        "| registry memory per transfer (blocks, transaction log, idempotency index) | {:.0} bytes | {n} transfers; serial blocks {} -> {} |",
        bytes / n as f64,
        blocks_before,
        registry.free_block_count()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let scale = scale();
    println!("| figure | value | conditions |\n|---|---|---|");
    if want("memory") {
        memory(&scale);
    }
    if want("sqlite") {
        sqlite(&scale);
    }
    if want("postgres") {
        postgres(&scale);
    }
    if want("replay") {
        replay(&scale);
    }
}
