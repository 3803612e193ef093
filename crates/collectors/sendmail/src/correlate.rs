//! Joins Sendmail's lines into message events.
//!
//! Sendmail logs a message under its queue id: `from=` when it is accepted (by the process that
//! ran the SMTP session), one `to=` line per delivery attempt and group of recipients (by
//! whichever process delivered: the session's own, a forked child, a queue runner). TLS is logged
//! per connection, without a queue id, by the process that made it: `STARTTLS=server` in the
//! session before the `from=` lines of its messages, `STARTTLS=client` just before the `to=`
//! lines of a delivery. So this module keeps, per (host, pid), the last server session and the
//! client sessions by relay host, and per (host, queue id) the message:
//!
//! - inbound: at `from=` with a remote relay; its TLS is the session's when `proto=` says
//!   STARTTLS was used (`ESMTPS`, `ESMTPSA`), plaintext otherwise. It waits [`HOLD`] for a
//!   refusal after the `from=` line (`Milter: data, reject=`, `ruleset=check_eom`), which
//!   drops it;
//! - outbound: one event per message and relay address, once every recipient that went there
//!   has a final status and the attempt has settled ([`HOLD`]), or when the message leaves the
//!   queue (`done`), expires, or the log ends. A recipient deferred at one relay and delivered
//!   at another leaves the first; a relay left without recipients counts nothing.
//!
//! Sendmail logs no line when a message leaves the queue below LogLevel 10, so a message with
//! nothing pending is forgotten [`KEEP`] after its last line; one with deferred recipients is
//! kept up to `message_ttl` (then counted as deferred). Processes are forgotten after an hour
//! without a line, and hard caps finish the oldest entries early; each is counted.

use mailflow_component::logs::{Loc, evidence, tenth_oldest, utc_micros};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use foldhash::HashMap;
use ipnet::IpNet;
use mailflow_component::Emitter;
use mailflow_core::{Direction, MessageEvent, Peer, Status as EventStatus, Tls, TlsVersion, Trust, fnv1a_ignore_case};
use serde::{Deserialize, Serialize};

use crate::parse::{self, Derived, Record, Relay, Side, Status};

type Micros = i64;
const SECOND: Micros = 1_000_000;
const HOUR: Micros = 3_600 * SECOND;
/// How long an accepted message may still be refused (milter, end-of-message checks), and how
/// long a delivery waits for more recipients of its transaction, before they count.
pub const HOLD: Micros = 60 * SECOND;
/// How long a message with nothing pending is remembered, so later lines of it (another
/// transaction to the same relay) do not count it again.
pub const KEEP: Micros = HOUR;

/// How much in-flight state the correlator may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_messages: usize,
    pub message_ttl: Micros,
}

/// What was dropped or guessed, reported as warnings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub evicted_sessions: u64,
    pub evicted_messages: u64,
    /// Deliveries counted with TLS version unknown because the log never showed a STARTTLS line.
    pub tls_unknown: u64,
}

/// One parsed line and where it came from.
pub struct Line<'a> {
    pub time: Micros,
    pub loc: Loc,
    pub host: &'a [u8],
    pub pid: u32,
    pub record: Record<'a>,
}

type ProcKey = (u32, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
// Saved as (host, id) and checked on restore: a bad length would make `bytes` panic.
#[serde(into = "(u32, Vec<u8>)", try_from = "(u32, Vec<u8>)")]
struct QueueKey {
    host: u32,
    /// Length-prefixed queue id (at most 20 bytes): no allocation per message.
    id: [u8; 24],
}

impl QueueKey {
    fn new(host: u32, qid: &[u8]) -> Option<Self> {
        let mut id = [0u8; 24];
        let len = u8::try_from(qid.len()).ok().filter(|&n| n < 24)?;
        id[0] = len;
        id[1..=qid.len()].copy_from_slice(qid);
        Some(QueueKey { host, id })
    }

    fn bytes(&self) -> &[u8] {
        &self.id[1..=usize::from(self.id[0])]
    }
}

impl From<QueueKey> for (u32, Vec<u8>) {
    fn from(key: QueueKey) -> Self {
        (key.host, key.bytes().to_vec())
    }
}

impl TryFrom<(u32, Vec<u8>)> for QueueKey {
    type Error = &'static str;

    fn try_from((host, qid): (u32, Vec<u8>)) -> Result<Self, Self::Error> {
        QueueKey::new(host, &qid).ok_or("a queue id longer than 23 bytes")
    }
}

/// A TLS session and the line that logged it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    host: Option<Box<str>>,
    ip: Option<IpAddr>,
    tls: Tls,
    line: Loc,
}

