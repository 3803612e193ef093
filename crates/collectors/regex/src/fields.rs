//! What a named group can fill in, and how its text becomes a value.
//!
//! Logs spell the same thing many ways (`TLSv1.2`, `TLS1_2`, `tls1.2`; `sent`, `250`, `OK`), so
//! values of the enumerated fields go through built-in normalizers after the configured value
//! maps; free-text fields are taken as written. A value that does not parse is an error the
//! caller turns into a skipped line, never a guess.

use std::net::IpAddr;
use std::sync::Arc;

use mailflow_core::{Direction, Evidence, MessageEvent, Peer, Status, Tls, TlsVersion, Trust};
use serde::{Deserialize, Serialize};

/// An event field a named group (or `set`, `default`, `map`) can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Time,
    Direction,
    Connector,
    TlsVersion,
    TlsCipher,
    TlsTrust,
    PeerHost,
    PeerIp,
    PeerPort,
    Service,
    Transport,
    Sender,
    Recipient,
    Recipients,
    RecipientDomain,
    Size,
    Status,
    MessageId,
    QueueId,
}

impl Field {
    pub const ALL: [Field; 19] = [
        Field::Time,
        Field::Direction,
        Field::Connector,
        Field::TlsVersion,
        Field::TlsCipher,
        Field::TlsTrust,
        Field::PeerHost,
        Field::PeerIp,
        Field::PeerPort,
        Field::Service,
        Field::Transport,
        Field::Sender,
        Field::Recipient,
        Field::Recipients,
        Field::RecipientDomain,
        Field::Size,
        Field::Status,
        Field::MessageId,
        Field::QueueId,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Time => "time",
            Field::Direction => "direction",
            Field::Connector => "connector",
            Field::TlsVersion => "tls_version",
            Field::TlsCipher => "tls_cipher",
            Field::TlsTrust => "tls_trust",
            Field::PeerHost => "peer_host",
            Field::PeerIp => "peer_ip",
            Field::PeerPort => "peer_port",
            Field::Service => "service",
            Field::Transport => "transport",
            Field::Sender => "sender",
            Field::Recipient => "recipient",
            Field::Recipients => "recipients",
            Field::RecipientDomain => "recipient_domain",
            Field::Size => "size",
            Field::Status => "status",
            Field::MessageId => "message_id",
            Field::QueueId => "queue_id",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Every field name, for messages that list them.
    pub fn names() -> String {
        Field::ALL.map(Field::name).join(", ")
    }
}

/// Recipient addresses kept per message or key; beyond it they are counted, not kept.
const MAX_RECIPIENTS: usize = 1000;

/// Part of an event: what one line, one key or one `set` table knows. `None` is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// A checkpoint holds many of them, most fields unknown: those are left out.
#[serde(default)]
pub struct Fields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<TlsVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cipher: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_trust: Option<Trust>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_host: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<Box<str>>,
    /// A count the log states (`nrcpts=2`); it wins over the addresses seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u32>,
    /// Recipient addresses seen, each once, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Box<str>>,
    /// Addresses seen beyond [`MAX_RECIPIENTS`].
    #[serde(skip_serializing_if = "is_zero")]
    pub more_addresses: u32,
    /// Recipient domains a log names without addresses (`domain=example.net`), lowercased.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<Box<str>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Fields {
    /// Reads `value` (already mapped) into `field`. An empty value or `-` means absent.
    pub fn set(&mut self, field: Field, value: &str) -> Result<(), String> {
        let value = value.trim();
        if value.is_empty() || value == "-" {
            return Ok(());
        }
        let text = || Some(Box::<str>::from(value));
        match field {
            // The caller reads the time with the collector's time format.
            Field::Time => {}
            Field::Direction => self.direction = Some(direction(value).ok_or("`inbound` or `outbound`")?),
            Field::Connector => self.connector = text(),
            Field::TlsVersion => {
                self.tls_version = Some(tls_version(value).ok_or("a TLS version like TLSv1.2, TLS1_3, SSLv3 or none")?)
            }
            Field::TlsCipher => self.tls_cipher = text(),
            Field::TlsTrust => {
                self.tls_trust =
                    Some(trust(value).ok_or("`anonymous`, `untrusted`, `trusted`, `verified` or `unknown`")?)
            }
            Field::PeerHost => {
                if !matches!(value, "unknown" | "<unknown>") {
                    self.peer_host = text();
                }
            }
            Field::PeerIp => self.peer_ip = Some(ip(value).ok_or("an IPv4 or IPv6 address")?),
            Field::PeerPort => self.peer_port = Some(value.parse().map_err(|_| "a port number from 0 to 65535")?),
            Field::Service => self.service = text(),
            Field::Transport => self.transport = text(),
            Field::Sender => {
                let address = strip_angles(value);
                self.sender = (!address.is_empty()).then(|| address.into());
            }
            Field::Recipient => {
                for address in value.split(',').map(strip_angles).filter(|a| !a.is_empty()) {
                    self.add_address(address);
                }
            }
            Field::RecipientDomain => {
                for domain in value.split(',').map(|d| d.trim().trim_end_matches('.')).filter(|d| !d.is_empty()) {
                    self.add_domain(domain);
                }
            }
            Field::Recipients => {
                self.recipients = Some(value.parse().map_err(|_| "a number of recipients from 0 to 4294967295")?)
            }
            Field::Size => self.size = Some(value.parse().map_err(|_| "a size in bytes (a whole number)")?),
            Field::Status => {
                self.status =
                    Some(status(value).ok_or("a status like delivered, deferred, failed, rejected or an SMTP code")?)
            }
            Field::MessageId => self.message_id = text(),
            Field::QueueId => self.queue_id = text(),
        }
        Ok(())
    }

