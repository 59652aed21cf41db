//! Crash test: a separate `ets stress` process submits transfers through the batched writer and
//! prints each acknowledgement; we kill it with SIGKILL at random moments, many times. After each
//! kill every acknowledged transfer must be in the journal exactly once, under the journal
//! position it was acknowledged with, and `ets audit verify` (chain, full replay, invariants,
//! query tables) must pass. Later rounds resubmit earlier ids, which must not apply twice.
//!
//! Knobs: ETS_CRASH_ITERATIONS (default 20), ETS_CRASH_SEED (default 7).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn acknowledged_transfers_survive_sigkill() {
    let iterations = knob("ETS_CRASH_ITERATIONS", 20);
    let mut rng = ChaCha8Rng::seed_from_u64(knob("ETS_CRASH_SEED", 7));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    let mut killed_while_running = 0;
    let mut resubmitted = 0;
    for round in 0..iterations {
        // Three seeds in turn: rounds after the third resubmit ids that earlier rounds sent.
        let seed = round % 3;
        let mut child = Command::new(env!("CARGO_BIN_EXE_ets"))
            .args(["--database", db.to_str().unwrap(), "stress", "--transfers", "1000000", "--accounts", "100", "--window", "512"])
            .args(["--seed", &seed.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ets stress");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            let mut first_ack_at = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                if parts.next() == Some("ack") {
                    let id = parts.next().unwrap().to_string();
                    let seq: u64 = parts.next().unwrap().parse().unwrap();
                    first_ack_at.get_or_insert_with(Instant::now);
                    acks.push((id, seq));
                }
            }
            acks
        });
        // Kill at a random moment in the first second of the stream (the process needs a few
        // hundred milliseconds to load the journal first, more as it grows).
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..1200)));
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let acks = reader.join().unwrap();

        let journal = journal_ids(&db);
        for (id, seq) in &acks {
            assert_eq!(
                journal.get(id),
                Some(&(*seq, 1)),
                "round {round}: acknowledged {id} (record {seq}) is not in the journal exactly once"
            );
            if let Some(earlier) = acknowledged.insert(id.clone(), *seq) {
                assert_eq!(earlier, *seq, "round {round}: {id} acknowledged at record {earlier} and again at {seq}");
                resubmitted += 1;
            }
        }
        let verify =
            Command::new(env!("CARGO_BIN_EXE_ets")).args(["--database", db.to_str().unwrap(), "audit", "verify"]).output().unwrap();
        assert!(verify.status.success(), "round {round}: audit failed after kill: {}", String::from_utf8_lossy(&verify.stderr));
        eprintln!("round {round}: {} acknowledgements, journal verified", acks.len());
    }
    // Every acknowledgement ever given is still there at the end.
    let journal = journal_ids(&db);
    for (id, seq) in &acknowledged {
        assert_eq!(journal.get(id), Some(&(*seq, 1)), "{id}");
    }
    assert!(killed_while_running >= iterations * 3 / 4, "only {killed_while_running} of {iterations} kills hit a running writer");
    assert!(acknowledged.len() > 1000, "too few acknowledgements to mean anything: {}", acknowledged.len());
    assert!(resubmitted > 0 || iterations < 4, "no round resubmitted an acknowledged id");
    eprintln!("{iterations} kills ({killed_while_running} mid-stream), {} distinct acknowledged transfers, {resubmitted} re-acknowledged as duplicates", acknowledged.len());
}

/// Every command id in the journal, with its record number and how many records carry it.
fn journal_ids(db: &std::path::Path) -> HashMap<String, (u64, u64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT command_id, seq FROM journal").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))).unwrap();
    let mut out: HashMap<String, (u64, u64)> = HashMap::new();
    for row in rows {
        let (id, seq) = row.unwrap();
        out.entry(id).and_modify(|e| e.1 += 1).or_insert((seq, 1));
    }
    out
}
