//! The `time` group's text to a [`Stamp`], by the collector's `time_format`.
//!
//! Times with an offset are instants; times without one are wall-clock time of `timezone`, and
//! times without a year (syslog's `Dec  4 15:00:00`, or a strftime format with no year) get one
//! from the file, as the `postfix` collector does: both go through `mailflow_component::clock`.

use chrono::format::{Item, Parsed, StrftimeItems};
use mailflow_component::clock::{self, Stamp, days_from_civil};

/// How the `time` group is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2026-12-04T15:00:00.123Z`, `2026-12-04 16:00:00+01:00`; without an offset, local time.
    Rfc3339,
    /// BSD syslog: `Dec  4 15:00:00`, optionally with a fraction; local time without a year.
    Syslog,
    /// Seconds since the epoch, optionally with a fraction: `1796423012.094`.
    Unix,
    /// Milliseconds since the epoch: `1796423012094`.
    UnixMs,
    /// A chrono strftime format, e.g. `%Y-%m-%d %H:%M:%S%.f`; without `%z`, local time; without
    /// a year, the year is inferred.
    Strftime(String),
}

impl TimeFormat {
    /// The configured `time_format`; `Err` says what is accepted.
    pub fn new(text: &str) -> Result<TimeFormat, String> {
        Ok(match text {
            "rfc3339" => TimeFormat::Rfc3339,
            "syslog" => TimeFormat::Syslog,
            "unix" => TimeFormat::Unix,
            "unix_ms" => TimeFormat::UnixMs,
            format if format.contains('%') => {
                if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
                    return Err(format!("`time_format` \"{format}\" is not a valid strftime format"));
                }
                TimeFormat::Strftime(format.to_string())
            }
            other => {
                return Err(format!(
                    "`time_format` \"{other}\" is unknown: use \"rfc3339\", \"syslog\", \"unix\", \"unix_ms\" or a \
                     strftime format like \"%Y-%m-%d %H:%M:%S\""
                ));
            }
        })
    }

    /// Reads one time; `Err` says what was expected.
    pub fn stamp(&self, text: &str) -> Result<Stamp, String> {
        self.read(text).ok_or_else(|| self.expected())
    }

    /// Reads one time; `None` if it is not in this format.
    fn read(&self, text: &str) -> Option<Stamp> {
        match self {
            TimeFormat::Rfc3339 => rfc3339(text),
            TimeFormat::Syslog => syslog(text.as_bytes()),
            TimeFormat::Unix => unix(text, 1_000_000),
            TimeFormat::UnixMs => unix(text, 1_000),
            TimeFormat::Strftime(format) => strftime(text, format),
        }
    }

    /// What a time in this format looks like, for messages.
    fn expected(&self) -> String {
        match self {
            TimeFormat::Rfc3339 => "a time like 2026-12-04T15:00:00Z".to_string(),
            TimeFormat::Syslog => "a syslog time like \"Dec  4 15:00:00\"".to_string(),
            TimeFormat::Unix => "seconds since 1970 (before 10000) like 1796423012.094".to_string(),
            TimeFormat::UnixMs => "milliseconds since 1970 (before 10000) like 1796423012094".to_string(),
            TimeFormat::Strftime(format) => format!("a time in the format \"{format}\""),
        }
    }
}

/// The configured `time_format`s, tried in order: one log can hold several (a syslog daemon
/// switched from BSD to RFC 3339 stamps, lines with and without a syslog header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormats(Vec<TimeFormat>);

impl TimeFormats {
    /// The configured list; `Err` says what is wrong with which entry.
    pub fn new(texts: &[String]) -> Result<TimeFormats, String> {
        if texts.is_empty() {
            return Err("`time_format` is an empty list: name at least one format".to_string());
        }
        texts.iter().map(|t| TimeFormat::new(t)).collect::<Result<Vec<_>, _>>().map(TimeFormats)
    }

    /// Reads one time by the first format that reads it; `Err` says what was expected.
    pub fn stamp(&self, text: &str) -> Result<Stamp, String> {
        if let Some(stamp) = self.0.iter().find_map(|format| format.read(text)) {
            return Ok(stamp);
        }
        Err(self.0.iter().map(TimeFormat::expected).collect::<Vec<_>>().join(" or "))
    }
}