impl Session {
    /// Whether a `relay=` of a later line names the same peer (by address where both have one).
    fn matches(&self, relay: &Relay<'_>) -> bool {
        match (self.ip, relay.ip) {
            (Some(a), Some(b)) => a == b,
            _ => match (&self.host, relay.host) {
                (Some(a), Some(b)) => same_host(a, b),
                _ => true,
            },
        }
    }
}

/// Whether `logged`, a `relay=` host of a `to=` line, names `host`: Sendmail shortens names of
/// 40 characters or more there to their first and last 18 with `...` between
/// (`shortenstring(host, 40)`), but not on `STARTTLS=client` lines.
fn same_host(host: &str, logged: &[u8]) -> bool {
    let host = host.as_bytes();
    if host.eq_ignore_ascii_case(logged) {
        return true;
    }
    // The trailing dot may be gone from both, so the suffix is 17 or 18 characters.
    let Some((head, tail)) =
        logged.split_at_checked(18).and_then(|(head, rest)| Some((head, rest.strip_prefix(b"...")?)))
    else {
        return false;
    };
    host.len() > logged.len()
        && host[..18].eq_ignore_ascii_case(head)
        && host[host.len() - tail.len()..].eq_ignore_ascii_case(tail)
}

/// One Sendmail process: the SMTP session it serves, the connections it delivers over.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Proc {
    last: Micros,
    server: Option<Session>,
    /// Client sessions by relay, newest last: a queue runner keeps connections open
    /// (`ConnectionCacheSize`) and delivers over them long after their STARTTLS line.
    client: Vec<Session>,
}

/// `to=` lines kept as evidence per message and relay.
const HOP_LINES: usize = 16;

/// Relays whose client session a process keeps: beyond it, the oldest is forgotten.
const CLIENT_SESSIONS: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
struct Inbound {
    time: Micros,
    proc_key: ProcKey,
    host: Option<Box<str>>,
    ip: IpAddr,
    service: Option<Box<str>>,
    tls: Tls,
    tls_line: Option<Loc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Rcpt {
    key: u64,
    status: Status,
}

/// A message's deliveries through one relay address.
#[derive(Debug, Serialize, Deserialize)]
struct Hop {
    host: Option<Box<str>>,
    ip: IpAddr,
    transport: Option<Box<str>>,
    /// The latest attempt's; `None` while it is unknown whether this log shows TLS at all.
    tls: Option<Tls>,
    tls_line: Option<Loc>,
    /// The latest attempt.
    time: Micros,
    rcpts: Vec<Rcpt>,
    domains: Vec<Box<str>>,
    lines: Vec<Loc>,
    emitted: bool,
}

impl Hop {
    fn pending(&self) -> bool {
        self.rcpts.iter().any(|r| r.status == Status::Deferred)
    }

