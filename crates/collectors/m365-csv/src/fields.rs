//! Cells as Microsoft's exports spell them: times, dates, numbers, statuses, directions,
//! recipient lists and connector names. Shared by every format, so a spelling is learnt once.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use mailflow_core::{Direction, Evidence};

use crate::DateOrder;

/// Column names as compared: lower case, letters and digits only, so `TLS 1.2`, `TLS1.2` and
/// `tls_1_2`, or `Message ID` and `message_id`, are one name.
pub fn normalize(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The header of a file: its names as written and normalized.
pub struct Header {
    names: Vec<String>,
    normalized: Vec<String>,
}

impl Header {
    pub fn new(names: &[String]) -> Self {
        Header { names: names.to_vec(), normalized: names.iter().map(|n| normalize(n)).collect() }
    }

    /// The column with any of these names.
    pub fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|name| self.normalized.iter().position(|c| *c == normalize(name)))
    }

    /// The names as the file writes them.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn require(&self, name: &str) -> Result<usize, String> {
        self.find(&[name]).ok_or_else(|| format!("the header has no `{name}` column"))
    }
}

/// One data row: trimmed cells, where it is, and what every format needs besides.
pub struct Row<'a> {
    pub cells: &'a [&'a str],
    pub file: &'a Arc<str>,
    pub line: u64,
    pub accepted_domains: &'a [String],
    /// How the file writes dates with the year last.
    pub date_order: DateOrder,
}

impl<'a> Row<'a> {
    /// The cell of column `i`, `""` when the format has no such column.
    pub fn get(&self, i: Option<usize>) -> &'a str {
        i.and_then(|i| self.cells.get(i).copied()).unwrap_or("")
    }

    /// The cell of column `i` when it is not empty.
    pub fn text(&self, i: Option<usize>) -> Option<String> {
        Some(self.get(i)).filter(|s| !s.is_empty()).map(str::to_string)
    }

    pub fn evidence(&self) -> Evidence {
        Evidence::at_line(self.file.clone(), self.line)
    }

    pub fn time(&self, i: usize, column: &str) -> Result<DateTime<Utc>, String> {
        let cell = self.get(Some(i));
        time(cell, self.date_order).ok_or_else(|| {
            format!("expected a time like 2026-11-30T08:15:02Z or 11/30/2026 8:15:02 AM in `{column}`, not {cell:?}")
        })
    }

    pub fn number(&self, i: Option<usize>, column: &str) -> Result<Option<u64>, String> {
        let cell = self.get(i);
        number(cell).ok_or_else(|| format!("expected a number in `{column}`, not {cell:?}"))
    }
}

/// A UTC time as the exports write it: RFC 3339, ISO 8601 without an offset, or a date with
/// the year last (`11/30/2026`, `30/11/2026`, `30.11.2026`) or first (`2026/11/30`) and a time
/// with an optional AM/PM. Times without an offset are UTC, as every Microsoft 365 export is.
pub fn time(text: &str, order: DateOrder) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    if let Some(t) = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        return Some(t.and_utc());
    }
    let (day, clock) = text.split_once(' ')?;
    let day = numeric_date(day, order)?;
    let clock = ["%I:%M:%S %p", "%I:%M %p", "%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(clock.trim(), f).ok())?;
    Some(day.and_time(clock).and_utc())
}

/// A day: `2026-11-30`, a date [`time`] reads, or any time it reads.
pub fn date(text: &str, order: DateOrder) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| numeric_date(text, order))
        .or_else(|| time(text, order).map(|t| t.date_naive()))
}

