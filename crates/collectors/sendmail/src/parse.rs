//! One Sendmail message (what follows the syslog header) → a [`Record`].
//!
//! Sendmail writes `key=value` lists separated by `, `, where values may hold spaces and commas
//! (`relay=host [ip] (may be forged)`, `reply=451 4.7.1 Try again, later`): a value ends only
//! where `, ` is followed by a word and `=`, and `stat=` (always last) takes the rest of the
//! line. Everything is read by hand over bytes, borrowing from the line.

use std::net::IpAddr;

/// Which end of an SMTP session a `STARTTLS=` line speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This server, receiving (`STARTTLS=server`).
    Server,
    /// This server, delivering (`STARTTLS=client`).
    Client,
}

/// A `relay=` value: `host [ip]`, `[ip]`, `host.`, `user@host [ip] (may be forged)`, `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Relay<'a> {
    /// Without an ident `user@`, the trailing dot or brackets; `None` for a bare `[ip]`.
    pub host: Option<&'a [u8]>,
    pub ip: Option<IpAddr>,
}

/// What one line says, as far as counting needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// Nothing to count: daemon start, connects, `AUTH=`, `ruleset=check_rcpt` rejections…
    Irrelevant,
    /// `STARTTLS=server|client, relay=…, version=…, verify=…, cipher=…, bits=…`.
    Tls {
        side: Side,
        qid: Option<&'a [u8]>,
        relay: Relay<'a>,
        version: Option<mailflow_core::TlsVersion>,
        verify: &'a [u8],
        cipher: &'a [u8],
    },
    /// `STARTTLS=client, error: …`: the handshake failed, the connection goes on without TLS.
    TlsFailed { side: Side },
    /// `QID: from=<…>, size=N, class=N, nrcpts=N, msgid=<…>, proto=…, daemon=…, relay=…`.
    From(From<'a>),
    /// `QID: to=<…>, …, mailer=…, …, relay=…, dsn=…, stat=…`.
    To(To<'a>),
    /// `QID: NEWQID: DSN: …` (and `postmaster notify:`, `return to sender:`, `clone:`): a
    /// message this server made from `qid`.
    Derived { qid: &'a [u8], new: &'a [u8], kind: Derived },
    /// `QID: Milter: data, reject=…`, `ruleset=check_eom …, reject=…`, `collect: unexpected close
    /// …`: the message of `qid` was refused, after its `from=` line or (a broken DATA) before it.
    Refused { qid: &'a [u8] },
    /// `QID: done; delay=…, ntries=…` (LogLevel 10 and up): the message left the queue.
    Done { qid: &'a [u8] },
}

/// How a message made here relates to the one it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// A delivery status notification (bounce, delay warning, postmaster copy).
    Dsn,
    /// `Cannot send message for …`: the original expired; its deferred deliveries failed.
    Expired,
    /// An envelope split off for an owner- list; it carries the same message.
    Clone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From<'a> {
    pub qid: &'a [u8],
    /// Without the angle brackets; empty for the null sender `<>`.
    pub sender: &'a [u8],
    pub size: u64,
    pub nrcpts: u32,
    pub msgid: Option<&'a [u8]>,
    pub proto: Option<&'a [u8]>,
    pub daemon: Option<&'a [u8]>,
    pub relay: Option<Relay<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct To<'a> {
    pub qid: &'a [u8],
    /// The recipient list as logged: `<a@x>,<b@y>`, `root`, `"|/usr/bin/procmail"`.
    pub to: &'a [u8],
    pub mailer: Option<&'a [u8]>,
    pub relay: Option<Relay<'a>>,
    pub status: Status,
}

/// What a `to=` line's `dsn=` and `stat=` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    Sent,
    Deferred,
    Failed,
    /// `stat=queued` and the like: no attempt was made yet.
    Queued,
}

/// Reads one message; `Err` names what a line of a relevant kind lacks.
pub fn record(message: &[u8]) -> Result<Record<'_>, &'static str> {
    if let Some(rest) = message.strip_prefix(b"STARTTLS") {
        return starttls(rest, None);
    }
    let Some((qid, rest)) = queue_id(message) else { return Ok(Record::Irrelevant) };
    match rest.first() {
        Some(b'f') if rest.starts_with(b"from=") => from(qid, rest).map(Record::From),
        Some(b't') if rest.starts_with(b"to=") => to(qid, rest).map(Record::To),
        Some(b'S') if rest.starts_with(b"STARTTLS") => starttls(&rest[8..], Some(qid)),
        Some(b'd') if rest.starts_with(b"done; ") => Ok(Record::Done { qid }),
        Some(b'M') if rest.starts_with(b"Milter") => Ok(milter(qid, rest)),
        Some(b'r') if rest.starts_with(b"ruleset=check_eom") || rest.starts_with(b"ruleset=check_data") => {
            Ok(if find(rest, b", reject=").is_some() { Record::Refused { qid } } else { Record::Irrelevant })
        }
        Some(b'c') if rest.starts_with(b"collect: ") => Ok(Record::Refused { qid }),
        _ => Ok(derived(qid, rest)),
    }
}

/// `QID: ` at the start of a message: 6 to 20 letters and digits (`6B4MfLQ1018751`), not
/// `NOQUEUE`.
fn queue_id(message: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = message.iter().take(21).take_while(|b| b.is_ascii_alphanumeric()).count();
    let rest = message[n..].strip_prefix(b": ")?;
    let qid = &message[..n];
    ((6..=20).contains(&n) && qid != b"NOQUEUE").then_some((qid, rest))
}

/// After `STARTTLS`: `=server, relay=…`, `=client, error: …`, `=read, …`, `: …`.
fn starttls<'a>(rest: &'a [u8], qid: Option<&'a [u8]>) -> Result<Record<'a>, &'static str> {
    const WANT: &str = "STARTTLS=server|client, relay=…, version=…, verify=…, cipher=…";
    let side = if let Some(rest) = rest.strip_prefix(b"=server, ") {
        (Side::Server, rest)
    } else if let Some(rest) = rest.strip_prefix(b"=client, ") {
        (Side::Client, rest)
    } else {
        return Ok(Record::Irrelevant);
    };
    let (side, rest) = side;
    if rest.starts_with(b"error:") {
        return Ok(Record::TlsFailed { side });
    }
    if !rest.starts_with(b"relay=") {
        // cert-subject=…, Diffie-Hellman init, …
        return Ok(Record::Irrelevant);
    }
    let (mut relay, mut version, mut verify, mut cipher) = (None, None, None, None);
    for (key, value) in Fields::new(rest) {
        match key {
            b"relay" => relay = Some(value),
            b"version" => version = Some(value),
            b"verify" => verify = Some(value),
            b"cipher" => cipher = Some(value),
            _ => {}
        }
    }
    let (Some(relay), Some(version), Some(verify), Some(cipher)) = (relay, version, verify, cipher) else {
        return Err(WANT);
    };
    let version = tls_version(version);
    if version.is_none() {
        return Err("a TLS version like version=TLSv1.3 in STARTTLS=…");
    }
    Ok(Record::Tls { side, qid, relay: parse_relay(relay), version, verify, cipher })
}

