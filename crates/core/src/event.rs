//! The message event: what every collector produces and every later stage reads.
//!
//! Its serde form is mailflow's canonical event format (see `docs/events.md`). The same JSON
//! object is read by the `events` collector, printed by `mailflow events` and spoken by plugins,
//! so field names here are a public contract: add fields, never rename them.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One message crossing the site's edge, as one source saw it.
///
/// Units: an inbound event is one message accepted from a peer outside the site's internal
/// networks; an outbound event is one message handed to one next-hop relay (all recipients of
/// that message through that relay in one transaction count once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageEvent {
    /// When the message was accepted (inbound) or handed over (outbound).
    #[serde(deserialize_with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub direction: Direction,
    /// Set by a source that knows it (Microsoft 365); otherwise resolved by connector rules.
    #[serde(default)]
    pub connector: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls: Tls,
    /// The sending client (inbound) or the next-hop relay (outbound).
    #[serde(default, deserialize_with = "null_as_default")]
    pub peer: Peer,
    /// The local listener that accepted the message, e.g. `smtpd`, `submission`.
    #[serde(default)]
    pub service: Option<String>,
    /// The delivery agent or transport that sent the message, e.g. `smtp`, `partner-out`.
    #[serde(default)]
    pub transport: Option<String>,
    #[serde(default)]
    pub sender: Option<String>,
    /// Recipients in this message (inbound) or in this delivery (outbound). Absent counts as 1.
    #[serde(default)]
    pub recipients: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub recipient_domains: Vec<String>,
    /// Size in bytes. Absent counts as 0.
    #[serde(default)]
    pub size: Option<u64>,
    /// Absent means `delivered` (for inbound: accepted).
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub queue_id: Option<String>,
    /// The collector that produced the event. Collectors set it; input values are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where the event came from, to answer "why did this message land there?".
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
}

impl MessageEvent {
    /// A minimal event: the two required fields, everything else unknown.
    pub fn new(time: DateTime<Utc>, direction: Direction) -> Self {
        MessageEvent {
            time,
            direction,
            connector: None,
            tls: Tls::default(),
            peer: Peer::default(),
            service: None,
            transport: None,
            sender: None,
            recipients: None,
            recipient_domains: Vec::new(),
            size: None,
            status: None,
            message_id: None,
            queue_id: None,
            source: None,
            evidence: Evidence::default(),
        }
    }

    /// The domain part of the sender address, if there is one.
    pub fn sender_domain(&self) -> Option<&str> {
        let sender = self.sender.as_deref()?;
        let (_, domain) = sender.rsplit_once('@')?;
        let domain = domain.trim_end_matches('>');
        (!domain.is_empty()).then_some(domain)
    }
}

/// Everything but `time` and `direction` may be absent or `null`; `null` means absent.
fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// RFC 3339 with a UTC offset; a message that says so, rather than chrono's "premature end of input".
fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = std::borrow::Cow::<str>::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        serde::de::Error::custom(format!(
            "`time` must be RFC 3339 with a UTC offset, like 2026-12-04T15:00:00Z or 2026-12-04T16:00:00+01:00, not \"{}\"",
            text.chars().take(64).collect::<String>()
        ))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Absent means `unknown`: TLS was used, or may have been, but its version was not logged.
    #[serde(default)]
    pub version: Option<TlsVersion>,
    #[serde(default)]
    pub cipher: Option<String>,
    #[serde(default)]
    pub trust: Option<Trust>,
}

/// The protocol that protected the SMTP session. `None` means plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsVersion {
    None,
    Ssl3,
    #[serde(rename = "tls1_0")]
    Tls1_0,
    #[serde(rename = "tls1_1")]
    Tls1_1,
    #[serde(rename = "tls1_2")]
    Tls1_2,
    #[serde(rename = "tls1_3")]
    Tls1_3,
    Unknown,
}

impl TlsVersion {
    pub const ALL: [TlsVersion; 7] = [
        TlsVersion::None,
        TlsVersion::Ssl3,
        TlsVersion::Tls1_0,
        TlsVersion::Tls1_1,
        TlsVersion::Tls1_2,
        TlsVersion::Tls1_3,
        TlsVersion::Unknown,
    ];

    /// A protocol name as MTAs, TLS libraries and Microsoft write it: `TLSv1.3`, `TLS1.2`,
    /// `TLS1_2`, `TLS 1.0`, `TLSv1`, `Tls12`, `SP_PROT_TLS1_2_SERVER`, `SSLv3`. Case and the
    /// separators `.`, `_`, `-`, ` ` do not matter. Old OpenSSL's `TLSv1/SSLv3` names a family of
    /// versions, not one: `Unknown`. Anything else is `None` (not a protocol name).
    pub fn from_protocol(name: &str) -> Option<TlsVersion> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("TLSv1/SSLv3") || name.eq_ignore_ascii_case("SSLv3/TLSv1") {
            return Some(TlsVersion::Unknown);
        }
        let upper = name.to_ascii_uppercase();
        let rest = upper.strip_prefix("SP_PROT_").unwrap_or(&upper);
        // Schannel's role suffix.
        let rest = rest.strip_suffix("_SERVER").or_else(|| rest.strip_suffix("_CLIENT")).unwrap_or(rest);
        let mut compact = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '.' | '_' | '-' | ' ' => {}
                c if c.is_ascii_alphanumeric() => compact.push(c),
                _ => return None,
            }
        }
        let (family, number) = compact.split_at(compact.find(|c: char| c.is_ascii_digit())?);
        match (family, number) {
            ("TLS" | "TLSV", "13") => Some(TlsVersion::Tls1_3),
            ("TLS" | "TLSV", "12") => Some(TlsVersion::Tls1_2),
            ("TLS" | "TLSV", "11") => Some(TlsVersion::Tls1_1),
            ("TLS" | "TLSV", "1" | "10") => Some(TlsVersion::Tls1_0),
            ("SSL" | "SSLV", "3" | "30") => Some(TlsVersion::Ssl3),
            _ => None,
        }
    }

    /// The short label people read in reports.
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::None => "No TLS",
            TlsVersion::Ssl3 => "SSLv3",
            TlsVersion::Tls1_0 => "TLS 1.0",
            TlsVersion::Tls1_1 => "TLS 1.1",
            TlsVersion::Tls1_2 => "TLS 1.2",
            TlsVersion::Tls1_3 => "TLS 1.3",
            TlsVersion::Unknown => "Unknown",
        }
    }
}

