//! One line of Exim's main log → what it says: Exim's own stamp, the message id, and for the
//! lines that count (`<=`, `=>`, `->`, `>>`, `**`, `==`, `Completed`) their fields.
//!
//! By hand over bytes and without allocation: most lines of a busy log (connections, queue runs,
//! rejections) are irrelevant and must cost next to nothing. Fields are `NAME=value`, values may
//! be quoted (`C="250 OK"`, with `\"` inside); `H=` spans several words (`host (helo) [ip]:port`).
//! Delivery failures and deferrals end their fields at `: `, after which comes free text (the
//! remote server's reply), which is never read as fields.

use std::net::IpAddr;

use mailflow_component::clock::{Stamp, clock_time, days_from_civil, days_in_month};
use mailflow_core::Status;

/// The main log's line, after Exim's stamp and optional `[pid]`.
#[derive(Debug, PartialEq)]
pub enum Record<'a> {
    /// Connections, queue runs, rejections, frozen messages, warnings…
    Irrelevant,
    /// `<=` (or `(=`, a fake reject): a message was received.
    Arrival(Arrival<'a>),
    /// `=>`, `->`, `>>` (delivered), `**` (failed), `==` (deferred): one recipient's attempt.
    Delivery(Delivery<'a>),
    /// The message left the queue: every recipient is done.
    Completed,
}

/// The fields of a `<=` line that count.
#[derive(Debug, Default, PartialEq)]
pub struct Arrival<'a> {
    /// `(=`: accepted, but the client was told it was rejected.
    pub fake_reject: bool,
    /// As logged: `<>` for the null sender.
    pub sender: &'a [u8],
    pub host: Option<Host<'a>>,
    /// `I=`: the local interface, `[ip]:port`.
    pub interface: Option<&'a [u8]>,
    /// `P=`: `esmtps`, `local`, …
    pub protocol: Option<&'a [u8]>,
    pub tls: TlsFields<'a>,
    pub size: Option<u64>,
    /// `id=`: the Message-ID header, without angle brackets.
    pub message_id: Option<&'a [u8]>,
    /// The words after `for` (`log_selector = +received_recipients`), if logged.
    pub recipients: Option<&'a [u8]>,
}

/// The fields of a delivery, failure or deferral line that count.
#[derive(Debug, PartialEq)]
pub struct Delivery<'a> {
    pub status: Status,
    /// The recipient as logged: an address, or a local part, path or pipe for local deliveries.
    pub address: &'a [u8],
    pub transport: Option<&'a [u8]>,
    pub host: Option<Host<'a>>,
    pub tls: TlsFields<'a>,
    /// `S=` (`+delivery_size`).
    pub size: Option<u64>,
}

/// `H=`: `host [ip]`, `(helo) [ip]`, `host (helo) [ip]`, `[ip]:port`, `host DS [ip]` …
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Host<'a> {
    /// The host name (a verified reverse lookup inbound, the MX or route outbound).
    pub name: Option<&'a [u8]>,
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
}

/// `X=` (protocol:cipher:bits), `CV=` (certificate verified) and whether a peer `DN=` was logged.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TlsFields<'a> {
    pub cipher: Option<&'a [u8]>,
    pub verified: Option<&'a [u8]>,
    pub peer_dn: bool,
}

