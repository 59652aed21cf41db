//! Liability for 100,000 import lines with precursor chains: 10,000 installations, each a
//! four-step chain (sinter -> pig iron -> slab -> hot-rolled coil, with purchased pellets and a
//! purchased slab), their SEE and benchmarks computed, then 100,000 lines (ten per installation,
//! every fourth on default values) declared in one importer's year. Acceptance: under 1 s.
//!
//! `cargo bench -p ets-cbam --bench liability`

use criterion::{criterion_group, criterion_main, Criterion};
use ets_cbam::liability::{declare, ActualData, Declaration, ImportLine, LiabilityParams, Method};
use ets_cbam::see::{compute, InstallationInput, SeeParams};
use ets_cbam::Reference;
use ets_core::Date;
use rust_decimal::Decimal;
use serde_json::json;

const INSTALLATIONS: usize = 10_000;
const LINES_PER_INSTALLATION: usize = 10;

fn installation(i: usize) -> InstallationInput {
    let k = (i % 97) as i64;
    serde_json::from_value(json!({
        "installation": {"id": format!("CN-I-{i}"), "name": "bench", "country": "CN", "operator": "bench"},
        "reporting_period": {"start": "2025-01-01", "end": "2025-12-31"},
        "processes": [
            {"id": "hrc", "cn": "72081000", "route": "C", "activity_level_t": "1000000", "direct_emissions_t": (50_000 + k * 100).to_string(),
             "electricity_mwh": "90000", "precursors": [{"process": "slab", "mass_t": "1030000"}, {"purchased": "slab-vn", "mass_t": "20000"}]},
            {"id": "slab", "cn": "72071116", "route": "C", "activity_level_t": "1050000", "direct_emissions_t": "180000",
             "precursors": [{"process": "iron", "mass_t": "1000000"}]},
            {"id": "iron", "cn": "72011011", "activity_level_t": "1000000", "direct_emissions_t": (1_150_000 + k * 1000).to_string(),
             "precursors": [{"process": "sinter", "mass_t": "1400000"}, {"purchased": "pellets", "mass_t": "200000"}]},
            {"id": "sinter", "cn": "26011200", "activity_level_t": "1600000", "direct_emissions_t": "320000", "electricity_mwh": "48000"}
        ],
        "purchased_precursors": [
            {"id": "pellets", "cn": "26011200", "country": "BR"},
            {"id": "slab-vn", "cn": "72071116", "country": "VN", "route": "C", "see_direct": "2.05", "verified": true}
        ]
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let reference = Reference::builtin().unwrap();
    let inputs: Vec<InstallationInput> = (0..INSTALLATIONS).map(installation).collect();
    let params = LiabilityParams::default();
    let mut group = c.benchmark_group("cbam");
    group.sample_size(10);
    group.bench_function("see 10,000 installations (4-step chains)", |b| {
        b.iter(|| inputs.iter().map(|i| compute(i, &reference, SeeParams::default()).unwrap().processes.len()).sum::<usize>())
    });
    let results: Vec<_> = inputs.iter().map(|i| compute(i, &reference, SeeParams::default()).unwrap()).collect();
    let make_lines = || -> Vec<ImportLine> {
        let mut lines = Vec::with_capacity(INSTALLATIONS * LINES_PER_INSTALLATION);
        for (i, r) in results.iter().enumerate() {
            let hrc = r.process("hrc").unwrap();
            for j in 0..LINES_PER_INSTALLATION {
                let n = i * LINES_PER_INSTALLATION + j;
                let default = n.is_multiple_of(4);
                lines.push(ImportLine {
                    id: String::new(),
                    cn: "72081000".into(),
                    country: "CN".into(),
                    net_mass_t: Decimal::from(20 + (n % 500) as i64),
                    imported_on: Date::from_ymd(2026, 1 + (n % 3) as u32, 1 + (n % 28) as u32).unwrap(),
                    method: if default { Method::Default } else { Method::Actual },
                    route: None,
                    actual: (!default).then(|| ActualData::from_process(hrc)),
                    priced_on: None,
                });
            }
        }
        lines
    };
    let decl = Declaration { importer: "bench".into(), year: 2026, lines: make_lines() };
    group.bench_function("liability 100,000 lines", |b| b.iter(|| declare(&decl, &reference, &params).unwrap().certificates));
    group.bench_function("see + liability 100,000 lines end to end", |b| {
        b.iter(|| {
            let results: Vec<_> = inputs.iter().map(|i| compute(i, &reference, SeeParams::default()).unwrap()).collect();
            let lines: Vec<ImportLine> = (0..INSTALLATIONS * LINES_PER_INSTALLATION)
                .map(|n| {
                    let hrc = results[n / LINES_PER_INSTALLATION].process("hrc").unwrap();
                    ImportLine {
                        id: String::new(),
                        cn: "72081000".into(),
                        country: "CN".into(),
                        net_mass_t: Decimal::from(20 + (n % 500) as i64),
                        imported_on: Date::from_ymd(2026, 1 + (n % 3) as u32, 1 + (n % 28) as u32).unwrap(),
                        method: Method::Actual,
                        route: None,
                        actual: Some(ActualData::from_process(hrc)),
                        priced_on: None,
                    }
                })
                .collect();
            declare(&Declaration { importer: "bench".into(), year: 2026, lines }, &reference, &params).unwrap().certificates
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
