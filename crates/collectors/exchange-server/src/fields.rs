//! One line of Exchange's W3C-style CSV logs: fields split by hand over bytes, the `#Fields:`
//! header that names them, and the values the collector reads from them (UTC stamps, IP
//! addresses, endpoints, session ids).
//!
//! Exchange quotes a field only when it holds a comma or a quote (`"a, b"`, `"say ""hi"""`),
//! so most fields are plain ranges of the line: splitting records ranges and unescapes nothing
//! until a field is read.

use std::borrow::Cow;
use std::net::IpAddr;

use mailflow_component::clock;
use serde::{Deserialize, Serialize};

/// More fields than any Exchange log has (tracking logs have 30).
pub const MAX_FIELDS: usize = 64;

/// A line split into fields: byte ranges into it, and which quoted ones hold `""`.
pub struct Row<'a> {
    line: &'a [u8],
    spans: [(u32, u32); MAX_FIELDS],
    escaped: u64,
    len: usize,
}

impl<'a> Row<'a> {
    /// Splits a CSV line; `Err` says what is wrong with it.
    pub fn split(line: &'a [u8]) -> Result<Row<'a>, &'static str> {
        if line.len() > u32::MAX as usize {
            return Err("a line too long to be a log line");
        }
        let mut row = Row { line, spans: [(0, 0); MAX_FIELDS], escaped: 0, len: 0 };
        let mut pos = 0;
        loop {
            if row.len == MAX_FIELDS {
                return Err("more than 64 fields");
            }
            if line.get(pos) == Some(&b'"') {
                let start = pos + 1;
                let mut i = start;
                let end = loop {
                    let Some(k) = memchr::memchr(b'"', &line[i..]) else {
                        return Err("a quoted field without its closing quote");
                    };
                    let quote = i + k;
                    if line.get(quote + 1) == Some(&b'"') {
                        row.escaped |= 1 << row.len;
                        i = quote + 2;
                    } else {
                        break quote;
                    }
                };
                row.spans[row.len] = (start as u32, end as u32);
                row.len += 1;
                pos = end + 1;
                match line.get(pos) {
                    None => return Ok(row),
                    Some(b',') => pos += 1,
                    Some(_) => return Err("text after a closing quote"),
                }
            } else {
                match memchr::memchr(b',', &line[pos..]) {
                    Some(k) => {
                        row.spans[row.len] = (pos as u32, (pos + k) as u32);
                        row.len += 1;
                        pos += k + 1;
                    }
                    None => {
                        row.spans[row.len] = (pos as u32, line.len() as u32);
                        row.len += 1;
                        return Ok(row);
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// A field as written, without its quotes (`""` still doubled); empty when out of range.
    pub fn raw(&self, i: usize) -> &'a [u8] {
        match self.spans.get(i).filter(|_| i < self.len) {
            Some(&(start, end)) => &self.line[start as usize..end as usize],
            None => b"",
        }
    }

    /// A field's value: `""` unescaped.
    pub fn bytes(&self, i: usize) -> Cow<'a, [u8]> {
        let raw = self.raw(i);
        if i >= 64 || self.escaped & (1 << i) == 0 {
            return Cow::Borrowed(raw);
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(k) = memchr::memchr(b'"', rest) {
            out.extend_from_slice(&rest[..=k]);
            rest = rest.get(k + 2..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
        Cow::Owned(out)
    }

    /// A field's value as text (invalid UTF-8 replaced), trimmed.
    pub fn text(&self, i: Option<u8>) -> Cow<'a, str> {
        let Some(i) = i else { return Cow::Borrowed("") };
        match self.bytes(usize::from(i)) {
            Cow::Borrowed(b) => match String::from_utf8_lossy(b) {
                Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
            },
            Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).trim().to_string()),
        }
    }
}

/// What a `#Fields:` header says about the lines after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    Tracking(Tracking),
    Protocol(Protocol),
}

/// Where each field the collector reads sits in a message tracking log line. Exchange 2007 and
/// 2010 lack `network-message-id`, 2016 and later add `transport-traffic-type`, `log-id` and
/// `schema-version`; the names say where each one is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub count: u8,
    pub date: u8,
    pub source: u8,
    pub event: u8,
    pub client_ip: Option<u8>,
    pub client_hostname: Option<u8>,
    pub server_ip: Option<u8>,
    pub server_hostname: Option<u8>,
    pub source_context: Option<u8>,
    pub connector: Option<u8>,
    pub internal_id: Option<u8>,
    pub message_id: Option<u8>,
    pub network_id: Option<u8>,
    pub recipients: Option<u8>,
    pub bytes: Option<u8>,
    pub recipient_count: Option<u8>,
    pub sender: Option<u8>,
    pub return_path: Option<u8>,
    pub original_client_ip: Option<u8>,
}

/// Where each field sits in an SMTP protocol log line (the same in every version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    pub count: u8,
    pub date: u8,
    pub session: u8,
    pub event: u8,
    pub connector: Option<u8>,
    pub remote: Option<u8>,
    pub data: Option<u8>,
    pub context: Option<u8>,
}

