//! One OpenSMTPD log message (the text after the syslog header) as a [`Record`].
//!
//! OpenSMTPD 6.4 and later log one line per event: a 16-hex-digit session id, the side (`smtp`
//! receives, `mta` delivers to other servers, `mda` delivers locally), the event, then
//! `key=value` fields whose values are bare, `"quoted"` or `<bracketed>`:
//!
//! ```text
//! 5df87c903d709659 smtp connected address=192.0.2.10 host=mail.example.net
//! 5df87c903d709659 smtp tls ciphers=TLSv1.3:TLS_AES_256_GCM_SHA384:256
//! 5df87c903d709659 smtp message msgid=c405e39a size=303 nrcpt=1 proto=ESMTP
//! 5df87c903d709659 smtp envelope evpid=c405e39ad6bbc64f from=<a@example.net> to=<b@corp.example>
//! 5df87c9ffd0e785d mta connecting address=smtp://203.0.113.27:25 host=mx.example.org
//! 5df87c9ffd0e785d mta tls ciphers=TLSv1.2:ECDHE-RSA-CHACHA20-POLY1305:256
//! 5df87c9ffd0e785d mta delivery evpid=f6e94209918f7e7b from=<a@corp.example> to=<c@example.org> rcpt=<-> source="192.0.2.1" relay="203.0.113.27 (mx.example.org)" delay=2s result="Ok" stat="250 2.0.0 OK"
//! 5df87c9250bba470 mda delivery evpid=c405e39ad6bbc64f from=<a@example.net> to=<b@corp.example> rcpt=<b@corp.example> user=b delay=0s result=Ok stat=Delivered
//! ```
//!
//! 6.0 to 6.3 named the event as `event=<name>` and spelled TLS as
//! `ciphers="version=TLSv1.2, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256"`, with one
//! `smtp event=message msgid=… from=<…> to=<…> size=…` line per recipient; those are read too.
//! Queue expiry and removal keep an older form without a session id:
//! `relay: Expire for 1a2b3c4d5e6f7a8b: from=<…>, to=<…>, rcpt=<->, delay=4d, stat=Envelope expired`.
//!
//! Everything else the daemon logs (start-up, warnings, `smtp failed-command`, `mta error`,
//! filters) is irrelevant here. Parsing is by hand over bytes and allocates nothing.

use std::net::IpAddr;

use mailflow_core::TlsVersion;

/// Which side of the daemon a line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The SMTP server: sessions of clients handing mail in (`smtp`).
    Smtp,
    /// The SMTP client: sessions to the next hop (`mta`).
    Mta,
}

/// What a delivery attempt came to (`result=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    TempFail,
    PermFail,
}

/// A client's address: a local submission (`address=local`: `sendmail`, bounces) or an IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    Local,
    Ip(IpAddr),
}