/// `version=` of a STARTTLS line: OpenSSL's names without allocating, others through the core.
fn tls_version(name: &[u8]) -> Option<mailflow_core::TlsVersion> {
    use mailflow_core::TlsVersion;
    match name {
        b"TLSv1.3" => Some(TlsVersion::Tls1_3),
        b"TLSv1.2" => Some(TlsVersion::Tls1_2),
        b"TLSv1.1" => Some(TlsVersion::Tls1_1),
        b"TLSv1" => Some(TlsVersion::Tls1_0),
        _ => std::str::from_utf8(name).ok().and_then(TlsVersion::from_protocol),
    }
}

fn from<'a>(qid: &'a [u8], rest: &'a [u8]) -> Result<From<'a>, &'static str> {
    const WANT: &str = "QID: from=<…>, size=N, class=N, nrcpts=N, …";
    let mut line = From { qid, sender: b"", size: 0, nrcpts: 0, msgid: None, proto: None, daemon: None, relay: None };
    let (mut size, mut nrcpts) = (None, None);
    for (key, value) in Fields::new(rest) {
        match key {
            b"from" => line.sender = angle(value),
            b"size" => size = number(value),
            b"nrcpts" => nrcpts = number(value).and_then(|n| u32::try_from(n).ok()),
            b"msgid" => line.msgid = Some(value),
            b"proto" => line.proto = Some(value),
            b"daemon" => line.daemon = Some(value),
            b"relay" => line.relay = Some(parse_relay(value)),
            _ => {}
        }
    }
    (line.size, line.nrcpts) = (size.ok_or(WANT)?, nrcpts.ok_or(WANT)?);
    Ok(line)
}