/// Reads the names after `#Fields:`. `Ok(None)`: the fields of another kind of log.
pub fn layout(names: &[u8]) -> Result<Option<Layout>, String> {
    let names: Vec<&[u8]> = names.split(|&b| b == b',').map(|n| n.trim_ascii()).collect();
    if names.len() > MAX_FIELDS {
        return Err(format!("expected at most {MAX_FIELDS} names after #Fields:, found {}", names.len()));
    }
    let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name.as_bytes())).map(|i| i as u8);
    let count = names.len() as u8;
    let need = |name: &str| find(name).ok_or_else(|| format!("expected a `{name}` field in the #Fields: header"));
    if find("session-id").is_some() {
        return Ok(Some(Layout::Protocol(Protocol {
            count,
            date: need("date-time")?,
            session: need("session-id")?,
            event: need("event")?,
            connector: find("connector-id"),
            remote: find("remote-endpoint"),
            data: find("data"),
            context: find("context"),
        })));
    }
    if find("event-id").is_some() {
        return Ok(Some(Layout::Tracking(Tracking {
            count,
            date: need("date-time")?,
            source: need("source")?,
            event: need("event-id")?,
            client_ip: find("client-ip"),
            client_hostname: find("client-hostname"),
            server_ip: find("server-ip"),
            server_hostname: find("server-hostname"),
            source_context: find("source-context"),
            connector: find("connector-id"),
            internal_id: find("internal-message-id"),
            message_id: find("message-id"),
            network_id: find("network-message-id"),
            recipients: find("recipient-address"),
            bytes: find("total-bytes"),
            recipient_count: find("recipient-count"),
            sender: find("sender-address"),
            return_path: find("return-path"),
            original_client_ip: find("original-client-ip"),
        })));
    }
    Ok(None)
}

/// `2026-12-04T15:00:00.123Z` (any number of fraction digits, or none) as microseconds since the
/// epoch. Exchange writes every stamp in UTC with the `Z`.
pub fn utc_micros(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii();
    if text.len() < 20 || text[4] != b'-' || text[7] != b'-' || !matches!(text[10], b'T' | b' ') {
        return None;
    }
    let number = |b: &[u8]| b.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')));
    let (year, month, day) = (number(&text[0..4])?, number(&text[5..7])?, number(&text[8..10])?);
    if !(1..=12).contains(&month) || day == 0 || day > clock::days_in_month(i64::from(year), month) {
        return None;
    }
    let (second, micros, rest) = clock::clock_time(&text[11..])?;
    if rest != b"Z" {
        return None;
    }
    let days = clock::days_from_civil(i64::from(year), month, day);
    Some((days * 86_400 + i64::from(second)) * 1_000_000 + i64::from(micros))
}

/// An IP address field: `Ok(None)` when empty.
pub fn ip(text: &[u8]) -> Result<Option<IpAddr>, ()> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(text).map_err(drop)?;
    let text = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    text.parse().map(Some).map_err(drop)
}

/// `192.0.2.1:25`, `[2001:db8::1]:25` or `2001:db8::1:25`.
pub fn endpoint(text: &[u8]) -> Option<(IpAddr, u16)> {
    let text = std::str::from_utf8(text.trim_ascii()).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        return Some((ip.parse().ok()?, port.parse().ok()?));
    }
    let (ip, port) = text.rsplit_once(':')?;
    Some((ip.parse().ok()?, port.parse().ok()?))
}

