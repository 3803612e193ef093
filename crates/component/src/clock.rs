//! Wall-clock log stamps to instants, for every collector that reads local-time logs.
//!
//! Syslog stamps (`Dec  4 15:00:00`) carry neither a year nor an offset, and many application
//! logs carry no offset: both are local wall-clock time of the server that wrote them. A
//! [`Clock`] gives a [`Stamp`] its year (by a [`YearRule`]) and the time zone's offset, so every
//! collector infers years and handles daylight saving the same way.

use std::path::Path;

use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

use crate::input::Input;

/// A time as a log wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Wall-clock time without a year (`Dec  4 15:00:00`).
    Local { month: u32, day: u32, second_of_day: u32, micros: u32 },
    /// Wall-clock date and time without an offset (`2026-12-04T15:00:00`): seconds since
    /// 1970-01-01 00:00 local time.
    Wall { seconds: i64, micros: u32 },
    /// An instant: microseconds since the Unix epoch.
    Instant(i64),
}

/// Turns stamps into instants: gives year-less stamps a year and the time zone's offset.
#[derive(Debug, Clone)]
pub struct Clock {
    tz: Tz,
    year: YearRule,
    /// The local hour last converted and its offset from UTC in seconds: lines come in time
    /// order, so one time-zone lookup serves an hour of log.
    cached: Option<(i64, i64)>,
}

/// The clocks of a run's inputs, read oldest first, for collectors of year-less stamps. With a
/// configured `year`, the inputs continue one another: each starts where the year rule of the one
/// before left off, so December in one and January in the next are a year apart. Without, an
/// input's latest date is its file's modification date, or the range's end for standard input.
#[derive(Debug, Clone)]
pub struct InputClocks {
    tz: Tz,
    year: Option<i32>,
    range_end: NaiveDate,
    carried: Option<YearRule>,
}

impl InputClocks {
    pub fn new(tz: Tz, year: Option<i32>, range_end: chrono::DateTime<chrono::Utc>) -> Self {
        InputClocks { tz, year, range_end: range_end.with_timezone(&tz).date_naive(), carried: None }
    }

    /// The clock of `input`, the next input read.
    pub fn start(&self, input: &Input) -> Clock {
        let year = match (self.year, input) {
            (Some(year), _) => self.carried.unwrap_or(YearRule::starting(i64::from(year))),
            (None, Input::File(path)) => YearRule::not_after(modified_date(path, self.tz)),
            (None, Input::Stdin) => YearRule::not_after(self.range_end),
        };
        Clock::new(self.tz, year)
    }

    /// Notes where the input just read, with `clock`, left off.
    pub fn finish(&mut self, clock: &Clock) {
        self.carry(clock.year_rule());
    }

    /// Where the inputs read so far left the year (with a configured `year` only).
    pub fn carried(&self) -> Option<YearRule> {
        self.carried
    }

    /// Continues from a year rule a checkpoint kept (with a configured `year` only).
    pub fn carry(&mut self, rule: YearRule) {
        if self.year.is_some() {
            self.carried = Some(rule);
        }
    }
}

/// Checks a configured `year`: `Err` says what is allowed.
pub fn check_year(year: Option<i32>) -> Result<(), &'static str> {
    match year {
        Some(year) if !(1970..=9999).contains(&year) => Err("`year` must be between 1970 and 9999"),
        _ => Ok(()),
    }
}

/// How a year-less stamp gets its year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum YearRule {
    /// The first line is in this year; a month that jumps back (December → January) starts
    /// the next year.
    Starting { year: i64, last_month: u32 },
    /// Each line gets the latest year that does not put it after this date (a day of slack
    /// for time zones): a log cannot hold lines written after it was last modified.
    NotAfter { year: i64, month: u32, day: u32 },
}

impl YearRule {
    pub fn starting(year: i64) -> Self {
        YearRule::Starting { year, last_month: 0 }
    }

    pub fn not_after(date: NaiveDate) -> Self {
        use chrono::Datelike;
        YearRule::NotAfter { year: i64::from(date.year()), month: date.month(), day: date.day() }
    }

