//! Report ranges: whole local days in the site's time zone.
//!
//! Days are cut in `site.timezone`, not UTC, so "Monday" in a report means the admin's Monday.
//! Nothing here reads the clock: callers pass "today" in, which keeps tests exact.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The most days a report may span.
pub const MAX_DAYS: u32 = 400;

/// An inclusive range of local dates in one time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(serialize_with = "serialize_tz")]
    pub timezone: Tz,
}

fn serialize_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

impl ReportRange {
    /// `from..=to`, checked: `from <= to` and at most [`MAX_DAYS`] days.
    pub fn new(from: NaiveDate, to: NaiveDate, timezone: Tz) -> Result<Self, Error> {
        // Far-off years are typos, and date arithmetic near chrono's limits would overflow.
        for date in [from, to] {
            if !(1970..=9999).contains(&date.year()) {
                return Err(Error::Range(format!("{date} is outside the years 1970 to 9999")));
            }
        }
        if from > to {
            return Err(Error::Range(format!(
                "the range starts on {from}, after its end on {to}; give --from before --to"
            )));
        }
        let range = ReportRange { from, to, timezone };
        if range.days() > MAX_DAYS {
            return Err(Error::Range(format!(
                "the range {from} to {to} spans {} days; at most {MAX_DAYS} are allowed",
                range.days()
            )));
        }
        Ok(range)
    }

    /// The last `days` complete days before `today` (the default report is `last_days(7, …)`).
    pub fn last_days(days: u32, today: NaiveDate, timezone: Tz) -> Result<Self, Error> {
        if days == 0 || days > MAX_DAYS {
            return Err(Error::Range(format!("--days must be between 1 and {MAX_DAYS}, not {days}")));
        }
        let to = today - Days::new(1);
        ReportRange::new(to - Days::new(u64::from(days) - 1), to, timezone)
    }

    /// Today's date in `timezone` at the instant `now`.
    pub fn today(now: DateTime<Utc>, timezone: Tz) -> NaiveDate {
        now.with_timezone(&timezone).date_naive()
    }

    pub fn days(&self) -> u32 {
        (self.to - self.from).num_days() as u32 + 1
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from <= date && date <= self.to
    }

    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }

    /// The range of equal length that ends the day before this one starts.
    pub fn previous(&self) -> ReportRange {
        let days = u64::from(self.days());
        ReportRange { from: self.from - Days::new(days), to: self.from - Days::new(1), timezone: self.timezone }
    }

    /// The local date of an instant.
    pub fn local_date(&self, time: DateTime<Utc>) -> NaiveDate {
        time.with_timezone(&self.timezone).date_naive()
    }

    /// The half-open UTC interval `[start, end)` covering the range's local days.
    pub fn utc_bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (start_of_day(self.from, self.timezone), start_of_day(self.to + Days::new(1), self.timezone))
    }
}

/// A range relative to the day a job runs: `"yesterday"`, `"last 7 days"`, `"previous calendar
/// week"` (Monday to Sunday) or `"previous calendar month"`. Every form ends before today, so a
/// report only ever shows whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum RangeSpec {
    LastDays(u32),
    PreviousCalendarWeek,
    PreviousCalendarMonth,
}

impl RangeSpec {
    /// The range this spec means on `today`.
    pub fn resolve(self, today: NaiveDate, timezone: Tz) -> Result<ReportRange, Error> {
        match self {
            RangeSpec::LastDays(days) => ReportRange::last_days(days, today, timezone),
            RangeSpec::PreviousCalendarWeek => {
                let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
                ReportRange::new(monday - Days::new(7), monday - Days::new(1), timezone)
            }
            RangeSpec::PreviousCalendarMonth => {
                let first = today.with_day(1).expect("every month has a first day");
                let previous = first.checked_sub_months(chrono::Months::new(1)).unwrap_or(first);
                ReportRange::new(previous, first - Days::new(1), timezone)
            }
        }
    }
}

impl std::str::FromStr for RangeSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let words: Vec<String> = text.split_whitespace().map(str::to_ascii_lowercase).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let days = match words.as_slice() {
            ["yesterday"] | ["last", "day"] => Some(1),
            ["last", n, "days" | "day"] => n.parse::<u32>().ok().filter(|n| (1..=MAX_DAYS).contains(n)),
            ["previous", "calendar", "week"] => return Ok(RangeSpec::PreviousCalendarWeek),
            ["previous", "calendar", "month"] => return Ok(RangeSpec::PreviousCalendarMonth),
            _ => None,
        };
        days.map(RangeSpec::LastDays).ok_or_else(|| {
            Error::Range(format!(
                "unknown range \"{text}\"; use \"yesterday\", \"last N days\" (N from 1 to {MAX_DAYS}), \
                 \"previous calendar week\" or \"previous calendar month\""
            ))
        })
    }
}

impl TryFrom<String> for RangeSpec {
    type Error = Error;

    fn try_from(text: String) -> Result<Self, Error> {
        text.parse()
    }
}