    fn add_address(&mut self, address: &str) {
        if self.addresses.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            return;
        }
        if self.addresses.len() < MAX_RECIPIENTS {
            self.addresses.push(address.into());
        } else {
            self.more_addresses = self.more_addresses.saturating_add(1);
        }
    }

    fn add_domain(&mut self, domain: &str) {
        let domain = domain.to_ascii_lowercase();
        if self.domains.len() < MAX_RECIPIENTS && !self.domains.iter().any(|d| **d == *domain) {
            self.domains.push(domain.into());
        }
    }

    /// Takes every field `top` knows; recipient addresses add up.
    pub fn overlay(&mut self, top: &Fields) {
        fn take<T: Clone>(slot: &mut Option<T>, top: &Option<T>) {
            if top.is_some() {
                slot.clone_from(top);
            }
        }
        take(&mut self.direction, &top.direction);
        take(&mut self.connector, &top.connector);
        take(&mut self.tls_version, &top.tls_version);
        take(&mut self.tls_cipher, &top.tls_cipher);
        take(&mut self.tls_trust, &top.tls_trust);
        take(&mut self.peer_host, &top.peer_host);
        take(&mut self.peer_ip, &top.peer_ip);
        take(&mut self.peer_port, &top.peer_port);
        take(&mut self.service, &top.service);
        take(&mut self.transport, &top.transport);
        take(&mut self.sender, &top.sender);
        take(&mut self.recipients, &top.recipients);
        take(&mut self.size, &top.size);
        take(&mut self.status, &top.status);
        take(&mut self.message_id, &top.message_id);
        take(&mut self.queue_id, &top.queue_id);
        for address in &top.addresses {
            self.add_address(address);
        }
        self.more_addresses = self.more_addresses.saturating_add(top.more_addresses);
        for domain in &top.domains {
            self.add_domain(domain);
        }
    }

    /// Fills in what is still unknown from `defaults`.
    pub fn fill(&mut self, defaults: &Fields) {
        let mut merged = defaults.clone();
        merged.addresses.clear();
        merged.more_addresses = 0;
        merged.domains.clear();
        merged.overlay(self);
        if self.addresses.is_empty() && self.domains.is_empty() {
            merged.addresses.clone_from(&defaults.addresses);
            merged.domains.clone_from(&defaults.domains);
        }
        *self = merged;
    }

    /// The event these fields describe.
    pub fn into_event(self, time_micros: i64, direction: Direction, file: &Arc<str>, line: u64) -> MessageEvent {
        let time = chrono::DateTime::from_timestamp_micros(time_micros).unwrap_or_default();
        let mut event = MessageEvent::new(time, self.direction.unwrap_or(direction));
        let seen = self.addresses.len() as u64 + u64::from(self.more_addresses);
        event.recipients = self.recipients.or_else(|| (seen > 0).then(|| u32::try_from(seen).unwrap_or(u32::MAX)));
        for address in &self.addresses {
            let Some((_, domain)) = address.rsplit_once('@') else { continue };
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            if !domain.is_empty() && !event.recipient_domains.contains(&domain) {
                event.recipient_domains.push(domain);
            }
        }
        for domain in self.domains {
            if !event.recipient_domains.iter().any(|d| **d == *domain) {
                event.recipient_domains.push(domain.into());
            }
        }
        event.connector = self.connector.map(String::from);
        event.tls = Tls { version: self.tls_version, cipher: self.tls_cipher.map(String::from), trust: self.tls_trust };
        event.peer = Peer { host: self.peer_host.map(String::from), ip: self.peer_ip, port: self.peer_port };
        event.service = self.service.map(String::from);
        event.transport = self.transport.map(String::from);
        event.sender = self.sender.map(String::from);
        event.size = self.size;
        event.status = self.status;
        event.message_id = self.message_id.map(String::from);
        event.queue_id = self.queue_id.map(String::from);
        event.evidence = Evidence::at_line(file.clone(), line);
        event
    }
}