fn to<'a>(qid: &'a [u8], rest: &'a [u8]) -> Result<To<'a>, &'static str> {
    const WANT: &str = "QID: to=<…>, …, stat=…";
    let (mut to, mut mailer, mut relay, mut dsn, mut stat) = (None, None, None, None, None);
    for (key, value) in Fields::new(rest) {
        match key {
            b"to" => to = Some(value),
            b"mailer" => mailer = Some(value),
            b"relay" => relay = Some(parse_relay(value)),
            b"dsn" => dsn = Some(value),
            b"stat" => stat = Some(value),
            _ => {}
        }
    }
    let (Some(to), Some(stat)) = (to, stat) else { return Err(WANT) };
    if to.is_empty() {
        return Err(WANT);
    }
    Ok(To { qid, to, mailer, relay, status: status(dsn, stat) })
}

/// `dsn=2.x.x` sent, `4.x.x` deferred, `5.x.x` failed; without one, the `stat=` text.
fn status(dsn: Option<&[u8]>, stat: &[u8]) -> Status {
    if stat.starts_with(b"queued") || stat.starts_with(b"quarantined") {
        return Status::Queued;
    }
    match dsn.and_then(|d| d.first()) {
        Some(b'2') => Status::Sent,
        Some(b'4') => Status::Deferred,
        Some(b'5') => Status::Failed,
        _ if stat.starts_with(b"Sent") => Status::Sent,
        _ if stat.starts_with(b"Deferred") => Status::Deferred,
        _ => Status::Failed,
    }
}

/// `Milter: data, reject=…`, `Milter: data, discard`, `Milter: cmd=data, reject=…`: refused
/// after its `from=` line. Other milter lines (`Milter accept: message`, `Milter add: …`,
/// rejections at MAIL or RCPT, which come before any `from=`) change nothing.
fn milter<'a>(qid: &'a [u8], rest: &'a [u8]) -> Record<'a> {
    let Some(rest) = rest.strip_prefix(b"Milter: ") else { return Record::Irrelevant };
    let rest = rest.strip_prefix(b"cmd=").unwrap_or(rest);
    match rest.strip_prefix(b"data, ") {
        Some(what) if what.starts_with(b"reject") || what.starts_with(b"discard") => Record::Refused { qid },
        _ => Record::Irrelevant,
    }
}

/// `QID: NEWQID: DSN: …`, `QID: NEWQID: postmaster notify: …`, `QID: NEWQID: clone: owner=…`.
fn derived<'a>(qid: &'a [u8], rest: &'a [u8]) -> Record<'a> {
    let Some((new, what)) = queue_id(rest) else { return Record::Irrelevant };
    let kind = if let Some(reason) = what.strip_prefix(b"DSN: ").or_else(|| what.strip_prefix(b"return to sender: ")) {
        if reason.starts_with(b"Cannot send message") { Derived::Expired } else { Derived::Dsn }
    } else if what.starts_with(b"postmaster notify: ")
        || what.starts_with(b"sender notify: ")
        || what.starts_with(b"Return receipt")
    {
        Derived::Dsn
    } else if what.starts_with(b"clone: ") {
        Derived::Clone
    } else {
        return Record::Irrelevant;
    };
    Record::Derived { qid, new, kind }
}