    /// The year of a date; `None` when the date does not exist in it (and then nothing
    /// changes, so a stray line cannot move the year).
    fn year_of(&mut self, month: u32, day: u32) -> Option<i64> {
        let year = match self {
            YearRule::Starting { year, last_month } => {
                // Six months back is a new year, not a line out of order.
                let year = if month + 6 < *last_month { *year + 1 } else { *year };
                if day > days_in_month(year, month) {
                    return None;
                }
                *self = YearRule::Starting { year, last_month: month };
                year
            }
            YearRule::NotAfter { year, month: m, day: d } => {
                if (month, day) <= (*m, *d + 1) {
                    *year
                } else {
                    *year - 1
                }
            }
        };
        (day <= days_in_month(year, month)).then_some(year)
    }
}

impl Clock {
    pub fn new(tz: Tz, year: YearRule) -> Self {
        Clock { tz, year, cached: None }
    }

    /// The year rule as the stamps read so far left it. A collector that reads the files of one
    /// log oldest first with a configured `year` starts the next file's clock with it, so a file
    /// ending on 31 December and the next starting on 1 January are a year apart, not the same
    /// year.
    pub fn year_rule(&self) -> YearRule {
        self.year
    }

    /// Microseconds since the epoch; `None` for a date that does not exist (Feb 29 of a common
    /// year, month 13) or a time too far from 1970 to count in microseconds.
    pub fn instant(&mut self, stamp: Stamp) -> Option<i64> {
        let (local, micros) = match stamp {
            Stamp::Instant(t) => return Some(t),
            Stamp::Wall { seconds, micros } => (seconds, micros),
            Stamp::Local { month, day, second_of_day, micros } => {
                if !(1..=12).contains(&month) || day == 0 {
                    return None;
                }
                let year = self.year.year_of(month, day)?;
                (days_from_civil(year, month, day) * 86_400 + i64::from(second_of_day), micros)
            }
        };
        let hour = local.div_euclid(3600);
        let offset = match self.cached {
            Some((cached_hour, offset)) if cached_hour == hour => offset,
            _ => {
                let offset = self.offset_at(hour * 3600)?;
                self.cached = Some((hour, offset));
                offset
            }
        };
        local.checked_sub(offset)?.checked_mul(1_000_000)?.checked_add(i64::from(micros))
    }

    /// The zone's offset for a local time; in a repeated hour (autumn) the earlier, in a
    /// skipped hour (spring) the one after the jump.
    fn offset_at(&self, local_secs: i64) -> Option<i64> {
        let naive = chrono::DateTime::from_timestamp(local_secs, 0)?.naive_utc();
        let offset = match self.tz.offset_from_local_datetime(&naive) {
            chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(o, _) => o,
            chrono::LocalResult::None => self.tz.offset_from_utc_datetime(&naive),
        };
        Some(i64::from(offset.fix().local_minus_utc()))
    }
}

/// Reads a BSD syslog stamp at the start of `text`: `Dec  4 15:00:00`, `Dec 04 15:00:00` or
/// `Dec 4 15:00:00`, optionally with a fraction (`.123456`); returns it and the rest of `text`.
/// Parsed by hand over bytes: it runs once per log line and must not allocate.
pub fn bsd_stamp(text: &[u8]) -> Result<(Stamp, &[u8]), &'static str> {
    const WANT: &str = "a timestamp like \"Dec  4 15:00:00\" or \"2026-12-04T15:00:00Z\"";
    const MONTHS: [&[u8; 3]; 12] =
        [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];
    let name = text.get(..3).ok_or(WANT)?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name)).ok_or(WANT)? as u32 + 1;
    let rest = text[3..].strip_prefix(b" ").ok_or(WANT)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let day_len = rest.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
    if !(1..=2).contains(&day_len) {
        return Err(WANT);
    }
    let day = rest[..day_len].iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    let rest = rest[day_len..].strip_prefix(b" ").ok_or(WANT)?;
    let (second_of_day, micros, rest) = clock_time(rest).ok_or(WANT)?;
    if !(1..=31).contains(&day) {
        return Err("a day of the month from 1 to 31");
    }
    Ok((Stamp::Local { month, day, second_of_day, micros }, rest))
}