fn strip_angles(address: &str) -> &str {
    let address = address.trim();
    address.strip_prefix('<').and_then(|a| a.strip_suffix('>')).unwrap_or(address).trim()
}

/// `inbound`/`in`/`incoming` or `outbound`/`out`/`outgoing`, in any case.
pub fn direction(value: &str) -> Option<Direction> {
    match value.to_ascii_lowercase().as_str() {
        "inbound" | "in" | "incoming" => Some(Direction::Inbound),
        "outbound" | "out" | "outgoing" => Some(Direction::Outbound),
        _ => None,
    }
}

/// A protocol as MTAs and TLS libraries write it: `TLSv1.3`, `TLS1_2`, `tls1.2`, `TLSv1`,
/// `TLS 1.0`, `SSLv3`, `1.2`; `none`/`no`/`plain` is plaintext; `unknown` and old OpenSSL's
/// `TLSv1/SSLv3` are unknown. Case and
/// the separators `.`, `_`, `-`, ` `, `v` between the parts do not matter.
pub fn tls_version(value: &str) -> Option<TlsVersion> {
    if value.contains('/') {
        return TlsVersion::from_protocol(value);
    }
    let mut squeezed = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            squeezed.push(c.to_ascii_lowercase());
        } else if !matches!(c, '.' | '_' | '-' | ' ') {
            return None;
        }
    }
    match squeezed.as_str() {
        "none" | "no" | "n" | "plain" | "plaintext" | "notls" | "off" => return Some(TlsVersion::None),
        "unknown" => return Some(TlsVersion::Unknown),
        _ => {}
    }
    // A bare number (`1.2`, not `1`) is a TLS version.
    if squeezed.starts_with(|c: char| c.is_ascii_digit()) {
        if squeezed.len() < 2 {
            return None;
        }
        squeezed.insert_str(0, "tls");
    }
    TlsVersion::from_protocol(&squeezed)
}

pub fn trust(value: &str) -> Option<Trust> {
    match value.to_ascii_lowercase().as_str() {
        "anonymous" => Some(Trust::Anonymous),
        "untrusted" => Some(Trust::Untrusted),
        "trusted" => Some(Trust::Trusted),
        "verified" => Some(Trust::Verified),
        "unknown" => Some(Trust::Unknown),
        _ => None,
    }
}