    fn status(&self) -> EventStatus {
        if self.rcpts.iter().any(|r| r.status == Status::Sent) {
            EventStatus::Delivered
        } else if self.pending() {
            EventStatus::Deferred
        } else {
            EventStatus::Failed
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Message {
    last: Micros,
    sender: Option<Box<str>>,
    size: Option<u64>,
    nrcpts: Option<u32>,
    message_id: Option<Box<str>>,
    /// A DSN or clone made by this server: never inbound.
    made_here: bool,
    /// Whether any delivery line was seen.
    attempted: bool,
    /// Refused before or after its `from=` line (a milter, end-of-message checks, a broken
    /// DATA): not inbound.
    refused: bool,
    inbound: Option<Inbound>,
    lines: Vec<Loc>,
    hops: Vec<Hop>,
    /// Recipients deferred where no relay was reached (or locally): they keep the message.
    waiting: Vec<u64>,
    /// When [`Correlator::settle`] should look at the message next.
    due: Option<Micros>,
}

impl Message {
    fn idle(&self) -> bool {
        self.inbound.is_none() && self.waiting.is_empty() && self.hops.iter().all(|h| h.emitted)
    }

    /// The next time something held may be emitted, if anything is held.
    fn next_due(&self) -> Option<Micros> {
        let inbound = self.inbound.as_ref().map(|i| i.time + HOLD);
        let hops = self.hops.iter().filter(|h| !h.emitted && !h.pending()).map(|h| h.time + HOLD);
        inbound.into_iter().chain(hops).min()
    }
}

/// What is in flight between two lines: all a later run needs to continue the log.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Input names, for evidence: one per distinct name, so runs that continue a log reuse theirs.
    files: Vec<Arc<str>>,
    hosts: Vec<Box<[u8]>>,
    procs: HashMap<ProcKey, Proc>,
    queue: HashMap<QueueKey, Message>,
    /// (when, message): messages with something to emit at that time.
    due: BinaryHeap<Reverse<(Micros, QueueKey)>>,
    /// Whether a STARTTLS line was seen: then a delivery without one was plaintext.
    tls_seen: bool,
    /// Whether a `proto=` of a TLS session (`ESMTPS`) was seen: then this Sendmail (8.13 and
    /// later) names TLS in `proto=`, and `ESMTP` is plaintext even after a STARTTLS line of a
    /// pid used before.
    proto_tls_seen: bool,
    next_sweep: Micros,
}

/// Version of the saved state's layout; a checkpoint of another version is refused.
const STATE_VERSION: u32 = 1;

pub struct Correlator<'c> {
    limits: Limits,
    internal: &'c [IpNet],
    /// From `log_level`: `Some(true)` when STARTTLS lines are logged (LogLevel 9 and up).
    tls_logged: Option<bool>,
    state: State,
    /// Counted per run, not saved.
    pub tally: Tally,
    /// The last host name and its index: most logs are of one host.
    last_host: Option<u32>,
}

impl<'c> Correlator<'c> {
    pub fn new(limits: Limits, internal: &'c [IpNet], tls_logged: Option<bool>) -> Self {
        Correlator {
            limits,
            internal,
            tls_logged,
            state: State { next_sweep: Micros::MIN, ..State::default() },
            tally: Tally::default(),
            last_host: None,
        }
    }

    /// Registers an input's name for evidence; lines of it carry the returned index.
    pub fn add_file(&mut self, name: &str) -> u32 {
        if let Some(i) = self.state.files.iter().position(|f| **f == *name) {
            return i as u32;
        }
        self.state.files.push(name.into());
        (self.state.files.len() - 1) as u32
    }

    /// The in-flight state, for a checkpoint.
    pub fn save(&self) -> Vec<u8> {
        mailflow_component::resume::save_versioned(STATE_VERSION, &self.state)
    }

    /// Continues from a saved state; Err says why it cannot (another format version, damage).
    /// It replaces what this correlator holds, files included: call it before `add_file`.
    pub fn restore(&mut self, saved: &[u8]) -> Result<(), String> {
        let state: State = mailflow_component::resume::load_versioned(saved, STATE_VERSION, "sendmail")?;
        self.state = state;
        self.last_host = None;
        Ok(())
    }