/// The day, month and year of a date written with `/` or `.`: year first is year, month, day;
/// year last with dots is day first (`30.11.2026`); year last with slashes is in `order`
/// (month first unless told otherwise), and not read when `order` is year first.
fn numeric_date(text: &str, order: DateOrder) -> Option<NaiveDate> {
    let (sep, [a, b, c]) = date_parts(text)?;
    let (y, m, d) = match (a.len(), c.len(), sep, order) {
        (4, _, _, _) => (a, b, c),
        (_, 4, '.', _) | (_, 4, _, DateOrder::Dmy) => (c, b, a),
        (_, 4, _, DateOrder::Mdy | DateOrder::Auto) => (c, a, b),
        _ => return None,
    };
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The separator and three numbers of `11/30/2026` or `30.11.2026` (the date of a time too).
fn date_parts(text: &str) -> Option<(char, [&str; 3])> {
    let text = text.split([' ', 'T']).next()?;
    let sep = ['/', '.'].into_iter().find(|&sep| text.contains(sep))?;
    let mut parts = text.split(sep);
    let numbers = [parts.next()?, parts.next()?, parts.next()?];
    let number = |n: &str| (1..=4).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit());
    (parts.next().is_none() && numbers.iter().all(|n| number(n))).then_some((sep, numbers))
}

/// What a date or time says of its file's order: day first for `30/11/2026` (a day above 12)
/// and for dots; month first for `11/30/2026`; `None` for a date either way round
/// (`05/11/2026`), the same both ways (`05/05/2026`), year first, or no such date.
pub fn order_shown(text: &str) -> Option<DateOrder> {
    let (sep, [a, b, c]) = date_parts(text)?;
    let (a, b, year) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?, c.parse::<i32>().ok()?);
    // Only a date that exists in the order it implies decides: `13/13/2026` is damage.
    let (order, day, month) = match () {
        _ if c.len() != 4 => return None,
        _ if sep == '.' || a > 12 => (DateOrder::Dmy, a, b),
        _ if b > 12 => (DateOrder::Mdy, b, a),
        _ => return None,
    };
    NaiveDate::from_ymd_opt(year, month, day).map(|_| order)
}

/// Whether a date reads as two different days month first and day first (`05/11/2026`).
pub fn ambiguous(text: &str) -> bool {
    date_parts(text).is_some_and(|(sep, [a, b, c])| {
        sep == '/'
            && c.len() == 4
            && matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a != b && (1..=12).contains(&a) && (1..=12).contains(&b))
    })
}

/// A count or size; thousands separators are allowed. `Some(None)` for an empty cell, `None`
/// for something else.
pub fn number(text: &str) -> Option<Option<u64>> {
    if text.is_empty() {
        return Some(None);
    }
    let digits: String = text.chars().filter(|c| !matches!(c, ',' | ' ' | '\u{a0}')).collect();
    match digits.parse() {
        Ok(n) => Some(Some(n)),
        Err(_) => None,
    }
}

pub use mailflow_exchange::{overall_status as overall, status};

/// `Inbound`, `Incoming`, `Outbound`, `Outgoing`, `Originating` (any case); `None` otherwise.
pub fn direction(word: &str) -> Option<Direction> {
    match normalize(word).as_str() {
        "inbound" | "incoming" | "receive" | "received" => Some(Direction::Inbound),
        "outbound" | "outgoing" | "originating" | "send" | "sent" => Some(Direction::Outbound),
        _ => None,
    }
}

/// A message trace's `directionality`: a [`direction`] word, or the enhanced summary report's
/// documented codes, 1 for inbound and 2 for outbound.
pub fn directionality(cell: &str) -> Option<Direction> {
    match cell.trim() {
        "1" => Some(Direction::Inbound),
        "2" => Some(Direction::Outbound),
        word => direction(word),
    }
}

/// The tenant's connector in a connector id or name; empty, `-` and Microsoft's own connectors
/// (the intra-organization one included) are no connector.
pub fn connector(text: &str) -> Option<String> {
    let text = text.trim();
    (text != "-" && !mailflow_exchange::is_builtin_connector(text)).then(|| text.to_string())
}

pub use mailflow_exchange::INTRA_ORGANIZATION_CONNECTOR as INTRA_ORGANIZATION;

/// Addresses in a cell: separated by `;` or `,`, trimmed, in lower case.
pub fn addresses(cell: &str) -> impl Iterator<Item = String> + '_ {
    cell.split([';', ',']).map(str::trim).filter(|a| !a.is_empty()).map(str::to_lowercase)
}

