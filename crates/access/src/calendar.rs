//! The registry's working-day clock: weekends and a holiday list are closed, opening hours are
//! minutes of the local day, and local time is UTC plus a fixed offset (with optional dated
//! periods of another offset, e.g. summer time). Every delay of the security controls is counted
//! on this calendar. Pure arithmetic on `Timestamp` (ms since epoch, UTC); no clock.

use ets_core::{Date, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const MILLIS_PER_MINUTE: i64 = 60_000;
const MINUTES_PER_DAY: u32 = 1_440;
/// The widest UTC offset in use anywhere (UTC+14:00, Kiribati); a limit on offsets.
pub const UTC_OFFSET_MINUTES_MAX: i32 = 14 * 60;
/// Most holidays a calendar may list; bounds every search for the next working day.
pub const HOLIDAYS_MAX: usize = 10_000;

/// A dated period in which local time is UTC plus another offset (e.g. CEST, +02:00).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetPeriod {
    /// First local date of the period (changes of offset in the EU fall on Sundays).
    pub from: Date,
    /// First local date after the period.
    pub until: Date,
    pub utc_offset_minutes: i32,
}

/// Working days and opening hours, as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    /// Local time = UTC + this. Default +60 (CET), the zone of the EU registry's rules
    /// (2019/1122 Art. 23(4), "12:00 CET"; Art. 35) [S1][S7].
    pub utc_offset_minutes: i32,
    /// Periods with another offset (summer time), non-overlapping. Default none.
    pub offset_periods: Vec<OffsetPeriod>,
    /// Opening hours as minutes of the local day, `[opening, closing)`. Default 10:00–16:00,
    /// the registry opening hours that delays count in [S2].
    pub opening_minute: u32,
    pub closing_minute: u32,
    /// Closed local dates besides Saturdays and Sundays (national holidays). Default none.
    pub holidays: BTreeSet<Date>,
}

impl Default for Calendar {
    fn default() -> Calendar {
        Calendar { utc_offset_minutes: 60, offset_periods: Vec::new(), opening_minute: 600, closing_minute: 960, holidays: BTreeSet::new() }
    }
}

