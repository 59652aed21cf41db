use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar day (proleptic Gregorian), stored as days since 1970-01-01. Serialized as its
/// `YYYY-MM-DD` text, so files people write and read carry dates as they write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date(pub i32);

impl TryFrom<String> for Date {
    type Error = DateError;

    fn try_from(text: String) -> Result<Date, DateError> {
        Date::parse(&text)
    }
}

impl From<Date> for String {
    fn from(d: Date) -> String {
        d.to_string()
    }
}

/// An instant in milliseconds since 1970-01-01T00:00:00Z. The core never reads a clock: the
/// shell stamps each accepted command with one of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateError(pub String);

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DateError {}

const MILLIS_PER_DAY: i64 = 86_400_000;

impl Date {
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Result<Date, DateError> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(DateError(format!("{year:04}-{month:02}-{day:02} is not a calendar date")));
        }
        Ok(Date(days_from_civil(year, month, day)))
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let bad = || DateError(format!("date '{text}' must be written YYYY-MM-DD, e.g. 2025-12-31"));
        let parts: Vec<&str> = text.trim().split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(bad());
        }
        let year: i32 = parts[0].parse().map_err(|_| bad())?;
        let month: u32 = parts[1].parse().map_err(|_| bad())?;
        let day: u32 = parts[2].parse().map_err(|_| bad())?;
        Date::from_ymd(year, month, day)
    }

    /// The day `days` later (earlier if negative).
    pub fn plus_days(self, days: i32) -> Date {
        Date(self.0 + days)
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    pub fn start(self) -> Timestamp {
        Timestamp(i64::from(self.0) * MILLIS_PER_DAY)
    }

    /// The first instant of the following day: "at the end of this date" means before this.
    pub fn end_exclusive(self) -> Timestamp {
        Timestamp((i64::from(self.0) + 1) * MILLIS_PER_DAY)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Timestamp {
    pub fn date(self) -> Date {
        Date(self.0.div_euclid(MILLIS_PER_DAY) as i32)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.rem_euclid(MILLIS_PER_DAY);
        let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
        write!(f, "{}T{h:02}:{m:02}:{s:02}.{:03}Z", self.date(), ms % 1000)
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-date algorithms (public domain), exact for the whole i32 day range we use.
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe as i32 + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_over_four_centuries() {
        for days in -150_000..150_000 {
            let (y, m, d) = Date(days).ymd();
            assert_eq!(Date::from_ymd(y, m, d).unwrap(), Date(days));
        }
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(Date::parse("1970-01-01").unwrap(), Date(0));
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        for bad in ["2023-02-29", "2025-13-01", "2025-1-01", "20250101", "2025-00-10", "x"] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamp_display() {
        let t = Timestamp(Date::parse("2025-12-31").unwrap().start().0 + 3_723_004);
        assert_eq!(t.to_string(), "2025-12-31T01:02:03.004Z");
    }
}
