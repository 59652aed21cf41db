//! Emissions calculation throughput over 1,000,000 monthly source-stream records.
//!
//! 41,667 units × 2 coal streams × 12 months (1,000,008 records); one unit in ten has a stream
//! with only two measured months, so the dated default high carbon content is applied too.
//! Run: `cargo bench -p ets-mrv --bench calculate`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ets_core::Date;
use ets_mrv::monthly::{unit_year_emissions, Carbon, Fuel, LabMeasurement, MissingCarbonRule, MonthlyRecord, RecordFields, YearMonth};
use ets_mrv::FactorSet;
use rust_decimal::Decimal;
use std::time::Duration;

const UNITS: usize = 41_667;
const STREAMS: usize = 2;
const PER_UNIT: usize = STREAMS * 12;

struct Rng(u64);

impl Rng {
    fn next(&mut self, lo: i64, hi: i64) -> i64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        lo + ((z ^ (z >> 31)) % (hi - lo + 1) as u64) as i64
    }
}

fn records() -> Vec<MonthlyRecord> {
    let mut rng = Rng(42);
    let mut out = Vec::with_capacity(UNITS * PER_UNIT);
    for u in 0..UNITS {
        for s in 0..STREAMS {
            for m in 1..=12u32 {
                let month = YearMonth::new(2022, m).unwrap();
                let missing = u % 10 == 0 && s == 1 && m > 2;
                let carbon = if missing {
                    Carbon::Missing
                } else {
                    let sample = Date::from_ymd(2022, m, 10).unwrap();
                    let report = Date(month.last_day().0 + 10);
                    Carbon::Measured(
                        LabMeasurement::new(Decimal::new(rng.next(2550, 2800), 5), format!("L{u}-{s}-{m}"), report, sample).unwrap(),
                    )
                };
                out.push(
                    MonthlyRecord::new(RecordFields {
                        entity: format!("E{u}"),
                        unit: format!("U{u}"),
                        source_stream: format!("coal-{s}"),
                        month,
                        fuel: Fuel::Coal,
                        quantity_t: Decimal::from(rng.next(80_000, 120_000)),
                        ncv_gj_per_t: Decimal::new(rng.next(1900, 2200), 2),
                        carbon,
                        oxidation_factor: Decimal::new(99, 2),
                    })
                    .unwrap(),
                );
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let factors = FactorSet::builtin().unwrap();
    let rule = MissingCarbonRule::default();
    let recs = records();
    let mut g = c.benchmark_group("cn_power_monthly");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.bench_function("unit_year_emissions_1m_records", |b| {
        b.iter(|| {
            let mut total = Decimal::ZERO;
            for unit in recs.chunks(PER_UNIT) {
                total += unit_year_emissions(black_box(unit), &rule, &factors).unwrap().annual_co2_t;
            }
            black_box(total)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