impl Calendar {
    /// Every problem with this calendar, each as a sentence naming the field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let offset_ok = |minutes: i32| minutes.abs() <= UTC_OFFSET_MINUTES_MAX;
        if !offset_ok(self.utc_offset_minutes) {
            problems.push(format!("calendar.utc_offset_minutes {} is beyond ±{UTC_OFFSET_MINUTES_MAX}", self.utc_offset_minutes));
        }
        for (i, period) in self.offset_periods.iter().enumerate() {
            if !offset_ok(period.utc_offset_minutes) {
                problems.push(format!(
                    "calendar.offset_periods[{i}].utc_offset_minutes {} is beyond ±{UTC_OFFSET_MINUTES_MAX}",
                    period.utc_offset_minutes
                ));
            }
            if period.until <= period.from {
                problems.push(format!("calendar.offset_periods[{i}] ends ({}) on or before it starts ({})", period.until, period.from));
            }
            for (j, other) in self.offset_periods.iter().enumerate().skip(i + 1) {
                if period.from < other.until && other.from < period.until {
                    problems.push(format!("calendar.offset_periods[{i}] and [{j}] overlap"));
                }
            }
        }
        if self.opening_minute >= self.closing_minute || self.closing_minute > MINUTES_PER_DAY {
            problems.push(format!(
                "calendar opening hours [{}, {}) must be a non-empty range of minutes within one day (0..=1440)",
                self.opening_minute, self.closing_minute
            ));
        }
        if self.holidays.len() > HOLIDAYS_MAX {
            problems.push(format!("calendar.holidays lists {} dates; the limit is {HOLIDAYS_MAX}", self.holidays.len()));
        }
        problems
    }

    fn offset_on(&self, local_date: Date) -> i32 {
        self.offset_periods
            .iter()
            .find(|p| p.from <= local_date && local_date < p.until)
            .map_or(self.utc_offset_minutes, |p| p.utc_offset_minutes)
    }

    /// The local date and the milliseconds since local midnight of an instant.
    pub fn local(&self, t: Timestamp) -> (Date, i64) {
        // The offset is chosen by the local date under the base offset; periods change on
        // weekends, so working hours never straddle a change.
        let base = Timestamp(t.0 + i64::from(self.utc_offset_minutes) * MILLIS_PER_MINUTE);
        let offset = self.offset_on(base.date());
        let local = Timestamp(t.0 + i64::from(offset) * MILLIS_PER_MINUTE);
        let date = local.date();
        (date, local.0 - date.start().0)
    }

    /// The instant at `minute` of the local `date`.
    pub fn at(&self, date: Date, minute: u32) -> Timestamp {
        let offset = self.offset_on(date);
        Timestamp(date.start().0 + (i64::from(minute) - i64::from(offset)) * MILLIS_PER_MINUTE)
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        // 1970-01-01 was a Thursday: day 0 -> weekday 3 with Monday = 0.
        let weekday = (date.0 + 3).rem_euclid(7);
        weekday < 5 && !self.holidays.contains(&date)
    }

    /// Whether the registry is open at `t`: a working day, inside opening hours.
    pub fn is_open(&self, t: Timestamp) -> bool {
        let (date, ms) = self.local(t);
        let opening = i64::from(self.opening_minute) * MILLIS_PER_MINUTE;
        let closing = i64::from(self.closing_minute) * MILLIS_PER_MINUTE;
        self.is_working_day(date) && opening <= ms && ms < closing
    }

    /// The first working day strictly after `date`.
    pub fn next_working_day(&self, date: Date) -> Date {
        // A run of closed days is at most the holidays plus two weekend days per week they span.
        let bound = self.holidays.len() * 3 + 3;
        let mut day = date.plus_days(1);
        for _ in 0..bound {
            if self.is_working_day(day) {
                return day;
            }
            day = day.plus_days(1);
        }
        panic!("no working day within {bound} days after {date}: calendar invariant broken");
    }

    /// The `n`-th working day strictly after `date` (`n` = 0 gives `date`).
    pub fn working_days_after(&self, date: Date, n: u32) -> Date {
        (0..n).fold(date, |day, _| self.next_working_day(day))
    }

    /// The first working day on or after `date`.
    pub fn working_day_on_or_after(&self, date: Date) -> Date {
        if self.is_working_day(date) {
            date
        } else {
            self.next_working_day(date)
        }
    }

    /// The first instant at or after `t` when the registry is open.
    pub fn next_opening(&self, t: Timestamp) -> Timestamp {
        if self.is_open(t) {
            return t;
        }
        let (date, ms) = self.local(t);
        let opening_ms = i64::from(self.opening_minute) * MILLIS_PER_MINUTE;
        let day = if self.is_working_day(date) && ms < opening_ms { date } else { self.next_working_day(date) };
        self.at(day, self.opening_minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    #[test]
    fn weekdays_and_local_time() {
        let cal = Calendar::default();
        assert!(cal.is_working_day(d("2026-12-04"))); // Friday
        assert!(!cal.is_working_day(d("2026-12-05"))); // Saturday
        assert!(!cal.is_working_day(d("2026-12-06"))); // Sunday
        assert!(cal.is_working_day(d("2026-12-07"))); // Monday
                                                      // 09:00 UTC is 10:00 CET: the opening instant, open; a millisecond before is closed.
        let opening = cal.at(d("2026-12-04"), 600);
        assert_eq!(opening, Timestamp(d("2026-12-04").start().0 + 9 * 3_600_000));
        assert!(cal.is_open(opening));
        assert!(!cal.is_open(Timestamp(opening.0 - 1)));
        assert!(!cal.is_open(cal.at(d("2026-12-04"), 960)));
        // 23:30 UTC on Thursday is 00:30 CET on Friday.
        let late = Timestamp(d("2026-12-03").start().0 + 23 * 3_600_000 + 30 * 60_000);
        assert_eq!(cal.local(late), (d("2026-12-04"), 30 * 60_000));
        assert_eq!(cal.next_opening(late), opening);
    }

    #[test]
    fn holidays_and_offset_periods() {
        let mut cal = Calendar::default();
        cal.holidays.insert(d("2026-12-07"));
        assert_eq!(cal.next_working_day(d("2026-12-04")), d("2026-12-08"));
        assert_eq!(cal.working_days_after(d("2026-12-03"), 4), d("2026-12-10"));
        cal.offset_periods.push(OffsetPeriod { from: d("2026-03-29"), until: d("2026-10-25"), utc_offset_minutes: 120 });
        assert_eq!(cal.at(d("2026-07-01"), 600), Timestamp(d("2026-07-01").start().0 + 8 * 3_600_000));
        assert_eq!(cal.at(d("2026-11-02"), 600), Timestamp(d("2026-11-02").start().0 + 9 * 3_600_000));
        assert!(cal.problems().is_empty());
        cal.offset_periods.push(OffsetPeriod { from: d("2026-10-01"), until: d("2026-10-02"), utc_offset_minutes: 60 });
        cal.opening_minute = 960;
        assert_eq!(cal.problems().len(), 2, "{:?}", cal.problems());
    }
}