/// `HH:MM:SS` and an optional `.fraction` (digits past the sixth are ignored): seconds of the
/// day, microseconds, and the rest. A leap second counts as the second before it.
pub fn clock_time(text: &[u8]) -> Option<(u32, u32, &[u8])> {
    if text.len() < 8 || text[2] != b':' || text[5] != b':' {
        return None;
    }
    let two = |b: &[u8]| {
        (b[0].is_ascii_digit() && b[1].is_ascii_digit()).then(|| u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0'))
    };
    let (h, m, s) = (two(&text[0..2])?, two(&text[3..5])?, two(&text[6..8])?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[8..];
    let mut micros = 0;
    if let Some(after) = rest.strip_prefix(b".") {
        let n = after.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, b) in after[..n.min(6)].iter().enumerate() {
            micros += u32::from(b - b'0') * 10u32.pow(5 - i as u32);
        }
        rest = &after[n..];
    }
    Some((h * 3600 + m * 60 + s.min(59), micros, rest))
}

/// The local date a file was last written, the latest date its year-less lines can have.
pub fn modified_date(path: &Path, tz: Tz) -> NaiveDate {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let modified: chrono::DateTime<chrono::Utc> = modified.map(Into::into).unwrap_or_default();
    modified.with_timezone(&tz).date_naive()
}

pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
    }

    #[test]
    fn year_less_stamps_roll_over_into_january() {
        let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
        let dec = clock.instant(Stamp::Local { month: 12, day: 31, second_of_day: 86_399, micros: 0 }).unwrap();
        let jan = clock.instant(Stamp::Local { month: 1, day: 1, second_of_day: 0, micros: 0 }).unwrap();
        assert_eq!((dec, jan), (at("2026-12-31T23:59:59Z"), at("2027-01-01T00:00:00Z")));
        // A file last written on 2 January 2027 holds December lines of 2026.
        let mut clock = Clock::new(Tz::UTC, YearRule::not_after(NaiveDate::from_ymd_opt(2027, 1, 2).unwrap()));
        assert_eq!(
            clock.instant(Stamp::Local { month: 12, day: 31, second_of_day: 0, micros: 5 }),
            Some(at("2026-12-31T00:00:00.000005Z"))
        );
        assert_eq!(
            clock.instant(Stamp::Local { month: 1, day: 2, second_of_day: 0, micros: 0 }),
            Some(at("2027-01-02T00:00:00Z"))
        );
        assert_eq!(clock.instant(Stamp::Local { month: 2, day: 29, second_of_day: 0, micros: 0 }), None);
        assert_eq!(clock.instant(Stamp::Local { month: 13, day: 1, second_of_day: 0, micros: 0 }), None);
    }

    #[test]
    fn the_year_rule_carries_over_to_the_next_file() {
        // a.log ends on 31 December, b.log (read next) starts on 1 January: with `year = 2026`,
        // b.log's clock starts from where a.log's left off.
        let mut a = Clock::new(Tz::UTC, YearRule::starting(2026));
        a.instant(Stamp::Local { month: 12, day: 31, second_of_day: 0, micros: 0 }).unwrap();
        let mut b = Clock::new(Tz::UTC, a.year_rule());
        let jan = b.instant(Stamp::Local { month: 1, day: 1, second_of_day: 0, micros: 0 });
        assert_eq!(jan, Some(at("2027-01-01T00:00:00Z")));
        // A fresh rule would have put it in 2026.
        let mut fresh = Clock::new(Tz::UTC, YearRule::starting(2026));
        let jan = fresh.instant(Stamp::Local { month: 1, day: 1, second_of_day: 0, micros: 0 });
        assert_eq!(jan, Some(at("2026-01-01T00:00:00Z")));
        // Wall times far outside i64 microseconds are refused, not wrapped.
        assert_eq!(fresh.instant(Stamp::Wall { seconds: i64::MAX / 1000, micros: 0 }), None);
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        let mut clock = Clock::new(chrono_tz::Europe::Berlin, YearRule::starting(2026));
        let summer = clock.instant(Stamp::Local { month: 7, day: 1, second_of_day: 12 * 3600, micros: 0 });
        let winter = clock.instant(Stamp::Local { month: 12, day: 1, second_of_day: 12 * 3600, micros: 0 });
        assert_eq!(summer, Some(at("2026-07-01T10:00:00Z")));
        assert_eq!(winter, Some(at("2026-12-01T11:00:00Z")));
    }
}
