//! Joins Postfix's lines into message events.
//!
//! Postfix logs a message across many processes: smtpd (the client and its TLS), cleanup (the
//! Message-ID), qmgr (sender, size, removal) and one smtp/lmtp process per delivery attempt
//! (the relay, the status, and just before it the TLS session of that connection). This module
//! keeps what is in flight, keyed by (host, pid) for processes and (host, queue id) for
//! messages, and emits an event once a message's facts are complete:
//!
//! - inbound: when the message is queued (qmgr `from=`) and its session's TLS is known: from the
//!   TLS line, else from `disconnect … starttls=1` (TLS, version unknown) or its absence
//!   (plaintext);
//! - outbound: when the message leaves the queue, one event per next-hop relay with each
//!   recipient's final attempt, so a deferral followed by a delivery counts once, delivered.
//!
//! Whether a silent smtp connection was plaintext depends on the instance's
//! `smtp_tls_loglevel`, which only the log tells: an event whose instance has shown no TLS line
//! yet waits (bounded) until one appears (then: plaintext) or the log ends (then: unknown).
//!
//! Everything held is bounded: sessions and processes expire after an hour of log time without
//! a line, messages after `message_ttl_hours` (Postfix keeps mail at most 5 days by default),
//! and hard caps evict the oldest entries; each eviction is counted.

use mailflow_component::logs::{Loc, evidence, tenth_oldest, utc_micros};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use foldhash::HashMap;
use ipnet::IpNet;
use mailflow_component::Emitter;
use mailflow_core::{Direction, MessageEvent, Peer, Status, Tls, TlsVersion, fnv1a_ignore_case};
use serde::{Deserialize, Serialize};

use crate::parse::{self, DeliveryStatus, Endpoint, Program, Record, Relay, TlsLine};

type Micros = i64;
const HOUR: Micros = 3_600_000_000;

/// How much in-flight state the correlator may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_messages: usize,
    pub message_ttl: Micros,
    /// Deliveries of an smtp instance without a TLS line, before the instance counts as not
    /// logging TLS (`smtp_tls_loglevel = 0`). Until then they wait, to be counted as plaintext
    /// should a TLS line of that instance appear.
    pub max_undecided: usize,
}

/// What was dropped to keep memory bounded; reported as warnings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Evictions {
    pub sessions: u64,
    pub messages: u64,
}

type ProcKey = (u32, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
// Saved as (host, id) and checked on restore: a bad length would make `as_str` panic.
#[serde(into = "(u32, Vec<u8>)", try_from = "(u32, Vec<u8>)")]
struct QueueKey {
    host: u32,
    /// Length-prefixed queue id: ids are at most 23 bytes, so no allocation per message.
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

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.bytes()).unwrap_or("")
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

/// TLS as decided for a session, or not yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Decision {
    Known(Tls, Option<Loc>),
    /// Silent connection of this instance, whose TLS logging is not known yet.
    Undecided(u32),
}

#[derive(Debug, Serialize, Deserialize)]
struct Instance {
    host: u32,
    name: Box<[u8]>,
    /// `None` until the log shows it: a TLS line (true) or `max_undecided` silent deliveries (false).
    logs_tls: Option<bool>,
    /// Events of silent deliveries waiting for `logs_tls`.
    held: Vec<MessageEvent>,
    /// Silent deliveries counted as unknown before a late first TLS line.
    counted_unknown: u64,
}

/// One smtpd connection.
#[derive(Debug, Serialize, Deserialize)]
struct Session {
    instance: u32,
    last: Micros,
    tls: Option<(Tls, Loc)>,
    /// Messages of this session whose TLS waits for the disconnect.
    waiting: Vec<QueueKey>,
}

/// One smtp/lmtp process: its latest TLS session.
#[derive(Debug, Serialize, Deserialize)]
struct ClientProc {
    last: Micros,
    tls: Option<ProcTls>,
    /// The attempt the last delivery line of this process belonged to.
    current: Option<(QueueKey, usize)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ProcTls {
    peer: (IpAddr, Option<u16>),
    tls: Tls,
    line: Loc,
    /// No delivery has used this TLS session yet.
    fresh: bool,
}

/// A TLS session tlsproxy made for smtp (connection reuse).
#[derive(Debug, Serialize, Deserialize)]
struct ProxyTls {
    tls: Tls,
    line: Loc,
    established: Micros,
    closed: Option<Micros>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Inbound {
    time: Micros,
    host: Box<str>,
    ip: Option<IpAddr>,
    service: Box<str>,
    instance: u32,
    tls: Option<(Tls, Option<Loc>)>,
    lines: Vec<Loc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Rcpt {
    key: u64,
    domain: Box<str>,
    attempt: usize,
    status: DeliveryStatus,
}

#[derive(Debug, Serialize, Deserialize)]
struct Attempt {
    host: Box<str>,
    ip: IpAddr,
    port: Option<u16>,
    transport: Box<str>,
    time: Micros,
    tls: Decision,
    lines: Vec<Loc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    last: Micros,
    queued: bool,
    removed: bool,
    expired_at: Option<Micros>,
    sender: Option<Box<str>>,
    size: Option<u64>,
    nrcpt: Option<u32>,
    message_id: Option<Box<str>>,
    /// The inbound event, until it is emitted.
    inbound: Option<Inbound>,
    lines: Vec<Loc>,
    rcpts: Vec<Rcpt>,
    attempts: Vec<Attempt>,
}

impl Message {
    fn new(time: Micros) -> Self {
        Message {
            last: time,
            queued: false,
            removed: false,
            expired_at: None,
            sender: None,
            size: None,
            nrcpt: None,
            message_id: None,
            inbound: None,
            lines: Vec::new(),
            rcpts: Vec::new(),
            attempts: Vec::new(),
        }
    }

    fn inbound_pending(&self) -> bool {
        self.inbound.as_ref().is_some_and(|i| i.tls.is_none())
    }

    /// An event of this message with what every event of it shares.
    fn event(&self, key: QueueKey, time: Micros, direction: Direction) -> MessageEvent {
        let mut event = MessageEvent::new(utc_micros(time), direction);
        event.sender = self.sender.as_deref().map(Into::into);
        event.size = self.size;
        event.message_id = self.message_id.as_deref().map(Into::into);
        event.queue_id = Some(key.as_str().to_string());
        event
    }
}

/// One parsed line and where it came from.
pub struct Line<'a> {
    pub time: Micros,
    pub loc: Loc,
    pub host: &'a [u8],
    pub pid: u32,
    pub program: Program<&'a [u8]>,
    pub record: Record<&'a [u8]>,
}

/// Where a line came from: its process, host, program, time and place in the log.
struct At<'l> {
    proc_key: ProcKey,
    host: u32,
    program: &'l Program<&'l [u8]>,
    time: Micros,
    loc: Loc,
}

/// What is in flight between two lines: all a later run needs to continue the log.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Input names, for evidence: one per distinct name, so runs that continue a log reuse theirs.
    files: Vec<Arc<str>>,
    hosts: Vec<Box<[u8]>>,
    instances: Vec<Instance>,
    sessions: HashMap<ProcKey, Session>,
    procs: HashMap<ProcKey, ClientProc>,
    queue: HashMap<QueueKey, Message>,
    proxied: HashMap<(u32, IpAddr, Option<u16>), ProxyTls>,
    next_sweep: Micros,
}

