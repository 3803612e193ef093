//! What one Postfix log message says, without context: the lines that matter for mail flow
//! and TLS, recognised by fixed prefixes over bytes (no regex, no allocation).
//!
//! Correlating the lines into messages is `correlate`'s job; this module only reads one.

use std::net::IpAddr;

use mailflow_core::{TlsVersion, Trust};
use memchr::memmem;

use crate::syslog::leading_number;

/// `memmem::find` with the searcher built once per needle, not per line.
macro_rules! find {
    ($haystack:expr, $needle:literal) => {{
        static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memmem::Finder::new($needle));
        FINDER.find($haystack)
    }};
}

/// The daemon that wrote a line: the last part of the syslog name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Smtpd,
    /// `smtp` or `lmtp`: the delivery agents that reach other hosts.
    Client,
    Qmgr,
    Cleanup,
    Tlsproxy,
    /// Postfix daemons whose lines never carry mail flow (postscreen, anvil, local, …).
    Other,
}

/// A syslog name split up: `postfix/submission/smtpd` → instance `postfix/submission`,
/// service `submission`, daemon smtpd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program<B> {
    /// The whole syslog name (`postfix/partner-out/smtp`): processes under one name share
    /// their TLS logging settings, so the log tells them as one.
    pub instance: B,
    /// The master.cf service when the syslog name carries one (`-o syslog_name=postfix/submission`),
    /// else the daemon's own name (`smtpd`, `smtp`).
    pub service: B,
    pub daemon: Daemon,
}

/// A Postfix syslog name whose daemon this collector does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownDaemon;

/// Splits a syslog tag when it belongs to Postfix. `Ok(None)`: another program (dovecot,
/// opendkim…).
pub fn program<'a>(
    tag: &'a [u8],
    is_postfix: &dyn Fn(&[u8]) -> bool,
) -> Result<Option<Program<&'a [u8]>>, UnknownDaemon> {
    let Some(slash) = memchr::memrchr(b'/', tag) else {
        return Ok(None);
    };
    let (instance, name) = (&tag[..slash], &tag[slash + 1..]);
    let first = instance.split(|&b| b == b'/').next().unwrap_or(instance);
    if !is_postfix(first) {
        return Ok(None);
    }
    let daemon = match name {
        b"smtpd" => Daemon::Smtpd,
        b"smtp" | b"lmtp" => Daemon::Client,
        // `postsuper -d` logs the removals it makes as qmgr does.
        b"qmgr" | b"oqmgr" | b"postsuper" => Daemon::Qmgr,
        b"cleanup" => Daemon::Cleanup,
        b"tlsproxy" => Daemon::Tlsproxy,
        b"postscreen" | b"dnsblog" | b"pickup" | b"bounce" | b"defer" | b"trace" | b"local" | b"virtual" | b"pipe"
        | b"error" | b"retry" | b"discard" | b"anvil" | b"scache" | b"tlsmgr" | b"verify" | b"proxymap"
        | b"proxywrite" | b"master" | b"postfix-script" | b"postlogd" | b"showq" | b"flush" | b"sendmail"
        | b"postdrop" | b"postqueue" | b"spawn" | b"qmqpd" | b"postmap" | b"postalias" | b"postmulti" | b"postlog"
        | b"postconf" | b"smtp-sink" | b"smtp-source" => Daemon::Other,
        _ => return Err(UnknownDaemon),
    };
    let service = match memchr::memrchr(b'/', instance) {
        Some(i) => &instance[i + 1..],
        None => name,
    };
    Ok(Some(Program { instance: tag, service, daemon }))
}

/// A host as Postfix prints it: `name[address]` and, for servers, `:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<B> {
    pub host: B,
    /// `None` when the brackets hold no IP address (`private/dovecot-lmtp`, a unix socket).
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
}

/// Reads `host[address]` or `host[address]:port` at the start of `text`; returns what follows.
pub fn endpoint(text: &[u8]) -> Option<(Endpoint<&[u8]>, &[u8])> {
    let open = memchr::memchr(b'[', text)?;
    let close = memchr::memchr(b']', &text[open..])? + open;
    let host = &text[..open];
    let ip = std::str::from_utf8(&text[open + 1..close]).ok().and_then(|s| s.parse().ok());
    let mut rest = &text[close + 1..];
    let mut port = None;
    if let Some(after) = rest.strip_prefix(b":")
        && after.first().is_some_and(u8::is_ascii_digit)
    {
        let (number, after) = leading_number(after);
        port = number.and_then(|p| u16::try_from(p).ok());
        rest = after;
    }
    Some((Endpoint { host, ip, port }, rest))
}