/// Reads Exim's own stamp at the start of a line: `2026-12-04 15:00:00`, optionally `.123`
/// (`+millisec`) and ` +0100` (`log_timezone`). `None`: the line does not start like a date.
/// `Some(Err)`: it does, but is not a valid one. Without an offset the stamp is wall-clock time.
pub fn stamp(text: &[u8]) -> Option<Result<(Stamp, &[u8]), &'static str>> {
    const WANT: &str = "an Exim timestamp like \"2026-12-04 15:00:00\"";
    if text.len() < 5 || !text[..4].iter().all(u8::is_ascii_digit) || text[4] != b'-' {
        return None;
    }
    Some((|| {
        if text.len() < 19 || text[7] != b'-' || text[10] != b' ' {
            return Err(WANT);
        }
        let year = number(&text[0..4]).ok_or(WANT)? as i64;
        let (month, day) = (number(&text[5..7]).ok_or(WANT)? as u32, number(&text[8..10]).ok_or(WANT)? as u32);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err("a valid calendar date");
        }
        let (second_of_day, micros, mut rest) = clock_time(&text[11..]).ok_or(WANT)?;
        let local = days_from_civil(year, month, day) * 86_400 + i64::from(second_of_day);
        let mut stamp = Stamp::Wall { seconds: local, micros };
        if let [b' ', sign @ (b'+' | b'-'), zone @ ..] = rest
            && zone.len() >= 4
            && zone[..4].iter().all(u8::is_ascii_digit)
            && zone.get(4).is_none_or(|&b| b == b' ')
        {
            let minutes = (number(&zone[..2]).unwrap_or(0) * 60 + number(&zone[2..4]).unwrap_or(0)) as i64;
            let offset = if *sign == b'-' { -minutes * 60 } else { minutes * 60 };
            stamp = Stamp::Instant((local - offset) * 1_000_000 + i64::from(micros));
            rest = &zone[4..];
        }
        match rest {
            [] => Ok((stamp, rest)),
            [b' ', after @ ..] => Ok((stamp, after)),
            _ => Err(WANT),
        }
    })())
}

/// What the text after the stamp says: the message id (if the line has one) and the record.
pub fn body(text: &[u8]) -> Result<(Option<&[u8]>, Record<'_>), &'static str> {
    let text = skip_pid(text);
    let Some((id, rest)) = message_id(text) else {
        // A flag where the id should be, or right after a damaged one.
        let second = memchr::memchr(b' ', text).map_or(&b""[..], |i| &text[i + 1..]);
        if is_flag(text) || is_flag(second) {
            return Err("a message id like 1xZfaJ-0000jh-2i before the flag");
        }
        return Ok((None, Record::Irrelevant));
    };
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    if matches!(rest, b"<=" | b"(=" | b"=>" | b"->" | b">>" | b"**" | b"==") {
        return Err("an address after the flag");
    }
    let record = match rest.get(..3) {
        Some(b"<= ") => Record::Arrival(arrival(&rest[3..], false)?),
        Some(b"(= ") => Record::Arrival(arrival(&rest[3..], true)?),
        Some(b"=> " | b"-> " | b">> ") => Record::Delivery(delivery(&rest[3..], Status::Delivered)?),
        Some(b"** ") => Record::Delivery(delivery(&rest[3..], Status::Failed)?),
        Some(b"== ") => Record::Delivery(deferral(&rest[3..])?),
        _ if rest.starts_with(b"Completed") && rest.get(9).is_none_or(|&b| b == b' ') => Record::Completed,
        _ => Record::Irrelevant,
    };
    Ok((Some(id), record))
}

/// `[1234] ` (`log_selector = +pid`).
fn skip_pid(text: &[u8]) -> &[u8] {
    if text.first() == Some(&b'[')
        && let Some(close) = text.iter().take(24).position(|&b| b == b']')
        && close > 1
        && text[1..close].iter().all(u8::is_ascii_digit)
    {
        let rest = &text[close + 1..];
        return rest.strip_prefix(b" ").unwrap_or(rest);
    }
    text
}

fn is_flag(text: &[u8]) -> bool {
    matches!(text.get(..3), Some(b"<= " | b"(= " | b"=> " | b"-> " | b">> " | b"*> " | b"** " | b"== "))
}

/// A message id at the start of `text`, and what follows it: `1xZfaJ-0000jh-2i` (Exim before
/// 4.97: 6-6-2 base-62 digits) or `1tHRd4-00000003Cq6-1aBc` (4.97 and later: 6-11-4).
pub fn message_id(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = if text.get(13) == Some(&b'-') && text.get(16).is_none_or(|&b| b == b' ') {
        16
    } else if text.get(18) == Some(&b'-') && text.get(23).is_none_or(|&b| b == b' ') {
        23
    } else {
        return None;
    };
    let id = text.get(..len)?;
    let shape = id.iter().enumerate().all(|(i, b)| match (i, len) {
        (6, _) | (13, 16) | (18, 23) => *b == b'-',
        _ => b.is_ascii_alphanumeric(),
    });
    shape.then(|| (id, &text[len..]))
}

/// The fields of a `<=` line, after the flag.
fn arrival(text: &[u8], fake_reject: bool) -> Result<Arrival<'_>, &'static str> {
    let (sender, mut rest) = token(text)?;
    if sender.is_empty() {
        return Err("a sender address after <=");
    }
    let mut a = Arrival { fake_reject, sender, ..Arrival::default() };
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b"for ") {
            a.recipients = Some(after);
            break;
        }
        if let Some(after) = rest.strip_prefix(b"H=") {
            let (host, after) = host(after)?;
            a.host = Some(host);
            rest = after.strip_prefix(b" ").unwrap_or(after);
            continue;
        }
        let (word, after) = token(rest)?;
        rest = after;
        let Some((name, value)) = field(word) else { continue };
        match name {
            b"I" => a.interface = Some(value),
            b"P" => a.protocol = Some(value),
            b"S" => a.size = Some(size(value)?),
            b"id" => a.message_id = Some(value),
            _ => tls_field(&mut a.tls, name, value),
        }
    }
    Ok(a)
}

