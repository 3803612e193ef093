//! `[[job]]` and `[daemon]`: when `mailflow daemon` runs which report.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use mailflow_core::RangeSpec;
use serde::Deserialize;

/// One `[[job]]`: a report run on a schedule by `mailflow daemon`, or now by `mailflow run --job`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Names the job in logs, lock files and `mailflow run --job NAME`.
    pub name: String,
    /// When to run: a five-field cron expression ("0 7 * * MON"), in `timezone`.
    pub schedule: Schedule,
    /// The time zone of `schedule`; by default the site's. The report's days are cut in the
    /// site's time zone whatever this says.
    pub timezone: Option<Tz>,
    /// What the report covers, relative to the day the job runs.
    #[serde(default = "default_range")]
    pub range: RangeSpec,
    /// The collectors to read, by name; all when absent.
    pub collectors: Option<Vec<String>>,
    /// The sinks to deliver to, by name; all when absent.
    pub sinks: Option<Vec<String>>,
}

fn default_range() -> RangeSpec {
    RangeSpec::LastDays(7)
}

/// `[daemon]`: settings of `mailflow daemon` that are not per job.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Where the per-job lock files live; by default the runner's `LockDir::default_dir`.
    pub lock_dir: Option<PathBuf>,
}

/// A parsed five-field cron expression (minute hour day-of-month month day-of-week; names such as
/// `MON` and `JAN`, ranges, steps, `L` and `#` allowed).
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// The first run strictly after `after`, with the expression read in `timezone`. A time that
    /// a DST jump skips runs at the first instant after the jump; a time that occurs twice runs
    /// once.
    pub fn next_after(&self, after: DateTime<Utc>, timezone: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&timezone);
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let fields = text.split_whitespace().count();
        if fields != 5 && !text.trim_start().starts_with('@') {
            return Err(format!(
                "`schedule` takes five cron fields (minute hour day month weekday, e.g. \"0 7 * * MON\"), \
                 not {fields}: \"{text}\""
            ));
        }
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron =
            parser.parse(text).map_err(|e| format!("`schedule` \"{text}\" is not a valid cron expression: {e}"))?;
        Ok(Schedule { text: text.trim().to_string(), cron })
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn monday_mornings_in_berlin_across_both_dst_changes() {
        let weekly: Schedule = "0 7 * * MON".parse().unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        // 07:00 CET is 06:00 UTC; 07:00 CEST is 05:00 UTC.
        assert_eq!(weekly.next_after(at("2026-03-25T12:00:00Z"), berlin), Some(at("2026-03-30T05:00:00Z")));
        assert_eq!(weekly.next_after(at("2026-03-23T06:00:00Z"), berlin), Some(at("2026-03-30T05:00:00Z")));
        assert_eq!(weekly.next_after(at("2026-10-21T12:00:00Z"), berlin), Some(at("2026-10-26T06:00:00Z")));
    }

    #[test]
    fn a_skipped_hour_runs_after_the_jump_and_a_repeated_hour_runs_once() {
        let nightly: Schedule = "30 2 * * *".parse().unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-03-29 02:30 does not exist in Berlin: run at 03:00 CEST (01:00 UTC).
        assert_eq!(nightly.next_after(at("2026-03-28T12:00:00Z"), berlin), Some(at("2026-03-29T01:00:00Z")));
        // 2026-10-25 02:30 happens twice (CEST, then CET): run at the first only.
        let first = nightly.next_after(at("2026-10-24T12:00:00Z"), berlin).unwrap();
        assert_eq!(first, at("2026-10-25T00:30:00Z"));
        assert_eq!(nightly.next_after(first, berlin), Some(at("2026-10-26T01:30:00Z")));
    }

    #[test]
    fn bad_expressions_say_what_a_schedule_looks_like() {
        for text in ["0 7 * *", "0 0 7 * * MON", "61 7 * * *", "0 7 * * FUNDAY"] {
            let e = text.parse::<Schedule>().unwrap_err();
            assert!(e.contains(text), "{e}");
        }
        assert!("@weekly".parse::<Schedule>().is_ok());
    }
}
