//! CSV import throughput: a generated 100,000-row file (unit × 2 streams × 12 months, one
//! stream in ten with unmeasured months, i.e. empty carbon content and lab cells).
//! Run: `cargo bench -p ets-mrv --bench import`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ets_mrv::import::{import_str, COLUMNS};
use std::fmt::Write;
use std::time::Duration;

const ROWS: usize = 100_000;

fn csv_text() -> String {
    let mut rng = 42u64;
    let mut next = |lo: u64, hi: u64| {
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        lo + (z ^ (z >> 31)) % (hi - lo + 1)
    };
    let mut s = COLUMNS.join(",");
    s.push('\n');
    for i in 0..ROWS {
        let (u, st, m) = (i / 24, (i / 12) % 2, i % 12 + 1);
        let (q, ncv) = (next(80_000, 120_000), next(1900, 2200));
        write!(s, "ENT-{u},U{u},coal-{st},2022,{m},coal,{q}.{:03},{}.{:02},", next(0, 999), ncv / 100, ncv % 100).unwrap();
        if u % 10 == 0 && st == 1 && m > 2 {
            s.push_str(",,,,");
        } else {
            write!(s, "0.0{},L{u}-{st}-{m},2022-{:02}-05,2022-{m:02}-10,", next(2550, 2800), m % 12 + 1).unwrap();
        }
        s.push_str("0.99\n");
    }
    s
}

fn bench(c: &mut Criterion) {
    let text = csv_text();
    assert_eq!(import_str(&text).map(|r| r.len()).map_err(|e| e.problems.len()), Ok(ROWS));
    let mut g = c.benchmark_group("csv_import");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("import_100k_rows", |b| b.iter(|| black_box(import_str(black_box(&text)).unwrap().len())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