    pub fn feed(&mut self, line: Line<'_>, out: &mut Emitter<'_>) {
        let now = line.time;
        if now >= self.state.next_sweep {
            self.sweep(now, out);
            // Hourly: a sweep walks every message held.
            self.state.next_sweep = now + HOUR;
        }
        self.settle(now, out);
        let host = self.host(line.host);
        let proc_key = (host, line.pid);
        match line.record {
            Record::Irrelevant => {}
            Record::Tls { side, qid: _, relay, version, verify, cipher } => {
                self.state.tls_seen = true;
                let tls = Tls {
                    version,
                    cipher: Some(String::from_utf8_lossy(cipher).into_owned()),
                    trust: Some(trust(verify)),
                };
                let session = Session {
                    host: relay.host.map(|h| String::from_utf8_lossy(h).into()),
                    ip: relay.ip,
                    tls,
                    line: line.loc,
                };
                let proc = self.proc(proc_key, now);
                match side {
                    Side::Server => proc.server = Some(session),
                    Side::Client => {
                        proc.client.retain(|s| !s.matches(&relay));
                        if proc.client.len() >= CLIENT_SESSIONS {
                            proc.client.remove(0);
                        }
                        proc.client.push(session);
                    }
                }
            }
            Record::TlsFailed { side } => {
                let proc = self.proc(proc_key, now);
                match side {
                    Side::Server => proc.server = None,
                    Side::Client => proc.client.clear(),
                }
            }
            Record::From(from) => self.from(proc_key, host, now, line.loc, from, out),
            Record::To(to) => self.to(proc_key, host, now, line.loc, to, out),
            Record::Derived { qid, new, kind } => {
                let (Some(old), Some(new)) = (QueueKey::new(host, qid), QueueKey::new(host, new)) else { return };
                let (sender, size, message_id) = match self.state.queue.get_mut(&old) {
                    Some(msg) => {
                        msg.last = now;
                        if kind == Derived::Expired {
                            // Its deferred recipients will not be tried again: they failed.
                            for hop in msg.hops.iter_mut().filter(|h| !h.emitted) {
                                hop.rcpts.iter_mut().filter(|r| r.status == Status::Deferred).for_each(|r| {
                                    r.status = Status::Failed;
                                });
                                hop.time = now;
                                hop.lines.push(line.loc);
                            }
                            msg.waiting.clear();
                        }
                        (msg.sender.clone(), msg.size, msg.message_id.clone())
                    }
                    None => (None, None, None),
                };
                if kind == Derived::Expired {
                    self.schedule(old, now);
                }
                self.make_room(out);
                let made = self.state.queue.entry(new).or_default();
                made.made_here = true;
                made.last = now;
                made.inbound = None;
                made.lines.push(line.loc);
                if kind == Derived::Clone {
                    (made.sender, made.size, made.message_id) = (sender, size, message_id);
                } else {
                    made.sender = Some("".into());
                }
            }
            Record::Refused { qid } => {
                let Some(key) = QueueKey::new(host, qid) else { return };
                if !self.state.queue.contains_key(&key) {
                    self.make_room(out);
                }
                // The `from=` line of a broken DATA comes after the refusal.
                let msg = self.state.queue.entry(key).or_default();
                msg.last = now;
                msg.refused = true;
                msg.inbound = None;
            }
            Record::Done { qid } => {
                if let Some(key) = QueueKey::new(host, qid)
                    && let Some(mut msg) = self.state.queue.remove(&key)
                {
                    msg.lines.push(line.loc);
                    self.finish_message(key, msg, out);
                }
            }
        }
    }

    fn host(&mut self, name: &[u8]) -> u32 {
        if let Some(i) = self.last_host
            && self.state.hosts.get(i as usize).is_some_and(|h| **h == *name)
        {
            return i;
        }
        let i = match self.state.hosts.iter().position(|h| **h == *name) {
            Some(i) => i as u32,
            None => {
                self.state.hosts.push(name.into());
                (self.state.hosts.len() - 1) as u32
            }
        };
        self.last_host = Some(i);
        i
    }

    fn proc(&mut self, key: ProcKey, now: Micros) -> &mut Proc {
        if !self.state.procs.contains_key(&key) && self.state.procs.len() >= self.limits.max_sessions {
            let oldest = tenth_oldest(self.state.procs.values().map(|p| p.last));
            let before = self.state.procs.len();
            self.state.procs.retain(|_, p| p.last > oldest);
            self.tally.evicted_sessions += (before - self.state.procs.len()) as u64;
        }
        let proc = self.state.procs.entry(key).or_default();
        proc.last = now;
        proc
    }