/// One relevant line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// A line this collector does not need.
    Irrelevant,
    /// `smtp connected address=… host=…`.
    Connected { session: u64, address: Address, host: &'a [u8] },
    /// `smtp tls ciphers=…` or `mta tls ciphers=…`: TLS is up on the session.
    Tls { session: u64, side: Side, version: TlsVersion, cipher: &'a [u8] },
    /// `smtp client-cert-check result=…`, `mta server-cert-check result=…` and their kin.
    CertCheck { session: u64, side: Side, verified: bool },
    /// `smtp message msgid=… size=… nrcpt=…`: a message was accepted and queued.
    Message { session: u64, msgid: u32, size: Option<u64>, nrcpt: Option<u32> },
    /// `smtp envelope evpid=… from=<…> to=<…>`, one per recipient after the message line; or
    /// (6.0 to 6.3) `smtp event=message msgid=… from=<…> to=<…> size=…`, which is both.
    Envelope { session: u64, msgid: u32, evpid: Option<u64>, from: &'a [u8], to: &'a [u8], size: Option<u64> },
    /// `smtp disconnected …` or `mta disconnected …`.
    Disconnected { session: u64, side: Side },
    /// `mta connecting address=smtp://203.0.113.7:25 host=…`: a (re)connection of the session.
    Connecting { session: u64, scheme: &'a [u8], ip: Option<IpAddr>, port: Option<u16>, host: &'a [u8] },
    /// `mta delivery evpid=… from=<…> to=<…> … relay="ip (host)" … result=…`.
    Delivery {
        session: u64,
        evpid: u64,
        from: &'a [u8],
        to: &'a [u8],
        /// `None` when no server was reached (`relay` names the destination, not a host).
        relay_ip: Option<IpAddr>,
        relay_host: &'a [u8],
        outcome: Outcome,
    },
    /// `mda delivery …` (mailbox, maildir, pipe, LMTP to a socket): local, not traffic.
    LocalDelivery { session: u64, evpid: u64, outcome: Outcome },
    /// `relay: Expire for …` / `delivery: Remove for …`: the envelope left the queue unsent.
    Expired { evpid: u64 },
}

/// Parses the message part of one `smtpd` line; `Err` names what a relevant line lacked.
pub fn record(message: &[u8]) -> Result<Record<'_>, &'static str> {
    let Some(session) = message.get(..16).and_then(hex64).filter(|_| message.get(16) == Some(&b' ')) else {
        return queue_line(message);
    };
    let rest = &message[17..];
    let (side, rest) = word(rest);
    let (event, rest) = word(rest);
    let event = event.strip_prefix(b"event=").unwrap_or(event);
    let side = match side {
        b"smtp" => Side::Smtp,
        b"mta" => Side::Mta,
        _ if event == b"delivery" => return local_delivery(session, rest),
        _ => return Ok(Record::Irrelevant),
    };
    match (side, event) {
        (Side::Smtp, b"connected") => connected(session, rest),
        (_, b"tls" | b"starttls") => tls(session, side, rest),
        (Side::Smtp, b"client-cert-check" | b"cert-check") | (Side::Mta, b"server-cert-check" | b"cert-check") => {
            cert_check(session, side, rest)
        }
        (Side::Smtp, b"message") => message_line(session, rest),
        (Side::Smtp, b"envelope") => envelope(session, rest),
        (_, b"disconnected" | b"closed") => Ok(Record::Disconnected { session, side }),
        (Side::Mta, b"connecting") => connecting(session, rest),
        (Side::Mta, b"delivery") => delivery(session, rest),
        _ => Ok(Record::Irrelevant),
    }
}

fn connected(session: u64, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "smtp connected address=<ip or local> host=…";
    let mut fields = Fields::new(rest);
    let address = fields.take(b"address").ok_or(WANT)?;
    let address = if address == b"local" { Address::Local } else { Address::Ip(ip(address).ok_or(WANT)?) };
    let host = fields.take_bare(b"host").unwrap_or_default();
    Ok(Record::Connected { session, address, host })
}

fn tls(session: u64, side: Side, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "tls ciphers=<protocol>:<cipher>:<bits>";
    let ciphers = Fields::new(rest).take(b"ciphers").ok_or(WANT)?;
    let (version, cipher) = if let Some(old) = ciphers.strip_prefix(b"version=") {
        // 6.0 to 6.3: "version=TLSv1.2, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256".
        let (version, rest) = split_once(old, b',').ok_or(WANT)?;
        let rest = trim_start(rest);
        let cipher = rest.strip_prefix(b"cipher=").ok_or(WANT)?;
        (version, split_once(cipher, b',').map_or(cipher, |(c, _)| c))
    } else {
        let (version, rest) = split_once(ciphers, b':').ok_or(WANT)?;
        (version, split_once(rest, b':').map_or(rest, |(c, _)| c))
    };
    let version = std::str::from_utf8(version).ok().and_then(TlsVersion::from_protocol).ok_or(WANT)?;
    Ok(Record::Tls { session, side, version, cipher })
}

fn cert_check(session: u64, side: Side, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "cert-check result=…";
    let result = Fields::new(rest).take(b"result").ok_or(WANT)?;
    let verified = matches!(result, b"success" | b"verified" | b"valid" | b"ok");
    Ok(Record::CertCheck { session, side, verified })
}

fn message_line(session: u64, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "smtp message msgid=<8 hex digits> size=N nrcpt=N";
    let mut fields = Fields::new(rest);
    let msgid = fields.take(b"msgid").and_then(hex32).ok_or(WANT)?;
    if fields.rest.starts_with(b" from=") {
        // 6.0 to 6.3: one line per recipient, message and envelope in one.
        let from = fields.take(b"from").ok_or(WANT)?;
        let to = fields.take(b"to").ok_or(WANT)?;
        let size = fields.take(b"size").map(number).map(|n| n.ok_or(WANT)).transpose()?;
        return Ok(Record::Envelope { session, msgid, evpid: None, from, to, size });
    }
    let size = Some(fields.take(b"size").and_then(number).ok_or(WANT)?);
    let nrcpt = fields.take(b"nrcpt").map(|n| number(n).and_then(|n| u32::try_from(n).ok()).ok_or(WANT)).transpose()?;
    Ok(Record::Message { session, msgid, size, nrcpt })
}

fn envelope(session: u64, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "smtp envelope evpid=<16 hex digits> from=<…> to=<…>";
    let mut fields = Fields::new(rest);
    let evpid = fields.take(b"evpid").and_then(hex64).ok_or(WANT)?;
    let from = fields.take(b"from").ok_or(WANT)?;
    let to = fields.take(b"to").ok_or(WANT)?;
    Ok(Record::Envelope { session, msgid: (evpid >> 32) as u32, evpid: Some(evpid), from, to, size: None })
}

fn connecting(session: u64, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "mta connecting address=<scheme>://<ip>:<port> host=…";
    let mut fields = Fields::new(rest);
    let address = fields.take(b"address").ok_or(WANT)?;
    let at = memchr::memmem::find(address, b"://").ok_or(WANT)?;
    let (scheme, target) = (&address[..at], &address[at + 3..]);
    let (ip_text, port) = match target.iter().rposition(|&b| b == b':') {
        Some(i) if target[i + 1..].iter().all(u8::is_ascii_digit) => {
            (&target[..i], Some(number(&target[i + 1..]).and_then(|p| u16::try_from(p).ok()).ok_or(WANT)?))
        }
        _ => (target, None),
    };
    let host = fields.take_bare(b"host").unwrap_or_default();
    Ok(Record::Connecting { session, scheme, ip: ip(ip_text), port, host })
}

fn delivery(session: u64, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str =
        "mta delivery evpid=<16 hex digits> from=<…> to=<…> … relay=\"…\" … result=\"Ok|TempFail|PermFail\"";
    let mut fields = Fields::new(rest);
    let evpid = fields.take(b"evpid").and_then(hex64).ok_or(WANT)?;
    let from = fields.take(b"from").ok_or(WANT)?;
    let to = fields.take(b"to").ok_or(WANT)?;
    let relay = fields.take(b"relay").ok_or(WANT)?;
    let outcome = fields.take(b"result").and_then(outcome).ok_or(WANT)?;
    // "203.0.113.7 (mx.example.org)", "203.0.113.7", or, when no server was reached, the
    // destination's description.
    let (address, host) = match memchr::memmem::find(relay, b" (") {
        Some(i) => (&relay[..i], relay[i + 2..].strip_suffix(b")").unwrap_or(&relay[i + 2..])),
        None => (relay, &b""[..]),
    };
    let relay_ip = ip(address);
    Ok(Record::Delivery { session, evpid, from, to, relay_ip, relay_host: host, outcome })
}

fn local_delivery(session: u64, rest: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "mda delivery evpid=<16 hex digits> … result=Ok|TempFail|PermFail";
    let mut fields = Fields::new(rest);
    let evpid = fields.take(b"evpid").and_then(hex64).ok_or(WANT)?;
    let outcome = fields.take(b"result").and_then(outcome).ok_or(WANT)?;
    Ok(Record::LocalDelivery { session, evpid, outcome })
}

/// `relay: Expire for <evpid>: …`, `delivery: Remove for <evpid>: …`; anything else without a
/// session id is irrelevant.
fn queue_line(message: &[u8]) -> Result<Record<'_>, &'static str> {
    const WANT: &str = "Expire|Remove for <16 hex digits>: …";
    let rest = match message.first() {
        Some(b'r') => message.strip_prefix(b"relay: "),
        Some(b'd') => message.strip_prefix(b"delivery: "),
        _ => None,
    };
    let Some(rest) = rest.and_then(|r| r.strip_prefix(b"Expire for ").or_else(|| r.strip_prefix(b"Remove for ")))
    else {
        return Ok(Record::Irrelevant);
    };
    let evpid = rest.get(..16).and_then(hex64).filter(|_| rest.get(16) == Some(&b':')).ok_or(WANT)?;
    Ok(Record::Expired { evpid })
}

fn outcome(value: &[u8]) -> Option<Outcome> {
    match value {
        b"Ok" => Some(Outcome::Ok),
        b"TempFail" => Some(Outcome::TempFail),
        b"PermFail" => Some(Outcome::PermFail),
        _ => None,
    }
}

/// `key=value` fields in order: each is looked for after the one before, so text inside an
/// earlier value cannot pass for a later key.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Fields { rest }
    }

    /// Where the value of the next field named `key` starts.
    fn find(&self, key: &[u8]) -> Option<usize> {
        // Fields come in a fixed order: step over the ones before `key`, value by value.
        let mut at = 0;
        for _ in 0..16 {
            while self.rest.get(at) == Some(&b' ') {
                at += 1;
            }
            let field = &self.rest[at..];
            if field.len() > key.len() && field.starts_with(key) && field[key.len()] == b'=' {
                return Some(at + key.len() + 1);
            }
            let eq = memchr::memchr2(b'=', b' ', field).filter(|&i| field[i] == b'=');
            let Some(eq) = eq else { break };
            at += eq + 1 + value_len(&field[eq + 1..])?;
        }
        // Not where the order puts it: anywhere further on.
        let mut from = 0;
        loop {
            let at = from + memchr::memmem::find(&self.rest[from..], key)?;
            let after = at + key.len();
            if (at == 0 || self.rest[at - 1] == b' ') && self.rest.get(after) == Some(&b'=') {
                return Some(after + 1);
            }
            from = at + 1;
        }
    }

    /// The value of the next field named `key`, to the next space, as written: host names are
    /// bare, and an unresolved one is `<unknown>`.
    fn take_bare(&mut self, key: &[u8]) -> Option<&'a [u8]> {
        let start = self.find(key)?;
        let value = &self.rest[start..];
        let end = memchr::memchr(b' ', value).unwrap_or(value.len());
        self.rest = &value[end..];
        Some(&value[..end])
    }

    /// The value of the next field named `key`: bare (to the next space), `"quoted"` or
    /// `<bracketed>` (to the closing mark that ends the value, so an address may hold `>`).
    fn take(&mut self, key: &[u8]) -> Option<&'a [u8]> {
        let start = self.find(key)?;
        let value = &self.rest[start..];
        let end = value_len(value)?;
        let inner = match value.first() {
            Some(b'"' | b'<') => &value[1..end - 1],
            _ => &value[..end],
        };
        self.rest = &value[end..];
        Some(inner)
    }
}