impl std::fmt::Display for RangeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeSpec::LastDays(1) => f.write_str("yesterday"),
            RangeSpec::LastDays(n) => write!(f, "last {n} days"),
            RangeSpec::PreviousCalendarWeek => f.write_str("previous calendar week"),
            RangeSpec::PreviousCalendarMonth => f.write_str("previous calendar month"),
        }
    }
}

/// The first instant of a local date. Where a DST jump skips midnight, the day starts at the
/// first local time that exists.
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut local = date.and_hms_opt(0, 0, 0).expect("midnight is a valid time");
    // DST gaps are at most a few hours; step forward in 15-minute increments until time exists.
    for _ in 0..=4 * 24 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => local += chrono::Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight is a valid time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn default_range_is_the_last_seven_complete_days() {
        let r = ReportRange::last_days(7, date("2026-12-04"), Tz::UTC).unwrap();
        assert_eq!((r.from, r.to), (date("2026-11-27"), date("2026-12-03")));
        assert_eq!(r.days(), 7);
        assert_eq!(r.dates().count(), 7);
        let p = r.previous();
        assert_eq!((p.from, p.to), (date("2026-11-20"), date("2026-11-26")));
    }

    #[test]
    fn today_is_taken_in_the_site_time_zone() {
        let now = "2026-12-04T03:00:00Z".parse().unwrap();
        assert_eq!(ReportRange::today(now, Tz::UTC), date("2026-12-04"));
        assert_eq!(ReportRange::today(now, chrono_tz::America::New_York), date("2026-12-03"));
    }

    #[test]
    fn days_are_cut_in_the_site_time_zone() {
        let tz = chrono_tz::Europe::Berlin;
        let r = ReportRange::new(date("2026-12-01"), date("2026-12-01"), tz).unwrap();
        let (start, end) = r.utc_bounds();
        assert_eq!(start.to_rfc3339(), "2026-11-30T23:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-12-01T23:00:00+00:00");
        assert_eq!(r.local_date("2026-11-30T23:30:00Z".parse().unwrap()), date("2026-12-01"));
        assert_eq!(r.local_date("2026-11-30T22:59:59Z".parse().unwrap()), date("2026-11-30"));
    }

    #[test]
    fn dst_days_have_23_and_25_hours() {
        let tz = chrono_tz::Europe::Berlin;
        let spring = ReportRange::new(date("2026-03-29"), date("2026-03-29"), tz).unwrap();
        let (s, e) = spring.utc_bounds();
        assert_eq!((e - s).num_hours(), 23);
        let autumn = ReportRange::new(date("2026-10-25"), date("2026-10-25"), tz).unwrap();
        let (s, e) = autumn.utc_bounds();
        assert_eq!((e - s).num_hours(), 25);
    }

    #[test]
    fn a_midnight_that_does_not_exist_starts_the_day_at_the_first_valid_time() {
        // America/Santiago skips 00:00 -> 01:00 when DST starts (2026-09-06).
        let tz = chrono_tz::America::Santiago;
        let r = ReportRange::new(date("2026-09-06"), date("2026-09-06"), tz).unwrap();
        let (start, _) = r.utc_bounds();
        assert_eq!(r.local_date(start), date("2026-09-06"));
        assert_eq!(r.local_date(start - chrono::Duration::seconds(1)), date("2026-09-05"));
    }

    #[test]
    fn relative_ranges_end_yesterday() {
        let tz = Tz::UTC;
        let spec = |s: &str| s.parse::<RangeSpec>().unwrap();
        // 2026-12-07 is a Monday.
        for (text, today, from, to) in [
            ("yesterday", "2026-12-07", "2026-12-06", "2026-12-06"),
            ("Last 7 days", "2026-12-07", "2026-11-30", "2026-12-06"),
            ("previous calendar week", "2026-12-07", "2026-11-30", "2026-12-06"),
            ("previous calendar week", "2026-12-13", "2026-11-30", "2026-12-06"),
            ("previous calendar month", "2026-12-01", "2026-11-01", "2026-11-30"),
            ("previous calendar month", "2026-03-31", "2026-02-01", "2026-02-28"),
            ("previous calendar month", "2027-01-15", "2026-12-01", "2026-12-31"),
        ] {
            let r = spec(text).resolve(date(today), tz).unwrap();
            assert_eq!((r.from, r.to), (date(from), date(to)), "{text} on {today}");
        }
        for text in ["last 0 days", "last 401 days", "last week", "tomorrow", ""] {
            let e = text.parse::<RangeSpec>().unwrap_err().to_string();
            assert!(e.contains("previous calendar week"), "{e}");
        }
        assert_eq!(spec("last 14 days").to_string(), "last 14 days");
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(ReportRange::new(date("2026-12-02"), date("2026-12-01"), Tz::UTC).is_err());
        assert!(ReportRange::last_days(0, date("2026-12-04"), Tz::UTC).is_err());
        assert!(ReportRange::last_days(401, date("2026-12-04"), Tz::UTC).is_err());
        assert!(ReportRange::last_days(400, date("2026-12-04"), Tz::UTC).is_ok());
        assert!(ReportRange::new(date("+262142-12-31"), date("+262142-12-31"), Tz::UTC).is_err());
    }
}