impl State {
    /// Indexes a damaged checkpoint could get wrong, and that would panic later.
    fn check(&self) -> Result<(), String> {
        let instances = self.instances.len();
        let instance_ok = |i: u32| (i as usize) < instances;
        let sessions_ok = self.sessions.values().all(|s| instance_ok(s.instance));
        let messages_ok = self.queue.values().all(|m| {
            m.inbound.as_ref().is_none_or(|i| instance_ok(i.instance))
                && m.rcpts.iter().all(|r| r.attempt < m.attempts.len())
                && m.attempts.iter().all(|a| !matches!(a.tls, Decision::Undecided(i) if !instance_ok(i)))
        });
        if sessions_ok && messages_ok {
            Ok(())
        } else {
            Err("the checkpoint of the postfix collector is damaged (an index out of range)".into())
        }
    }
}

/// Version of the saved state's layout; a checkpoint of another version is refused.
const STATE_VERSION: u32 = 1;

pub struct Correlator<'c> {
    limits: Limits,
    internal: &'c [IpNet],
    /// `smtp_tls_loglevel` from the config: `Some(true)` when it is ≥ 1; `None` to detect.
    smtp_tls_logged: Option<bool>,
    state: State,
    /// Counted per run, not saved.
    pub evicted: Evictions,
}

impl<'c> Correlator<'c> {
    pub fn new(limits: Limits, internal: &'c [IpNet], smtp_tls_logged: Option<bool>) -> Self {
        Correlator {
            limits,
            internal,
            smtp_tls_logged,
            state: State { next_sweep: Micros::MIN, ..State::default() },
            evicted: Evictions::default(),
        }
    }