    fn is_internal(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.internal.iter().any(|n| n.contains(&ip))
    }

    fn from(
        &mut self,
        proc_key: ProcKey,
        host: u32,
        now: Micros,
        loc: Loc,
        from: parse::From<'_>,
        out: &mut Emitter<'_>,
    ) {
        // A refused attempt (every recipient rejected) or one given up before DATA: Sendmail
        // logs the envelope when the transaction ends, but no message was queued.
        if from.nrcpts == 0 || from.size == 0 {
            return;
        }
        let Some(key) = QueueKey::new(host, from.qid) else { return };
        let session = self
            .state
            .procs
            .get_mut(&proc_key)
            .and_then(|p| {
                p.last = now;
                p.server.as_ref()
            })
            .filter(|s| from.relay.as_ref().is_some_and(|r| s.matches(r)))
            .map(|s| (s.tls.clone(), s.line));
        if self.state.queue.len() >= self.limits.max_messages && !self.state.queue.contains_key(&key) {
            self.make_room(out);
        }
        let msg = self.state.queue.entry(key).or_default();
        msg.last = now;
        msg.lines.push(loc);
        if msg.refused {
            return;
        }
        msg.sender = Some(String::from_utf8_lossy(from.sender).into());
        msg.size = Some(from.size);
        msg.nrcpts = Some(from.nrcpts);
        msg.message_id = from.msgid.map(|m| String::from_utf8_lossy(m).into());
        let Some(relay) = from.relay else { return };
        // Local submissions (`relay=root@localhost`) and mail from this host itself (the MSP
        // queue, a content filter's return) are no traffic.
        let Some(ip) = relay.ip.filter(|&ip| !is_this_host(ip)) else { return };
        if msg.made_here || msg.refused || msg.inbound.is_some() {
            return;
        }
        let proto_tls = starttls_proto(from.proto);
        self.state.proto_tls_seen |= proto_tls == Some(true);
        let (tls, tls_line) = match (proto_tls, session) {
            (Some(false), Some(_)) if self.state.proto_tls_seen => (version_only(TlsVersion::None), None),
            (_, Some((tls, line))) => (tls, Some(line)),
            (Some(false), None) => (version_only(TlsVersion::None), None),
            (_, None) => (version_only(TlsVersion::Unknown), None),
        };
        msg.inbound = Some(Inbound {
            time: now,
            proc_key,
            host: relay.host.map(|h| String::from_utf8_lossy(h).into()),
            ip,
            service: from.daemon.map(|d| String::from_utf8_lossy(d).into()),
            tls,
            tls_line,
        });
        self.schedule(key, now);
    }