/// The fields of a `=>`, `->`, `>>` or `**` line, after the flag: they end at the line's end or
/// at `: ` (a failure's reason).
fn delivery(text: &[u8], status: Status) -> Result<Delivery<'_>, &'static str> {
    let (address, mut rest) = token(text)?;
    if address.is_empty() {
        return Err("an address after the flag");
    }
    let mut d = Delivery { status, address, transport: None, host: None, tls: TlsFields::default(), size: None };
    if let Some(address) = address.strip_suffix(b":") {
        // `** a@b.example: Unrouteable address`: no fields at all.
        d.address = address;
        return Ok(d);
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b"H=") {
            let (host, after) = host(after)?;
            d.host = Some(host);
            if after.first() == Some(&b':') {
                break;
            }
            rest = after.strip_prefix(b" ").unwrap_or(after);
            continue;
        }
        let (word, after) = token(rest)?;
        rest = after;
        let (word, last) = match word.strip_suffix(b":") {
            Some(word) => (word, true),
            None => (word, false),
        };
        if let Some((name, value)) = field(word) {
            match name {
                b"T" => d.transport = Some(value),
                b"S" => d.size = Some(size(value)?),
                _ => tls_field(&mut d.tls, name, value),
            }
        }
        if last {
            break;
        }
    }
    Ok(d)
}

/// An `==` line: `addr [<top>] R=r T=t defer (errno)[: strerror][ H=host [ip][:port]][: text]`.
/// Exim logs no TLS fields on deferrals.
fn deferral(text: &[u8]) -> Result<Delivery<'_>, &'static str> {
    const WANT: &str = "`== address … defer (N)`";
    let (address, mut rest) = token(text)?;
    if address.is_empty() {
        return Err("an address after ==");
    }
    let mut d = Delivery {
        status: Status::Deferred,
        address,
        transport: None,
        host: None,
        tls: Default::default(),
        size: None,
    };
    loop {
        if rest.is_empty() {
            return Err(WANT);
        }
        let (word, after) = token(rest)?;
        rest = after;
        if word == b"defer" {
            break;
        }
        if let Some((b"T", value)) = field(word) {
            d.transport = Some(value);
        }
    }
    let close = memchr::memchr(b')', rest).filter(|_| rest.first() == Some(&b'(')).ok_or(WANT)?;
    let errno = &rest[1..close];
    let errno_ok = errno.strip_prefix(b"-").unwrap_or(errno);
    if errno_ok.is_empty() || !errno_ok.iter().all(u8::is_ascii_digit) {
        return Err(WANT);
    }
    rest = &rest[close + 1..];
    if errno[0] != b'-'
        && let Some(after) = rest.strip_prefix(b": ")
    {
        // strerror's text, then the host or the reason.
        let host_at = memchr::memmem::find(after, b" H=");
        let reason_at = memchr::memmem::find(after, b": ");
        rest = match (host_at, reason_at) {
            (Some(h), Some(r)) if r < h => &after[r..],
            (Some(h), _) => &after[h..],
            (None, _) => b"",
        };
    }
    if let Some(after) = rest.strip_prefix(b" H=") {
        d.host = Some(host(after)?.0);
    }
    Ok(d)
}