/// `Trusted TLS connection established to host[ip]:25: TLSv1.3 with cipher X (256/256 bits)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsLine<B> {
    pub peer: Endpoint<B>,
    pub trust: Option<Trust>,
    pub version: TlsVersion,
    pub cipher: B,
    /// `to` (smtp, lmtp, tlsproxy as a client) or `from` (smtpd, postscreen's tlsproxy).
    pub outgoing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay<B> {
    /// `relay=none`: no server was reached (DNS failure, connection refused).
    None,
    /// A host reached over the network.
    Remote(Endpoint<B>),
    /// A mailbox, a pipe, a unix socket: not another host.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeliveryStatus {
    Sent,
    Deferred,
    Bounced,
    Expired,
    /// `deliverable` / `undeliverable`: an address verification probe, not mail.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<B> {
    pub to: B,
    pub relay: Relay<B>,
    /// Postfix ≥ 3.11: `tls=<level>[:<downgrade>]`.
    pub tls_field: Option<B>,
    pub status: DeliveryStatus,
}

/// One Postfix line, as far as mail flow is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<B> {
    /// smtpd: `connect from host[ip]`.
    Connect,
    /// smtpd: `disconnect from host[ip] ehlo=1 starttls=1 … commands=7`; `None` when the
    /// line has no command counts (Postfix before 3.0).
    Disconnect {
        starttls: Option<bool>,
    },
    Tls(TlsLine<B>),
    /// smtpd: `QUEUEID: client=host[ip]…`.
    Client {
        qid: B,
        client: Endpoint<B>,
    },
    /// cleanup: `QUEUEID: message-id=<…>`.
    MessageId {
        qid: B,
        message_id: B,
    },
    /// cleanup: the message was rejected or discarded before it was queued.
    Dropped {
        qid: B,
    },
    /// qmgr: `QUEUEID: from=<…>, size=N, nrcpt=N (queue active)`.
    Queued {
        qid: B,
        sender: B,
        size: Option<u64>,
        nrcpt: Option<u32>,
    },
    /// qmgr: `QUEUEID: from=<…>, status=expired, returned to sender`.
    Expired {
        qid: B,
    },
    /// qmgr: `QUEUEID: removed`.
    Removed {
        qid: B,
    },
    /// smtp/lmtp: `QUEUEID: to=<…>, relay=…, status=…`.
    Delivery {
        qid: B,
        delivery: Delivery<B>,
    },
    /// tlsproxy (for smtp with connection reuse): `DISCONNECT [ip]:port`.
    ProxyDisconnect {
        peer: Endpoint<B>,
    },
    /// A line that says nothing about mail flow.
    Irrelevant,
}

/// A byte range of a buffer: a line parsed on one thread, used on another (see `lib.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// Where `part`, a slice of `whole`, lies once `whole` is copied into a buffer at `at`.
    /// Parsers only ever return slices of their input; anything else becomes empty.
    pub fn of(part: &[u8], whole: &[u8], at: usize) -> Span {
        let offset = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        match offset.checked_add(part.len()) {
            Some(end) if end <= whole.len() => Span { start: (at + offset) as u32, len: part.len() as u32 },
            _ => Span { start: at as u32, len: 0 },
        }
    }

    pub fn get(self, buffer: &[u8]) -> &[u8] {
        buffer.get(self.start as usize..(self.start + self.len) as usize).unwrap_or_default()
    }
}

// Moving parsed lines between threads: every byte slice becomes a `Span` and back.
impl<B> Program<B> {
    pub fn map<C>(self, f: &mut impl FnMut(B) -> C) -> Program<C> {
        Program { instance: f(self.instance), service: f(self.service), daemon: self.daemon }
    }
}

impl<B> Endpoint<B> {
    fn map<C>(self, f: &mut impl FnMut(B) -> C) -> Endpoint<C> {
        Endpoint { host: f(self.host), ip: self.ip, port: self.port }
    }
}

