//! Records → events. OpenSMTPD names everything it logs: every line carries its session id, a
//! message is its `msgid`, and an envelope id (`evpid`) starts with its message's msgid. So
//! joining is lookup, not guesswork; what is left to decide is when a message is finished.
//!
//! - **Inbound**: an `smtp` session (from `smtp connected`) collects its TLS line; its
//!   `smtp message` line starts a message, whose `smtp envelope` lines follow at once (one per
//!   recipient, `nrcpt` of them). The event is emitted when they are all there or the session
//!   logs anything else. Sessions from `address=local` (`sendmail`, bounces) and from 127.0.0.1
//!   or ::1 (a content filter's return) are not inbound traffic.
//! - **Outbound**: an `mta` session (from `mta connecting`, which also starts a reconnection
//!   after failed opportunistic TLS) collects its TLS line and carries any number of messages.
//!   Each `mta delivery` line is one envelope's attempt through that session's relay, with that
//!   session's TLS. An envelope's latest attempt decides its relay and status; a message is
//!   finished when all its known envelopes have a final result (delivered, failed, expired,
//!   delivered locally), and then makes one event per relay its envelopes finally went through.
//!
//! Everything in flight is in [`State`], which is what a checkpoint saves.

use mailflow_component::logs::{Loc, evidence, utc_micros};
use std::net::IpAddr;
use std::sync::Arc;

use foldhash::HashMap;
use ipnet::IpNet;
use mailflow_component::Emitter;
use mailflow_core::{Direction, MessageEvent, Peer, Status, Tls, TlsVersion, Trust};
use serde::{Deserialize, Serialize};

use crate::parse::{Address, Outcome, Record, Side};

/// Microseconds since the Unix epoch.
pub type Micros = i64;

const MINUTE: Micros = 60_000_000;
const HOUR: Micros = 60 * MINUTE;
/// A session without a line for this long is over (OpenSMTPD's own timeouts are minutes).
const SESSION_TTL: Micros = HOUR;
/// How long a finished message is remembered, so an envelope of it seen only later (an alias
/// expansion, or a log that starts mid-way) does not count the message at the same relay again.
const DONE_TTL: Micros = HOUR;
/// Log lines kept as evidence per message; a message to thousands of recipients keeps the first.
const MAX_LINES: usize = 256;
/// Version of the saved state; another version is refused instead of misread.
const STATE_VERSION: u32 = 1;

/// Bounds on what is held in memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_messages: usize,
    pub message_ttl: Micros,
}

/// A session or message of one host: logs of several servers in one file stay apart.
type SessionKey = (u32, u64);
type MessageKey = (u32, u32);

/// What is in flight between two lines: all a later run needs to go on.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    files: Vec<String>,
    hosts: Vec<String>,
    smtp: HashMap<SessionKey, SmtpSession>,
    mta: HashMap<SessionKey, MtaSession>,
    messages: HashMap<MessageKey, Message>,
    done: HashMap<MessageKey, Done>,
    next_sweep: Micros,
}

/// Counts of one run that end up in the source's warnings.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Sessions and messages finished early to stay within `max_sessions` / `max_messages`.
    pub evicted_sessions: u64,
    pub evicted_messages: u64,
    /// Messages finished after `message_ttl_hours` without a line, still deferred.
    pub expired_messages: u64,
    /// Messages accepted in sessions whose start is not in the log: not counted as inbound,
    /// since the client (remote or local) is unknown.
    pub unknown_clients: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SmtpSession {
    last: Micros,
    /// `None` until `smtp connected` is seen.
    client: Option<Client>,
    tls: Option<SessionTls>,
    /// The `smtp connected` line.
    connect: Option<Loc>,
    pending: Option<Inbound>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Client {
    Local,
    Remote { ip: IpAddr, host: Option<String> },
}

/// The TLS a session logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionTls {
    version: TlsVersion,
    cipher: Option<String>,
    trust: Option<Trust>,
    /// The TLS line and the certificate check's.
    line: Loc,
    cert: Option<Loc>,
}

impl SessionTls {
    fn lines(&self) -> impl Iterator<Item = Loc> + '_ {
        std::iter::once(self.line).chain(self.cert)
    }
}