/// `X=`, `CV=` and `DN=`, wherever they are.
fn tls_field<'a>(tls: &mut TlsFields<'a>, name: &[u8], value: &'a [u8]) {
    match name {
        b"X" => tls.cipher = Some(value),
        b"CV" => tls.verified = Some(value),
        b"DN" => tls.peer_dn = true,
        _ => {}
    }
}

fn size(value: &[u8]) -> Result<u64, &'static str> {
    number(value).ok_or("S=<size in bytes>")
}

/// `NAME=value` with the quotes of a quoted value removed (escapes are left as they are).
fn field(word: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = word.iter().take(8).position(|&b| b == b'=')?;
    let name = &word[..eq];
    if name.is_empty() || !name.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let value = &word[eq + 1..];
    Some((name, value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(value)))
}

/// The next word and what follows its space. A word ends at a space outside quotes (`"…"`, with
/// `\"` escapes), angle brackets and parentheses: `C="250 OK"`, `<"a b"@c>`, `(a, b)`.
pub fn token(text: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    // Most words are short and hold none of `"`, `(` and `<`: a plain loop beats memchr here.
    for (i, &b) in text.iter().enumerate() {
        match b {
            b' ' => return Ok((&text[..i], &text[i + 1..])),
            b'"' | b'(' | b'<' => break,
            _ if i + 1 == text.len() => return Ok((text, b"")),
            _ => {}
        }
    }
    let (mut quoted, mut escaped, mut depth) = (false, false, 0u32);
    for (i, &b) in text.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b'(' | b'<' => depth += 1,
            b')' | b'>' => depth = depth.saturating_sub(1),
            b' ' if depth == 0 => return Ok((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    if quoted {
        return Err("a closing quote");
    }
    Ok((text, b""))
}

/// `H=`'s value, and what follows it (a space, `: ` or nothing).
fn host(text: &[u8]) -> Result<(Host<'_>, &[u8]), &'static str> {
    let mut rest = text;
    let mut name = None;
    if !matches!(rest.first(), Some(b'[' | b'(')) {
        let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        // `H=name: reason` ends the fields, as `H=name [ip]: reason` does.
        let (word, colon) = match word.strip_suffix(b":") {
            Some(word) => (word, &b":"[..]),
            None => (word, &b""[..]),
        };
        if word.is_empty() {
            return Err("a host after H=");
        }
        name = Some(word);
        if !colon.is_empty() {
            return Ok((Host { name, ip: None, port: None }, colon));
        }
        // `+dnssec`: ` DS` between the name and the address.
        if rest.starts_with(b" DS [") {
            rest = &rest[3..];
        }
        match rest {
            [b' ', b'(' | b'[', ..] => rest = &rest[1..],
            // A local transport's host, without an address.
            _ => return Ok((Host { name, ip: None, port: None }, rest)),
        }
    }
    if rest.first() == Some(&b'(') {
        let close = matching_paren(rest).ok_or("H=(helo) with a closing parenthesis")?;
        rest = rest[close + 1..].strip_prefix(b" [").map(|_| &rest[close + 2..]).ok_or("H=(helo) [address]")?;
    }
    let close = memchr::memchr(b']', rest).ok_or("H=… [address] with a closing bracket")?;
    let ip = std::str::from_utf8(&rest[1..close])
        .ok()
        .and_then(|s| s.parse::<IpAddr>().ok())
        .ok_or("an IP address in H=[…]")?;
    rest = &rest[close + 1..];
    let mut port = None;
    if let [b':', digit, ..] = rest
        && digit.is_ascii_digit()
    {
        let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        port =
            Some(number(&rest[1..1 + n]).and_then(|p| u16::try_from(p).ok()).ok_or("a port number after H=[address]")?);
        rest = &rest[1 + n..];
    }
    // `*`: a delivery down a connection already open.
    let rest = rest.strip_prefix(b"*").unwrap_or(rest);
    Ok((Host { name, ip: Some(ip), port }, rest))
}

/// Where the parenthesis that `text` starts with closes (nested ones and brackets allowed).
fn matching_paren(text: &[u8]) -> Option<usize> {
    let mut depth = 0u32;
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `P=` names SMTP over a network: `smtp`, `esmtps`, `esmtpsa`, `utf8esmtps`…, not
/// `local`, `local-esmtp` or a name a content filter gave its re-injection (`-oMr`).
pub fn network_protocol(protocol: &[u8]) -> bool {
    !protocol.starts_with(b"local") && memchr::memmem::find(protocol, b"smtp").is_some()
}

/// Whether `P=` says the session used TLS (`esmtps`, `esmtpsa`, `smtps`, `ssmtp`).
pub fn tls_protocol(protocol: &[u8]) -> bool {
    memchr::memmem::find(protocol, b"smtps").is_some() || memchr::memmem::find(protocol, b"ssmtp").is_some()
}

/// A short run of ASCII digits as a number.
fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// `X=`'s value: `TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256` (OpenSSL before 4.94),
/// `TLS1.3:TLS_AES_256_GCM_SHA384:256` (OpenSSL since), `TLS1.3:ECDHE_SECP256R1__…:256`
/// (GnuTLS). The protocol is the part before the first `:`, the cipher what follows up to the
/// `:bits` (any field after the bits, or a key exchange before the cipher, stays out of or in
/// the cipher as logged).
pub fn split_cipher(value: &[u8]) -> (&[u8], Option<&[u8]>) {
    let Some(colon) = memchr::memchr(b':', value) else { return (value, None) };
    let (protocol, rest) = (&value[..colon], &value[colon + 1..]);
    let mut at = 0;
    for part in rest.split(|&b| b == b':') {
        if at > 0 && number(part).is_some() {
            return (protocol, Some(&rest[..at - 1]));
        }
        at += part.len() + 1;
    }
    (protocol, (!rest.is_empty()).then_some(rest))
}

/// A syslog message of Exim's split in parts (`[2/3] …`, `[2\3] …`): the part's number and its
/// text. Parts after the first continue a line whose fields are in the first.
pub fn syslog_part(message: &[u8]) -> Option<(u64, &[u8])> {
    let rest = message.strip_prefix(b"[")?;
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let part = number(&rest[..n])?;
    let rest = rest[n..].strip_prefix(b"/").or_else(|| rest[n..].strip_prefix(b"\\"))?;
    let m = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = rest[m..].strip_prefix(b"]")?;
    (m > 0).then(|| (part, rest.strip_prefix(b" ").unwrap_or(rest)))
}

/// Lines of a reject log's header dump (`Envelope-from: <…>`, `P Received: …`) and other lines
/// that continue the entry before them.
pub fn continuation(text: &[u8]) -> bool {
    if text.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return true;
    }
    if text.starts_with(b"Envelope-from: ") || text.starts_with(b"Envelope-to: ") {
        return true;
    }
    // A header line flagged by Exim: `P Received:`, `I Message-Id:`, `* X-Deleted:`…
    if let [b'*' | b'B' | b'C' | b'F' | b'I' | b'P' | b'R' | b'S' | b'T', b' ', name @ ..] = text {
        let n = name.iter().take_while(|&&b| b.is_ascii_graphic() && b != b':').count();
        return n > 0 && name.get(n) == Some(&b':');
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> Record<'_> {
        let (_, rest) = stamp(line.as_bytes()).unwrap().unwrap();
        body(rest).unwrap().1
    }

    #[test]
    fn stamps_in_every_form() {
        let (s, rest) = stamp(b"2026-12-04 15:00:00 x").unwrap().unwrap();
        assert_eq!((s, rest), (Stamp::Wall { seconds: 1_796_396_400, micros: 0 }, &b"x"[..]));
        let (s, rest) = stamp(b"2026-12-04 15:00:00.250 +0100 [77] x").unwrap().unwrap();
        assert_eq!(s, Stamp::Instant((1_796_396_400 - 3600) * 1_000_000 + 250_000));
        assert_eq!(skip_pid(rest), b"x");
        let (s, _) = stamp(b"2026-12-04 15:00:00 -0130 x").unwrap().unwrap();
        assert_eq!(s, Stamp::Instant((1_796_396_400 + 5400) * 1_000_000));
        assert!(stamp(b"Dec  4 15:00:00 mx exim[1]: x").is_none());
        assert!(stamp(b"2026-02-30 15:00:00 x").unwrap().is_err());
        assert!(stamp(b"2026-12-04T15:00:00Z mx exim[1]: x").unwrap().is_err());
        assert!(stamp(b"2026-12-04 25:00:00 x").unwrap().is_err());
    }

    #[test]
    fn message_ids_of_both_lengths() {
        assert_eq!(message_id(b"1xZfaJ-0000jh-2i <= x"), Some((&b"1xZfaJ-0000jh-2i"[..], &b" <= x"[..])));
        assert_eq!(message_id(b"1tHRd4-00000003Cq6-1aBc Completed").map(|(id, _)| id.len()), Some(23));
        assert_eq!(message_id(b"1xZfaJ-0000jh-2i"), Some((&b"1xZfaJ-0000jh-2i"[..], &b""[..])));
        for bad in
            [&b"1xZfaJ-0000jh-2 <= x"[..], b"1xZfaJ_0000jh-2i x", b"SMTP connection from", b"1xZfaJ-00000003Cq6-1aB x"]
        {
            assert_eq!(message_id(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn arrivals() {
        let line = "2026-12-05 02:33:11 1xZfaJ-0000je-2s <= \"a b\"@corp.test H=mail.example.net (vm) [2001:db8::7]:40112 \
                    I=[2001:db8::1]:25 P=esmtps X=TLS1.2:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no \
                    S=3906 id=gt-1@corpus.test T=\"Re: for you\" for a@x.test b@y.test";
        let Record::Arrival(a) = record(line) else { panic!() };
        assert_eq!(a.sender, b"\"a b\"@corp.test");
        let host = a.host.unwrap();
        assert_eq!(
            (host.name, host.ip, host.port),
            (Some(&b"mail.example.net"[..]), "2001:db8::7".parse().ok(), Some(40112))
        );
        assert_eq!((a.interface, a.protocol), (Some(&b"[2001:db8::1]:25"[..]), Some(&b"esmtps"[..])));
        assert_eq!((a.size, a.message_id), (Some(3906), Some(&b"gt-1@corpus.test"[..])));
        assert_eq!(a.recipients, Some(&b"a@x.test b@y.test"[..]));
        assert_eq!(a.tls.verified, Some(&b"no"[..]));
        let Record::Arrival(a) =
            record("2026-12-05 02:33:13 1xZfaL-0000m2-1N <= <> R=1xZfaL-0000ld-1E U=Debian-exim P=local S=3895")
        else {
            panic!()
        };
        assert_eq!((a.sender, a.host, a.protocol), (&b"<>"[..], None, Some(&b"local"[..])));
        let Record::Arrival(a) =
            record("2026-12-05 02:33:13 1xZfaL-0000m2-1N <= x@y H=h.example ([10.0.0.1]) [192.0.2.1] P=esmtp")
        else {
            panic!()
        };
        assert_eq!(a.host.unwrap().ip, "192.0.2.1".parse().ok());
    }

    #[test]
    fn deliveries_failures_and_deferrals() {
        let Record::Delivery(d) = record(
            "2026-12-05 02:33:11 1xZfaJ-0000je-2s -> u@p.test R=partners T=remote_smtp S=3969 H=mx.p.test DS [192.0.2.5]:25* \
             X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes DN=\"CN=x\" C=\"250 2.0.0 Ok: queued as X H=y\"",
        ) else {
            panic!()
        };
        assert_eq!(
            (d.status, d.address, d.transport),
            (Status::Delivered, &b"u@p.test"[..], Some(&b"remote_smtp"[..]))
        );
        let host = d.host.unwrap();
        assert_eq!((host.name, host.ip, host.port), (Some(&b"mx.p.test"[..]), "192.0.2.5".parse().ok(), Some(25)));
        assert_eq!(
            d.tls,
            TlsFields { cipher: Some(b"TLS1.3:TLS_AES_256_GCM_SHA384:256"), verified: Some(b"yes"), peer_dn: true }
        );
        assert_eq!(d.size, Some(3969));

        let Record::Delivery(d) = record(
            "2026-12-05 02:33:13 1xZfaL-0000ld-1E ** u@r.test R=partners T=remote_smtp H=127.0.3.3 [127.0.3.3] \
             X=TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no DN=\"CN=peer\": SMTP error \
             from remote mail server after RCPT TO:<u@r.test>: 550 5.1.1 H=z [1.1.1.1] X=bogus",
        ) else {
            panic!()
        };
        assert_eq!((d.status, d.host.unwrap().ip), (Status::Failed, "127.0.3.3".parse().ok()));
        assert!(d.tls.peer_dn && d.tls.cipher.unwrap().starts_with(b"TLS1.3:ECDHE"));

        let Record::Delivery(d) = record(
            "2026-12-05 02:33:13 1xZfaL-0000ld-1E ** u@r.test R=dnslookup T=remote_smtp: retry timeout exceeded",
        ) else {
            panic!()
        };
        assert_eq!((d.address, d.transport, d.host), (&b"u@r.test"[..], Some(&b"remote_smtp"[..]), None));
        let Record::Delivery(d) = record("2026-12-05 02:33:13 1xZfaL-0000ld-1E ** u@nowhere.test: Unrouteable address")
        else {
            panic!()
        };
        assert_eq!((d.address, d.host), (&b"u@nowhere.test"[..], None));

        let Record::Delivery(d) = record(
            "2026-12-05 02:33:12 1xZfaK-0000jn-0W == u@f.test R=partners T=remote_smtp defer (-44) H=127.0.3.5 \
             [127.0.3.5]: SMTP error from remote mail server after RCPT TO:<u@f.test>: 451 4.3.2 later",
        ) else {
            panic!()
        };
        assert_eq!((d.status, d.host.unwrap().ip), (Status::Deferred, "127.0.3.5".parse().ok()));
        let Record::Delivery(d) = record(
            "2026-12-05 02:33:12 1xZfaK-0000jn-0W == u@f.test R=dnslookup T=remote_smtp defer (111): Connection refused \
             H=mx.f.test [192.0.2.9]:25: retry later",
        ) else {
            panic!()
        };
        assert_eq!(d.host.unwrap().port, Some(25));
        let Record::Delivery(d) = record(
            "2026-12-05 02:33:12 1xZfaK-0000jn-0W == u@f.test R=dnslookup T=remote_smtp defer (-53): retry time not \
             reached for any host",
        ) else {
            panic!()
        };
        assert_eq!(d.host, None);
        let Record::Delivery(d) =
            record("2026-12-05 02:33:11 1xZfaJ-0000jh-2i => bob <bob@corp.test> R=local_user T=local_delivery S=0")
        else {
            panic!()
        };
        assert_eq!((d.address, d.host), (&b"bob"[..], None));
    }

    #[test]
    fn irrelevant_and_malformed_lines() {
        for line in [
            "2026-12-05 02:33:11 SMTP connection from [127.0.0.20] (TCP/IP connection count = 1)",
            "2026-12-05 02:33:13 H=(vm) [127.0.1.120] F=<a@b> rejected RCPT <v@p.test>: relaying denied",
            "2026-12-05 02:33:10 Start queue run: pid=2771",
            "2026-12-05 02:33:10 1xZfaL-0000m2-1N Message is frozen",
            "2026-12-05 02:33:10 1xZfaL-0000m2-1N *> u@x.test R=r T=t H=x [192.0.2.1]",
        ] {
            assert_eq!(record(line), Record::Irrelevant, "{line}");
        }
        assert_eq!(record("2026-12-05 02:33:10 1xZfaL-0000m2-1N Completed QT=1s"), Record::Completed);
        for line in [
            "2026-12-05 02:33:11 1xZfaJ-0000 <= a@b H=[192.0.2.1] P=esmtp",
            "2026-12-05 02:33:11 <= a@b H=[192.0.2.1] P=esmtp",
            "2026-12-05 02:33:11 1xZfaJ-0000je-2s <= a@b H=(vm) [192.0.2.1",
            "2026-12-05 02:33:11 1xZfaJ-0000je-2s <= a@b H=(vm) [192.0.2.300] P=esmtp",
            "2026-12-05 02:33:11 1xZfaJ-0000je-2s <= a@b H=[192.0.2.1] P=esmtp S=12k",
            "2026-12-05 02:33:11 1xZfaJ-0000je-2s => u@x.test R=r T=t H=x [192.0.2.1] C=\"250 cut",
            "2026-12-05 02:33:11 1xZfaJ-0000je-2s == u@x.test R=r T=t",
            "2026-12-05 02:33:11 1xZfaJ-0000je-2s =>",
        ] {
            let (_, rest) = stamp(line.as_bytes()).unwrap().unwrap();
            assert!(body(rest).is_err(), "{line}");
        }
    }

    #[test]
    fn ciphers_in_every_spelling() {
        for (x, protocol, cipher) in [
            ("TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256", "TLSv1.2", Some("ECDHE-RSA-AES256-GCM-SHA384")),
            ("TLS1.3:TLS_AES_256_GCM_SHA384:256", "TLS1.3", Some("TLS_AES_256_GCM_SHA384")),
            ("TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384:256", "TLS1.2", Some("ECDHE_RSA_AES_256_GCM_SHA384")),
            ("TLS1.3:TLS_AES_256_GCM_SHA384:256:X25519MLKEM768", "TLS1.3", Some("TLS_AES_256_GCM_SHA384")),
            ("TLS1.3:X25519:TLS_AES_128_GCM_SHA256:128", "TLS1.3", Some("X25519:TLS_AES_128_GCM_SHA256")),
            ("TLSv1/SSLv3:DHE-RSA-AES256-SHA:256", "TLSv1/SSLv3", Some("DHE-RSA-AES256-SHA")),
            ("TLS1.3", "TLS1.3", None),
            ("TLS1.3:AES", "TLS1.3", Some("AES")),
        ] {
            let (p, c) = split_cipher(x.as_bytes());
            assert_eq!((p, c), (protocol.as_bytes(), cipher.map(str::as_bytes)), "{x}");
        }
    }

    #[test]
    fn continuations_and_syslog_parts() {
        for line in [
            " Suggested action: use keep_environment.",
            "Envelope-from: <a@b>",
            "P Received: from x",
            "I Message-Id: <x>",
        ] {
            assert!(continuation(line.as_bytes()), "{line}");
        }
        for line in ["hello world", "P hello", "Received: x", "X Received: y"] {
            assert!(!continuation(line.as_bytes()), "{line}");
        }
        assert_eq!(syslog_part(b"[2/3] rest"), Some((2, &b"rest"[..])));
        assert_eq!(syslog_part(b"[1\\2] rest"), Some((1, &b"rest"[..])));
        assert_eq!(syslog_part(b"[pid] rest"), None);
    }
}