    fn to(&mut self, proc_key: ProcKey, host: u32, now: Micros, loc: Loc, to: parse::To<'_>, out: &mut Emitter<'_>) {
        let Some(key) = QueueKey::new(host, to.qid) else { return };
        if to.status == Status::Queued {
            return;
        }
        let Some(mailer) = to.mailer else {
            // Recipients of a message refused after its `from=` line (logged without a mailer).
            if let Some(msg) = self.state.queue.get_mut(&key)
                && msg.inbound.as_ref().is_some_and(|i| i.proc_key == proc_key)
            {
                msg.inbound = None;
            }
            return;
        };
        let local = is_local_mailer(mailer);
        let relay = to.relay.unwrap_or_default();
        let traffic = relay.ip.filter(|&ip| !local && !is_this_host(ip) && !self.is_internal(ip));
        if let Some(proc) = self.state.procs.get_mut(&proc_key) {
            // A process delivering over connections it keeps open is alive without TLS lines.
            proc.last = now;
        }
        let tls = match traffic {
            Some(_) => self.client_tls(proc_key, &relay),
            None => (None, None, None),
        };
        if self.state.queue.len() >= self.limits.max_messages && !self.state.queue.contains_key(&key) {
            self.make_room(out);
        }
        let msg = self.state.queue.entry(key).or_default();
        msg.last = now;
        msg.attempted = true;
        // Each recipient's latest attempt is this one: it leaves the hops it was at before.
        for rcpt in parse::recipients(to.to).map(fnv1a_ignore_case) {
            msg.waiting.retain(|&w| w != rcpt);
            for hop in msg.hops.iter_mut().filter(|h| !h.emitted && Some(h.ip) != traffic) {
                hop.rcpts.retain(|r| r.key != rcpt);
            }
        }
        msg.hops.retain(|h| h.emitted || !h.rcpts.is_empty() || Some(h.ip) == traffic);
        let Some(ip) = traffic else {
            if to.status == Status::Deferred {
                msg.waiting.extend(parse::recipients(to.to).map(fnv1a_ignore_case));
            }
            self.schedule(key, now);
            return;
        };
        let index = match msg.hops.iter().position(|h| h.ip == ip) {
            Some(i) => i,
            None => {
                msg.hops.push(Hop {
                    host: relay.host.map(|h| String::from_utf8_lossy(h).into()),
                    ip,
                    transport: Some(String::from_utf8_lossy(mailer).into()),
                    tls: None,
                    tls_line: None,
                    time: now,
                    rcpts: Vec::new(),
                    domains: Vec::new(),
                    lines: Vec::new(),
                    emitted: false,
                });
                msg.hops.len() - 1
            }
        };
        let hop = &mut msg.hops[index];
        // Evidence: the first attempt and the latest ones; a message retried every queue run
        // for days would otherwise hold thousands of lines.
        if hop.lines.len() >= HOP_LINES {
            hop.lines.remove(1);
        }
        hop.lines.push(loc);
        if hop.emitted {
            // Counted already: more recipients of it in another transaction.
            return;
        }
        let full_host;
        (hop.tls, hop.tls_line, full_host) = tls;
        if full_host.is_some() {
            hop.host = full_host;
        }
        hop.time = now;
        for address in parse::recipients(to.to) {
            let rcpt = fnv1a_ignore_case(address);
            match hop.rcpts.iter_mut().find(|r| r.key == rcpt) {
                Some(r) => r.status = to.status,
                None => hop.rcpts.push(Rcpt { key: rcpt, status: to.status }),
            }
            if let Some(domain) = parse::domain(address)
                && !hop.domains.iter().any(|d| d.as_bytes().eq_ignore_ascii_case(domain))
            {
                hop.domains.push(String::from_utf8_lossy(domain).to_ascii_lowercase().into());
            }
        }
        self.schedule(key, now);
    }

    /// The TLS of a delivery by this process to this relay: the STARTTLS=client line it logged
    /// for that relay; none when the log shows STARTTLS lines (plaintext); `None` while unknown.
    /// With it, the relay's full name when the STARTTLS line has it and the `to=` line shortened it.
    fn client_tls(&self, proc_key: ProcKey, relay: &Relay<'_>) -> (Option<Tls>, Option<Loc>, Option<Box<str>>) {
        let session = self.state.procs.get(&proc_key).and_then(|p| {
            p.client.iter().rev().find(|s| match (&s.host, relay.host) {
                (Some(a), Some(b)) => same_host(a, b),
                _ => s.ip.is_some() && s.ip == relay.ip,
            })
        });
        let full_host = |s: &Session| s.host.clone().filter(|h| relay.host.is_some_and(|r| r.len() < h.len()));
        match (session, self.tls_logged) {
            (Some(s), _) => (Some(s.tls.clone()), Some(s.line), full_host(s)),
            (None, Some(false)) => (Some(version_only(TlsVersion::Unknown)), None, None),
            (None, Some(true)) => (Some(version_only(TlsVersion::None)), None, None),
            (None, None) if self.state.tls_seen => (Some(version_only(TlsVersion::None)), None, None),
            (None, None) => (None, None, None),
        }
    }

