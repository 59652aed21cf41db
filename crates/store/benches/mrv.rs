//! The MRV journal at the national market's scale: a bench binary (not a timed test).
//!
//!     cargo bench -p ets-store --bench mrv                        # CI size: 100 entities
//!     ETS_BENCH_SCALE=full cargo bench -p ets-store --bench mrv   # 3,400 entities (the 2025 national count is 3,378)
//!
//! A seeded sample year (`ets_mrv::sample::scenario`: registration, plans, twelve monthly
//! submissions per unit, annual reports verified and accepted) goes through `MrvLog` on SQLite
//! in one durable batch per calendar month of activity, as an importer would send it. Then:
//! reopening (hash-chain check, JSON decode with validation, replay), the regulator's anomaly
//! queue over every entity, and one entity's annual calculation.

use ets_mrv::sample::{self, Market};
use ets_mrv::state::MrvParams;
use ets_mrv::FactorSet;
use ets_store::{Location, MrvLog, MrvSubmission};
use std::time::Instant;

fn main() {
    let entities: usize = match std::env::var("ETS_BENCH_SCALE").as_deref() {
        Ok("full") => 3_400,
        _ => 100,
    };
    let year = 2024;
    let markets = [Market { code: "CN".into(), province: "Shandong".into(), entities }];
    let started = Instant::now();
    let sc = sample::scenario(2024, year, &markets, sample::PLANTABLE.len());
    let generated = started.elapsed();
    let dir = tempfile::tempdir().expect("temp dir");
    let location = Location::Sqlite(dir.path().join("mrv.db"));
    let factors = FactorSet::builtin().expect("factor data");
    let mut log = MrvLog::open(location.open().expect("open"), factors.clone(), MrvParams::default()).expect("open MRV log");

    let started = Instant::now();
    let mut batch: Vec<MrvSubmission> = Vec::new();
    let mut current = None;
    let mut batches = 0;
    for (i, (actor, at, command)) in sc.commands.iter().enumerate() {
        let (y, m, _) = at.date().ymd();
        if current.is_some_and(|c| c != (y, m)) && !batch.is_empty() {
            log.submit_batch(&batch, &[]).map_err(|(i, e)| format!("{i:?}: {e}")).expect("batch");
            batches += 1;
            batch.clear();
        }
        current = Some((y, m));
        batch.push(MrvSubmission { command_id: format!("b-{i}"), actor: actor.clone(), at: *at, command: command.clone() });
    }
    log.submit_batch(&batch, &[]).map_err(|(i, e)| format!("{i:?}: {e}")).expect("batch");
    batches += 1;
    let append = started.elapsed();
    let records = log.head().0;
    let submissions = log.state().submissions().count();
    let bytes = std::fs::metadata(dir.path().join("mrv.db")).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("mrv.db-wal")).map(|m| m.len()).unwrap_or(0);
    drop(log);

    let started = Instant::now();
    let mut log = MrvLog::open(location.open().expect("open"), factors, MrvParams::default()).expect("reopen");
    let reopen = started.elapsed();
    assert_eq!(log.head().0, records);

    let started = Instant::now();
    let queue = log.state().anomalies(year).expect("anomaly queue");
    let checks = started.elapsed();
    let planted_found =
        sc.planted.iter().filter(|p| queue.iter().any(|a| a.entity == p.entity && a.check == p.check && a.month == p.month)).count();
    assert_eq!(planted_found, sc.planted.len(), "every planted anomaly is found");

    let first = log.state().entities().next().expect("an entity").id.clone();
    let started = Instant::now();
    let annual = log.state().annual(&first, year).expect("annual");
    let one_annual = started.elapsed();
    let audit_started = Instant::now();
    log.audit().expect("audit");
    let audit = audit_started.elapsed();

    let per_s = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!("| figure | value | conditions |\n|---|---|---|");
    println!("| sample generation | {:.2} s | {entities} entities, {} commands |", generated.as_secs_f64(), sc.commands.len());
    println!(
        "| durable append, SQLite | {:.2} s: {:.0} records/s ({submissions} monthly submissions, {records} records, {batches} batches) | {:.1} MiB on disk |",
        append.as_secs_f64(),
        per_s(records as usize, append),
        bytes as f64 / 1_048_576.0
    );
    println!(
        "| reopen (chain check, decode, replay) | {:.2} s: {:.0} records/s | {records} records |",
        reopen.as_secs_f64(),
        per_s(records as usize, reopen)
    );
    println!(
        "| anomaly queue, every entity and peer group | {:.2} s | {} findings, {}/{} planted found |",
        checks.as_secs_f64(),
        queue.len(),
        planted_found,
        sc.planted.len()
    );
    println!(
        "| one entity's annual report calculation | {:.3} ms | {} units, {} tCO2 |",
        one_annual.as_secs_f64() * 1e3,
        annual.units.len(),
        annual.total_t.round_dp(0)
    );
    println!("| full MRV audit (fresh read, chain, replay, evidence) | {:.2} s | {records} records |", audit.as_secs_f64());
}