/// How far the peer's certificate was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    Anonymous,
    Untrusted,
    Trusted,
    Verified,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Delivered,
    Deferred,
    Failed,
    Rejected,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub port: Option<u16>,
}

/// Where an event was read: every log line (or API page) it was built from, so an admin can
/// check why a message landed where it did. Serialized as a list of locations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Evidence(pub Vec<Location>);

/// One place an event was read from: a file and line, or an API page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Shared: every event of a file names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

impl Evidence {
    pub fn at_line(file: impl Into<Arc<str>>, line: u64) -> Self {
        Evidence(vec![Location { file: Some(file.into()), line: Some(line), page: None }])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("unknown location");
        }
        for (i, location) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{location}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, &self.page) {
            (Some(file), Some(line), _) => write!(f, "{file}:{line}"),
            (Some(file), None, _) => f.write_str(file),
            (None, _, Some(page)) => f.write_str(page),
            (None, Some(line), None) => write!(f, "line {line}"),
            (None, None, None) => f.write_str("unknown location"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_in_every_spelling() {
        for (text, version) in [
            ("SP_PROT_TLS1_2_SERVER", Some(TlsVersion::Tls1_2)),
            ("SP_PROT_TLS1_3_CLIENT", Some(TlsVersion::Tls1_3)),
            ("SP_PROT_TLS1_0_SERVER", Some(TlsVersion::Tls1_0)),
            ("TLS1_3", Some(TlsVersion::Tls1_3)),
            ("TLS1.1", Some(TlsVersion::Tls1_1)),
            ("TLS 1.2", Some(TlsVersion::Tls1_2)),
            ("TLSv1.2", Some(TlsVersion::Tls1_2)),
            ("tls12", Some(TlsVersion::Tls1_2)),
            ("TLSv1", Some(TlsVersion::Tls1_0)),
            ("SSL3", Some(TlsVersion::Ssl3)),
            ("TLS1.4", None),
            ("", None),
            ("AES256", None),
            ("TLSv1/SSLv3", Some(TlsVersion::Unknown)),
            ("TLS1.3:TLS_AES_256_GCM_SHA384:256", None),
        ] {
            assert_eq!(TlsVersion::from_protocol(text), version, "{text}");
        }
    }

    #[test]
    fn canonical_example_round_trips() {
        let json = r#"{"time":"2026-12-04T15:00:00Z","direction":"outbound","connector":null,
 "tls":{"version":"tls1_2","cipher":"ECDHE-RSA-AES256-GCM-SHA384","trust":"trusted"},
 "peer":{"host":"mx.example.net","ip":"192.0.2.7","port":25},"service":null,"transport":"smtp",
 "sender":"a@corp.example","recipients":2,"recipient_domains":["example.net"],"size":12345,
 "status":"delivered","message_id":"<x@corp.example>","queue_id":"4Bx2Lk0qzRz9vL"}"#;
        let event: MessageEvent = serde_json::from_str(json).unwrap();
        assert_eq!(event.tls.version, Some(TlsVersion::Tls1_2));
        assert_eq!(event.peer.port, Some(25));
        assert_eq!(event.sender_domain(), Some("corp.example"));
        let again: MessageEvent = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(again, event);
    }

    #[test]
    fn only_time_and_direction_are_required() {
        let event: MessageEvent =
            serde_json::from_str(r#"{"time":"2026-12-04T15:00:00+01:00","direction":"inbound"}"#).unwrap();
        assert_eq!(event.time.to_rfc3339(), "2026-12-04T14:00:00+00:00");
        assert!(serde_json::from_str::<MessageEvent>(r#"{"direction":"inbound"}"#).is_err());
        assert!(
            serde_json::from_str::<MessageEvent>(r#"{"time":"2026-12-04T15:00:00","direction":"inbound"}"#).is_err(),
            "a time without an offset is ambiguous"
        );
    }

    #[test]
    fn every_optional_field_may_be_null() {
        let json = r#"{"time":"2026-12-04T15:00:00Z","direction":"inbound","connector":null,"tls":null,
            "peer":null,"service":null,"transport":null,"sender":null,"recipients":null,
            "recipient_domains":null,"size":null,"status":null,"message_id":null,"queue_id":null,
            "source":null,"evidence":null}"#;
        let event: MessageEvent = serde_json::from_str(json).unwrap();
        assert_eq!(event, MessageEvent::new("2026-12-04T15:00:00Z".parse().unwrap(), Direction::Inbound));
    }

    #[test]
    fn misspelled_fields_are_errors() {
        let err = serde_json::from_str::<MessageEvent>(
            r#"{"time":"2026-12-04T15:00:00Z","direction":"inbound","conector":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `conector`"), "{err}");
    }
}