fn rfc3339(text: &str) -> Option<Stamp> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(Stamp::Instant(t.timestamp_micros()));
    }
    strftime(text, "%Y-%m-%dT%H:%M:%S%.f%#z")
        .or_else(|| strftime(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .or_else(|| strftime(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|| strftime(text, "%Y-%m-%d %H:%M:%S%.f"))
}

/// `Dec  4 15:00:00`, `Dec 04 15:00:00` or `Dec 4 15:00:00.123456`, and nothing after.
fn syslog(text: &[u8]) -> Option<Stamp> {
    clock::bsd_stamp(text).ok().filter(|(_, rest)| rest.is_empty()).map(|(stamp, _)| stamp)
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// Whole units since the epoch, with an optional fraction; `per_unit` microseconds each.
fn unix(text: &str, per_unit: i64) -> Option<Stamp> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let units = i64::try_from(number(whole.as_bytes())?).ok()?;
    let mut micros = units.checked_mul(per_unit)?;
    if !fraction.is_empty() || text.ends_with('.') {
        let digits = fraction.as_bytes();
        number(digits)?;
        let mut scale = per_unit;
        for &d in digits {
            scale /= 10;
            // Checked: `9223372036854.999999` is digits, but no time.
            micros = micros.checked_add(i64::from(d - b'0') * scale)?;
        }
    }
    // Beyond year 9999 is no log time.
    (micros < 253_402_300_800_000_000).then_some(Stamp::Instant(micros))
}

fn strftime(text: &str, format: &str) -> Option<Stamp> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, StrftimeItems::new(format)).ok()?;
    if let Some(seconds) = parsed.timestamp() {
        let micros = i64::from(parsed.nanosecond().unwrap_or(0) / 1000);
        return seconds.checked_mul(1_000_000).and_then(|s| s.checked_add(micros)).map(Stamp::Instant);
    }
    let time = parsed.to_naive_time().ok()?;
    use chrono::Timelike;
    let second_of_day = time.num_seconds_from_midnight();
    let micros = time.nanosecond().min(999_999_999) / 1000;
    if parsed.year().is_none() && parsed.year_div_100().is_none() && parsed.year_mod_100().is_none() {
        let (month, day) = (parsed.month()?, parsed.day()?);
        if parsed.offset().is_some() {
            // A year-less time with an offset is still year-less; the offset is dropped rather
            // than guessed with: such formats are not known to exist.
            return None;
        }
        return Some(Stamp::Local { month, day, second_of_day, micros });
    }
    let date = parsed.to_naive_date().ok()?;
    use chrono::Datelike;
    let seconds = days_from_civil(i64::from(date.year()), date.month(), date.day()) * 86_400 + i64::from(second_of_day);
    match parsed.offset() {
        Some(offset) => seconds
            .checked_sub(i64::from(offset))
            .and_then(|s| s.checked_mul(1_000_000))
            .and_then(|s| s.checked_add(i64::from(micros)))
            .map(Stamp::Instant),
        None => Some(Stamp::Wall { seconds, micros }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(text: &str) -> Stamp {
        Stamp::Instant(chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros())
    }

    #[test]
    fn every_format_reads_its_own_times() {
        let rfc = TimeFormat::new("rfc3339").unwrap();
        assert_eq!(rfc.stamp("2026-12-04T22:23:07.363Z"), Ok(instant("2026-12-04T22:23:07.363Z")));
        assert_eq!(rfc.stamp("2026-12-04 23:23:07+01:00"), Ok(instant("2026-12-04T22:23:07Z")));
        let wall = Stamp::Wall { seconds: 1_796_423_012 - 1_796_423_012 % 86_400 + 15 * 3600, micros: 500_000 };
        assert_eq!(rfc.stamp("2026-12-04T15:00:00.5"), Ok(wall));
        assert!(rfc.stamp("2026-13-04T15:00:00Z").is_err());

        let syslog = TimeFormat::new("syslog").unwrap();
        let local = |day, second_of_day, micros| Stamp::Local { month: 12, day, second_of_day, micros };
        assert_eq!(syslog.stamp("Dec  4 22:29:27"), Ok(local(4, 80_967, 0)));
        assert_eq!(syslog.stamp("Dec 04 22:29:27.25"), Ok(local(4, 80_967, 250_000)));
        assert_eq!(syslog.stamp("Dec 14 22:29:27"), Ok(local(14, 80_967, 0)));
        for bad in ["Dec 4  22:29:27", "Dez  4 22:29:27", "Dec 44 22:29:27", "Dec  4 24:00:00", "Dec  4 22:29:27 x"] {
            assert!(syslog.stamp(bad).is_err(), "{bad}");
        }

        assert_eq!(TimeFormat::new("unix").unwrap().stamp("1796423012.094"), Ok(Stamp::Instant(1_796_423_012_094_000)));
        assert_eq!(
            TimeFormat::new("unix_ms").unwrap().stamp("1796423012094"),
            Ok(Stamp::Instant(1_796_423_012_094_000))
        );
        assert!(TimeFormat::new("unix").unwrap().stamp("-5").is_err());
        assert!(TimeFormat::new("unix").unwrap().stamp("99999999999999999").is_err());

        let with_offset = TimeFormat::new("%d/%b/%Y:%H:%M:%S %z").unwrap();
        assert_eq!(with_offset.stamp("04/Dec/2026:23:23:07 +0100"), Ok(instant("2026-12-04T22:23:07Z")));
        let year_less = TimeFormat::new("%b %e %H:%M:%S").unwrap();
        assert_eq!(year_less.stamp("Dec  4 22:29:27"), Ok(local(4, 80_967, 0)));
    }

    #[test]
    fn numbers_too_large_for_a_time_are_errors_not_overflows() {
        let unix = TimeFormat::new("unix").unwrap();
        for text in ["9223372036854.999999", "9223372036854775807", "9223372036854775.9", "253402300800"] {
            let want = unix.stamp(text).unwrap_err();
            assert!(want.contains("seconds since 1970"), "{text}: {want}");
        }
        assert!(TimeFormat::new("unix_ms").unwrap().stamp("9223372036854775.999").is_err());
        let offset = TimeFormat::new("%Y-%m-%d %H:%M:%S %z").unwrap();
        // The far end of chrono's years: read or refused, never an overflow.
        let _ = offset.stamp("+262143-12-31 23:59:59 -2359");
        let _ = offset.stamp("-262143-01-01 00:00:00 +2359");
    }

    #[test]
    fn a_list_of_formats_is_tried_in_order() {
        let formats = TimeFormats::new(&["syslog".to_string(), "rfc3339".to_string()]).unwrap();
        assert_eq!(
            formats.stamp("Dec  4 22:29:27"),
            Ok(Stamp::Local { month: 12, day: 4, second_of_day: 80_967, micros: 0 })
        );
        assert_eq!(formats.stamp("2026-12-04T22:23:07.363Z"), Ok(instant("2026-12-04T22:23:07.363Z")));
        let nanos = formats.stamp("2026-07-23 20:55:43.527992500").unwrap();
        let day = 1_784_764_800; // 2026-07-23
        assert_eq!(nanos, Stamp::Wall { seconds: day + 20 * 3600 + 55 * 60 + 43, micros: 527_992 });
        let want = formats.stamp("yesterday").unwrap_err();
        assert_eq!(want, "a syslog time like \"Dec  4 15:00:00\" or a time like 2026-12-04T15:00:00Z");
        assert!(TimeFormats::new(&[]).unwrap_err().contains("empty list"));
        assert!(
            TimeFormats::new(&["syslog".to_string(), "iso".to_string()]).unwrap_err().contains("\"iso\" is unknown")
        );
    }

    #[test]
    fn unknown_formats_are_config_errors() {
        assert!(TimeFormat::new("iso").unwrap_err().contains("unknown"));
        assert!(TimeFormat::new("%Y-%Q").unwrap_err().contains("not a valid strftime format"));
    }
}