    /// Notes that `key` may have something to emit `HOLD` after its latest change.
    fn schedule(&mut self, key: QueueKey, _now: Micros) {
        let Some(msg) = self.state.queue.get_mut(&key) else { return };
        let due = msg.next_due();
        if due.is_some() && due != msg.due {
            msg.due = due;
            if let Some(due) = due {
                self.state.due.push(Reverse((due, key)));
            }
        }
    }

    /// Emits what has waited long enough: inbound messages not refused within `HOLD`, relays
    /// whose recipients are all final and whose last attempt is `HOLD` old.
    fn settle(&mut self, now: Micros, out: &mut Emitter<'_>) {
        while let Some(&Reverse((due, key))) = self.state.due.peek() {
            if due > now {
                break;
            }
            self.state.due.pop();
            let Some(msg) = self.state.queue.get_mut(&key) else { continue };
            if msg.due != Some(due) {
                continue;
            }
            msg.due = None;
            if msg.inbound.as_ref().is_some_and(|i| i.time + HOLD <= now) {
                self.emit_inbound(key, out);
            }
            self.emit_hops(key, |h| !h.pending() && h.time + HOLD <= now, out);
            self.schedule(key, now);
        }
    }

    fn emit_inbound(&mut self, key: QueueKey, out: &mut Emitter<'_>) {
        let Some(msg) = self.state.queue.get_mut(&key) else { return };
        let Some(inbound) = msg.inbound.take() else { return };
        let mut event = message_event(key, msg, inbound.time, Direction::Inbound);
        event.tls = inbound.tls;
        event.peer = Peer { host: inbound.host.map(Into::into), ip: Some(inbound.ip), port: None };
        event.service = inbound.service.map(Into::into);
        event.recipients = msg.nrcpts;
        event.evidence = evidence(&self.state.files, inbound.tls_line.into_iter().chain(msg.lines.iter().copied()));
        out.event(event);
    }

    /// Emits the message's relays that `ready` picks.
    fn emit_hops(&mut self, key: QueueKey, ready: impl Fn(&Hop) -> bool, out: &mut Emitter<'_>) {
        let Some(msg) = self.state.queue.get_mut(&key) else { return };
        let tls_seen = self.state.tls_seen;
        for i in 0..msg.hops.len() {
            let hop = &msg.hops[i];
            if hop.emitted || hop.rcpts.is_empty() || !ready(hop) {
                continue;
            }
            let mut event = message_event(key, msg, hop.time, Direction::Outbound);
            let hop = &msg.hops[i];
            event.tls = hop
                .tls
                .clone()
                .unwrap_or_else(|| version_only(if tls_seen { TlsVersion::None } else { TlsVersion::Unknown }));
            if hop.tls.is_none() && !tls_seen {
                self.tally.tls_unknown += 1;
            }
            event.peer = Peer { host: hop.host.as_deref().map(Into::into), ip: Some(hop.ip), port: None };
            event.transport = hop.transport.as_deref().map(Into::into);
            event.recipients = Some(hop.rcpts.len() as u32);
            event.recipient_domains = hop.domains.iter().map(|d| d.to_string()).collect();
            event.status = Some(hop.status());
            let lines = hop.tls_line.into_iter().chain(msg.lines.iter().copied()).chain(hop.lines.iter().copied());
            event.evidence = evidence(&self.state.files, lines);
            msg.hops[i].emitted = true;
            out.event(event);
        }
    }

    /// Emits everything a message still holds, as it is known: the message is done.
    fn finish_message(&mut self, key: QueueKey, msg: Message, out: &mut Emitter<'_>) {
        if msg.idle() {
            return;
        }
        self.state.queue.insert(key, msg);
        self.emit_inbound(key, out);
        self.emit_hops(key, |_| true, out);
        self.state.queue.remove(&key);
    }

