//! Cells as Microsoft's exports spell them: times, dates, numbers, statuses, directions,
//! recipient lists and connector names. Shared by every format, so a spelling is learnt once.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use mailflow_core::{Direction, Evidence};

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
        time(cell).ok_or_else(|| {
            format!("expected a time like 2026-11-30T08:15:02Z or 11/30/2026 8:15:02 AM in `{column}`, not {cell:?}")
        })
    }

    pub fn number(&self, i: Option<usize>, column: &str) -> Result<Option<u64>, String> {
        let cell = self.get(i);
        number(cell).ok_or_else(|| format!("expected a number in `{column}`, not {cell:?}"))
    }
}

/// A UTC time as the exports write it: RFC 3339, ISO 8601 without an offset, or US style with
/// an optional AM/PM. Times without an offset are UTC, as every Microsoft 365 export is.
pub fn time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    const FORMATS: [&str; 6] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
    ];
    let text = text.strip_suffix('Z').unwrap_or(text);
    FORMATS.iter().find_map(|f| NaiveDateTime::parse_from_str(text, f).ok()).map(|t| t.and_utc())
}

/// A day: `2026-11-30`, `11/30/2026`, or any time [`time`] reads.
pub fn date(text: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%m/%d/%Y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
        .or_else(|| time(text).map(|t| t.date_naive()))
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

/// `Inbound`, `Incoming`, `Outbound`, `Outgoing`, `Originating` (any case); `None` otherwise,
/// numbers included (the numeric `directionality` codes are undocumented).
pub fn direction(word: &str) -> Option<Direction> {
    match normalize(word).as_str() {
        "inbound" | "incoming" | "receive" | "received" => Some(Direction::Inbound),
        "outbound" | "outgoing" | "originating" | "send" | "sent" => Some(Direction::Outbound),
        _ => None,
    }
}

/// The tenant's connector in a connector id or name; empty, `-` and Microsoft's own connectors
/// are no connector.
pub fn connector(text: &str) -> Option<String> {
    let text = text.trim();
    (text != "-" && !mailflow_exchange::is_builtin_connector(text)).then(|| text.to_string())
}

/// Addresses in a cell: separated by `;` or `,`, trimmed, in lower case.
pub fn addresses(cell: &str) -> impl Iterator<Item = String> + '_ {
    cell.split([';', ',']).map(str::trim).filter(|a| !a.is_empty()).map(str::to_lowercase)
}

/// The distinct domains of `addresses`, in the order first seen.
pub fn domains<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut domains: Vec<String> = Vec::new();
    for address in addresses {
        if let Some((_, domain)) = address.trim_end_matches('>').rsplit_once('@')
            && !domain.is_empty()
            && !domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
        {
            domains.push(domain.to_ascii_lowercase());
        }
    }
    domains
}

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
        ] {
            assert_eq!(time(text), Some(want), "{text}");
        }
        assert_eq!(time("11/30/2026 8:15:02 PM"), Some(want + chrono::Duration::hours(12)));
        assert_eq!(time("2026-11-30T08:15:02.123Z").unwrap().timestamp_subsec_millis(), 123);
        for bad in ["", "yesterday", "2026-13-01 00:00:00", "30/11/2026 08:15:02"] {
            assert_eq!(time(bad), None, "{bad}");
        }
        assert_eq!(date("11/30/2026"), NaiveDate::from_ymd_opt(2026, 11, 30));
        assert_eq!(date("2026-11-30T00:00:00Z"), NaiveDate::from_ymd_opt(2026, 11, 30));
    }

    #[test]
    fn numbers_and_connectors() {
        assert_eq!(number("1,234"), Some(Some(1234)));
        assert_eq!(number("12kB"), None);
        assert_eq!(connector("To_DefaultOpportunisticTLS"), None);
        assert_eq!(connector(" - "), None);
        assert_eq!(connector("To Partner").as_deref(), Some("To Partner"));
    }
}