    /// Registers an input's name for evidence; lines of it carry the returned index.
    pub fn add_file(&mut self, name: &str) -> u32 {
        // A name seen before (in this run or a saved one) keeps its index: no growth per run.
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

    /// Continues from a saved state; Err says why it cannot (another format version, corrupt).
    /// It replaces what this correlator holds, files included: call it before `add_file`.
    pub fn restore(&mut self, saved: &[u8]) -> Result<(), String> {
        let state: State = mailflow_component::resume::load_versioned(saved, STATE_VERSION, "postfix")?;
        state.check()?;
        self.state = state;
        Ok(())
    }

    pub fn feed(&mut self, line: Line<'_>, out: &mut Emitter<'_>) {
        if line.time >= self.state.next_sweep {
            self.sweep(line.time, out);
            self.state.next_sweep = line.time + HOUR / 6;
        }
        let host = self.host(line.host);
        let proc_key = (host, line.pid);
        let t = line.time;
        let at = At { proc_key, host, program: &line.program, time: t, loc: line.loc };
        match line.record {
            Record::Irrelevant => {}
            Record::Connect => {
                if let Some(old) = self.state.sessions.remove(&proc_key) {
                    // The disconnect was lost (or the pid reused): settle with what is known.
                    self.close_session(old, None, None, out);
                }
                let instance = self.instance(host, line.program.instance);
                self.state.sessions.insert(proc_key, Session { instance, last: t, tls: None, waiting: Vec::new() });
                if self.state.sessions.len() > self.limits.max_sessions {
                    self.evict_oldest_sessions(out);
                }
            }
            Record::Tls(tls) => self.tls_line(&at, tls, out),
            Record::Disconnect { starttls } => {
                if let Some(session) = self.state.sessions.remove(&proc_key) {
                    self.close_session(session, starttls, Some(line.loc), out);
                }
            }
            Record::Client { qid, client } => self.client(&at, qid, client, out),
            Record::MessageId { qid, message_id } => {
                if let Some(msg) = QueueKey::new(host, qid).and_then(|k| self.state.queue.get_mut(&k)) {
                    msg.message_id = Some(String::from_utf8_lossy(message_id).into());
                    msg.lines.push(line.loc);
                    msg.last = t;
                }
            }
            Record::Dropped { qid } => {
                if let Some(key) = QueueKey::new(host, qid)
                    && self.state.queue.get(&key).is_some_and(|m| !m.queued)
                {
                    self.state.queue.remove(&key);
                }
            }
            Record::Queued { qid, sender, size, nrcpt } => {
                let Some(key) = QueueKey::new(host, qid) else { return };
                let msg = self.state.queue.entry(key).or_insert_with(|| Message::new(t));
                msg.last = t;
                if !msg.queued {
                    // Only the first: qmgr logs the line again at every retry.
                    msg.queued = true;
                    msg.sender = Some(String::from_utf8_lossy(sender).into());
                    msg.size = size;
                    msg.nrcpt = nrcpt;
                    msg.lines.push(line.loc);
                    if msg.inbound.as_ref().is_some_and(|i| i.tls.is_some()) {
                        self.emit_inbound(key, out);
                    }
                }
                if self.state.queue.len() > self.limits.max_messages {
                    self.evict_oldest_messages(out);
                }
            }
            Record::Expired { qid } => {
                if let Some(msg) = QueueKey::new(host, qid).and_then(|k| self.state.queue.get_mut(&k)) {
                    msg.expired_at = Some(t);
                    msg.lines.push(line.loc);
                }
            }
            Record::Removed { qid } => {
                let Some(key) = QueueKey::new(host, qid) else { return };
                if let Some(msg) = self.state.queue.get_mut(&key) {
                    msg.removed = true;
                    self.emit_outbound(key, out);
                    if !self.state.queue.get(&key).is_some_and(Message::inbound_pending) {
                        self.state.queue.remove(&key);
                    }
                }
            }
            Record::Delivery { qid, delivery } => {
                let Relay::Remote(peer) = delivery.relay else { return };
                let Some(ip) = peer.ip else { return };
                if delivery.status == DeliveryStatus::Probe || self.is_internal(ip) {
                    return;
                }
                let Some(key) = QueueKey::new(host, qid) else { return };
                self.delivery(&at, key, peer, ip, delivery, out);
            }
            Record::ProxyDisconnect { peer } => {
                if let Some(ip) = peer.ip
                    && let Some(p) = self.state.proxied.get_mut(&(host, ip, peer.port))
                {
                    p.closed = Some(t);
                }
            }
        }
    }

    fn host(&mut self, name: &[u8]) -> u32 {
        if let Some(i) = self.state.hosts.iter().position(|h| &h[..] == name) {
            return i as u32;
        }
        self.state.hosts.push(name.into());
        (self.state.hosts.len() - 1) as u32
    }

    fn instance(&mut self, host: u32, name: &[u8]) -> u32 {
        if let Some(i) = self.state.instances.iter().position(|i| i.host == host && &i.name[..] == name) {
            return i as u32;
        }
        self.state.instances.push(Instance {
            host,
            name: name.into(),
            logs_tls: None,
            held: Vec::new(),
            counted_unknown: 0,
        });
        (self.state.instances.len() - 1) as u32
    }

    /// Deliveries to this host itself or into the site's own networks are hops inside the
    /// site (a content filter, a mailbox server), not outbound traffic.
    fn is_internal(&self, ip: IpAddr) -> bool {
        is_this_host(ip) || self.internal.iter().any(|n| n.contains(&ip.to_canonical()))
    }

    fn tls_line(&mut self, at: &At<'_>, line: TlsLine<&[u8]>, out: &mut Emitter<'_>) {
        let (proc_key, host, program, t, loc) = (at.proc_key, at.host, at.program, at.time, at.loc);
        let tls = Tls {
            version: Some(line.version),
            cipher: (!line.cipher.is_empty()).then(|| String::from_utf8_lossy(line.cipher).into_owned()),
            trust: line.trust,
        };
        match (program.daemon, line.outgoing) {
            (parse::Daemon::Smtpd, false) => {
                let instance = self.instance(host, program.instance);
                self.logs_tls(instance, out);
                if let Some(session) = self.state.sessions.get_mut(&proc_key) {
                    session.tls = Some((tls, loc));
                    session.last = t;
                }
            }
            (parse::Daemon::Client, true) => {
                let instance = self.instance(host, program.instance);
                self.logs_tls(instance, out);
                let Some(ip) = line.peer.ip else { return };
                let proc = self.state.procs.entry(proc_key).or_insert(ClientProc { last: t, tls: None, current: None });
                proc.last = t;
                proc.tls = Some(ProcTls { peer: (ip, line.peer.port), tls, line: loc, fresh: true });
                proc.current = None;
            }
            (parse::Daemon::Tlsproxy, true) => {
                let Some(ip) = line.peer.ip else { return };
                let session = ProxyTls { tls, line: loc, established: t, closed: None };
                self.state.proxied.insert((host, ip, line.peer.port), session);
            }
            // postscreen's tlsproxy: a connection that belongs to no message yet.
            _ => {}
        }
    }

    fn client(&mut self, at: &At<'_>, qid: &[u8], client: Endpoint<&[u8]>, out: &mut Emitter<'_>) {
        let (proc_key, host, program, t, loc) = (at.proc_key, at.host, at.program, at.time, at.loc);
        let Some(key) = QueueKey::new(host, qid) else { return };
        if let Some(old) = self.state.queue.remove(&key) {
            // A queue id seen again: the earlier message's end was not in the log.
            self.finish_message(key, old, out);
        }
        let mut msg = Message::new(t);
        // Mail re-injected by this host (a content filter's return) was counted when it first arrived.
        if client.ip.is_some_and(is_this_host) {
            msg.lines.push(loc);
        } else {
            let instance = self.instance(host, program.instance);
            let session = self.state.sessions.get_mut(&proc_key);
            let has_session = session.is_some();
            let tls = session.as_ref().and_then(|s| s.tls.clone()).map(|(tls, line)| (tls, Some(line)));
            if let Some(session) = session {
                session.last = t;
                if tls.is_none() {
                    session.waiting.push(key);
                }
            }
            let mut inbound = Inbound {
                time: t,
                host: String::from_utf8_lossy(client.host).into(),
                ip: client.ip,
                service: String::from_utf8_lossy(program.service).into(),
                instance,
                tls,
                lines: vec![loc],
            };
            if inbound.tls.is_none() && !has_session {
                // The log began inside this session: only the instance's habits are known.
                inbound.tls = Some((self.fallback_tls(instance), None));
            }
            msg.inbound = Some(inbound);
        }
        self.state.queue.insert(key, msg);
    }

    /// Settles the TLS of a session's waiting messages at its end: `starttls` and `line` come
    /// from its disconnect line, when there is one.
    fn close_session(&mut self, session: Session, starttls: Option<bool>, line: Option<Loc>, out: &mut Emitter<'_>) {
        let tls = match (&session.tls, starttls) {
            (Some((tls, line)), _) => (tls.clone(), Some(*line)),
            (None, Some(true)) => (version_only(TlsVersion::Unknown), line),
            (None, Some(false)) => (version_only(TlsVersion::None), line),
            (None, None) => (self.fallback_tls(session.instance), None),
        };
        for key in session.waiting {
            let Some(msg) = self.state.queue.get_mut(&key) else { continue };
            let Some(inbound) = msg.inbound.as_mut().filter(|i| i.tls.is_none()) else { continue };
            inbound.tls = Some(tls.clone());
            if msg.queued {
                self.emit_inbound(key, out);
                if self.state.queue.get(&key).is_some_and(|m| m.removed) {
                    self.state.queue.remove(&key);
                }
            }
        }
    }

    /// TLS of a silent session when nothing else tells: plaintext where the instance is
    /// known to log TLS sessions, else unknown.
    fn fallback_tls(&self, instance: u32) -> Tls {
        version_only(match self.state.instances[instance as usize].logs_tls {
            Some(true) => TlsVersion::None,
            _ => TlsVersion::Unknown,
        })
    }

    fn delivery(
        &mut self,
        at: &At<'_>,
        key: QueueKey,
        peer: Endpoint<&[u8]>,
        ip: IpAddr,
        delivery: parse::Delivery<&[u8]>,
        out: &mut Emitter<'_>,
    ) {
        let (proc_key, host, program, t, loc) = (at.proc_key, at.host, at.program, at.time, at.loc);
        let instance = self.instance(host, program.instance);
        let proc = self.state.procs.entry(proc_key).or_insert(ClientProc { last: t, tls: None, current: None });
        proc.last = t;
        let msg = self.state.queue.entry(key).or_insert_with(|| Message::new(t));
        msg.last = t;
        // More recipients of the same transaction: the previous line of this process, same relay.
        let same = proc
            .current
            .filter(|&(k, i)| k == key && msg.attempts.get(i).is_some_and(|a| a.ip == ip && a.port == peer.port));
        let mut proxied_tls = false;
        let index = match same {
            Some((_, index)) => index,
            None => {
                let field = delivery.tls_field.and_then(parse::tls_field_says);
                let own = proc.tls.as_mut().filter(|s| s.fresh && s.peer == (ip, peer.port));
                let decision = if field == Some(false) {
                    Decision::Known(version_only(TlsVersion::None), None)
                } else if let Some(session) = own {
                    session.fresh = false;
                    Decision::Known(session.tls.clone(), Some(session.line))
                } else if let Some(p) = self
                    .state
                    .proxied
                    .get(&(host, ip, peer.port))
                    .filter(|p| p.established <= t + 1_000_000 && p.closed.is_none_or(|c| c + 1_000_000 >= t))
                {
                    Decision::Known(p.tls.clone(), Some(p.line))
                } else if field == Some(true) {
                    Decision::Known(version_only(TlsVersion::Unknown), None)
                } else {
                    Decision::Undecided(instance)
                };
                proxied_tls = matches!(&decision, Decision::Known(_, Some(_)));
                msg.attempts.push(Attempt {
                    host: String::from_utf8_lossy(peer.host).into(),
                    ip,
                    port: peer.port,
                    transport: String::from_utf8_lossy(program.service).into(),
                    time: t,
                    tls: decision,
                    lines: Vec::new(),
                });
                msg.attempts.len() - 1
            }
        };
        proc.current = Some((key, index));
        if same.is_none() && proxied_tls {
            // tlsproxy logged this instance's TLS session.
            self.logs_tls(instance, out);
        }
        let Some(msg) = self.state.queue.get_mut(&key) else { return };
        let attempt = &mut msg.attempts[index];
        attempt.time = t;
        attempt.lines.push(loc);
        let rcpt_key = fnv1a_ignore_case(delivery.to);
        let domain = delivery.to.rsplit(|&b| b == b'@').next().filter(|_| delivery.to.contains(&b'@'));
        match msg.rcpts.iter_mut().find(|r| r.key == rcpt_key) {
            Some(rcpt) => {
                rcpt.attempt = index;
                rcpt.status = delivery.status;
            }
            None => msg.rcpts.push(Rcpt {
                key: rcpt_key,
                domain: domain.map(|d| String::from_utf8_lossy(d).to_ascii_lowercase().into()).unwrap_or_default(),
                attempt: index,
                status: delivery.status,
            }),
        }
    }

    fn emit_inbound(&mut self, key: QueueKey, out: &mut Emitter<'_>) {
        let Some(msg) = self.state.queue.get_mut(&key) else { return };
        let Some(inbound) = msg.inbound.take() else { return };
        let (tls, tls_line) = inbound.tls.unwrap_or_default();
        let mut event = msg.event(key, inbound.time, Direction::Inbound);
        event.tls = tls;
        event.peer = Peer { host: Some(inbound.host.into()), ip: inbound.ip, port: None };
        event.service = Some(inbound.service.into());
        event.recipients = msg.nrcpt;
        let lines = tls_line.into_iter().chain(inbound.lines).chain(msg.lines.iter().copied());
        event.evidence = evidence(&self.state.files, lines);
        out.event(event);
    }

    /// One event per relay the message's recipients finally went through.
    fn emit_outbound(&mut self, key: QueueKey, out: &mut Emitter<'_>) {
        let Some(msg) = self.state.queue.get_mut(&key) else { return };
        let rcpts = std::mem::take(&mut msg.rcpts);
        let attempts = std::mem::take(&mut msg.attempts);
        let mut done = vec![false; rcpts.len()];
        let mut held = Vec::new();
        for first in 0..rcpts.len() {
            if done[first] {
                continue;
            }
            let relay = &attempts[rcpts[first].attempt];
            let (mut recipients, mut domains, mut latest) = (0u32, Vec::<String>::new(), rcpts[first].attempt);
            let (mut deferred, mut delivered) = (false, false);
            for (i, rcpt) in rcpts.iter().enumerate().skip(first) {
                let a = &attempts[rcpt.attempt];
                if done[i] || a.ip != relay.ip || a.port != relay.port {
                    continue;
                }
                done[i] = true;
                recipients += 1;
                if !rcpt.domain.is_empty() && !domains.iter().any(|d| **d == *rcpt.domain) {
                    domains.push(rcpt.domain.to_string());
                }
                if a.time > attempts[latest].time {
                    latest = rcpt.attempt;
                }
                match rcpt.status {
                    DeliveryStatus::Sent => delivered = true,
                    DeliveryStatus::Deferred => deferred = true,
                    _ => {}
                }
            }
            let expired = deferred && msg.expired_at.is_some();
            let status = match (deferred, delivered) {
                _ if expired => Status::Failed,
                (true, _) => Status::Deferred,
                (false, true) => Status::Delivered,
                (false, false) => Status::Failed,
            };
            let last = &attempts[latest];
            let time = if expired { msg.expired_at.unwrap_or(last.time) } else { last.time };
            let mut event = msg.event(key, time, Direction::Outbound);
            event.peer = Peer { host: Some(last.host.to_string()), ip: Some(last.ip), port: last.port };
            event.transport = Some(last.transport.to_string());
            event.recipients = Some(recipients);
            event.recipient_domains = domains;
            event.status = Some(status);
            let (tls_line, undecided) = match &last.tls {
                Decision::Known(tls, line) => {
                    event.tls = tls.clone();
                    (*line, None)
                }
                Decision::Undecided(instance) => (None, Some(*instance)),
            };
            let relay_lines = attempts.iter().filter(|a| a.ip == last.ip && a.port == last.port);
            let lines =
                msg.lines.iter().copied().chain(tls_line).chain(relay_lines.flat_map(|a| a.lines.iter().copied()));
            event.evidence = evidence(&self.state.files, lines);
            match undecided {
                None => out.event(event),
                Some(instance) => held.push((instance, event)),
            }
        }
        for (instance, event) in held {
            self.undecided(instance, event, out);
        }
    }

    /// Holds an event of a silent connection until its instance's TLS logging is known.
    fn undecided(&mut self, instance: u32, mut event: MessageEvent, out: &mut Emitter<'_>) {
        let limit = self.limits.max_undecided;
        let entry = &mut self.state.instances[instance as usize];
        match self.smtp_tls_logged.or(entry.logs_tls) {
            Some(logged) => {
                event.tls.version = Some(if logged { TlsVersion::None } else { TlsVersion::Unknown });
                if entry.logs_tls == Some(false) {
                    entry.counted_unknown += 1;
                }
                out.event(event);
            }
            None => {
                entry.held.push(event);
                if entry.held.len() >= limit {
                    // So many deliveries and never a TLS line: smtp_tls_loglevel = 0.
                    entry.logs_tls = Some(false);
                    entry.counted_unknown += entry.held.len() as u64;
                    release(entry, TlsVersion::Unknown, out);
                }
            }
        }
    }

    /// The log showed a TLS line of this instance: its silent connections are plaintext.
    fn logs_tls(&mut self, instance: u32, out: &mut Emitter<'_>) {
        let entry = &mut self.state.instances[instance as usize];
        match entry.logs_tls {
            Some(true) => {}
            Some(false) => entry.logs_tls = Some(true),
            None => {
                entry.logs_tls = Some(true);
                release(entry, TlsVersion::None, out);
            }
        }
    }

    /// Instances that showed their first TLS line only after `max_undecided` silent deliveries:
    /// (syslog name, deliveries counted as unknown until then).
    pub fn late_tls_logging(&self) -> Vec<(String, u64)> {
        self.state
            .instances
            .iter()
            .filter(|i| i.logs_tls == Some(true) && i.counted_unknown > 0)
            .map(|i| (String::from_utf8_lossy(&i.name).into_owned(), i.counted_unknown))
            .collect()
    }

    /// A message whose end will not be seen: emits what it has.
    fn finish_message(&mut self, key: QueueKey, mut msg: Message, out: &mut Emitter<'_>) {
        if let Some(inbound) = msg.inbound.as_mut()
            && inbound.tls.is_none()
        {
            inbound.tls = Some((self.fallback_tls(inbound.instance), None));
        }
        let queued = msg.queued;
        self.state.queue.insert(key, msg);
        if queued {
            self.emit_inbound(key, out);
        }
        self.emit_outbound(key, out);
        self.state.queue.remove(&key);
    }

    /// Drops state the log has left behind.
    fn sweep(&mut self, now: Micros, out: &mut Emitter<'_>) {
        let stale: Vec<Session> = self.state.sessions.extract_if(|_, s| s.last < now - HOUR).map(|(_, s)| s).collect();
        for session in stale {
            self.close_session(session, None, None, out);
        }
        self.state.procs.retain(|_, p| p.last >= now - HOUR);
        self.state.proxied.retain(|_, p| p.established >= now - HOUR);
        let ttl = self.limits.message_ttl;
        let stale: Vec<(QueueKey, Message)> = self
            .state
            .queue
            .extract_if(|_, m| m.last < now - ttl || (!m.queued && m.inbound.is_some() && m.last < now - HOUR))
            .collect();
        for (key, msg) in stale {
            if msg.queued {
                self.evicted.messages += 1;
            }
            self.finish_message(key, msg, out);
        }
    }

    fn evict_oldest_sessions(&mut self, out: &mut Emitter<'_>) {
        let cutoff = tenth_oldest(self.state.sessions.values().map(|s| s.last));
        let old: Vec<Session> = self.state.sessions.extract_if(|_, s| s.last <= cutoff).map(|(_, s)| s).collect();
        for session in old {
            self.evicted.sessions += 1;
            self.close_session(session, None, None, out);
        }
    }

    fn evict_oldest_messages(&mut self, out: &mut Emitter<'_>) {
        let cutoff = tenth_oldest(self.state.queue.values().map(|m| m.last));
        let old: Vec<(QueueKey, Message)> = self.state.queue.extract_if(|_, m| m.last <= cutoff).collect();
        for (key, msg) in old {
            self.evicted.messages += 1;
            self.finish_message(key, msg, out);
        }
    }

    /// The end of the log: every open session and queued message emits what it has; mail
    /// still in the queue counts with its latest status (deferred).
    pub fn finish(&mut self, out: &mut Emitter<'_>) {
        let sessions: Vec<Session> = self.state.sessions.drain().map(|(_, s)| s).collect();
        for session in sessions {
            self.close_session(session, None, None, out);
        }
        let mut left: Vec<(QueueKey, Message)> = self.state.queue.drain().collect();
        left.sort_by_key(|(_, m)| m.last);
        for (key, msg) in left {
            self.finish_message(key, msg, out);
        }
        // Instances that never logged a TLS session: their silent connections' TLS is unknown.
        for instance in &mut self.state.instances {
            release(instance, TlsVersion::Unknown, out);
        }
    }

    /// The end of an incremental read: deliveries held while their instance's TLS logging is
    /// undecided count now, as TLS unknown, rather than wait in the checkpoint for deliveries a
    /// small host may take weeks to make. The instance stays undecided; should a TLS line come
    /// later, the report says how many counted as unknown before it.
    pub fn release_held(&mut self, out: &mut Emitter<'_>) {
        for instance in &mut self.state.instances {
            instance.counted_unknown += instance.held.len() as u64;
            release(instance, TlsVersion::Unknown, out);
        }
    }

    /// In-flight entries, for tests of boundedness.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        let held: usize = self.state.instances.iter().map(|i| i.held.len()).sum();
        self.state.sessions.len() + self.state.procs.len() + self.state.queue.len() + self.state.proxied.len() + held
    }
}