/// Parses a `relay=` value.
pub fn parse_relay(value: &[u8]) -> Relay<'_> {
    // "(may be forged)" and other remarks in parentheses.
    let value = match memchr::memchr(b'(', value) {
        Some(i) => value[..i].trim_ascii_end(),
        None => value,
    };
    let (head, tail) = match memchr::memchr(b' ', value) {
        Some(i) => (&value[..i], Some(&value[i + 1..])),
        None => (value, None),
    };
    let ip = tail.and_then(bracketed_ip);
    // An ident user in front of the host.
    let head = match memchr::memrchr(b'@', head) {
        Some(i) => &head[i + 1..],
        None => head,
    };
    if head.first() == Some(&b'[') {
        return match bracketed_ip(head) {
            Some(own) => Relay { host: None, ip: ip.or(Some(own)) },
            None => Relay { host: Some(trim_dot(head.trim_ascii_start())), ip },
        };
    }
    let host = trim_dot(head);
    Relay { host: (!host.is_empty()).then_some(host), ip }
}

/// `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
fn bracketed_ip(text: &[u8]) -> Option<IpAddr> {
    let inner = text.strip_prefix(b"[")?;
    let inner = &inner[..memchr::memchr(b']', inner)?];
    let inner = inner.strip_prefix(b"IPv6:").or_else(|| inner.strip_prefix(b"ipv6:")).unwrap_or(inner);
    std::str::from_utf8(inner).ok()?.parse().ok()
}

fn trim_dot(host: &[u8]) -> &[u8] {
    host.strip_suffix(b".").unwrap_or(host)
}

/// `<a@b>` → `a@b`.
fn angle(value: &[u8]) -> &[u8] {
    value.strip_prefix(b"<").and_then(|v| v.strip_suffix(b">")).unwrap_or(value)
}

fn number(value: &[u8]) -> Option<u64> {
    mailflow_component::syslog::digits(value)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The recipients of a `to=` list, `<a@x>,<b@y>`, split at commas outside `<>` and quotes.
pub fn recipients(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = list;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (mut depth, mut quoted) = (0u32, false);
        let mut end = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b'<' if !quoted => depth += 1,
                b'>' if !quoted => depth = depth.saturating_sub(1),
                b',' if !quoted && depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let item = angle(rest[..end].trim_ascii());
        rest = rest.get(end + 1..).unwrap_or_default();
        Some(item)
    })
    .filter(|r| !r.is_empty())
}

/// The domain of an address, lowercase by the caller; `None` for local names (`root`).
pub fn domain(address: &[u8]) -> Option<&[u8]> {
    let at = memchr::memrchr(b'@', address)?;
    let domain = &address[at + 1..];
    (!domain.is_empty()).then_some(domain)
}

/// `key=value` fields separated by `, `; see the module docs for where a value ends.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Fields { rest }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        let eq = memchr::memchr(b'=', rest)?;
        let key = &rest[..eq];
        if key.is_empty() || !key.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            self.rest = &[];
            return None;
        }
        let value = &rest[eq + 1..];
        if key == b"stat" {
            self.rest = &[];
            return Some((key, value));
        }
        let mut from = 0;
        while let Some(i) = memchr::memchr(b',', &value[from..]).map(|i| i + from) {
            let after = &value[i + 1..];
            if let Some(next) = after.strip_prefix(b" ")
                && is_key(next)
            {
                self.rest = next;
                return Some((key, &value[..i]));
            }
            from = i + 1;
        }
        self.rest = &[];
        Some((key, value))
    }
}