    /// Forgets idle processes and messages, finishes messages past their TTL.
    fn sweep(&mut self, now: Micros, out: &mut Emitter<'_>) {
        self.state.procs.retain(|_, p| p.last + HOUR > now);
        let ttl = self.limits.message_ttl;
        // Nothing held: forgotten without a look at what to emit.
        self.state.queue.retain(|_, m| !(m.idle() && (m.attempted || m.refused) && m.last + KEEP <= now));
        let expired: Vec<QueueKey> =
            self.state.queue.iter().filter(|(_, m)| m.last + ttl <= now).map(|(k, _)| *k).collect();
        self.finish_all(expired, out);
        if self.state.due.len() > 2 * self.state.queue.len() + 64 {
            // Stale entries of messages that changed or left.
            let queue = &self.state.queue;
            self.state.due.retain(|Reverse((due, key))| queue.get(key).is_some_and(|m| m.due == Some(*due)));
        }
    }

    /// Finishes messages in log order of their last line, so events come out the same however
    /// the map is ordered.
    fn finish_all(&mut self, keys: Vec<QueueKey>, out: &mut Emitter<'_>) {
        let mut keys: Vec<(Micros, QueueKey)> =
            keys.into_iter().map(|k| (self.state.queue.get(&k).map_or(0, |m| m.last), k)).collect();
        keys.sort_unstable();
        for (_, key) in keys {
            if let Some(msg) = self.state.queue.remove(&key) {
                self.finish_message(key, msg, out);
            }
        }
    }

    /// Before a new message: beyond `max_messages`, the oldest tenth is finished early.
    fn make_room(&mut self, out: &mut Emitter<'_>) {
        if self.state.queue.len() < self.limits.max_messages {
            return;
        }
        let oldest = tenth_oldest(self.state.queue.values().map(|m| m.last));
        let keys: Vec<QueueKey> = self.state.queue.iter().filter(|(_, m)| m.last <= oldest).map(|(k, _)| *k).collect();
        self.tally.evicted_messages += keys.len() as u64;
        self.finish_all(keys, out);
    }

    /// The end of a one-shot run: everything held counts as it is known.
    pub fn finish(&mut self, out: &mut Emitter<'_>) {
        let keys: Vec<QueueKey> = self.state.queue.keys().copied().collect();
        self.finish_all(keys, out);
        self.state.due.clear();
        self.state.procs.clear();
    }
}

/// Whether `proto=` says STARTTLS was used: `ESMTPS`, `ESMTPSA`, `UTF8SMTPS`; `None` without it.
fn starttls_proto(proto: Option<&[u8]>) -> Option<bool> {
    let proto = proto?;
    let proto = proto.strip_suffix(b"A").unwrap_or(proto);
    Some(proto.ends_with(b"S") && proto.len() > 1)
}

/// Mailers that deliver on this host: mailbox, program, file, include.
fn is_local_mailer(mailer: &[u8]) -> bool {
    matches!(mailer, b"local" | b"prog" | b"*file*" | b"*include*" | b"procmail" | b"cyrus" | b"cyrusv2")
}

/// `verify=` of a STARTTLS line: how far the peer's certificate was checked.
fn trust(verify: &[u8]) -> Trust {
    match verify {
        b"OK" | b"TRUSTED" | b"DANE_PASS" => Trust::Verified,
        // NOT: no certificate asked for; NO: asked for, none presented; NONE: none at all.
        b"NOT" | b"NO" | b"NONE" => Trust::Anonymous,
        b"FAIL" | b"SOFTWARE" | b"PROTOCOL" | b"TEMP" | b"CRLFAIL" | b"DANE_FAIL" => Trust::Untrusted,
        _ => Trust::Unknown,
    }
}

/// An event of this message with what every event of it shares.
fn message_event(key: QueueKey, msg: &Message, time: Micros, direction: Direction) -> MessageEvent {
    let mut event = MessageEvent::new(utc_micros(time), direction);
    event.sender = msg.sender.as_deref().map(Into::into);
    event.size = msg.size;
    event.message_id = msg.message_id.as_deref().map(Into::into);
    event.queue_id = Some(String::from_utf8_lossy(key.bytes()).into_owned());
    event
}

/// The host itself: mail from or to there is a hop inside this server.
fn is_this_host(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// TLS of which only the version is known (or that it was none or unknown).
fn version_only(version: TlsVersion) -> Tls {
    Tls { version: Some(version), ..Tls::default() }
}