impl<B> Record<B> {
    pub fn map<C>(self, f: &mut impl FnMut(B) -> C) -> Record<C> {
        match self {
            Record::Connect => Record::Connect,
            Record::Disconnect { starttls } => Record::Disconnect { starttls },
            Record::Tls(t) => Record::Tls(TlsLine {
                peer: t.peer.map(f),
                trust: t.trust,
                version: t.version,
                cipher: f(t.cipher),
                outgoing: t.outgoing,
            }),
            Record::Client { qid, client } => Record::Client { qid: f(qid), client: client.map(f) },
            Record::MessageId { qid, message_id } => Record::MessageId { qid: f(qid), message_id: f(message_id) },
            Record::Dropped { qid } => Record::Dropped { qid: f(qid) },
            Record::Queued { qid, sender, size, nrcpt } => {
                Record::Queued { qid: f(qid), sender: f(sender), size, nrcpt }
            }
            Record::Expired { qid } => Record::Expired { qid: f(qid) },
            Record::Removed { qid } => Record::Removed { qid: f(qid) },
            Record::Delivery { qid, delivery } => Record::Delivery {
                qid: f(qid),
                delivery: Delivery {
                    to: f(delivery.to),
                    relay: match delivery.relay {
                        Relay::None => Relay::None,
                        Relay::Local => Relay::Local,
                        Relay::Remote(peer) => Relay::Remote(peer.map(f)),
                    },
                    tls_field: delivery.tls_field.map(&mut *f),
                    status: delivery.status,
                },
            },
            Record::ProxyDisconnect { peer } => Record::ProxyDisconnect { peer: peer.map(f) },
            Record::Irrelevant => Record::Irrelevant,
        }
    }
}

/// Reads one message of a Postfix daemon. `Err` says what a line that looked relevant lacked.
pub fn record(daemon: Daemon, message: &[u8]) -> Result<Record<&[u8]>, &'static str> {
    match daemon {
        Daemon::Smtpd => smtpd(message),
        Daemon::Client => client(message),
        Daemon::Qmgr => qmgr(message),
        Daemon::Cleanup => cleanup(message),
        Daemon::Tlsproxy => tlsproxy(message),
        Daemon::Other => Ok(Record::Irrelevant),
    }
}

fn smtpd(message: &[u8]) -> Result<Record<&[u8]>, &'static str> {
    if message.starts_with(b"connect from ") {
        return Ok(Record::Connect);
    }
    if let Some(rest) = message.strip_prefix(b"disconnect from ") {
        return Ok(Record::Disconnect { starttls: starttls_used(rest) });
    }
    if let Some(tls) = tls_line(message) {
        return tls.map(Record::Tls);
    }
    if let Some((qid, rest)) = queue_id(message)
        && let Some(rest) = rest.strip_prefix(b"client=")
    {
        let (client, _) = endpoint(rest).ok_or("client=host[address]")?;
        return Ok(Record::Client { qid, client });
    }
    Ok(Record::Irrelevant)
}

/// `… ehlo=2 starttls=1 mail=1 … commands=7`: `starttls=N` or `starttls=N/M` (N succeeded).
fn starttls_used(rest: &[u8]) -> Option<bool> {
    find!(rest, b" commands=")?;
    let Some(at) = find!(rest, b" starttls=") else {
        return Some(false);
    };
    Some(leading_number(&rest[at + 10..]).0.is_some_and(|ok| ok > 0))
}

fn client(message: &[u8]) -> Result<Record<&[u8]>, &'static str> {
    if let Some(tls) = tls_line(message) {
        return tls.map(Record::Tls);
    }
    let Some((qid, rest)) = queue_id(message) else {
        return Ok(Record::Irrelevant);
    };
    let Some(rest) = rest.strip_prefix(b"to=<") else {
        return Ok(Record::Irrelevant);
    };
    const WANT: &str = "a delivery line: to=<…>, relay=…, …, status=…";
    // One pass over `to=<a>, [orig_to=<b>, ]relay=…, [conn_use=N, ]delay=…, …, [tls=…, ]dsn=…,
    // status=… (text)`: `status` comes last and its text may hold anything.
    let to_end = find!(rest, b">, ").ok_or(WANT)?;
    let to = &rest[..to_end];
    let mut rest = &rest[to_end + 1..];
    let (mut relay, mut tls_field, mut status) = (None, None, None);
    while let Some(field) = rest.strip_prefix(b", ") {
        let eq = memchr::memchr(b'=', field).ok_or(WANT)?;
        let (key, value) = (&field[..eq], &field[eq + 1..]);
        if key == b"status" {
            status = Some(value);
            break;
        }
        // orig_to=<…> may hold ", " inside its brackets.
        let end = if value.first() == Some(&b'<') {
            find!(value, b">, ").map_or(value.len(), |i| i + 1)
        } else {
            memchr::memchr(b',', value).unwrap_or(value.len())
        };
        match key {
            b"relay" => relay = Some(value),
            b"tls" => tls_field = Some(&value[..end]),
            _ => {}
        }
        rest = &value[end..];
    }
    let (relay, status) = (relay.ok_or(WANT)?, status.ok_or(WANT)?);
    let relay = if relay.starts_with(b"none,") {
        Relay::None
    } else {
        match endpoint(relay) {
            Some((peer, after)) if peer.ip.is_some() && after.starts_with(b",") => Relay::Remote(peer),
            _ => Relay::Local,
        }
    };
    let status = if status.starts_with(b"sent") {
        DeliveryStatus::Sent
    } else if status.starts_with(b"deferred") || status.starts_with(b"SOFTBOUNCE") {
        DeliveryStatus::Deferred
    } else if status.starts_with(b"bounced") {
        DeliveryStatus::Bounced
    } else if status.starts_with(b"expired") {
        DeliveryStatus::Expired
    } else if status.starts_with(b"deliverable") || status.starts_with(b"undeliverable") {
        DeliveryStatus::Probe
    } else {
        return Err("status=sent, deferred, bounced or expired");
    };
    Ok(Record::Delivery { qid, delivery: Delivery { to, relay, tls_field, status } })
}