/// The length of a value at the start of `value`: bare (to the next space), `"quoted"` or
/// `<bracketed>` (to the closing mark followed by a space or the end, so an address may hold
/// `>`); `None` for an unclosed one.
fn value_len(value: &[u8]) -> Option<usize> {
    match value.first() {
        Some(&open @ (b'"' | b'<')) => {
            let close = if open == b'"' { b'"' } else { b'>' };
            let mut i = 1;
            loop {
                let j = i + memchr::memchr(close, &value[i..])?;
                if matches!(value.get(j + 1), None | Some(b' ')) {
                    return Some(j + 1);
                }
                i = j + 1;
            }
        }
        _ => Some(memchr::memchr(b' ', value).unwrap_or(value.len())),
    }
}

/// The first space-separated word and what follows it.
fn word(text: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', text) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, &[]),
    }
}

fn split_once(text: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(sep, text)?;
    Some((&text[..i], &text[i + 1..]))
}

fn trim_start(text: &[u8]) -> &[u8] {
    let n = text.iter().take_while(|&&b| b == b' ').count();
    &text[n..]
}

/// An address as OpenSMTPD writes it: `192.0.2.1`, `IPv6:2001:db8::1` or `[2001:db8::1]`.
pub fn ip(text: &[u8]) -> Option<IpAddr> {
    let text = text.strip_prefix(b"IPv6:").unwrap_or(text);
    let text = text.strip_prefix(b"[").and_then(|t| t.strip_suffix(b"]")).unwrap_or(text);
    if text.is_empty() || text.len() > 45 {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn number(text: &[u8]) -> Option<u64> {
    mailflow_component::syslog::digits(text)
}

fn hex64(text: &[u8]) -> Option<u64> {
    let text: &[u8; 16] = text.try_into().ok()?;
    // Every line starts with one: a table and one check at the end, not a branch per digit.
    let (mut n, mut bad) = (0u64, 0u8);
    for &b in text {
        let d = HEX[usize::from(b)];
        bad |= d;
        n = n << 4 | u64::from(d & 0x0f);
    }
    (bad & 0x80 == 0).then_some(n)
}

fn hex32(text: &[u8]) -> Option<u32> {
    (text.len() == 8).then_some(())?;
    text.iter().try_fold(0u32, |n, &b| {
        let d = HEX[usize::from(b)];
        (d & 0x80 == 0).then_some(n << 4 | u32::from(d))
    })
}

/// Hex digit values; 0x80 marks a byte that is not one.
const HEX: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Record<'_> {
        record(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn reads_the_lines_of_a_session() {
        assert_eq!(
            ok("5df87c903d709659 smtp connected address=192.0.2.10 host=mail.example.net"),
            Record::Connected {
                session: 0x5df87c903d709659,
                address: Address::Ip("192.0.2.10".parse().unwrap()),
                host: b"mail.example.net"
            }
        );
        assert_eq!(
            ok("5df87c903d709659 smtp connected address=local host=mx.corp.example"),
            Record::Connected { session: 0x5df87c903d709659, address: Address::Local, host: b"mx.corp.example" }
        );
        let Record::Connected { address: Address::Ip(v6), .. } =
            ok("0000000000000001 smtp connected address=IPv6:2001:db8::5 host=<unknown>")
        else {
            panic!()
        };
        assert_eq!(v6, "2001:db8::5".parse::<IpAddr>().unwrap());
        assert_eq!(
            ok("5df87c903d709659 smtp tls ciphers=TLSv1.3:TLS_AES_256_GCM_SHA384:256"),
            Record::Tls {
                session: 0x5df87c903d709659,
                side: Side::Smtp,
                version: TlsVersion::Tls1_3,
                cipher: b"TLS_AES_256_GCM_SHA384"
            }
        );
        assert_eq!(
            ok("5df87c903d709659 smtp message msgid=c405e39a size=303 nrcpt=2 proto=ESMTP"),
            Record::Message { session: 0x5df87c903d709659, msgid: 0xc405e39a, size: Some(303), nrcpt: Some(2) }
        );
        assert_eq!(
            ok("5df87c903d709659 smtp envelope evpid=c405e39ad6bbc64f from=<> to=<b@corp.example>"),
            Record::Envelope {
                session: 0x5df87c903d709659,
                msgid: 0xc405e39a,
                evpid: Some(0xc405e39ad6bbc64f),
                from: b"",
                to: b"b@corp.example",
                size: None
            }
        );
        assert_eq!(
            ok("5df87c903d709659 smtp disconnected reason=quit"),
            Record::Disconnected { session: 0x5df87c903d709659, side: Side::Smtp }
        );
        assert_eq!(
            ok("5df87c903d709659 smtp failed-command command=\"RCPT TO:<x@y>\" result=\"550 Invalid recipient\""),
            Record::Irrelevant
        );
    }

    #[test]
    fn reads_deliveries() {
        assert_eq!(
            ok("5df87c9ffd0e785d mta connecting address=smtp://203.0.113.27:25 host=mx.example.org"),
            Record::Connecting {
                session: 0x5df87c9ffd0e785d,
                scheme: b"smtp",
                ip: "203.0.113.27".parse().ok(),
                port: Some(25),
                host: b"mx.example.org"
            }
        );
        let Record::Connecting { ip, port, .. } =
            ok("0000000000000001 mta connecting address=smtp+tls://IPv6:2001:db8::7:587 host=mx")
        else {
            panic!()
        };
        assert_eq!((ip, port), ("2001:db8::7".parse().ok(), Some(587)));
        let Record::Connecting { ip, port, .. } =
            ok("0000000000000001 mta connecting address=smtps://[2001:db8::7]:465 host=mx")
        else {
            panic!()
        };
        assert_eq!((ip, port), ("2001:db8::7".parse().ok(), Some(465)));
        let line = "5df87c9ffd0e785d mta delivery evpid=f6e94209918f7e7b from=<a@corp.example> to=<c@example.org> \
                    rcpt=<-> source=\"192.0.2.1\" relay=\"203.0.113.27 (mx.example.org)\" delay=2s result=\"Ok\" \
                    stat=\"250 2.0.0 \"OK\" result=\"PermFail\"\"";
        assert_eq!(
            ok(line),
            Record::Delivery {
                session: 0x5df87c9ffd0e785d,
                evpid: 0xf6e94209918f7e7b,
                from: b"a@corp.example",
                to: b"c@example.org",
                relay_ip: "203.0.113.27".parse().ok(),
                relay_host: b"mx.example.org",
                outcome: Outcome::Ok
            }
        );
        let Record::Delivery { relay_ip, outcome, .. } = ok(
            "0000000000000000 mta delivery evpid=f6e94209918f7e7b from=<a@corp.example> to=<c@example.org> rcpt=<-> \
             source=\"-\" relay=\"[relay:example.org]\" delay=1s result=\"TempFail\" stat=\"Network error on destination MXs\"",
        ) else {
            panic!()
        };
        assert_eq!((relay_ip, outcome), (None, Outcome::TempFail));
        assert_eq!(
            ok(
                "5df87c9250bba470 mda delivery evpid=c405e39ad6bbc64f from=<a@x> to=<b@y> rcpt=<b@y> user=b delay=0s result=Ok stat=Delivered"
            ),
            Record::LocalDelivery { session: 0x5df87c9250bba470, evpid: 0xc405e39ad6bbc64f, outcome: Outcome::Ok }
        );
        assert_eq!(
            ok("relay: Expire for c405e39ad6bbc64f: from=<a@x>, to=<b@y>, rcpt=<->, delay=4d, stat=Envelope expired"),
            Record::Expired { evpid: 0xc405e39ad6bbc64f }
        );
        assert_eq!(ok("info: OpenSMTPD 6.8.0p2 starting"), Record::Irrelevant);
    }

    #[test]
    fn reads_the_event_spelling_of_6_0() {
        assert_eq!(
            ok(
                "0123456789abcdef smtp event=starttls address=192.0.2.1 host=a ciphers=\"version=TLSv1.2, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256\""
            ),
            Record::Tls {
                session: 0x0123456789abcdef,
                side: Side::Smtp,
                version: TlsVersion::Tls1_2,
                cipher: b"ECDHE-RSA-AES256-GCM-SHA384"
            }
        );
        assert_eq!(
            ok("0123456789abcdef smtp event=message msgid=0a0b0c0d from=<a@x> to=<b@y> size=12 ndest=1 proto=ESMTP"),
            Record::Envelope {
                session: 0x0123456789abcdef,
                msgid: 0x0a0b0c0d,
                evpid: None,
                from: b"a@x",
                to: b"b@y",
                size: Some(12)
            }
        );
        let Record::Tls { version, .. } =
            ok("0123456789abcdef mta event=starttls ciphers=\"version=TLSv1/SSLv3, cipher=AES256-SHA, bits=256\"")
        else {
            panic!()
        };
        assert_eq!(version, TlsVersion::Unknown);
    }

    #[test]
    fn names_what_a_relevant_line_lacks() {
        for bad in [
            "5df87c903d709659 smtp connected address=300.1.1.1 host=x",
            "5df87c903d709659 smtp tls ciphers=TLSv9:X:1",
            "5df87c903d709659 smtp message msgid=zz size=1 nrcpt=1",
            "5df87c903d709659 smtp envelope evpid=c405e39a from=<a> to=<b>",
            "5df87c903d709659 mta connecting address=203.0.113.1 host=x",
            "5df87c903d709659 mta delivery evpid=f6e94209918f7e7b from=<a> to=<b> relay=\"x\" result=\"Maybe\"",
            "5df87c903d709659 mda delivery evpid=f6e94209918f7e7b result=",
            "relay: Expire for 12: x",
        ] {
            assert!(record(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
