//! The connector report and the inbound/outbound messages report: daily totals per connector
//! and TLS version, read into counts without single messages. Microsoft renames their columns
//! between versions, so several names are accepted for each. The Exchange admin center's export
//! writes direction and connector in one column (`Inbound - From Fabrikam`) and the TLS columns
//! as percentages of the volume.

use mailflow_component::{DayCounts, Emitter};
use mailflow_core::{Counters, Direction, TlsVersion};

use crate::fields::{self, Header, Row};

const DATE: &[&str] = &["Date", "Day"];
const DIRECTION: &[&str] = &["Connector direction", "Direction", "Mail direction"];
const DIRECTION_AND_NAME: &[&str] = &["Connector direction and name", "Direction and name"];
const CONNECTOR: &[&str] = &["Connector name", "Connector", "Name"];
const VOLUME: &[&str] = &["Volume", "Total", "Message count", "Messages", "Total messages"];
const TLS: &[(&[&str], TlsVersion)] = &[
    (&["No TLS", "None"], TlsVersion::None),
    (&["SSL 3.0", "SSL3"], TlsVersion::Ssl3),
    (&["TLS 1.0", "TLS1"], TlsVersion::Tls1_0),
    (&["TLS 1.1"], TlsVersion::Tls1_1),
    (&["TLS 1.2"], TlsVersion::Tls1_2),
    (&["TLS 1.3"], TlsVersion::Tls1_3),
    (&["Unknown", "Unknown TLS"], TlsVersion::Unknown),
];

/// Percentages are kept in millionths of a percent, so that they add up exactly.
const PERCENT: u128 = 1_000_000;

pub fn looks_like(header: &Header) -> bool {
    header.find(DATE).is_some()
        && header.find(VOLUME).is_some()
        && (header.find(DIRECTION).is_some() || header.find(DIRECTION_AND_NAME).is_some())
}

/// Where a row says its direction and connector.
enum Columns {
    Apart {
        direction: usize,
        connector: Option<usize>,
    },
    /// One cell for both, as the Exchange admin center exports them.
    Together(usize),
}

pub struct Report {
    pub date: usize,
    columns: Columns,
    volume: usize,
    tls: Vec<(usize, TlsVersion)>,
    /// The header's names, for messages.
    names: Vec<String>,
}

impl Report {
    pub fn new(header: &Header) -> Result<Self, String> {
        let require = |names: &[&str]| {
            header.find(names).ok_or_else(|| format!("the header has none of the columns {}", names.join(", ")))
        };
        let columns = match (header.find(DIRECTION), header.find(DIRECTION_AND_NAME)) {
            (Some(direction), _) => Columns::Apart { direction, connector: header.find(CONNECTOR) },
            (None, Some(both)) => Columns::Together(both),
            (None, None) => {
                return Err(format!(
                    "the header has none of the columns {}, {}",
                    DIRECTION_AND_NAME.join(", "),
                    DIRECTION.join(", ")
                ));
            }
        };
        Ok(Report {
            date: require(DATE)?,
            columns,
            volume: require(VOLUME)?,
            tls: TLS.iter().filter_map(|(names, version)| Some((header.find(names)?, *version))).collect(),
            names: header.names().to_vec(),
        })
    }

    pub fn row(&mut self, row: &Row<'_>, out: &mut Emitter<'_>) -> Result<(), String> {
        let name = |i: usize| self.names.get(i).map_or("", String::as_str);
        let cell = row.get(Some(self.date));
        let date = fields::date(cell, row.date_order).ok_or_else(|| {
            format!("expected a date like 2026-11-30 or 11/30/2026 in `{}`, not {cell:?}", name(self.date))
        })?;
        let (direction, connector) = match self.columns {
            Columns::Apart { direction, connector } => {
                let cell = row.get(Some(direction));
                let direction = fields::direction(cell)
                    .ok_or_else(|| format!("expected Inbound or Outbound in `{}`, not {cell:?}", name(direction)))?;
                (direction, fields::connector(row.get(connector)))
            }
            Columns::Together(i) => {
                let cell = row.get(Some(i));
                direction_and_name(cell).ok_or_else(|| {
                    format!(
                        "expected a direction and a connector name, as in \"Inbound - From Fabrikam\" or \"From the \
                         internet without a connector\", in `{}`, not {cell:?}",
                        name(i)
                    )
                })?
            }
        };
        let volume = name(self.volume);
        let messages = row.number(Some(self.volume), volume)?.ok_or(format!("expected a number in `{volume}`"))?;
        let mut shares = Vec::with_capacity(self.tls.len());
        for &(column, version) in &self.tls {
            let cell = row.get(Some(column));
            let share = share(cell).ok_or_else(|| {
                format!("expected a number or a percentage like 12.5% in `{}`, not {cell:?}", name(column))
            })?;
            shares.push((version, share));
        }
        let total: u128 = shares.iter().map(|(_, s)| s.value).sum();
        // The admin center writes percentages (`12.5%`, `12.50`, or whole numbers that add up
        // to 100 give or take its rounding); counts add up to the volume at most.
        let columns = self.tls.len() as u128;
        let percent = shares.iter().any(|(_, s)| s.percent)
            || (total != u128::from(messages) * PERCENT && total.abs_diff(100 * PERCENT) <= columns * PERCENT);
        let counts = if percent {
            if total > (100 + columns) * PERCENT {
                return Err(format!("the TLS columns add up to {}%, more than 100%", percentage(total)));
            }
            counts_of(&shares, messages)
        } else {
            let counts: Vec<u64> =
                shares.iter().map(|(_, s)| u64::try_from(s.value / PERCENT).unwrap_or(u64::MAX)).collect();
            let sum = counts.iter().fold(0u64, |sum, n| sum.saturating_add(*n));
            if sum > messages {
                return Err(format!(
                    "the TLS columns add up to {sum}, more than the {messages} messages of `{volume}`"
                ));
            }
            counts
        };
        let mut counters = Counters { messages, recipients: messages, ..Default::default() };
        for ((version, _), n) in shares.iter().zip(&counts) {
            *counters.tls.get_mut(*version) += n;
        }
        counters.tls.unknown += messages - counts.iter().sum::<u64>();
        counters.trust.unknown = messages;
        counters.status.delivered = messages;
        out.counts(DayCounts { date, direction, connector, counters });
        Ok(())
    }
}