fn qmgr(message: &[u8]) -> Result<Record<&[u8]>, &'static str> {
    let Some((qid, rest)) = queue_id(message) else {
        return Ok(Record::Irrelevant);
    };
    if rest == b"removed" {
        return Ok(Record::Removed { qid });
    }
    let Some(rest) = rest.strip_prefix(b"from=<") else {
        return Ok(Record::Irrelevant);
    };
    if let Some(end) = find!(rest, b">, size=") {
        let fields = &rest[end + 8..];
        let size = leading_number(fields).0;
        let nrcpt = find!(fields, b", nrcpt=").and_then(|at| leading_number(&fields[at + 8..]).0);
        let nrcpt = nrcpt.and_then(|v| u32::try_from(v).ok());
        return Ok(Record::Queued { qid, sender: &rest[..end], size, nrcpt });
    }
    // `postsuper -e` logs `status=force-expired`.
    if find!(rest, b">, status=expired").or_else(|| find!(rest, b">, status=force-expired")).is_some() {
        return Ok(Record::Expired { qid });
    }
    Err("from=<…>, size=N, nrcpt=N or from=<…>, status=expired")
}

fn cleanup(message: &[u8]) -> Result<Record<&[u8]>, &'static str> {
    let Some((qid, rest)) = queue_id(message) else {
        return Ok(Record::Irrelevant);
    };
    if let Some(rest) = rest.strip_prefix(b"message-id=") {
        let id = rest.split(|&b| b == b' ').next().unwrap_or(rest);
        return Ok(Record::MessageId { qid, message_id: id });
    }
    // header_checks / body_checks / milters: `reject:`, `milter-reject:`, `discard:`.
    if rest.starts_with(b"reject:")
        || rest.starts_with(b"milter-reject:")
        || rest.starts_with(b"discard:")
        || rest.starts_with(b"milter-discard:")
    {
        return Ok(Record::Dropped { qid });
    }
    Ok(Record::Irrelevant)
}

fn tlsproxy(message: &[u8]) -> Result<Record<&[u8]>, &'static str> {
    if let Some(tls) = tls_line(message) {
        return tls.map(Record::Tls);
    }
    if let Some(rest) = message.strip_prefix(b"DISCONNECT ") {
        let (peer, _) = endpoint(rest).ok_or("DISCONNECT [address]:port")?;
        return Ok(Record::ProxyDisconnect { peer });
    }
    Ok(Record::Irrelevant)
}