pub use mailflow_exchange::domains;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_export_spelling() {
        let want: DateTime<Utc> = "2026-11-30T08:15:02Z".parse().unwrap();
        for text in [
            "2026-11-30T08:15:02Z",
            "2026-11-30T08:15:02.000Z",
            "2026-11-30T09:15:02+01:00",
            "2026-11-30T08:15:02",
            "2026-11-30 08:15:02",
            "11/30/2026 8:15:02 AM",
            "11/30/2026 08:15:02",
            "2026/11/30 08:15:02",
            "30.11.2026 08:15:02",
        ] {
            assert_eq!(time(text, DateOrder::Auto), Some(want), "{text}");
            assert_eq!(time(text, DateOrder::Mdy), Some(want), "{text}");
        }
        assert_eq!(time("11/30/2026 8:15:02 PM", DateOrder::Auto), Some(want + chrono::Duration::hours(12)));
        assert_eq!(time("2026-11-30T08:15:02.123Z", DateOrder::Auto).unwrap().timestamp_subsec_millis(), 123);
        for bad in
            ["", "yesterday", "2026-13-01 00:00:00", "30/11/2026 08:15:02", "11/30/26 08:15:02", "1/2/3/2026 0:00"]
        {
            assert_eq!(time(bad, DateOrder::Auto), None, "{bad}");
        }
        assert_eq!(date("11/30/2026", DateOrder::Auto), NaiveDate::from_ymd_opt(2026, 11, 30));
        assert_eq!(date("2026-11-30T00:00:00Z", DateOrder::Auto), NaiveDate::from_ymd_opt(2026, 11, 30));
    }

    #[test]
    fn day_first_dates() {
        let want: DateTime<Utc> = "2026-11-30T08:15:02Z".parse().unwrap();
        for text in ["30/11/2026 08:15:02", "30/11/2026 8:15:02 AM", "30.11.2026 08:15:02", "2026-11-30T08:15:02Z"] {
            assert_eq!(time(text, DateOrder::Dmy), Some(want), "{text}");
        }
        let may: DateTime<Utc> = "2026-11-05T08:15:02Z".parse().unwrap();
        assert_eq!(time("05/11/2026 08:15:02", DateOrder::Dmy), Some(may));
        assert_eq!(time("11/05/2026 08:15:02", DateOrder::Mdy), Some(may));
        assert_eq!(time("11/05/2026 08:15:02", DateOrder::Ymd), None);
        assert_eq!(time("2026/11/05 08:15:02", DateOrder::Ymd), Some(may));
        assert_eq!(date("30/11/2026", DateOrder::Dmy), NaiveDate::from_ymd_opt(2026, 11, 30));
        assert_eq!(date("30.11.2026", DateOrder::Mdy), NaiveDate::from_ymd_opt(2026, 11, 30));
    }

    #[test]
    fn what_a_date_says_of_its_order() {
        for (text, order, ambiguous_) in [
            ("30/11/2026 08:15:02", Some(DateOrder::Dmy), false),
            ("11/30/2026 8:15:02 AM", Some(DateOrder::Mdy), false),
            ("05.11.2026", Some(DateOrder::Dmy), false),
            ("05/11/2026 08:15:02", None, true),
            ("05/05/2026", None, false),
            ("5/05/2026", None, false),
            ("13/13/2026", None, false),
            ("12/32/2026", None, false),
            ("31/02/2026", None, false),
            ("2026/11/30", None, false),
            ("2026-11-05T08:15:02Z", None, false),
            ("", None, false),
        ] {
            assert_eq!((order_shown(text), ambiguous(text)), (order, ambiguous_), "{text}");
        }
    }

    #[test]
    fn numbers_and_connectors() {
        assert_eq!(number("1,234"), Some(Some(1234)));
        assert_eq!(number("12kB"), None);
        assert_eq!(connector("To_DefaultOpportunisticTLS"), None);
        assert_eq!(connector(" - "), None);
        assert_eq!(connector("To Partner").as_deref(), Some("To Partner"));
        assert_eq!(connector("Intra-Organization SMTP Send Connector"), None);
    }
}