/// A status word or an SMTP reply. Words, in any case: delivered, sent, accepted, ok, queued,
/// stored, success, relayed → delivered; deferred, tempfail, denysoft, retry → deferred;
/// failed, bounced, permfail, expired, undeliverable → failed; rejected, refused, denied, deny,
/// blocked → rejected. A reply (`250`, `4.7.1`, `550 5.1.1 …`) goes by its first digit: 2 is
/// delivered, 4 deferred, 5 failed.
pub fn status(value: &str) -> Option<Status> {
    let first = value.as_bytes().first()?;
    if first.is_ascii_digit() {
        let code: &str = value.split([' ', '-']).next().unwrap_or(value);
        let well_formed = (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
            || (code.split('.').count() == 3
                && code.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())));
        return match (well_formed, first) {
            (true, b'2') => Some(Status::Delivered),
            (true, b'4') => Some(Status::Deferred),
            (true, b'5') => Some(Status::Failed),
            _ => None,
        };
    }
    match value.to_ascii_lowercase().as_str() {
        "delivered" | "sent" | "accepted" | "ok" | "queued" | "stored" | "success" | "succeeded" | "relayed" => {
            Some(Status::Delivered)
        }
        "deferred" | "defer" | "tempfail" | "temp_fail" | "temporary" | "denysoft" | "retry" => Some(Status::Deferred),
        "failed" | "fail" | "bounced" | "bounce" | "permfail" | "perm_fail" | "expired" | "undeliverable" => {
            Some(Status::Failed)
        }
        "rejected" | "reject" | "refused" | "denied" | "deny" | "blocked" => Some(Status::Rejected),
        _ => None,
    }
}

/// An address as logs write it: `192.0.2.1`, `[192.0.2.1]`, `IPv6:2001:db8::1`,
/// `::ffff:192.0.2.1` (an IPv4 client of an IPv6 socket, read as IPv4).
pub fn ip(value: &str) -> Option<IpAddr> {
    let value = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    let value = match value.get(..5) {
        Some(prefix) if prefix.eq_ignore_ascii_case("ipv6:") => &value[5..],
        _ => value,
    };
    value.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_versions_in_every_spelling() {
        for (text, want) in [
            ("TLSv1.3", TlsVersion::Tls1_3),
            ("TLS1_2", TlsVersion::Tls1_2),
            ("tls1.2", TlsVersion::Tls1_2),
            ("TLSv1", TlsVersion::Tls1_0),
            ("TLS 1.0", TlsVersion::Tls1_0),
            ("tls1_1", TlsVersion::Tls1_1),
            ("1.3", TlsVersion::Tls1_3),
            ("SSLv3", TlsVersion::Ssl3),
            ("none", TlsVersion::None),
            ("N", TlsVersion::None),
            ("unknown", TlsVersion::Unknown),
            ("TLSv1/SSLv3", TlsVersion::Unknown),
        ] {
            assert_eq!(tls_version(text), Some(want), "{text}");
        }
        for bad in ["TLSv9", "1", "ssl2", "TLSv1.3:TLS_AES_256", "", "yes"] {
            assert_eq!(tls_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses_from_words_and_replies() {
        for (text, want) in [
            ("sent", Status::Delivered),
            ("OK", Status::Delivered),
            ("250", Status::Delivered),
            ("250 2.0.0 Ok: queued", Status::Delivered),
            ("4.7.1", Status::Deferred),
            ("DENYSOFT", Status::Deferred),
            ("550-5.1.1", Status::Failed),
            ("bounced", Status::Failed),
            ("rejected", Status::Rejected),
        ] {
            assert_eq!(status(text), Some(want), "{text}");
        }
        for bad in ["", "25", "2.0", "maybe", "650"] {
            assert_eq!(status(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses_and_recipients() {
        assert_eq!(ip("[192.0.2.1]"), "192.0.2.1".parse().ok());
        assert_eq!(ip("IPv6:2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(ip("::ffff:192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(ip("999.1.1.1"), None);
        let mut fields = Fields::default();
        fields.set(Field::Recipient, "<a@X.example>,<b@y.example>").unwrap();
        fields.set(Field::Recipient, "A@x.example").unwrap();
        fields.set(Field::Sender, "<>").unwrap();
        assert_eq!(fields.addresses.len(), 2);
        assert_eq!(fields.sender, None);
        let event = fields.into_event(0, Direction::Inbound, &Arc::from("f"), 1);
        assert_eq!(
            (event.recipients, event.recipient_domains),
            (Some(2), vec!["x.example".into(), "y.example".into()])
        );
    }
}
