//! Carbon inclusion at its largest submission (`RECORDS_MAX` = 100,000 records):
//! - `submit_100k_records`: every check of a submission of 25,000 households' quarterly solar
//!   records (ids, evidence hashes, dates, duplicates against the register, per-participant
//!   caps) and the credits, into a register already holding one such submission;
//! - `verify_100k_records`: the verifier's acceptance, which re-runs the checks.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ets_core::Date;
use ets_finance::inclusion::{ActivityRecord, Catalog, Command, Config, Envelope, Inclusion, PilotSetup, RECORDS_MAX};
use ets_finance::Holdings;
use ets_registry::{HolderType, UnitRef};
use std::collections::BTreeMap;

struct NoRegistry;

impl Holdings for NoRegistry {
    fn free(&self, _: &str, _: &UnitRef) -> u64 {
        0
    }
}

impl ets_finance::inclusion::Accounts for NoRegistry {
    fn holder(&self, _: &str) -> Option<(String, HolderType)> {
        Some(("GD".into(), HolderType::Institution))
    }
}

fn records(batch: usize) -> Vec<ActivityRecord> {
    let quarters = [(3, 31), (6, 30), (9, 30), (12, 31)];
    (0..RECORDS_MAX)
        .map(|i| {
            let (h, q) = (i / 4, i % 4);
            ActivityRecord {
                record: format!("B{batch}-H{h:05}-Q{q}"),
                participant: format!("B{batch}-H{h:05}"),
                date: Date::from_ymd(2025, quarters[q].0, quarters[q].1).unwrap(),
                quantity: (2_000 + (i % 1_500) as i64).into(),
                evidence_sha256: format!("{:032x}{:032x}", batch, i),
            }
        })
        .collect()
}

fn env(id: &str, actor: &str, command: Command) -> Envelope {
    Envelope { id: id.into(), actor: actor.into(), command }
}

fn bench(c: &mut Criterion) {
    let (file, text) = ets_rules::rulebook::builtin().iter().find(|(f, _)| f.starts_with("gd-2024")).unwrap();
    let rulebook = ets_rules::rulebook::Rulebook::from_toml(file, text).unwrap();
    let pilots = BTreeMap::from([("GD".to_string(), PilotSetup::new("gd-eeb", "GD-ISSUANCE", &rulebook))]);
    let mut register = Inclusion::new(Config { operator: "op".into(), catalog: Catalog::builtin(), pilots }).unwrap();
    let add = Command::AddAggregator { aggregator: "agg".into(), pilot: "GD".into(), account: "GD-100001".into() };
    register.execute(&env("a", "op", add), &NoRegistry).unwrap();
    register.execute(&env("v", "op", Command::AddVerifier { verifier: "ver".into() }), &NoRegistry).unwrap();
    let submit = |id: &str, batch: usize| Command::Submit {
        submission: id.into(),
        aggregator: "agg".into(),
        methodology: "SOLAR-ROOF".into(),
        year: 2025,
        records: records(batch),
    };
    register.execute(&env("s0", "agg", submit("S0", 0)), &NoRegistry).unwrap();
    let mut group = c.benchmark_group("inclusion");
    group.sample_size(10);
    let second = env("s1", "agg", submit("S1", 1));
    group.bench_function("submit_100k_records", |b| {
        b.iter_batched(|| register.clone(), |mut r| r.execute(&second, &NoRegistry).unwrap(), BatchSize::LargeInput)
    });
    let mut submitted = register.clone();
    submitted.execute(&second, &NoRegistry).unwrap();
    let verify = env("v1", "ver", Command::Verify { submission: "S1".into(), accept: true, note: String::new() });
    group.bench_function("verify_100k_records", |b| {
        b.iter_batched(|| submitted.clone(), |mut r| r.execute(&verify, &NoRegistry).unwrap(), BatchSize::LargeInput)
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
