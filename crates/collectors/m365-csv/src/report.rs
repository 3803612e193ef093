//! The connector report and the inbound/outbound messages report: daily totals per connector
//! and TLS version, read into counts without single messages. Microsoft renames their columns
//! between versions, so several names are accepted for each.

use mailflow_component::{DayCounts, Emitter};
use mailflow_core::{Counters, TlsVersion};

use crate::fields::{self, Header, Row};

const DATE: &[&str] = &["Date", "Day"];
const DIRECTION: &[&str] = &["Connector direction", "Direction", "Mail direction"];
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

pub fn looks_like(header: &Header) -> bool {
    [DATE, DIRECTION, VOLUME].iter().all(|names| header.find(names).is_some())
}

pub struct Report {
    pub date: usize,
    direction: usize,
    volume: usize,
    connector: Option<usize>,
    tls: Vec<(usize, TlsVersion)>,
    /// The header's names, for messages.
    names: Vec<String>,
}

impl Report {
    pub fn new(header: &Header) -> Result<Self, String> {
        let require = |names: &[&str]| {
            header.find(names).ok_or_else(|| format!("the header has none of the columns {}", names.join(", ")))
        };
        Ok(Report {
            date: require(DATE)?,
            direction: require(DIRECTION)?,
            volume: require(VOLUME)?,
            connector: header.find(CONNECTOR),
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
        let cell = row.get(Some(self.direction));
        let direction = fields::direction(cell)
            .ok_or_else(|| format!("expected Inbound or Outbound in `{}`, not {cell:?}", name(self.direction)))?;
        let volume = name(self.volume);
        let messages = row.number(Some(self.volume), volume)?.ok_or(format!("expected a number in `{volume}`"))?;
        let mut counters = Counters { messages, recipients: messages, ..Default::default() };
        let mut sum = 0u64;
        for &(column, version) in &self.tls {
            let n = row.number(Some(column), name(column))?.unwrap_or(0);
            sum = sum.saturating_add(n);
            *counters.tls.get_mut(version) += n;
        }
        if sum > messages {
            return Err(format!("the TLS columns add up to {sum}, more than the {messages} messages of `{volume}`"));
        }
        counters.tls.unknown += messages - sum;
        counters.trust.unknown = messages;
        counters.status.delivered = messages;
        out.counts(DayCounts { date, direction, connector: fields::connector(row.get(self.connector)), counters });
        Ok(())
    }
}