/// `[Anonymous|Untrusted|Trusted|Verified ]TLS connection (established|reused) (to|from) …`.
/// `None` when the line is no TLS line at all.
fn tls_line(message: &[u8]) -> Option<Result<TlsLine<&[u8]>, &'static str>> {
    const WANT: &str = "TLS connection established to|from host[address]: TLSvN with cipher …";
    let (trust, rest) = match message.first()? {
        b'A' => (Some(Trust::Anonymous), message.strip_prefix(b"Anonymous ")?),
        b'U' => (Some(Trust::Untrusted), message.strip_prefix(b"Untrusted ")?),
        b'T' if message.starts_with(b"Trusted ") => (Some(Trust::Trusted), &message[8..]),
        b'T' => (None, message),
        b'V' => (Some(Trust::Verified), message.strip_prefix(b"Verified ")?),
        _ => return None,
    };
    let rest = rest.strip_prefix(b"TLS connection ")?;
    let rest = rest.strip_prefix(b"established ").or_else(|| rest.strip_prefix(b"reused "))?;
    let (outgoing, rest) = match (rest.strip_prefix(b"to "), rest.strip_prefix(b"from ")) {
        (Some(rest), _) => (true, rest),
        (_, Some(rest)) => (false, rest),
        _ => return Some(Err(WANT)),
    };
    let parsed = (|| {
        let (peer, rest) = endpoint(rest)?;
        let rest = rest.strip_prefix(b": ")?;
        let (version, rest) = rest.split_at(memchr::memchr(b' ', rest)?);
        let version = TlsVersion::from_protocol(std::str::from_utf8(version).ok()?)?;
        let cipher = rest.strip_prefix(b" with cipher ").unwrap_or(&rest[..0]);
        let cipher = &cipher[..memchr::memchr(b' ', cipher).unwrap_or(cipher.len())];
        Some(TlsLine { peer, trust, version, cipher, outgoing })
    })();
    Some(parsed.ok_or(WANT))
}

/// `QUEUEID: rest`: short (hex) and long (base-52 with a `z`-less alphabet) queue ids.
fn queue_id(message: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = message.iter().take(24).position(|&b| b == b':')?;
    let qid = &message[..end];
    // All lowercase is a word (`warning:`, `statistics:`), never a queue id.
    if end < 5
        || !qid.iter().all(u8::is_ascii_alphanumeric)
        || qid.iter().all(u8::is_ascii_lowercase)
        || qid == b"NOQUEUE"
    {
        return None;
    }
    Some((qid, message[end + 1..].strip_prefix(b" ")?))
}

