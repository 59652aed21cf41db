//! Seeded generator of clean monthly data for tests (no external RNG).

use crate::monthly::{Fuel, MonthlyRecord, RecordFields};
use ets_core::Date;
use rust_decimal::Decimal;
use std::str::FromStr;

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn day(y: i32, m: u32, dd: u32) -> Date {
    Date::from_ymd(y, m, dd).unwrap()
}

/// A clean reporting year of unit `UNIT-1` of entity `ENT-1` (see [`crate::sample::clean_year`]).
pub fn clean_year(seed: u64, year: i32, streams: &[(&str, Fuel)]) -> Vec<MonthlyRecord> {
    crate::sample::clean_year(seed, "ENT-1", "UNIT-1", year, streams)
}

/// A copy of `r` with `f` applied (re-validated).
pub fn with(r: &MonthlyRecord, f: impl FnOnce(&mut RecordFields)) -> MonthlyRecord {
    let mut fields = r.fields().clone();
    f(&mut fields);
    MonthlyRecord::new(fields).unwrap()
}