/// A TLS cell: a count or a percentage, in millionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Share {
    value: u128,
    /// Written as a percentage: with `%` or a decimal fraction.
    percent: bool,
}

/// `120`, `1,200`, `12.5%`, `12.50`, `0.00%`; an empty cell is 0. Digits beyond the sixth
/// decimal are dropped.
fn share(cell: &str) -> Option<Share> {
    let (text, sign) = match cell.trim().strip_suffix('%') {
        Some(text) => (text.trim_end(), true),
        None => (cell.trim(), false),
    };
    if text.is_empty() {
        return (!sign).then_some(Share { value: 0, percent: false });
    }
    let digits: String = text.chars().filter(|c| !matches!(c, ',' | ' ' | '\u{a0}')).collect();
    let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
    let number = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !number(whole) || !number(fraction) || whole.len() > 20 {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let fraction: u128 = format!("{fraction:0<6}")[..6].parse().ok()?;
    Some(Share { value: whole * PERCENT + fraction, percent: sign || digits.contains('.') })
}

/// Percentages of `messages` as counts, by largest remainder: each column its whole share, then
/// one more to the columns with the largest fractions until the rounded total is reached. The
/// counts add up to at most `messages`; percentages above 100 (rounding) are scaled down.
fn counts_of(shares: &[(TlsVersion, Share)], messages: u64) -> Vec<u64> {
    let messages = u128::from(messages);
    let total: u128 = shares.iter().map(|(_, s)| s.value).sum();
    let whole = (100 * PERCENT).max(total);
    let exact: Vec<(u128, u128)> =
        shares.iter().map(|(_, s)| (s.value * messages / whole, s.value * messages % whole)).collect();
    let target = (total * messages + whole / 2) / whole;
    let mut counts: Vec<u128> = exact.iter().map(|(n, _)| *n).collect();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    // The largest remainders first; between equals, the column read first.
    order.sort_by_key(|&i| std::cmp::Reverse(exact[i].1));
    let left = target.saturating_sub(counts.iter().sum());
    for &i in order.iter().take(usize::try_from(left).unwrap_or(usize::MAX)) {
        counts[i] += 1;
    }
    counts.into_iter().map(|n| u64::try_from(n).unwrap_or(u64::MAX)).collect()
}

/// A percentage in millionths as written: `105`, `100.5`.
fn percentage(value: u128) -> String {
    let text = format!("{}.{:06}", value / PERCENT, value % PERCENT);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The direction and connector of an admin center cell: a direction word first (`Inbound -
/// From Fabrikam`, `Outbound: To Fabrikam`, `Inbound\Contoso hybrid`, `Inbound Fabrikam`), or
/// last in parentheses (`Fabrikam (Inbound)`), or mail without a connector (`From the internet
/// without a connector`, `Inbound - Internet`).
fn direction_and_name(cell: &str) -> Option<(Direction, Option<String>)> {
    let cell = cell.trim();
    let word = |w: &str| match w.to_ascii_lowercase().as_str() {
        "inbound" | "incoming" => Some(Direction::Inbound),
        "outbound" | "outgoing" => Some(Direction::Outbound),
        _ => None,
    };
    let end = cell.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(cell.len());
    if let Some(direction) = word(&cell[..end]) {
        let rest = &cell[end..];
        let separator =
            |c: char| c.is_whitespace() || matches!(c, '-' | '–' | '—' | ':' | '/' | '|' | '\\' | ',' | '>');
        if rest.is_empty() || rest.starts_with(separator) {
            return Some((direction, connector(rest.trim_start_matches(separator))));
        }
    }
    if let Some(inner) = cell.strip_suffix(')')
        && let Some(open) = inner.rfind('(')
        && let Some(direction) = word(inner[open + 1..].trim())
    {
        return Some((direction, connector(&inner[..open])));
    }
    let lower = cell.to_lowercase();
    let first = lower.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
    match first {
        "from" if without_connector(&lower) => Some((Direction::Inbound, None)),
        "to" if without_connector(&lower) => Some((Direction::Outbound, None)),
        _ => None,
    }
}

/// The connector of a cell's name part: none when it is the internet or says there is none.
fn connector(name: &str) -> Option<String> {
    let name = name.trim();
    if without_connector(&name.to_lowercase()) { None } else { fields::connector(name) }
}

/// `From the internet without a connector`, `To the internet`, `Internet`, `No connector`,
/// `None`, `-`, or nothing: mail that took no connector of the tenant's.
fn without_connector(lower: &str) -> bool {
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut rest = words.as_slice();
    let from_or_to = matches!(rest.first(), Some(&"from" | &"to"));
    if from_or_to {
        rest = &rest[1..];
    }
    rest = rest.strip_prefix(&["the"][..]).unwrap_or(rest);
    match rest.strip_prefix(&["internet"][..]) {
        Some(after) => rest = after,
        None if from_or_to => return false,
        None => {}
    }
    matches!(rest, [] | ["none"] | ["no", "connector"] | ["without", "a", "connector"] | ["without", "connector"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_and_connector_in_one_cell() {
        let inbound = |name: &str| Some((Direction::Inbound, Some(name.to_string())));
        let outbound = |name: &str| Some((Direction::Outbound, Some(name.to_string())));
        for (cell, want) in [
            ("Inbound - From Fabrikam", inbound("From Fabrikam")),
            ("inbound: From Fabrikam", inbound("From Fabrikam")),
            ("INCOMING / Contoso hybrid", inbound("Contoso hybrid")),
            ("Inbound | Partner-Relay 2", inbound("Partner-Relay 2")),
            ("Inbound\\Contoso hybrid", inbound("Contoso hybrid")),
            ("Inbound From Fabrikam", inbound("From Fabrikam")),
            ("Outbound - To Fabrikam - TLS", outbound("To Fabrikam - TLS")),
            ("Outgoing – To Fabrikam", outbound("To Fabrikam")),
            ("To Fabrikam (Outbound)", outbound("To Fabrikam")),
            ("From Fabrikam (inbound)", inbound("From Fabrikam")),
            ("From the internet without a connector", Some((Direction::Inbound, None))),
            ("To the internet without a connector", Some((Direction::Outbound, None))),
            ("To the Internet", Some((Direction::Outbound, None))),
            ("Inbound - Internet", Some((Direction::Inbound, None))),
            ("Outbound", Some((Direction::Outbound, None))),
            ("Outbound - To_DefaultOpportunisticTLS", Some((Direction::Outbound, None))),
            ("Inbound - -", Some((Direction::Inbound, None))),
            ("Inboundish - From Fabrikam", None),
            ("From Fabrikam", None),
            ("To the partners", None),
            ("Sideways - From Fabrikam", None),
            ("(Inbound)x", None),
            ("", None),
        ] {
            assert_eq!(direction_and_name(cell), want, "{cell}");
        }
    }

    #[test]
    fn shares_and_largest_remainders() {
        let p = |value: u128| Share { value: value * PERCENT / 100, percent: true };
        assert_eq!(share("12.5%"), Some(p(1250)));
        assert_eq!(share("12.5"), Some(p(1250)));
        assert_eq!(share(" 0.00 % "), Some(p(0)));
        assert_eq!(share("1,200"), Some(Share { value: 1200 * PERCENT, percent: false }));
        assert_eq!(share(""), Some(Share { value: 0, percent: false }));
        for bad in ["%", "x", "1.2.3", "-5", "12kB", "."] {
            assert_eq!(share(bad), None, "{bad}");
        }
        let of = |percents: &[u128], messages| {
            let shares: Vec<_> = percents.iter().map(|v| (TlsVersion::Tls1_2, p(*v))).collect();
            counts_of(&shares, messages)
        };
        // In hundredths of a percent.
        assert_eq!(of(&[3333, 3333, 3333], 100), [34, 33, 33]);
        assert_eq!(of(&[1429, 0, 8571], 7), [1, 0, 6]);
        assert_eq!(of(&[5000, 2500], 10), [5, 3]);
        assert_eq!(of(&[5000, 5100], 10), [5, 5]);
        assert_eq!(of(&[10000], 0), [0]);
        assert_eq!(percentage(100_500_000), "100.5");
        assert_eq!(percentage(105_000_000), "105");
    }
}