/// What `tls=<level>[:<downgrade>]` (Postfix ≥ 3.11) says: `Some(false)` plaintext,
/// `Some(true)` TLS for sure, `None` when it does not decide (`may`: TLS if offered).
pub fn tls_field_says(field: &[u8]) -> Option<bool> {
    let field = &field[..field.iter().position(|&b| b == b'/').unwrap_or(field.len())];
    // `?`: the policy was not decided yet, e.g. the connection failed before STARTTLS.
    if field.ends_with(b"?") {
        return None;
    }
    let effective = field.rsplit(|&b| b == b':').next().unwrap_or(field);
    match effective {
        b"none" => Some(false),
        b"encrypt" | b"dane" | b"dane-only" | b"halfdane" | b"fingerprint" | b"verify" | b"secure" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_postfix(name: &[u8]) -> bool {
        name.starts_with(b"postfix")
    }

    #[test]
    fn syslog_names_give_instance_service_and_daemon() {
        let p = program(b"postfix/submission/smtpd", &is_postfix).unwrap().unwrap();
        assert_eq!(
            (p.instance, p.service, p.daemon),
            (&b"postfix/submission/smtpd"[..], &b"submission"[..], Daemon::Smtpd)
        );
        let p = program(b"postfix-out/smtp", &is_postfix).unwrap().unwrap();
        assert_eq!((p.instance, p.service, p.daemon), (&b"postfix-out/smtp"[..], &b"smtp"[..], Daemon::Client));
        let p = program(b"postfix/partner-out/smtp", &is_postfix).unwrap().unwrap();
        assert_eq!(p.service, b"partner-out");
        assert_eq!(program(b"dovecot", &is_postfix), Ok(None));
        assert_eq!(program(b"amavis/x", &is_postfix), Ok(None));
        assert_eq!(program(b"postfix/frobnicate", &is_postfix), Err(UnknownDaemon));
    }

    #[test]
    fn reads_tls_lines_of_every_daemon() {
        let r = record(Daemon::Smtpd, b"Anonymous TLS connection established from unknown[192.0.2.9]: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)").unwrap();
        let Record::Tls(tls) = r else { panic!("{r:?}") };
        assert_eq!(
            (tls.trust, tls.version, tls.cipher, tls.outgoing),
            (Some(Trust::Anonymous), TlsVersion::Tls1_2, &b"ECDHE-RSA-AES256-GCM-SHA384"[..], false)
        );
        let r = record(Daemon::Client, b"Verified TLS connection reused to mx.example.net[2001:db8::25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)").unwrap();
        let Record::Tls(tls) = r else { panic!("{r:?}") };
        assert_eq!(
            (tls.peer.ip, tls.peer.port, tls.trust),
            ("2001:db8::25".parse().ok(), Some(25), Some(Trust::Verified))
        );
        let r = record(
            Daemon::Smtpd,
            b"TLS connection established from x[192.0.2.1]: TLSv1 with cipher DHE-RSA-AES256-SHA (256/256 bits)",
        )
        .unwrap();
        assert!(matches!(r, Record::Tls(TlsLine { trust: None, version: TlsVersion::Tls1_0, .. })));
        assert!(
            record(Daemon::Smtpd, b"Anonymous TLS connection established from x[192.0.2.1]: TLSv9 with cipher")
                .is_err()
        );
    }

    #[test]
    fn reads_delivery_lines() {
        let line = b"4Bx2Lk0qzRz9vL: to=<a@example.net>, orig_to=<b@corp.test>, relay=mx.example.net[192.0.2.7]:25, conn_use=2, delay=1.2, delays=0.1/0/0.5/0.6, tls=may:none, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X, status=bounced)";
        let Record::Delivery { qid, delivery } = record(Daemon::Client, line).unwrap() else { panic!() };
        assert_eq!(
            (qid, delivery.to, delivery.status),
            (&b"4Bx2Lk0qzRz9vL"[..], &b"a@example.net"[..], DeliveryStatus::Sent)
        );
        assert_eq!(delivery.tls_field, Some(&b"may:none"[..]));
        let Relay::Remote(peer) = delivery.relay else { panic!() };
        assert_eq!((peer.host, peer.port), (&b"mx.example.net"[..], Some(25)));
        let lmtp = b"ABCDEF123: to=<u@corp.test>, relay=mail.corp.test[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Saved)";
        assert!(matches!(
            record(Daemon::Client, lmtp),
            Ok(Record::Delivery { delivery: Delivery { relay: Relay::Local, .. }, .. })
        ));
        let none = b"ABCDEF123: to=<u@x.test>, relay=none, delay=30, delays=30/0/0/0, dsn=4.4.1, status=deferred (connect to x.test[192.0.2.1]:25: Connection refused)";
        assert!(matches!(
            record(Daemon::Client, none),
            Ok(Record::Delivery {
                delivery: Delivery { relay: Relay::None, status: DeliveryStatus::Deferred, .. },
                ..
            })
        ));
        assert!(record(Daemon::Client, b"ABCDEF123: to=<u@x.test>, delay=1").is_err());
        assert_eq!(
            record(Daemon::Client, b"ABCDEF123: breaking line > 998 bytes with <CR><LF>SPACE"),
            Ok(Record::Irrelevant)
        );
    }

    #[test]
    fn reads_queue_manager_lines() {
        assert_eq!(
            record(Daemon::Qmgr, b"ABCDEF123: from=<a, b@x.test>, size=1234, nrcpt=2 (queue active)"),
            Ok(Record::Queued {
                qid: &b"ABCDEF123"[..],
                sender: &b"a, b@x.test"[..],
                size: Some(1234),
                nrcpt: Some(2)
            })
        );
        assert_eq!(record(Daemon::Qmgr, b"ABCDEF123: removed"), Ok(Record::Removed { qid: &b"ABCDEF123"[..] }));
        assert_eq!(
            record(Daemon::Qmgr, b"ABCDEF123: from=<a@x.test>, status=expired, returned to sender"),
            Ok(Record::Expired { qid: &b"ABCDEF123"[..] })
        );
    }

    #[test]
    fn smtpd_disconnect_tells_whether_starttls_was_used() {
        let used = |s: &[u8]| match smtpd(s) {
            Ok(Record::Disconnect { starttls }) => starttls,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            used(b"disconnect from x[192.0.2.1] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7"),
            Some(true)
        );
        assert_eq!(used(b"disconnect from x[192.0.2.1] ehlo=1 starttls=0/1 commands=1/2"), Some(false));
        assert_eq!(used(b"disconnect from x[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"), Some(false));
        assert_eq!(used(b"disconnect from x[192.0.2.1]"), None);
    }

    #[test]
    fn tls_field_levels() {
        assert_eq!(tls_field_says(b"may:none"), Some(false));
        assert_eq!(tls_field_says(b"none"), Some(false));
        assert_eq!(tls_field_says(b"dane"), Some(true));
        assert_eq!(tls_field_says(b"dane:encrypt"), Some(true));
        assert_eq!(tls_field_says(b"dane/!requiretls:nocertmatch"), Some(true));
        assert_eq!(tls_field_says(b"may?"), None);
        assert_eq!(tls_field_says(b"dane?"), None);
        assert_eq!(tls_field_says(b"may"), None);
    }
}