/// Whether `text` starts with `word=`.
fn is_key(text: &[u8]) -> bool {
    let n = text.iter().take(32).take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-').count();
    n > 0 && text.get(n) == Some(&b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailflow_core::TlsVersion;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn relays_in_every_spelling() {
        for (text, host, addr) in [
            ("[127.0.1.229]", None, ip("127.0.1.229")),
            ("mail.example.net [192.0.2.5] (may be forged)", Some(&b"mail.example.net"[..]), ip("192.0.2.5")),
            ("mx.legacy11.test. [127.0.3.11]", Some(b"mx.legacy11.test"), ip("127.0.3.11")),
            ("mx.legacy11.test.", Some(b"mx.legacy11.test"), None),
            ("root@localhost", Some(b"localhost"), None),
            ("user@mail.example.net [192.0.2.5]", Some(b"mail.example.net"), ip("192.0.2.5")),
            ("[IPv6:2001:db8::1]", None, ip("2001:db8::1")),
            ("mx.example. [IPv6:2001:db8::25]", Some(b"mx.example"), ip("2001:db8::25")),
            ("[192.0.2.9] [192.0.2.9]", None, ip("192.0.2.9")),
            ("local", Some(b"local"), None),
        ] {
            assert_eq!(parse_relay(text.as_bytes()), Relay { host, ip: addr }, "{text}");
        }
    }

    #[test]
    fn values_end_only_before_the_next_key() {
        let line = b"to=<a@x>,<b@y>, delay=00:00:00, mailer=esmtp, relay=mx.d. [192.0.2.4], dsn=4.3.0, reply=451 4.7.1 Service unavailable, try again later, stat=Deferred: 451 a, b=c";
        let fields: Vec<_> = Fields::new(line).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        let get = |k: &str| fields.iter().find(|(key, _)| key == k.as_bytes()).map(|(_, v)| v.as_slice());
        assert_eq!(get("to"), Some(&b"<a@x>,<b@y>"[..]));
        assert_eq!(get("reply"), Some(&b"451 4.7.1 Service unavailable, try again later"[..]));
        assert_eq!(get("stat"), Some(&b"Deferred: 451 a, b=c"[..]));
        assert_eq!(recipients(b"<a@x>,<\"b,c\"@y>, root").collect::<Vec<_>>(), [&b"a@x"[..], b"\"b,c\"@y", b"root"]);
    }

    #[test]
    fn lines_of_every_kind() {
        let tls = record(b"STARTTLS=client, relay=mx.legacy11.test., version=TLSv1.1, verify=FAIL, cipher=ECDHE-RSA-AES256-SHA, bits=256/256").unwrap();
        let Record::Tls { side, relay, version, verify, .. } = tls else { panic!("{tls:?}") };
        assert_eq!(
            (side, relay.host, version, verify),
            (Side::Client, Some(&b"mx.legacy11.test"[..]), Some(TlsVersion::Tls1_1), &b"FAIL"[..])
        );
        let old = record(b"STARTTLS=server, relay=[192.0.2.1], version=TLSv1/SSLv3, verify=NO, cipher=DHE-RSA-AES256-SHA, bits=256/256").unwrap();
        assert!(matches!(old, Record::Tls { version: Some(TlsVersion::Unknown), .. }), "{old:?}");
        let from = record(b"6B4MfLSB018774: from=<sender16@ext24.example>, size=1655, class=0, nrcpts=0, proto=ESMTPS, daemon=MTA-v4, relay=[127.0.2.55]").unwrap();
        assert!(matches!(from, Record::From(From { nrcpts: 0, size: 1655, .. })), "{from:?}");
        let to = record(b"6B4MfQks018870: to=<user49@reject.test>, delay=00:00:05, xdelay=00:00:05, mailer=esmtp, pri=61626, relay=mx.reject.test. [127.0.3.3], dsn=5.1.1, reply=550 5.1.1 <user49@reject.test>: Recipient address rejected: User unknown, stat=User unknown").unwrap();
        assert!(matches!(to, Record::To(To { status: Status::Failed, mailer: Some(b"esmtp"), .. })), "{to:?}");
        assert_eq!(
            record(b"6B4MfQks018870: 6B4MfVkr018896: postmaster notify: User unknown").unwrap(),
            Record::Derived { qid: b"6B4MfQks018870", new: b"6B4MfVkr018896", kind: Derived::Dsn }
        );
        assert_eq!(
            record(b"k876hJS0063495: Milter: data, reject=550 5.7.1 Blocked").unwrap(),
            Record::Refused { qid: b"k876hJS0063495" }
        );
        assert_eq!(record(b"NOQUEUE: connect from [127.0.2.115]").unwrap(), Record::Irrelevant);
        assert_eq!(
            record(b"STARTTLS=client, error: connect failed=-1, reason=unknown").unwrap(),
            Record::TlsFailed { side: Side::Client }
        );
        assert!(record(b"STARTTLS=server, relay=[192.0.2.1], version=TLSv9, verify=NO, cipher=X, bits=1/1").is_err());
        assert!(record(b"6B4MfQks018870: to=<a@b>, delay=1").is_err());
        assert!(record(b"6B4MfQks018870: from=<a@b>, what=1").is_err());
    }
}