/// The host itself: a delivery there or mail from there is a hop inside this server.
fn is_this_host(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// TLS of which only the version is known (or that it was none or unknown).
fn version_only(version: TlsVersion) -> Tls {
    Tls { version: Some(version), ..Tls::default() }
}

/// Emits an instance's held events with the TLS version now known.
fn release(instance: &mut Instance, version: TlsVersion, out: &mut Emitter<'_>) {
    for mut event in instance.held.drain(..) {
        event.tls.version = Some(version);
        out.event(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Daemon, record};

    fn program(daemon: Daemon) -> Program<&'static [u8]> {
        let (service, name): (&[u8], &[u8]) = match daemon {
            Daemon::Smtpd => (b"smtpd", b"postfix/smtpd"),
            Daemon::Qmgr => (b"qmgr", b"postfix/qmgr"),
            _ => (b"smtp", b"postfix/smtp"),
        };
        Program { instance: name, service, daemon }
    }

    /// Messages that never leave the queue and sessions that never end do not grow memory
    /// past the limits; what is evicted still counts.
    #[test]
    fn state_stays_bounded_by_the_limits() {
        let limits = Limits { max_sessions: 100, max_messages: 1_000, message_ttl: 24 * HOUR, max_undecided: 10 };
        let mut correlator = Correlator::new(limits, &[], None);
        let file = correlator.add_file("t");
        let mut emitted = 0u64;
        let mut count = |_| emitted += 1;
        let mut out = Emitter::new(&mut count);
        let mut peak = 0;
        for i in 0..50_000u32 {
            let t = i64::from(i) * 1_000_000;
            let qid = format!("ABC{i:08X}");
            let lines = [
                (Daemon::Smtpd, i, "connect from a.example[192.0.2.1]".to_string()),
                (Daemon::Smtpd, i, format!("{qid}: client=a.example[192.0.2.1]")),
                (Daemon::Qmgr, 1, format!("{qid}: from=<a@example.net>, size=10, nrcpt=1 (queue active)")),
            ];
            for (n, (daemon, pid, message)) in lines.iter().enumerate() {
                let record = record(*daemon, message.as_bytes()).unwrap();
                let loc = Loc { file, line: u64::from(i) * 3 + n as u64 };
                let line = Line { time: t, loc, host: b"mx", pid: *pid, program: program(*daemon), record };
                correlator.feed(line, &mut out);
            }
            peak = peak.max(correlator.in_flight());
        }
        assert!(peak <= 1_000 + 100 + 10, "peak in-flight entries: {peak}");
        correlator.finish(&mut out);
        drop(out);
        assert_eq!(emitted, 50_000, "every accepted message is still counted");
    }
}

/// A checkpoint after any line, restored by a later run, gives the events of one run over the
/// whole log.
#[cfg(test)]
mod checkpoint_tests {
    use std::path::{Path, PathBuf};

    use chrono_tz::Tz;

    use super::*;
    use crate::syslog::{Clock, YearRule};
    use crate::{PostfixCollector, Tally};

    struct Harness {
        collector: PostfixCollector,
        limits: Limits,
        internal: Vec<IpNet>,
    }

    impl Harness {
        /// Default options, or limits so tight that evictions and undecided TLS logging
        /// happen mid-log too.
        fn new(tight: bool) -> Self {
            let options = serde_json::json!({ "paths": [], "timezone": "UTC", "year": 2026 });
            let collector = PostfixCollector { config: serde_json::from_value(options).unwrap(), inputs: Vec::new() };
            let mut limits = collector.limits();
            if tight {
                limits = Limits { max_sessions: 3, max_messages: 4, max_undecided: 2, ..limits };
            }
            let internal = ["127.0.0.0/24".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
            Harness { collector, limits, internal: internal.into() }
        }

        fn correlator(&self) -> Correlator<'_> {
            Correlator::new(self.limits, &self.internal, None)
        }

        /// Feeds `lines`, which start after line `first` of the log (blank lines keep the numbers).
        fn feed(&self, correlator: &mut Correlator<'_>, clock: &mut Clock, first: usize, lines: &[&[u8]]) -> Events {
            let mut text = vec![b'\n'; first];
            lines.iter().for_each(|line| text.extend_from_slice(line));
            let mut events = Vec::new();
            let mut push = |e: MessageEvent| events.push(serde_json::to_string(&e).unwrap());
            let mut out = Emitter::new(&mut push);
            let source = Box::new(std::io::Cursor::new(text));
            self.collector.read(source, "mail.log", clock, correlator, &mut Tally::default(), &mut out).unwrap();
            drop(out);
            events
        }

        /// The end of the log: the last events, and the warning about late TLS logging.
        fn finish(correlator: &mut Correlator<'_>) -> Events {
            let mut events = Vec::new();
            let mut push = |e: MessageEvent| events.push(serde_json::to_string(&e).unwrap());
            correlator.finish(&mut Emitter::new(&mut push));
            events.push(format!("late TLS logging: {:?}", correlator.late_tls_logging()));
            events
        }

        /// Events of one run over the whole log, and what it evicted.
        fn uninterrupted(&self, lines: &[&[u8]]) -> (Events, Evictions) {
            let mut correlator = self.correlator();
            let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
            let mut events = self.feed(&mut correlator, &mut clock, 0, lines);
            events.extend(Self::finish(&mut correlator));
            events.sort();
            (events, correlator.evicted)
        }

        /// Events of runs that each stop at the next cut with a checkpoint, the next restoring
        /// it in a new correlator; the last run finishes. Also: the largest saved queue.
        fn resumed(&self, lines: &[&[u8]], cuts: &[usize]) -> (Events, usize) {
            let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
            let (mut events, mut start, mut largest_queue) = (Vec::new(), 0, 0);
            let mut saved: Option<Vec<u8>> = None;
            for &end in cuts.iter().chain([&lines.len()]) {
                let mut correlator = self.correlator();
                if let Some(saved) = saved.take() {
                    correlator.restore(&saved).unwrap();
                    largest_queue = largest_queue.max(correlator.state.queue.len());
                }
                events.extend(self.feed(&mut correlator, &mut clock, start, &lines[start..end]));
                if end == lines.len() {
                    events.extend(Self::finish(&mut correlator));
                } else {
                    saved = Some(correlator.save());
                }
                start = end;
            }
            events.sort();
            (events, largest_queue)
        }
    }

    type Events = Vec<String>;

    /// State that only time or a line's neighbour decides: a sweep ten minutes after the last
    /// (with a session idle for nearly an hour), silent deliveries before smtp's first TLS line,
    /// a transaction's second recipient a second after its first, and a tlsproxy session
    /// closed before a delivery.
    const SYNTHETIC: &str = "\
Dec  4 10:00:00 mx1 postfix/smtpd[2]: connect from b.example[192.0.2.2]
Dec  4 10:09:00 mx1 postfix/smtpd[1]: connect from a.example[192.0.2.1]
Dec  4 10:09:01 mx1 postfix/smtpd[1]: 4A1B2C3D01: client=a.example[192.0.2.1]
Dec  4 10:09:02 mx1 postfix/qmgr[1500]: 4A1B2C3D01: from=<a@a.example>, size=100, nrcpt=2 (queue active)
Dec  4 10:30:00 mx1 postfix/pickup[1600]: 4A1B2C3D03: uid=1000 from=<app@corp.example>
Dec  4 10:30:00 mx1 postfix/qmgr[1500]: 4A1B2C3D03: from=<app@corp.example>, size=300, nrcpt=1 (queue active)
Dec  4 10:30:01 mx1 postfix/smtp[302]: 4A1B2C3D03: to=<d@plain.example>, relay=mx.plain.example[203.0.113.80]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Dec  4 10:30:01 mx1 postfix/qmgr[1500]: 4A1B2C3D03: removed
Dec  4 10:31:00 mx1 postfix/pickup[1600]: 4A1B2C3D04: uid=1000 from=<app@corp.example>
Dec  4 10:31:00 mx1 postfix/qmgr[1500]: 4A1B2C3D04: from=<app@corp.example>, size=400, nrcpt=1 (queue active)
Dec  4 10:31:01 mx1 postfix/smtp[302]: 4A1B2C3D04: to=<e@plain.example>, relay=mx.plain.example[203.0.113.80]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Dec  4 10:31:01 mx1 postfix/qmgr[1500]: 4A1B2C3D04: removed
Dec  4 11:05:00 mx1 postfix/pickup[1600]: 4A1B2C3D02: uid=1000 from=<app@corp.example>
Dec  4 11:05:00 mx1 postfix/qmgr[1500]: 4A1B2C3D02: from=<app@corp.example>, size=200, nrcpt=1 (queue active)
Dec  4 11:10:00 mx1 postfix/smtpd[1]: disconnect from a.example[192.0.2.1] ehlo=2 starttls=1 mail=1 rcpt=2 data=1 quit=1 commands=8
Dec  4 11:10:01 mx1 postfix/smtp[300]: Trusted TLS connection established to mx.p.example[203.0.113.25]:25: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)
Dec  4 11:10:02 mx1 postfix/smtp[300]: 4A1B2C3D01: to=<a@p.example>, relay=mx.p.example[203.0.113.25]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Dec  4 11:10:03 mx1 postfix/smtp[300]: 4A1B2C3D01: to=<b@p.example>, relay=mx.p.example[203.0.113.25]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Dec  4 11:10:04 mx1 postfix/qmgr[1500]: 4A1B2C3D01: removed
Dec  4 11:11:00 mx1 postfix/tlsproxy[1700]: CONNECT to [203.0.113.26]:25
Dec  4 11:11:00 mx1 postfix/tlsproxy[1700]: Verified TLS connection established to mx.q.example[203.0.113.26]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Dec  4 11:11:01 mx1 postfix/tlsproxy[1700]: DISCONNECT [203.0.113.26]:25
Dec  4 11:11:05 mx1 postfix/smtp[301]: 4A1B2C3D02: to=<c@q.example>, relay=mx.q.example[203.0.113.26]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Dec  4 11:11:05 mx1 postfix/qmgr[1500]: 4A1B2C3D02: removed
";

    fn lines(text: &[u8]) -> Vec<&[u8]> {
        text.split_inclusive(|&b| b == b'\n').collect()
    }

    fn logs() -> Vec<(PathBuf, Vec<u8>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let mut logs = Vec::new();
        for folder in ["lab", "cases"] {
            for dir in std::fs::read_dir(root.join(folder)).unwrap() {
                for file in std::fs::read_dir(dir.unwrap().path()).into_iter().flatten() {
                    let path = file.unwrap().path();
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    if ["mail.log", "input.log", "input.json"].contains(&name.as_str()) {
                        logs.push((path.clone(), std::fs::read(&path).unwrap()));
                    }
                }
            }
        }
        logs.sort();
        logs.push((PathBuf::from("synthetic"), SYNTHETIC.as_bytes().to_vec()));
        logs
    }

    fn assert_same(path: &Path, what: &str, expected: &Events, got: &Events) {
        if expected == got {
            return;
        }
        let missing: Vec<_> = expected.iter().filter(|e| !got.contains(e)).take(3).collect();
        let extra: Vec<_> = got.iter().filter(|e| !expected.contains(e)).take(3).collect();
        panic!(
            "{}, {what}: {} events instead of {}\nmissing: {missing:#?}\nextra: {extra:#?}",
            path.display(),
            got.len(),
            expected.len()
        );
    }

    /// A checkpoint after every line, each restored by the next run.
    #[test]
    fn a_checkpoint_after_every_line_changes_no_event() {
        let mut evicted = Evictions::default();
        for tight in [false, true] {
            let harness = Harness::new(tight);
            for (path, text) in logs() {
                let lines = lines(&text);
                let (expected, evictions) = harness.uninterrupted(&lines);
                assert!(!expected.is_empty(), "{}", path.display());
                evicted.messages += evictions.messages;
                evicted.sessions += evictions.sessions;
                let every: Vec<usize> = (1..lines.len()).collect();
                let (got, _) = harness.resumed(&lines, &every);
                assert_same(&path, &format!("checkpoint after every line, tight limits: {tight}"), &expected, &got);
            }
        }
        assert!(evicted.messages > 0 && evicted.sessions > 0, "the tight limits should evict: {evicted:?}");
    }

    /// One checkpoint, at ~50 places spread over each lab log (inside sessions, between a
    /// message's lines, while deliveries are deferred).
    #[test]
    fn one_checkpoint_anywhere_changes_no_event() {
        let harness = Harness::new(false);
        let mut largest_queue = 0;
        for (path, text) in logs().into_iter().filter(|(p, _)| p.components().any(|c| c.as_os_str() == "lab")) {
            let lines = lines(&text);
            let (expected, _) = harness.uninterrupted(&lines);
            let n = lines.len();
            for i in 1..50 {
                // Spread, with an uneven offset so the cuts do not fall into one line pattern.
                let cut = (i * n / 50 + i * 7 % 11).min(n - 1);
                let (got, queue) = harness.resumed(&lines, &[cut]);
                largest_queue = largest_queue.max(queue);
                assert_same(&path, &format!("checkpoint after line {cut}"), &expected, &got);
            }
        }
        assert!(largest_queue >= 5, "the checkpoints should hold messages in flight, at most {largest_queue} did");
    }

    #[test]
    fn a_checkpoint_that_cannot_be_read_is_refused() {
        let harness = Harness::new(false);
        let mut correlator = harness.correlator();
        let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
        let text =
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/retry-filter/mail.log")).unwrap();
        let lines = lines(&text);
        harness.feed(&mut correlator, &mut clock, 0, &lines[..300]);
        let saved = correlator.save();
        assert!(!correlator.state.queue.is_empty());

        let refused = |bytes: &[u8]| harness.correlator().restore(bytes).unwrap_err();
        for bytes in [&b""[..], b"not a checkpoint", &[0xff; 64], &saved[..saved.len() / 2]] {
            let why = refused(bytes);
            assert!(why.starts_with("the checkpoint of the postfix collector is damaged"), "{why}");
        }
        let other = mailflow_component::resume::save_versioned(7, &correlator.state);
        let why = refused(&other);
        assert!(why.contains("another version of the postfix collector (format 7, this one reads 1)"), "{why}");

        let mut state = State::default();
        state.sessions.insert((0, 1), Session { instance: 3, last: 0, tls: None, waiting: Vec::new() });
        let bad_index = mailflow_component::resume::save_versioned(STATE_VERSION, &state);
        assert!(refused(&bad_index).contains("index out of range"));

        // A refused checkpoint leaves the correlator as it was.
        let before = correlator.in_flight();
        assert!(correlator.restore(b"junk").is_err());
        assert_eq!(correlator.in_flight(), before);
        correlator.restore(&saved).unwrap();
        assert_eq!(correlator.in_flight(), before);
    }
}