/// A session id: 16 hex digits, as protocol logs write it and tracking logs repeat it first in
/// `source-context` (`08DE1A2B3C4D5E6F;2026-12-04T15:00:00.123Z;1`).
pub fn session_id(text: &[u8]) -> Option<u64> {
    let first = text.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    if first.len() != 16 {
        return None;
    }
    first.iter().try_fold(0u64, |n, &b| Some(n << 4 | u64::from((b as char).to_digit(16)?)))
}

/// Whether `text` starts with `prefix`, ignoring ASCII case.
pub fn starts_with(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Vec<String> {
        let row = Row::split(line.as_bytes()).unwrap();
        (0..row.len()).map(|i| String::from_utf8(row.bytes(i).into_owned()).unwrap()).collect()
    }

    #[test]
    fn quoted_fields_hold_commas_and_doubled_quotes() {
        assert_eq!(fields("a,,\"b, c\",\"say \"\"hi\"\"\","), ["a", "", "b, c", "say \"hi\"", ""]);
        assert_eq!(fields("\"\""), [""]);
        assert_eq!(fields(""), [""]);
        assert_eq!(fields("x\"y,z"), ["x\"y", "z"], "a quote inside a plain field is text");
        assert!(Row::split(b"a,\"b").is_err());
        assert!(Row::split(b"a,\"b\"c").is_err());
        assert!(Row::split(",".repeat(64).as_bytes()).is_err());
        assert_eq!(Row::split(",".repeat(63).as_bytes()).unwrap().len(), 64);
    }

    #[test]
    fn utc_stamps() {
        let t = |s: &str| utc_micros(s.as_bytes());
        assert_eq!(t("2026-12-04T15:00:00.123Z"), Some(1_796_396_400_123_000));
        assert_eq!(t("2026-12-04T15:00:00Z"), Some(1_796_396_400_000_000));
        assert_eq!(t("2026-12-04T15:00:00.1234567Z"), Some(1_796_396_400_123_456));
        for bad in ["2026-12-04T15:00:00.123", "2026-02-30T15:00:00Z", "2026-13-01T00:00:00Z", "12/04/2026 15:00", ""] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn endpoints_addresses_and_session_ids() {
        assert_eq!(endpoint(b"192.0.2.1:25"), Some(("192.0.2.1".parse().unwrap(), 25)));
        assert_eq!(endpoint(b"[2001:db8::1]:587"), Some(("2001:db8::1".parse().unwrap(), 587)));
        assert_eq!(endpoint(b"2001:db8::1:2525"), Some(("2001:db8::1".parse().unwrap(), 2525)));
        assert_eq!(endpoint(b"nonsense"), None);
        assert_eq!(ip(b""), Ok(None));
        assert_eq!(ip(b"[::1]"), Ok(Some("::1".parse().unwrap())));
        assert_eq!(ip(b"10.0.0"), Err(()));
        assert_eq!(session_id(b"08DE1A2B3C4D5E6F;2026-12-04T15:00:00.123Z;1"), Some(0x08DE_1A2B_3C4D_5E6F));
        assert_eq!(session_id(b"08de1a2b3c4d5e6f"), Some(0x08DE_1A2B_3C4D_5E6F));
        assert_eq!(session_id(b"250 2.0.0 OK"), None);
        assert_eq!(session_id(b"08DE1A2B3C4D5E6G"), None);
    }

    #[test]
    fn headers_of_every_version() {
        let e2013 = b"date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data";
        let Some(Layout::Tracking(t)) = layout(e2013).unwrap() else { panic!() };
        assert_eq!((t.count, t.network_id, t.original_client_ip), (27, Some(11), Some(24)));
        let e2010 = b"date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data";
        let Some(Layout::Tracking(t)) = layout(e2010).unwrap() else { panic!() };
        assert_eq!((t.count, t.network_id, t.recipients), (26, None, Some(11)));
        let protocol =
            b" date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context";
        let Some(Layout::Protocol(p)) = layout(protocol).unwrap() else { panic!() };
        assert_eq!((p.count, p.session, p.context), (9, 2, Some(8)));
        assert_eq!(layout(b"date-time,session,source,destination").unwrap(), None);
        assert!(layout(b"session-id,event").unwrap_err().contains("date-time"));
    }
}
