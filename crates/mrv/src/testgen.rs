//! Seeded generator of clean monthly data for tests (no external RNG).

use crate::monthly::{Carbon, Fuel, LabMeasurement, MonthlyRecord, RecordFields, YearMonth};
use ets_core::Date;
use rust_decimal::Decimal;
use std::str::FromStr;

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// SplitMix64: small, deterministic, good enough for test data.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (modulo bias is irrelevant here).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// Clean values per fuel: (base quantity range t, NCV range ×100, CC range ×100000, OF ×100).
type Profile = ((i64, i64), (i64, i64), (i64, i64), i64);

fn profile(fuel: Fuel) -> Profile {
    match fuel {
        Fuel::Coal => ((80_000, 120_000), (1900, 2200), (2550, 2800), 99),
        Fuel::NaturalGas => ((5_000, 8_000), (4700, 4900), (1500, 1556), 99),
        Fuel::FuelOil => ((1_000, 2_000), (4000, 4150), (2080, 2140), 98),
        Fuel::Diesel => ((100, 300), (4250, 4320), (1980, 2040), 98),
    }
}

pub fn day(y: i32, m: u32, dd: u32) -> Date {
    Date::from_ymd(y, m, dd).unwrap()
}

/// A clean reporting year for one unit: every stream has 12 measured months, values inside the
/// plausible ranges, quantities within ±15% of a base, one lab report per month sampled in the
/// month and dated 1–35 days after month end.
pub fn clean_year(seed: u64, year: i32, streams: &[(&str, Fuel)]) -> Vec<MonthlyRecord> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    for (s, &(stream, fuel)) in streams.iter().enumerate() {
        let ((qlo, qhi), (nlo, nhi), (clo, chi), of) = profile(fuel);
        let base = rng.range(qlo, qhi);
        for m in 1..=12u32 {
            let month = YearMonth::new(year, m).unwrap();
            let quantity = base * rng.range(85, 115) / 100;
            let sample = day(year, m, rng.range(3, 25) as u32);
            let report = Date(month.last_day().0 + rng.range(1, 35) as i32);
            let lab =
                LabMeasurement::new(Decimal::new(rng.range(clo, chi), 5), format!("LAB-{seed}-{s}-{year}{m:02}"), report, sample).unwrap();
            out.push(
                MonthlyRecord::new(RecordFields {
                    entity: "ENT-1".into(),
                    unit: "UNIT-1".into(),
                    source_stream: stream.into(),
                    month,
                    fuel,
                    quantity_t: Decimal::from(quantity),
                    ncv_gj_per_t: Decimal::new(rng.range(nlo, nhi), 2),
                    carbon: Carbon::Measured(lab),
                    oxidation_factor: Decimal::new(of, 2),
                })
                .unwrap(),
            );
        }
    }
    out
}

/// A copy of `r` with `f` applied (re-validated).
pub fn with(r: &MonthlyRecord, f: impl FnOnce(&mut RecordFields)) -> MonthlyRecord {
    let mut fields = r.fields().clone();
    f(&mut fields);
    MonthlyRecord::new(fields).unwrap()
}