/// A message being received: the `smtp message` line and the envelope lines after it.
#[derive(Debug, Serialize, Deserialize)]
struct Inbound {
    msgid: u32,
    time: Micros,
    size: Option<u64>,
    nrcpt: Option<u32>,
    sender: Option<String>,
    rcpts: u32,
    domains: Vec<String>,
    lines: Vec<Loc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MtaSession {
    last: Micros,
    /// `None` until `mta connecting` is seen.
    conn: Option<Conn>,
    tls: Option<SessionTls>,
    /// The latest `mta connecting` line.
    connect: Option<Loc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Conn {
    scheme: String,
    ip: Option<IpAddr>,
    port: Option<u16>,
    host: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Message {
    last: Micros,
    /// Its `smtp message` line was seen and its envelope lines may still come.
    receiving: bool,
    size: Option<u64>,
    sender: Option<String>,
    /// The `smtp message` line (or, before 6.4, the first recipient's).
    line: Option<Loc>,
    envelopes: Vec<Envelope>,
    relays: Vec<Relay>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    evpid: u64,
    domain: Option<String>,
    /// The latest result; `None` before the first.
    state: Option<EnvelopeState>,
    /// When the latest result was logged.
    time: Micros,
    /// The relay (index into `Message::relays`) of the latest attempt that reached a server.
    relay: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum EnvelopeState {
    Delivered,
    Deferred,
    Failed,
    /// Delivered locally (mda, LMTP) or to a content filter: final, not traffic.
    Local,
}

/// One next hop a message's envelopes were handed to, as of the latest attempt there.
#[derive(Debug, Serialize, Deserialize)]
struct Relay {
    ip: IpAddr,
    port: Option<u16>,
    host: Option<String>,
    transport: Option<String>,
    tls: Tls,
    /// The session's `mta connecting`, TLS and certificate lines of the latest attempt.
    session_lines: [Option<Loc>; 3],
    /// The delivery lines.
    lines: Vec<Loc>,
}

/// A finished message: the relays it was counted at.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    time: Micros,
    relays: Vec<(IpAddr, Option<u16>)>,
}

pub struct Correlator {
    limits: Limits,
    internal: Vec<IpNet>,
    state: State,
    /// `state.files` as shared names for evidence.
    files: Vec<Arc<str>>,
    counts: Counts,
}

/// One relevant line and where it came from.
pub struct Line<'a> {
    pub time: Micros,
    pub loc: Loc,
    pub host: &'a [u8],
    pub record: Record<'a>,
}

impl Correlator {
    pub fn new(limits: Limits, internal: &[IpNet]) -> Self {
        Correlator {
            limits,
            internal: internal.to_vec(),
            state: State::default(),
            files: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// The index of a file name for evidence.
    pub fn file(&mut self, name: &str) -> u32 {
        if let Some(i) = self.state.files.iter().position(|f| f == name) {
            return i as u32;
        }
        self.state.files.push(name.to_string());
        self.files.push(name.into());
        (self.state.files.len() - 1) as u32
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn save(&self) -> Vec<u8> {
        mailflow_component::resume::save_versioned(STATE_VERSION, &self.state)
    }

    /// Continues from a saved state; `Err` says why it cannot (another format version, damage).
    pub fn restore(&mut self, saved: &[u8]) -> Result<(), String> {
        let state: State = mailflow_component::resume::load_versioned(saved, STATE_VERSION, "opensmtpd")?;
        self.files = state.files.iter().map(|f| Arc::from(f.as_str())).collect();
        self.state = state;
        Ok(())
    }

    pub fn feed(&mut self, line: Line<'_>, out: &mut Emitter<'_>) {
        if line.time >= self.state.next_sweep {
            self.sweep(line.time, out);
            self.state.next_sweep = line.time + 10 * MINUTE;
        }
        let host = self.host(line.host);
        let (t, loc) = (line.time, line.loc);
        match line.record {
            Record::Irrelevant => {}
            Record::Connected { session, address, host: name } => {
                let key = (host, session);
                if let Some(old) = self.state.smtp.remove(&key) {
                    self.close_smtp(key, old, out);
                }
                let client = match address {
                    Address::Local => Client::Local,
                    Address::Ip(ip) => Client::Remote { ip, host: host_name(name) },
                };
                self.make_room_for_session(out);
                let session =
                    SmtpSession { last: t, client: Some(client), tls: None, connect: Some(loc), pending: None };
                self.state.smtp.insert(key, session);
            }
            Record::Tls { session, side: Side::Smtp, version, cipher } => {
                let key = (host, session);
                self.flush_inbound(key, out);
                let s = self.smtp_session(key, t, out);
                s.tls = Some(SessionTls { version, cipher: text(cipher), trust: None, line: loc, cert: None });
            }
            Record::CertCheck { session, side: Side::Smtp, verified } => {
                let s = self.smtp_session((host, session), t, out);
                if let Some(tls) = &mut s.tls {
                    tls.trust = Some(if verified { Trust::Verified } else { Trust::Untrusted });
                    tls.cert = Some(loc);
                }
            }
            Record::Message { session, msgid, size, nrcpt } => {
                let key = (host, session);
                self.flush_inbound(key, out);
                self.smtp_session(key, t, out).pending = Some(Inbound {
                    msgid,
                    time: t,
                    size,
                    nrcpt,
                    sender: None,
                    rcpts: 0,
                    domains: Vec::new(),
                    lines: vec![loc],
                });
                let msg = self.message((host, msgid), t, out);
                msg.size = size.or(msg.size);
                msg.receiving = true;
                msg.line = Some(loc);
            }
            Record::Envelope { session, msgid, evpid, from, to, size } => {
                let key = (host, session);
                if self.state.smtp.get(&key).and_then(|s| s.pending.as_ref()).is_some_and(|p| p.msgid != msgid) {
                    self.flush_inbound(key, out);
                }
                let s = self.smtp_session(key, t, out);
                let pending = s.pending.get_or_insert_with(|| Inbound {
                    msgid,
                    time: t,
                    size,
                    nrcpt: None,
                    sender: None,
                    rcpts: 0,
                    domains: Vec::new(),
                    lines: Vec::new(),
                });
                if pending.sender.is_none() {
                    pending.sender = Some(String::from_utf8_lossy(from).into_owned());
                }
                pending.rcpts += 1;
                if let Some(d) = domain_of(to)
                    && !pending.domains.iter().any(|known| known.as_bytes().eq_ignore_ascii_case(d))
                {
                    pending.domains.push(String::from_utf8_lossy(d).to_ascii_lowercase());
                }
                push_line(&mut pending.lines, loc);
                let complete = pending.nrcpt.is_some_and(|n| pending.rcpts >= n);
                let msg = self.message((host, msgid), t, out);
                msg.size = msg.size.or(size);
                msg.receiving = true;
                if msg.line.is_none() {
                    msg.line = Some(loc);
                }
                if let Some(evpid) = evpid {
                    envelope(msg, evpid);
                }
                if complete {
                    self.flush_inbound(key, out);
                }
            }
            Record::Disconnected { session, side: Side::Smtp } => {
                if let Some(s) = self.state.smtp.remove(&(host, session)) {
                    self.close_smtp((host, session), s, out);
                }
            }
            Record::Connecting { session, scheme, ip, port, host: name } => {
                let key = (host, session);
                if !self.state.mta.contains_key(&key) {
                    self.make_room_for_session(out);
                }
                let s = self.state.mta.entry(key).or_default();
                s.last = t;
                s.conn = Some(Conn {
                    scheme: String::from_utf8_lossy(scheme).into_owned(),
                    ip,
                    port,
                    host: host_name(name),
                });
                s.tls = None;
                s.connect = Some(loc);
            }
            Record::Tls { session, side: Side::Mta, version, cipher } => {
                let s = self.mta_session((host, session), t, out);
                s.tls = Some(SessionTls { version, cipher: text(cipher), trust: None, line: loc, cert: None });
            }
            Record::CertCheck { session, side: Side::Mta, verified } => {
                let s = self.mta_session((host, session), t, out);
                if let Some(tls) = &mut s.tls {
                    tls.trust = Some(if verified { Trust::Verified } else { Trust::Untrusted });
                    tls.cert = Some(loc);
                }
            }
            Record::Disconnected { session, side: Side::Mta } => {
                self.state.mta.remove(&(host, session));
            }
            Record::Delivery { session, evpid, from, to, relay_ip, relay_host, outcome } => {
                self.delivery(host, t, loc, session, evpid, from, to, relay_ip, relay_host, outcome, out);
            }
            Record::LocalDelivery { evpid, outcome, .. } => {
                let state = match outcome {
                    Outcome::TempFail => EnvelopeState::Deferred,
                    Outcome::Ok | Outcome::PermFail => EnvelopeState::Local,
                };
                self.settle(host, evpid, t, loc, state, out);
            }
            Record::Expired { evpid } => self.settle(host, evpid, t, loc, EnvelopeState::Failed, out),
        }
    }

    /// One `mta delivery` line: an envelope's attempt through a session's relay.
    #[allow(clippy::too_many_arguments)]
    fn delivery(
        &mut self,
        host: u32,
        t: Micros,
        loc: Loc,
        session: u64,
        evpid: u64,
        from: &[u8],
        to: &[u8],
        relay_ip: Option<IpAddr>,
        relay_host: &[u8],
        outcome: Outcome,
        out: &mut Emitter<'_>,
    ) {
        let (conn, tls, session_lines) = match self.state.mta.get_mut(&(host, session)) {
            Some(s) => {
                s.last = t;
                let tls_lines = s.tls.as_ref().map(|tls| (tls.line, tls.cert));
                let lines = [s.connect, tls_lines.map(|l| l.0), tls_lines.and_then(|l| l.1)];
                (s.conn.clone(), session_tls(s.conn.is_some(), s.tls.as_ref()), lines)
            }
            None => (None, session_tls(false, None), [None; 3]),
        };
        // A relay that is not an address means no server was reached: not an attempt.
        let ip = relay_ip;
        let local = conn.as_ref().is_some_and(|c| c.scheme.eq_ignore_ascii_case("lmtp"))
            || ip.is_some_and(|ip| is_loopback_one(ip) || self.internal.iter().any(|n| n.contains(&ip)));
        let state = match outcome {
            Outcome::Ok if local => EnvelopeState::Local,
            Outcome::Ok => EnvelopeState::Delivered,
            Outcome::TempFail => EnvelopeState::Deferred,
            Outcome::PermFail => EnvelopeState::Failed,
        };
        let key = (host, (evpid >> 32) as u32);
        let relay_key = ip.map(|ip| (ip, conn.as_ref().filter(|c| c.ip == Some(ip)).and_then(|c| c.port)));
        if !self.state.messages.contains_key(&key)
            && let Some(done) = self.state.done.get(&key)
        {
            // A late envelope of a message already counted: at a relay it was counted at, or
            // not traffic at all, it changes nothing.
            if local || relay_key.is_none_or(|r| done.relays.contains(&r)) {
                return;
            }
        }
        let msg = self.message(key, t, out);
        if msg.sender.is_none() {
            msg.sender = Some(String::from_utf8_lossy(from).into_owned());
        }
        let relay = match (ip, local) {
            (Some(ip), false) => {
                let port = relay_key.and_then(|(_, port)| port);
                let index = match msg.relays.iter().position(|r| r.ip == ip && r.port == port) {
                    Some(i) => i,
                    None => {
                        msg.relays.push(Relay {
                            ip,
                            port,
                            host: None,
                            transport: None,
                            tls: Tls::default(),
                            session_lines: [None; 3],
                            lines: Vec::new(),
                        });
                        msg.relays.len() - 1
                    }
                };
                let r = &mut msg.relays[index];
                r.host = host_name(relay_host).or_else(|| conn.as_ref().and_then(|c| c.host.clone()));
                r.transport = conn.as_ref().map(|c| c.scheme.clone());
                r.tls = tls;
                r.session_lines = session_lines;
                push_line(&mut r.lines, loc);
                Some(index)
            }
            _ => None,
        };
        let env = envelope(msg, evpid);
        env.domain = env.domain.take().or_else(|| domain(to));
        env.state = Some(state);
        env.time = t;
        if relay.is_some() || local {
            env.relay = relay;
        }
        self.check_finished(key, out);
    }

    /// A final (or deferred) result of an envelope that is not a relay attempt.
    fn settle(&mut self, host: u32, evpid: u64, t: Micros, loc: Loc, state: EnvelopeState, out: &mut Emitter<'_>) {
        let key = (host, (evpid >> 32) as u32);
        if !self.state.messages.contains_key(&key) && self.state.done.contains_key(&key) {
            return;
        }
        let msg = self.message(key, t, out);
        let env = envelope(msg, evpid);
        // An expired envelope keeps the relay it was last deferred at: it failed there.
        env.state = Some(state);
        env.time = t;
        if let Some(relay) = env.relay.and_then(|i| msg.relays.get_mut(i)) {
            push_line(&mut relay.lines, loc);
        }
        self.check_finished(key, out);
    }

    fn check_finished(&mut self, key: MessageKey, out: &mut Emitter<'_>) {
        let Some(msg) = self.state.messages.get(&key) else { return };
        let finished = !msg.envelopes.is_empty()
            && msg.envelopes.iter().all(|e| matches!(e.state, Some(s) if s != EnvelopeState::Deferred));
        // A message still being received may have envelope lines to come.
        if finished
            && !msg.receiving
            && let Some(msg) = self.state.messages.remove(&key)
        {
            self.emit_outbound(key, msg, out);
        }
    }

    /// One event per relay the message's envelopes finally went through.
    fn emit_outbound(&mut self, key: MessageKey, msg: Message, out: &mut Emitter<'_>) {
        let mut counted = Vec::new();
        for (index, relay) in msg.relays.iter().enumerate() {
            let envelopes: Vec<&Envelope> = msg.envelopes.iter().filter(|e| e.relay == Some(index)).collect();
            if envelopes.is_empty() {
                continue;
            }
            let states = || envelopes.iter().filter_map(|e| e.state);
            let status =
                if states().any(|s| s == EnvelopeState::Deferred) || envelopes.iter().any(|e| e.state.is_none()) {
                    Status::Deferred
                } else if states().any(|s| s == EnvelopeState::Delivered) {
                    Status::Delivered
                } else {
                    Status::Failed
                };
            let time = envelopes.iter().map(|e| e.time).max().unwrap_or(msg.last);
            let mut event = MessageEvent::new(utc_micros(time), Direction::Outbound);
            event.tls = relay.tls.clone();
            event.peer = Peer { host: relay.host.clone(), ip: Some(relay.ip), port: relay.port };
            event.transport = relay.transport.clone();
            event.sender = msg.sender.clone();
            event.recipients = Some(envelopes.len() as u32);
            let mut domains: Vec<String> = Vec::new();
            for d in envelopes.iter().filter_map(|e| e.domain.as_ref()) {
                if !domains.contains(d) {
                    domains.push(d.clone());
                }
            }
            event.recipient_domains = domains;
            event.size = msg.size;
            event.status = Some(status);
            event.queue_id = Some(queue_id(key.1));
            let lines = msg.line.iter().chain(relay.session_lines.iter().flatten()).chain(&relay.lines).copied();
            event.evidence = evidence(&self.files, lines);
            out.event(event);
            counted.push((relay.ip, relay.port));
        }
        self.state.done.insert(key, Done { time: msg.last, relays: counted });
    }

    /// Emits the message a session is receiving, if any.
    fn flush_inbound(&mut self, key: SessionKey, out: &mut Emitter<'_>) {
        let Some(s) = self.state.smtp.get_mut(&key) else { return };
        let Some(inbound) = s.pending.take() else { return };
        let msgid = inbound.msgid;
        emit_inbound(&self.files, &mut self.counts, s, inbound, out);
        self.received((key.0, msgid), out);
    }

    /// A message's reception is over: if its envelopes already have their results, its
    /// outbound events.
    fn received(&mut self, key: MessageKey, out: &mut Emitter<'_>) {
        if let Some(msg) = self.state.messages.get_mut(&key) {
            msg.receiving = false;
            self.check_finished(key, out);
        }
    }

    /// A session ends: its message, if one was still being received, is complete.
    fn close_smtp(&mut self, key: SessionKey, mut s: SmtpSession, out: &mut Emitter<'_>) {
        if let Some(inbound) = s.pending.take() {
            let msgid = inbound.msgid;
            emit_inbound(&self.files, &mut self.counts, &s, inbound, out);
            self.received((key.0, msgid), out);
        }
    }

    fn smtp_session(&mut self, key: SessionKey, t: Micros, out: &mut Emitter<'_>) -> &mut SmtpSession {
        if !self.state.smtp.contains_key(&key) {
            self.make_room_for_session(out);
        }
        let s = self.state.smtp.entry(key).or_default();
        s.last = t;
        s
    }

    fn mta_session(&mut self, key: SessionKey, t: Micros, out: &mut Emitter<'_>) -> &mut MtaSession {
        if !self.state.mta.contains_key(&key) {
            self.make_room_for_session(out);
        }
        let s = self.state.mta.entry(key).or_default();
        s.last = t;
        s
    }

    fn message(&mut self, key: MessageKey, t: Micros, out: &mut Emitter<'_>) -> &mut Message {
        if !self.state.messages.contains_key(&key) {
            if self.state.messages.len() >= self.limits.max_messages {
                self.evict_messages(out);
            }
            self.state.done.remove(&key);
        }
        let msg = self.state.messages.entry(key).or_default();
        msg.last = msg.last.max(t);
        msg
    }

    fn host(&mut self, name: &[u8]) -> u32 {
        if let Some(i) = self.state.hosts.iter().position(|h| h.as_bytes() == name) {
            return i as u32;
        }
        self.state.hosts.push(String::from_utf8_lossy(name).into_owned());
        (self.state.hosts.len() - 1) as u32
    }

    /// Beyond `max_sessions`, the oldest tenth of the sessions is finished early.
    fn make_room_for_session(&mut self, out: &mut Emitter<'_>) {
        if self.state.smtp.len() + self.state.mta.len() < self.limits.max_sessions {
            return;
        }
        let mut all: Vec<(Micros, bool, SessionKey)> =
            self.state.smtp.iter().map(|(k, s)| (s.last, true, *k)).collect();
        all.extend(self.state.mta.iter().map(|(k, s)| (s.last, false, *k)));
        all.sort_unstable();
        let n = (all.len() / 10).max(1);
        for &(_, smtp, key) in &all[..n] {
            self.counts.evicted_sessions += 1;
            if smtp {
                if let Some(s) = self.state.smtp.remove(&key) {
                    self.close_smtp(key, s, out);
                }
            } else {
                self.state.mta.remove(&key);
            }
        }
    }

    /// Beyond `max_messages`, the oldest tenth is finished early with what is known.
    fn evict_messages(&mut self, out: &mut Emitter<'_>) {
        let mut all: Vec<(Micros, MessageKey)> = self.state.messages.iter().map(|(k, m)| (m.last, *k)).collect();
        all.sort_unstable();
        let n = (all.len() / 10).max(1);
        for &(_, key) in &all[..n] {
            if let Some(msg) = self.state.messages.remove(&key) {
                self.counts.evicted_messages += 1;
                self.emit_outbound(key, msg, out);
            }
        }
    }

    /// Ends what has been silent too long: sessions after an hour, messages after
    /// `message_ttl`, and forgets finished messages after an hour.
    fn sweep(&mut self, now: Micros, out: &mut Emitter<'_>) {
        let mut stale: Vec<(Micros, SessionKey)> =
            self.state.smtp.iter().filter(|(_, s)| s.last + SESSION_TTL < now).map(|(k, s)| (s.last, *k)).collect();
        stale.sort_unstable();
        for (_, key) in stale {
            if let Some(s) = self.state.smtp.remove(&key) {
                self.close_smtp(key, s, out);
            }
        }
        self.state.mta.retain(|_, s| s.last + SESSION_TTL >= now);
        let ttl = self.limits.message_ttl;
        let mut stale: Vec<(Micros, MessageKey)> =
            self.state.messages.iter().filter(|(_, m)| m.last + ttl < now).map(|(k, m)| (m.last, *k)).collect();
        stale.sort_unstable();
        for (_, key) in stale {
            if let Some(msg) = self.state.messages.remove(&key) {
                if !msg.relays.is_empty() {
                    self.counts.expired_messages += 1;
                }
                self.emit_outbound(key, msg, out);
            }
        }
        self.state.done.retain(|_, d| d.time + DONE_TTL >= now);
    }

    /// The end of a one-shot run: everything still held is emitted as it is known (a message
    /// still queued counts as deferred).
    pub fn finish(&mut self, out: &mut Emitter<'_>) {
        let mut sessions: Vec<(Micros, SessionKey)> = self.state.smtp.iter().map(|(k, s)| (s.last, *k)).collect();
        sessions.sort_unstable();
        for (_, key) in sessions {
            if let Some(s) = self.state.smtp.remove(&key) {
                self.close_smtp(key, s, out);
            }
        }
        let mut messages: Vec<(Micros, MessageKey)> = self.state.messages.iter().map(|(k, m)| (m.last, *k)).collect();
        messages.sort_unstable();
        for (_, key) in messages {
            if let Some(msg) = self.state.messages.remove(&key) {
                self.emit_outbound(key, msg, out);
            }
        }
        self.state.mta.clear();
        self.state.done.clear();
    }
}

/// The inbound event of a message a session received, if it is inbound traffic.
fn emit_inbound(files: &[Arc<str>], counts: &mut Counts, s: &SmtpSession, inbound: Inbound, out: &mut Emitter<'_>) {
    let (ip, peer_host) = match &s.client {
        Some(Client::Remote { ip, host }) if !is_loopback_one(*ip) => (*ip, host.clone()),
        Some(_) => return,
        None => {
            counts.unknown_clients += 1;
            return;
        }
    };
    let mut event = MessageEvent::new(utc_micros(inbound.time), Direction::Inbound);
    event.tls = match &s.tls {
        Some(tls) => tls_of(tls),
        None => Tls { version: Some(TlsVersion::None), cipher: None, trust: None },
    };
    event.peer = Peer { host: peer_host, ip: Some(ip), port: None };
    event.sender = inbound.sender;
    event.recipients = Some(inbound.nrcpt.unwrap_or(inbound.rcpts));
    event.recipient_domains = inbound.domains;
    event.size = inbound.size;
    event.queue_id = Some(queue_id(inbound.msgid));
    let tls_lines = s.tls.iter().flat_map(SessionTls::lines);
    let lines = s.connect.into_iter().chain(tls_lines).chain(inbound.lines.iter().copied());
    event.evidence = evidence(files, lines);
    out.event(event);
}

/// The envelope `evpid` of a message, added if new.
fn envelope(msg: &mut Message, evpid: u64) -> &mut Envelope {
    let i = match msg.envelopes.iter().position(|e| e.evpid == evpid) {
        Some(i) => i,
        None => {
            msg.envelopes.push(Envelope { evpid, domain: None, state: None, time: msg.last, relay: None });
            msg.envelopes.len() - 1
        }
    };
    &mut msg.envelopes[i]
}

/// The TLS of a delivery through a session: what it logged; plaintext when its start is in the
/// log without a TLS line; unknown when its start is not in the log.
fn session_tls(started: bool, tls: Option<&SessionTls>) -> Tls {
    match tls {
        Some(tls) => tls_of(tls),
        None if started => Tls { version: Some(TlsVersion::None), cipher: None, trust: None },
        None => Tls::default(),
    }
}

fn tls_of(tls: &SessionTls) -> Tls {
    let version = (tls.version != TlsVersion::Unknown).then_some(tls.version);
    Tls { version, cipher: tls.cipher.clone(), trust: tls.trust }
}

/// 127.0.0.1 and ::1: a content filter's side of the loop, not a peer.
fn is_loopback_one(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets() == [127, 0, 0, 1],
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

fn host_name(name: &[u8]) -> Option<String> {
    (!name.is_empty() && name != b"<unknown>" && name != b"(null)").then(|| String::from_utf8_lossy(name).into_owned())
}

fn text(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}

fn domain(address: &[u8]) -> Option<String> {
    domain_of(address).map(|d| String::from_utf8_lossy(d).to_ascii_lowercase())
}

fn domain_of(address: &[u8]) -> Option<&[u8]> {
    let at = memchr::memrchr(b'@', address)?;
    let d = &address[at + 1..];
    (!d.is_empty()).then_some(d)
}

fn push_line(lines: &mut Vec<Loc>, loc: Loc) {
    if lines.len() < MAX_LINES {
        lines.push(loc);
    }
}

/// A msgid as OpenSMTPD writes it: eight lowercase hex digits.
fn queue_id(msgid: u32) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    (0..8).rev().map(|i| char::from(DIGITS[(msgid >> (i * 4)) as usize & 0xf])).collect()
}
