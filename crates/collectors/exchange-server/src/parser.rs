//! The state between lines, and what each kind of line does to it.
//!
//! Protocol logs are read first: each SMTP session that carried mail is kept by its id with its
//! TLS, cipher, remote endpoint and connector. Tracking logs then give the messages; a RECEIVE
//! or SEND row names its session first in `source-context`, and the event takes that session's
//! TLS. An event whose session is not known yet waits a little (protocol logs are written in
//! buffers, and an incremental run may read a tracking row before its session's lines): until
//! the session appears, until the protocol logs read reach ten minutes past the event, or until
//! the tracking logs reach an hour past it.
//!
//! Everything held is bounded by log time and by counts: sessions expire `session_ttl` after
//! their last line (measured against the tracking logs' time), messages `message_ttl` after
//! their last row, and beyond the caps the oldest tenth goes first, counted in a warning.

use std::net::IpAddr;
use std::sync::Arc;

use foldhash::HashMap;
use ipnet::IpNet;
use mailflow_component::Emitter;
use mailflow_component::clock::Clock;
use mailflow_component::logs::{LineAt, Loc, LogParser, excerpt, tenth_oldest, utc_micros};
use mailflow_core::{Direction, Evidence, Location, MessageEvent, Peer, Status, Tls, TlsVersion};
use mailflow_exchange::{domains, is_accepted, is_builtin_connector, is_internal_send_connector};
use serde::{Deserialize, Serialize};

use crate::fields::{self, Layout, Protocol, Row, Tracking, starts_with};

pub type Micros = i64;
const MINUTE: Micros = 60_000_000;
const HOUR: Micros = 60 * MINUTE;
/// An event waits for its session until the protocol logs read are this far past it…
const SESSION_WAIT: Micros = 10 * MINUTE;
/// …or the tracking logs read are this far past it.
const SESSION_WAIT_MAX: Micros = HOUR;
/// How long a message is remembered after its last row, so a later row of it (another
/// recipient's copy, a second hand-over to the same host) counts no second time.
const SETTLE: Micros = HOUR;
/// Evidence lines kept per next hop.
const MAX_LINES: usize = 16;
/// Names kept for evidence and per-file headers before the unused ones are dropped.
const MAX_FILES: usize = 512;
/// Connector ids and cipher names kept; beyond, new ones are not recorded (only garbage makes
/// that many).
const MAX_STRINGS: usize = 4096;

/// Version of the saved state's layout; a checkpoint of another version is refused.
const STATE_VERSION: u32 = 1;

/// How much the parser may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_messages: usize,
    pub session_ttl: Micros,
    pub message_ttl: Micros,
}

/// What the parser knows of the site and the configuration.
pub struct Settings {
    pub limits: Limits,
    pub internal: Vec<IpNet>,
    pub accepted: Vec<String>,
    /// Whether `protocol_paths` is set: without, TLS is unknown and no event waits.
    pub protocol_logs: bool,
    /// Which input names were listed in `protocol_paths`; `None`: no lists to check against.
    pub listed: Option<Listed>,
}

/// Tells whether an input, by its name, was listed in `protocol_paths`.
pub type Listed = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Which side of SMTP a protocol log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Side {
    Receive,
    Send,
    /// Not said by `#Log-type:` nor the file name: either.
    Either,
}

impl Side {
    fn fits(self, wanted: Side) -> bool {
        self == Side::Either || wanted == Side::Either || self == wanted
    }
}

/// What `#Log-type:` says a file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Declared {
    Tracking,
    Protocol(Side),
    Other(String),
}

/// One input's header and name hints.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Input {
    name: Arc<str>,
    layout: Option<Layout>,
    declared: Option<Declared>,
    /// The last `#Log-type:` names another kind of log: its lines are ignored.
    other: bool,
    /// `MSGTRKMD`, `MSGTRKMS`, `MSGTRKMA`: the mailbox services' own hops, never the site's edge.
    mailbox: bool,
    /// From the file name: `RECV…` or `SEND…`.
    side: Side,
    /// A warning about this input was given (misplaced or another kind of log).
    warned: bool,
}

impl Input {
    fn new(name: &str) -> Self {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name).to_ascii_uppercase();
        let mailbox = ["MSGTRKMD", "MSGTRKMS", "MSGTRKMA"].iter().any(|p| base.starts_with(p));
        let side = match () {
            _ if base.starts_with("RECV") => Side::Receive,
            _ if base.starts_with("SEND") => Side::Send,
            _ => Side::Either,
        };
        Input { name: name.into(), layout: None, declared: None, other: false, mailbox, side, warned: false }
    }

    fn side(&self) -> Side {
        match self.declared {
            Some(Declared::Protocol(side)) if side != Side::Either => side,
            _ => self.side,
        }
    }
}

/// What a session's lines said about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum SessionTls {
    /// Its start was not read: nothing is known.
    Unseen,
    /// Connected, no TLS so far.
    Plain,
    /// STARTTLS or certificates, but no negotiated protocol logged (Exchange 2010).
    Started,
    /// The negotiation failed: the session went on without TLS, if at all.
    Failed,
    Version(TlsVersion),
}

/// One SMTP session of a protocol log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    side: Side,
    last: Micros,
    tls: SessionTls,
    cipher: Option<u32>,
    connector: Option<u32>,
    remote: Option<(IpAddr, u16)>,
    /// The Front End Transport session a Mailbox server's session was proxied for (`XPROXYFROM
    /// SID=…`): the TLS the client saw is that one's.
    proxy: Option<u64>,
    /// It carried a message (`MAIL FROM`); sessions that did not are dropped when they end.
    used: bool,
    /// The TLS line, else the first line read.
    line: Loc,
}

/// An event waiting for its SMTP session.
#[derive(Debug, Serialize, Deserialize)]
struct Waiting {
    seq: u64,
    time: Micros,
    side: Side,
    event: MessageEvent,
}

/// One message's hand-overs to next hops outside.
#[derive(Debug, Serialize, Deserialize)]
struct OutMsg {
    seq: u64,
    last: Micros,
    hops: Vec<Hop>,
    rcpts: Vec<Rcpt>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Hop {
    id: u64,
    /// Counted: its event was emitted (or waits for its session).
    counted: bool,
    /// The latest deferred attempt, emitted as deferred if nothing settles it.
    held: Option<Held>,
    lines: Vec<Loc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Held {
    /// The attempt's session, named in its row.
    session: Option<u64>,
    /// The event has its session's TLS already (looked up at the attempt).
    resolved: bool,
    event: MessageEvent,
}

/// A recipient's latest attempt.
#[derive(Debug, Serialize, Deserialize)]
struct Rcpt {
    key: u64,
    hop: u32,
    deferred: bool,
    domain: Box<str>,
}

/// Everything a later run needs to go on where this one stopped.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    files: Vec<Arc<str>>,
    strings: Vec<Arc<str>>,
    inputs: Vec<Input>,
    sessions: HashMap<u64, Session>,
    waiting: HashMap<u64, Vec<Waiting>>,
    waiting_count: usize,
    /// Inbound messages counted, by (message, peer), with their last row's time.
    inbound: HashMap<u64, Micros>,
    outbound: HashMap<u64, OutMsg>,
    tracking_time: Option<Micros>,
    protocol_time: Option<Micros>,
    next_sweep: Micros,
    next_wait_sweep: Micros,
    seq: u64,
}

impl State {
    /// Indexes a damaged checkpoint could get wrong, and that would panic later.
    fn check(&self) -> Result<(), String> {
        let file_ok = |loc: &Loc| (loc.file as usize) < self.files.len();
        let string_ok = |s: Option<u32>| s.is_none_or(|s| (s as usize) < self.strings.len());
        let sessions_ok =
            self.sessions.values().all(|s| file_ok(&s.line) && string_ok(s.cipher) && string_ok(s.connector));
        let messages_ok = self.outbound.values().all(|m| {
            m.rcpts.iter().all(|r| (r.hop as usize) < m.hops.len())
                && m.hops.iter().all(|h| h.lines.iter().all(file_ok))
        });
        if sessions_ok && messages_ok {
            Ok(())
        } else {
            Err("the checkpoint of the exchange collector is damaged (an index out of range)".into())
        }
    }
}

/// Counts of one run, for its warnings and notes.
#[derive(Debug, Default)]
struct Tally {
    evicted_sessions: u64,
    evicted_messages: u64,
    /// Events whose TLS is unknown: no protocol logs configured, none read, the row named no
    /// session, the session was not in the protocol logs.
    tls_unconfigured: u64,
    tls_no_protocol_read: u64,
    tls_no_session: u64,
    tls_not_found: u64,
}

pub struct Parser {
    settings: Settings,
    state: State,
    /// Index of the current input in `state.inputs`, and of its name in `state.files`.
    current: usize,
    file: u32,
    tally: Tally,
}

/// A row of a tracking log that may be traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Receive,
    Send,
    Fail,
    Defer,
}

/// What one protocol line does to its session.
enum Action {
    Connect,
    Disconnect,
    StartTls,
    Used,
    Proxy(u64),
    Tls(TlsVersion, Option<String>),
    TlsFailed,
}

impl Parser {
    pub fn new(settings: Settings) -> Self {
        let mut state = State::default();
        state.inputs.push(Input::new(""));
        state.files.push("".into());
        state.next_sweep = Micros::MIN;
        state.next_wait_sweep = Micros::MIN;
        Parser { settings, state, current: 0, file: 0, tally: Tally::default() }
    }

    fn loc(&self, at: &LineAt<'_>) -> Loc {
        Loc { file: self.file, line: at.line }
    }

    fn location(&self, loc: Loc) -> Location {
        Location { file: self.state.files.get(loc.file as usize).cloned(), line: Some(loc.line), page: None }
    }

    fn intern(&mut self, text: &str) -> Option<u32> {
        if text.is_empty() {
            return None;
        }
        if let Some(i) = self.state.strings.iter().position(|s| **s == *text) {
            return Some(i as u32);
        }
        if self.state.strings.len() >= MAX_STRINGS {
            return None;
        }
        self.state.strings.push(text.into());
        Some((self.state.strings.len() - 1) as u32)
    }

    fn string(&self, i: Option<u32>) -> Option<&str> {
        i.and_then(|i| self.state.strings.get(i as usize)).map(|s| &**s)
    }

    fn next_seq(&mut self) -> u64 {
        self.state.seq += 1;
        self.state.seq
    }

    fn is_internal(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || self.settings.internal.iter().any(|n| n.contains(&ip))
    }

    /// Drops file names no held state refers to, once there are many (an ingest that runs for
    /// months meets a new file name every hour).
    fn compact_files(&mut self) {
        if self.state.files.len() < MAX_FILES {
            return;
        }
        let mut used = vec![false; self.state.files.len()];
        used[self.file as usize] = true;
        for s in self.state.sessions.values() {
            used[s.line.file as usize] = true;
        }
        for m in self.state.outbound.values() {
            for h in &m.hops {
                h.lines.iter().for_each(|l| used[l.file as usize] = true);
            }
        }
        let mut map = vec![0u32; used.len()];
        let mut files = Vec::new();
        for (i, name) in self.state.files.iter().enumerate() {
            if used[i] {
                map[i] = files.len() as u32;
                files.push(name.clone());
            }
        }
        for s in self.state.sessions.values_mut() {
            s.line.file = map[s.line.file as usize];
        }
        for m in self.state.outbound.values_mut() {
            for h in &mut m.hops {
                h.lines.iter_mut().for_each(|l| l.file = map[l.file as usize]);
            }
        }
        self.file = map[self.file as usize];
        self.state.files = files;
    }

    // ---- headers ----

    fn header(&mut self, text: &[u8], at: LineAt<'_>, out: &mut Emitter<'_>) {
        if let Some(rest) = strip(text, b"#Fields:") {
            let layout = match fields::layout(rest) {
                Ok(layout) => layout,
                Err(why) => return out.skip(at, why),
            };
            let input = &mut self.state.inputs[self.current];
            input.layout = layout;
            if input.layout.is_none() && !input.other {
                input.other = true;
                if !input.warned {
                    input.warned = true;
                    out.warn(format!(
                        "{}: its #Fields: are neither a message tracking log's nor an SMTP protocol log's; its lines are \
                         ignored",
                        at.file
                    ));
                }
            }
            self.check_list(at.file, out);
        } else if let Some(rest) = strip(text, b"#Log-type:") {
            let name = String::from_utf8_lossy(rest).trim().to_string();
            let lower = name.to_ascii_lowercase();
            let declared = match () {
                _ if lower.contains("message tracking") => Declared::Tracking,
                _ if lower.contains("smtp receive protocol") => Declared::Protocol(Side::Receive),
                _ if lower.contains("smtp send protocol") => Declared::Protocol(Side::Send),
                _ => Declared::Other(name.chars().take(80).collect()),
            };
            let input = &mut self.state.inputs[self.current];
            input.other = matches!(declared, Declared::Other(_));
            input.layout = None;
            if let (Declared::Other(kind), false) = (&declared, input.warned) {
                input.warned = true;
                out.warn(format!(
                    "{}: is a {kind}, not a message tracking or SMTP protocol log; its lines are ignored",
                    at.file
                ));
            }
            input.declared = Some(declared);
        }
        // #Software, #Version, #Date and comments say nothing the lines need.
    }

    /// Warns once when a file of one kind was listed among the other kind's inputs: protocol
    /// logs must be read before the tracking logs that refer to their sessions.
    fn check_list(&mut self, name: &str, out: &mut Emitter<'_>) {
        let Some(listed) = &self.settings.listed else { return };
        let input = &self.state.inputs[self.current];
        if input.warned || input.other {
            return;
        }
        let protocol = match &input.layout {
            Some(Layout::Protocol(_)) => true,
            Some(Layout::Tracking(_)) => false,
            None => return,
        };
        let in_protocol_paths = listed(name);
        let message = match (protocol, in_protocol_paths) {
            (true, false) => format!(
                "{name}: is an SMTP protocol log but is listed in `paths`; it is read as one, but list it in \
                 `protocol_paths` so it is read before the tracking logs that refer to its sessions"
            ),
            (false, true) => format!(
                "{name}: is a message tracking log but is listed in `protocol_paths`; it is read as one, but list it \
                 in `paths`"
            ),
            _ => return,
        };
        self.state.inputs[self.current].warned = true;
        out.warn(message);
    }

    // ---- protocol logs ----

    fn protocol_line(&mut self, text: &[u8], at: LineAt<'_>, cols: &Protocol, out: &mut Emitter<'_>) {
        let row = match Row::split(text) {
            Ok(row) => row,
            Err(why) => return out.skip(at, format!("expected a protocol log line, found {why}: {}", excerpt(text))),
        };
        if row.len() != usize::from(cols.count) {
            return out.skip(
                at,
                format!(
                    "expected {} comma-separated fields as the #Fields: header names, found {}: {}",
                    cols.count,
                    row.len(),
                    excerpt(text)
                ),
            );
        }
        let data = cols.data.map_or(&b""[..], |i| row.raw(usize::from(i))).trim_ascii();
        let context = cols.context.map_or(&b""[..], |i| row.raw(usize::from(i))).trim_ascii();
        let action = match row.raw(usize::from(cols.event)) {
            b"+" => Action::Connect,
            b"-" => Action::Disconnect,
            b"<" | b">" => {
                if data.eq_ignore_ascii_case(b"STARTTLS") || data.eq_ignore_ascii_case(b"X-ANONYMOUSTLS") {
                    Action::StartTls
                } else if starts_with(data, b"MAIL FROM:") {
                    Action::Used
                } else if starts_with(data, b"XPROXYFROM ") {
                    match proxy_sid(data) {
                        Some(sid) => Action::Proxy(sid),
                        None => {
                            return out
                                .skip(at, format!("expected XPROXYFROM SID=<16 hex digits> …: {}", excerpt(data)));
                        }
                    }
                } else {
                    return;
                }
            }
            b"*" => {
                let info = if context.is_empty() { data } else { context };
                if starts_with(info, b"TLS protocol ") {
                    match tls_line(info) {
                        Some((version, cipher)) => Action::Tls(version, cipher),
                        None => {
                            return out.skip(
                                at,
                                format!("expected TLS protocol <name> negotiation succeeded …: {}", excerpt(info)),
                            );
                        }
                    }
                } else if starts_with(info, b"TLS negotiation failed") {
                    Action::TlsFailed
                } else if info.eq_ignore_ascii_case(b"receiving message")
                    || starts_with(info, b"sending message")
                    || starts_with(data, b"sending message")
                {
                    Action::Used
                } else if starts_with(info, b"Received certificate")
                    || starts_with(info, b"Sending certificate")
                    || starts_with(info, b"Remote certificate")
                {
                    Action::StartTls
                } else {
                    return;
                }
            }
            other => return out.skip(at, format!("expected an event of +, -, <, > or *, found {}", excerpt(other))),
        };
        let Some(sid) = fields::session_id(row.raw(usize::from(cols.session))) else {
            return out.skip(
                at,
                format!("expected a session-id of 16 hex digits: {}", excerpt(row.raw(usize::from(cols.session)))),
            );
        };
        let Some(time) = fields::utc_micros(row.raw(usize::from(cols.date))) else {
            return out.skip(
                at,
                format!(
                    "expected a UTC date-time like 2026-12-04T15:00:00.123Z: {}",
                    excerpt(row.raw(usize::from(cols.date)))
                ),
            );
        };
        let protocol_time = self.state.protocol_time.map_or(time, |t| t.max(time));
        self.state.protocol_time = Some(protocol_time);
        let loc = self.loc(&at);
        let side = self.state.inputs[self.current].side();

        if !self.state.sessions.contains_key(&sid) || matches!(action, Action::Connect) {
            if self.state.sessions.len() >= self.settings.limits.max_sessions {
                self.evict_sessions();
            }
            let connector = cols.connector.map(|i| row.text(Some(i))).unwrap_or_default();
            let connector = self.intern(&connector);
            let remote = cols.remote.and_then(|i| fields::endpoint(row.raw(usize::from(i))));
            let tls = if matches!(action, Action::Connect) { SessionTls::Plain } else { SessionTls::Unseen };
            let session =
                Session { side, last: time, tls, cipher: None, connector, remote, proxy: None, used: false, line: loc };
            self.state.sessions.insert(sid, session);
        }
        let cipher = match &action {
            Action::Tls(_, Some(cipher)) => self.intern(cipher),
            _ => None,
        };
        let disconnect = matches!(action, Action::Disconnect);
        let Some(session) = self.state.sessions.get_mut(&sid) else { return };
        session.last = session.last.max(time);
        let mut wake = false;
        match action {
            Action::Connect => {}
            Action::Disconnect => wake = true,
            Action::StartTls => {
                if !matches!(session.tls, SessionTls::Version(_)) {
                    session.tls = SessionTls::Started;
                }
            }
            Action::Used => {
                session.used = true;
                wake = true;
            }
            Action::Proxy(fe) => {
                session.proxy = Some(fe);
                session.used = true;
            }
            Action::Tls(version, _) => {
                session.tls = SessionTls::Version(version);
                session.cipher = cipher;
                session.line = loc;
            }
            Action::TlsFailed => {
                session.tls = SessionTls::Failed;
                session.line = loc;
            }
        }
        if wake && let Some(waiting) = self.state.waiting.remove(&sid) {
            self.state.waiting_count -= waiting.len();
            for w in waiting {
                self.settle(w.event, Some((sid, w.side)), w.seq, out);
            }
        }
        if disconnect && self.state.sessions.get(&sid).is_some_and(|s| !s.used) {
            // A session that carried no message: a probe, a rejected or an idle connection.
            self.state.sessions.remove(&sid);
        }
        if protocol_time >= self.state.next_wait_sweep && self.state.waiting_count > 0 {
            self.state.next_wait_sweep = protocol_time + MINUTE;
            self.sweep_waiting(|w| w.time + SESSION_WAIT <= protocol_time, out);
        }
    }

    fn evict_sessions(&mut self) {
        let cut = tenth_oldest(self.state.sessions.values().map(|s| s.last));
        let before = self.state.sessions.len();
        self.state.sessions.retain(|_, s| s.last > cut);
        self.tally.evicted_sessions += (before - self.state.sessions.len()) as u64;
    }

    // ---- tracking logs ----

    fn tracking_row(&mut self, text: &[u8], at: LineAt<'_>, cols: &Tracking, mailbox: bool, out: &mut Emitter<'_>) {
        let row = match Row::split(text) {
            Ok(row) => row,
            Err(why) => {
                return out.skip(at, format!("expected a message tracking log line, found {why}: {}", excerpt(text)));
            }
        };
        if row.len() != usize::from(cols.count) {
            return out.skip(
                at,
                format!(
                    "expected {} comma-separated fields as the #Fields: header names, found {}: {}",
                    cols.count,
                    row.len(),
                    excerpt(text)
                ),
            );
        }
        let source = row.raw(usize::from(cols.source)).trim_ascii();
        let event = row.raw(usize::from(cols.event)).trim_ascii();
        let smtp = source.eq_ignore_ascii_case(b"SMTP");
        let kind = match () {
            _ if smtp && event.eq_ignore_ascii_case(b"RECEIVE") => Kind::Receive,
            _ if smtp && event.eq_ignore_ascii_case(b"SEND") => Kind::Send,
            _ if event.eq_ignore_ascii_case(b"FAIL") => Kind::Fail,
            _ if event.eq_ignore_ascii_case(b"DEFER") => Kind::Defer,
            // DELIVER, HAREDIRECT, AGENTINFO, RESUBMIT, DSN, … and STOREDRIVER submissions.
            _ => return,
        };
        if mailbox {
            // The mailbox services' hops to and from the Transport service.
            return;
        }
        if std::str::from_utf8(text).is_err() {
            return out.skip(at, format!("expected UTF-8 text: {}", excerpt(text)));
        }
        let Some(time) = fields::utc_micros(row.raw(usize::from(cols.date))) else {
            return out.skip(
                at,
                format!(
                    "expected a UTC date-time like 2026-12-04T15:00:00.123Z: {}",
                    excerpt(row.raw(usize::from(cols.date)))
                ),
            );
        };
        let mut addresses = [None; 3];
        for (slot, col) in addresses.iter_mut().zip([cols.client_ip, cols.original_client_ip, cols.server_ip]) {
            let raw = col.map_or(&b""[..], |i| row.raw(usize::from(i)));
            match fields::ip(raw) {
                Ok(ip) => *slot = ip,
                Err(()) => return out.skip(at, format!("expected an IP address: {}", excerpt(raw))),
            }
        }
        let [client, original, server] = addresses;
        self.tracking_clock(time, out);
        let loc = self.loc(&at);
        match kind {
            Kind::Receive => self.receive(&row, cols, time, loc, client, original, server, out),
            _ => self.outbound_row(&row, cols, kind, smtp, time, loc, server, out),
        }
    }

    /// Advances the tracking logs' clock; once a minute of it, expires what is held.
    fn tracking_clock(&mut self, time: Micros, out: &mut Emitter<'_>) {
        let now = self.state.tracking_time.map_or(time, |t| t.max(time));
        self.state.tracking_time = Some(now);
        if now < self.state.next_sweep {
            return;
        }
        self.state.next_sweep = now + MINUTE;
        let session_cut = now.saturating_sub(self.settings.limits.session_ttl);
        self.state.sessions.retain(|_, s| s.last >= session_cut);
        self.state.inbound.retain(|_, t| *t >= now - SETTLE);
        let ttl_cut = now.saturating_sub(self.settings.limits.message_ttl);
        let mut done: Vec<(u64, u64)> = self
            .state
            .outbound
            .iter()
            .filter(|(_, m)| m.last < ttl_cut || (m.last < now - SETTLE && !m.holds()))
            .map(|(k, m)| (m.seq, *k))
            .collect();
        done.sort_unstable();
        for (_, key) in done {
            if let Some(msg) = self.state.outbound.remove(&key) {
                self.finish_message(msg, out);
            }
        }
        if self.state.waiting_count > 0 {
            self.sweep_waiting(|w| w.time + SESSION_WAIT_MAX <= now, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn receive(
        &mut self,
        row: &Row<'_>,
        cols: &Tracking,
        time: Micros,
        loc: Loc,
        client: Option<IpAddr>,
        original: Option<IpAddr>,
        server: Option<IpAddr>,
        out: &mut Emitter<'_>,
    ) {
        let Some(peer) = original.filter(|ip| !ip.is_unspecified()).or(client) else {
            return out.skip(
                self.location(loc),
                "expected client-ip or original-client-ip in an SMTP RECEIVE row".to_string(),
            );
        };
        // Exchange's own services handing mail to the Transport service on the same server.
        if peer.is_loopback() || server.is_some_and(|s| s.to_canonical() == peer.to_canonical()) {
            return;
        }
        let message = message_key(row, cols);
        let key = fnv1a(&[&message.to_le_bytes(), peer.to_canonical().to_string().as_bytes()]);
        if self.state.inbound.insert(key, time).is_some() {
            // Another row of a message already counted (one per recipient, or a copy).
            return;
        }
        if self.state.inbound.len() > self.settings.limits.max_messages {
            let cut = tenth_oldest(self.state.inbound.values().copied());
            self.state.inbound.retain(|_, t| *t > cut);
        }
        let mut event = MessageEvent::new(utc_micros(time), Direction::Inbound);
        let hostname = row.text(cols.client_hostname);
        let host = (Some(peer) == client && !hostname.is_empty()).then(|| hostname.into_owned());
        event.peer = Peer { host, ip: Some(peer), port: None };
        let connector = row.text(cols.connector);
        event.connector = named(&connector);
        event.service = (!connector.is_empty()).then(|| connector.into_owned());
        self.envelope(&mut event, row, cols);
        let recipients = row.text(cols.recipients);
        let list: Vec<&str> = split_addresses(&recipients).collect();
        event.recipients = Some(count_of(&list, row.text(cols.recipient_count).parse().ok()));
        event.recipient_domains = domains(list.iter().copied());
        event.evidence = Evidence(vec![self.location(loc)]);
        let session = fields::session_id(row.raw(cols.source_context.map_or(usize::MAX, usize::from)));
        let seq = self.next_seq();
        self.settle(event, session.map(|s| (s, Side::Receive)), seq, out);
    }

    /// Sender, size and ids, which every event of a row shares.
    fn envelope(&self, event: &mut MessageEvent, row: &Row<'_>, cols: &Tracking) {
        let return_path = row.text(cols.return_path);
        let sender = if return_path.is_empty() || return_path == "<>" { row.text(cols.sender) } else { return_path };
        event.sender = (!sender.is_empty() && sender != "<>").then(|| sender.into_owned());
        event.size = row.text(cols.bytes).parse().ok();
        let message_id = row.text(cols.message_id);
        event.message_id = (!message_id.is_empty()).then(|| message_id.into_owned());
        let internal = row.text(cols.internal_id);
        event.queue_id = (!internal.is_empty()).then(|| internal.into_owned());
    }

    #[allow(clippy::too_many_arguments)]
    fn outbound_row(
        &mut self,
        row: &Row<'_>,
        cols: &Tracking,
        kind: Kind,
        smtp: bool,
        time: Micros,
        loc: Loc,
        server: Option<IpAddr>,
        out: &mut Emitter<'_>,
    ) {
        let connector = row.text(cols.connector);
        let host = row.text(cols.server_hostname).to_ascii_lowercase();
        let recipients = row.text(cols.recipients);
        let list: Vec<&str> = split_addresses(&recipients).collect();
        let message = message_key(row, cols);
        let identity = match server {
            Some(ip) => Some(ip.to_canonical().to_string()),
            None if !host.is_empty() => Some(host.clone()),
            None => None,
        };
        // FAIL and DEFER of other sources (QUEUE, DNS, ROUTING) reached no server.
        let leaves = smtp && identity.is_some() && self.leaves(&connector, server, &list);
        if !leaves {
            if kind == Kind::Fail {
                self.fail_held(message, &list, time, loc, out);
            }
            return;
        }
        let identity = identity.unwrap_or_default();
        let hop_id = fnv1a(&[identity.as_bytes(), connector.to_ascii_lowercase().as_bytes()]);
        let status = match kind {
            Kind::Send => Status::Delivered,
            Kind::Fail => Status::Failed,
            _ => Status::Deferred,
        };
        let mut event = MessageEvent::new(utc_micros(time), Direction::Outbound);
        event.peer = Peer { host: (!host.is_empty()).then(|| host.clone()), ip: server, port: None };
        event.transport = (!connector.is_empty()).then(|| connector.to_string());
        event.connector = named(&connector);
        self.envelope(&mut event, row, cols);
        event.recipients = Some(count_of(&list, row.text(cols.recipient_count).parse().ok()));
        event.recipient_domains = domains(list.iter().copied());
        event.status = Some(status);
        let session = fields::session_id(row.raw(cols.source_context.map_or(usize::MAX, usize::from)));

        if !self.state.outbound.contains_key(&message) && self.state.outbound.len() >= self.settings.limits.max_messages
        {
            self.evict_messages(out);
        }
        let seq = self.next_seq();
        let msg = self.state.outbound.entry(message).or_insert_with(|| OutMsg {
            seq,
            last: time,
            hops: Vec::new(),
            rcpts: Vec::new(),
        });
        msg.last = msg.last.max(time);
        let hop = match msg.hops.iter().position(|h| h.id == hop_id) {
            Some(i) => i,
            None => {
                msg.hops.push(Hop { id: hop_id, counted: false, held: None, lines: Vec::new() });
                msg.hops.len() - 1
            }
        };
        for address in &list {
            let key = fnv1a(&[address.to_ascii_lowercase().as_bytes()]);
            let deferred = status == Status::Deferred;
            match msg.rcpts.iter_mut().find(|r| r.key == key) {
                Some(r) => {
                    r.hop = hop as u32;
                    r.deferred = deferred;
                }
                None => {
                    let domain = address.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
                    msg.rcpts.push(Rcpt { key, hop: hop as u32, deferred, domain: domain.into() })
                }
            }
        }
        let hop_index = hop;
        let hop = &mut msg.hops[hop];
        if hop.counted {
            // This message was already counted at this next hop.
            return;
        }
        if hop.lines.len() < MAX_LINES {
            hop.lines.push(loc);
        }
        if status == Status::Deferred {
            // The attempt's TLS now: its session may be long gone when the outcome is known.
            let mut resolved = false;
            if let Some(sid) = session.filter(|_| self.settings.protocol_logs && self.state.protocol_time.is_some())
                && let Ok((found, hub)) = self.lookup(sid, Side::Send)
            {
                self.apply(&mut event, &found, hub);
                resolved = true;
            }
            let held = Some(Held { session, resolved, event });
            if let Some(hop) = self.state.outbound.get_mut(&message).and_then(|m| m.hops.get_mut(hop_index)) {
                hop.held = held;
            }
            return;
        }
        hop.counted = true;
        hop.held = None;
        let lines = std::mem::take(&mut hop.lines);
        event.evidence = Evidence(lines.into_iter().map(|l| self.location(l)).collect());
        let seq = self.next_seq();
        self.settle(event, session.map(|s| (s, Side::Send)), seq, out);
    }

    /// Whether a hand-over takes mail out of the site: not through a connector between the
    /// organization's own servers, not to a next hop in the internal networks, and (through no
    /// named connector) not only to the accepted domains.
    fn leaves(&self, connector: &str, server: Option<IpAddr>, recipients: &[&str]) -> bool {
        if is_internal_send_connector(connector) || server.is_some_and(|ip| self.is_internal(ip)) {
            return false;
        }
        if is_builtin_connector(connector)
            && !self.settings.accepted.is_empty()
            && !recipients.is_empty()
            && recipients.iter().all(|r| is_accepted(r, &self.settings.accepted))
        {
            return false;
        }
        true
    }

    /// A FAIL that is no hand-over itself (the message expired in its queue): the recipients
    /// still deferred at a next hop failed there.
    fn fail_held(&mut self, message: u64, list: &[&str], time: Micros, loc: Loc, out: &mut Emitter<'_>) {
        let Some(msg) = self.state.outbound.get_mut(&message) else { return };
        msg.last = msg.last.max(time);
        let mut failed: Vec<(u32, u32, Vec<String>)> = Vec::new();
        for address in list {
            let key = fnv1a(&[address.to_ascii_lowercase().as_bytes()]);
            let Some(r) = msg.rcpts.iter_mut().find(|r| r.key == key && r.deferred) else { continue };
            r.deferred = false;
            match failed.iter_mut().find(|(hop, _, _)| *hop == r.hop) {
                Some((_, n, domains)) => {
                    *n += 1;
                    push_domain(domains, &r.domain);
                }
                None => failed.push((r.hop, 1, vec![r.domain.to_string()])),
            }
        }
        let mut events = Vec::new();
        for (hop, n, domains) in failed {
            let hop = &mut msg.hops[hop as usize];
            let Some(held) = hop.held.take().filter(|_| !hop.counted) else { continue };
            hop.counted = true;
            let mut event = held.event;
            event.time = utc_micros(time);
            event.status = Some(Status::Failed);
            event.recipients = Some(n);
            event.recipient_domains = domains.into_iter().filter(|d| !d.is_empty()).collect();
            let mut lines = std::mem::take(&mut hop.lines);
            lines.push(loc);
            events.push((event, lines, held.session, held.resolved));
        }
        for (mut event, lines, session, resolved) in events {
            let lines: Vec<Location> = lines.into_iter().map(|l| self.location(l)).collect();
            event.evidence.0.extend(lines);
            if resolved {
                out.event(event);
            } else {
                let seq = self.next_seq();
                self.settle(event, session.map(|s| (s, Side::Send)), seq, out);
            }
        }
    }

    /// Emits the next hops of a message that are still deferred (at the end of a one-shot run,
    /// at its TTL, or evicted).
    fn finish_message(&mut self, mut msg: OutMsg, out: &mut Emitter<'_>) {
        let mut events = Vec::new();
        for (i, hop) in msg.hops.iter_mut().enumerate() {
            let Some(held) = hop.held.take().filter(|_| !hop.counted) else { continue };
            let deferred: Vec<&Rcpt> = msg.rcpts.iter().filter(|r| r.hop as usize == i && r.deferred).collect();
            if deferred.is_empty() {
                continue;
            }
            let mut event = held.event;
            event.recipients = Some(deferred.len() as u32);
            let mut domains = Vec::new();
            deferred.iter().for_each(|r| push_domain(&mut domains, &r.domain));
            event.recipient_domains = domains.into_iter().filter(|d| !d.is_empty()).collect();
            events.push((event, std::mem::take(&mut hop.lines), held.session, held.resolved));
        }
        for (mut event, lines, session, resolved) in events {
            let lines: Vec<Location> = lines.into_iter().map(|l| self.location(l)).collect();
            event.evidence.0.extend(lines);
            if resolved {
                out.event(event);
            } else {
                let seq = self.next_seq();
                self.settle(event, session.map(|s| (s, Side::Send)), seq, out);
            }
        }
    }

    fn evict_messages(&mut self, out: &mut Emitter<'_>) {
        let cut = tenth_oldest(self.state.outbound.values().map(|m| m.last));
        let mut old: Vec<(u64, u64)> =
            self.state.outbound.iter().filter(|(_, m)| m.last <= cut).map(|(k, m)| (m.seq, *k)).collect();
        old.sort_unstable();
        for (_, key) in old {
            if let Some(msg) = self.state.outbound.remove(&key) {
                self.tally.evicted_messages += 1;
                self.finish_message(msg, out);
            }
        }
    }

    // ---- TLS from sessions ----

    /// Gives `event` its session's TLS and emits it, or holds it until the session is read.
    fn settle(&mut self, mut event: MessageEvent, session: Option<(u64, Side)>, seq: u64, out: &mut Emitter<'_>) {
        if !self.settings.protocol_logs {
            self.tally.tls_unconfigured += 1;
            return out.event(event);
        }
        let Some((sid, side)) = session else {
            self.tally.tls_no_session += 1;
            return out.event(event);
        };
        let Some(protocol_time) = self.state.protocol_time else {
            self.tally.tls_no_protocol_read += 1;
            return out.event(event);
        };
        match self.lookup(sid, side) {
            Ok((session, hub)) => {
                self.apply(&mut event, &session, hub);
                out.event(event);
            }
            Err((wanted, side)) => self.wait(wanted, side, event, seq, protocol_time, out),
        }
    }

    /// The session `sid` (of `side`), or the Front End session it was proxied for, with the
    /// proxying session's line; `Err`: the session to wait for.
    fn lookup(&self, sid: u64, side: Side) -> Result<(Session, Option<Loc>), (u64, Side)> {
        let Some(found) = self.state.sessions.get(&sid).filter(|s| s.side.fits(side)) else { return Err((sid, side)) };
        match found.proxy.filter(|&fe| fe != sid) {
            Some(fe) => match self.state.sessions.get(&fe) {
                Some(front) => Ok((front.clone(), Some(found.line))),
                None => Err((fe, Side::Receive)),
            },
            None => Ok((found.clone(), None)),
        }
    }

    /// Gives `event` what its session says: TLS, the listener and connector (inbound), the
    /// remote port, and the session's lines as evidence.
    fn apply(&self, event: &mut MessageEvent, session: &Session, hub: Option<Loc>) {
        event.tls = match session.tls {
            SessionTls::Plain | SessionTls::Failed => Tls { version: Some(TlsVersion::None), ..Tls::default() },
            SessionTls::Unseen | SessionTls::Started => Tls::default(),
            SessionTls::Version(v) => {
                Tls { version: Some(v), cipher: self.string(session.cipher).map(str::to_string), trust: None }
            }
        };
        if event.direction == Direction::Inbound
            && let Some(connector) = self.string(session.connector)
        {
            event.connector = named(connector);
            event.service = Some(connector.to_string());
        }
        if let Some((ip, port)) = session.remote {
            match event.peer.ip {
                Some(peer) if peer.to_canonical() == ip.to_canonical() => event.peer.port = Some(port),
                None => event.peer = Peer { ip: Some(ip), port: Some(port), ..event.peer.clone() },
                Some(_) => {}
            }
        }
        let mut evidence: Vec<Location> = hub.into_iter().chain([session.line]).map(|l| self.location(l)).collect();
        evidence.append(&mut event.evidence.0);
        event.evidence = Evidence(evidence);
    }

    fn wait(
        &mut self,
        sid: u64,
        side: Side,
        event: MessageEvent,
        seq: u64,
        protocol_time: Micros,
        out: &mut Emitter<'_>,
    ) {
        let time = event.time.timestamp_micros();
        if protocol_time >= time + SESSION_WAIT {
            self.tally.tls_not_found += 1;
            return out.event(event);
        }
        if self.state.waiting_count >= self.settings.limits.max_messages {
            self.tally.evicted_messages += 1;
            self.tally.tls_not_found += 1;
            return out.event(event);
        }
        self.state.waiting.entry(sid).or_default().push(Waiting { seq, time, side, event });
        self.state.waiting_count += 1;
    }

    /// Emits the waiting events `done` says have waited long enough, their TLS unknown.
    fn sweep_waiting(&mut self, done: impl Fn(&Waiting) -> bool, out: &mut Emitter<'_>) {
        let mut expired = Vec::new();
        self.state.waiting.retain(|_, list| {
            let (gone, kept): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(list).into_iter().partition(&done);
            expired.extend(gone);
            *list = kept;
            !list.is_empty()
        });
        self.state.waiting_count -= expired.len();
        expired.sort_by_key(|w| w.seq);
        for w in expired {
            self.tally.tls_not_found += 1;
            out.event(w.event);
        }
    }
}

impl OutMsg {
    /// Whether a next hop still waits for its outcome.
    fn holds(&self) -> bool {
        self.hops.iter().enumerate().any(|(i, h)| {
            !h.counted && h.held.is_some() && self.rcpts.iter().any(|r| r.hop as usize == i && r.deferred)
        })
    }
}

impl LogParser for Parser {
    fn start(&mut self, name: &str, first_line: u64) {
        if self.state.files.len() >= MAX_FILES {
            self.compact_files();
        }
        self.file = match self.state.files.iter().position(|f| **f == *name) {
            Some(i) => i as u32,
            None => {
                self.state.files.push(name.into());
                (self.state.files.len() - 1) as u32
            }
        };
        let found = self.state.inputs.iter().position(|i| *i.name == *name);
        self.current = match (found, first_line > 1) {
            (Some(i), true) => i,
            (Some(i), false) => {
                self.state.inputs[i] = Input::new(name);
                i
            }
            (None, _) => {
                if self.state.inputs.len() >= MAX_FILES {
                    self.state.inputs.drain(..MAX_FILES / 2);
                }
                self.state.inputs.push(Input::new(name));
                self.state.inputs.len() - 1
            }
        };
    }

    fn line(&mut self, text: &[u8], at: LineAt<'_>, _clock: &mut Clock, out: &mut Emitter<'_>) {
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        if memchr::memchr(0, text).is_some() {
            return out.skip(at, format!("expected a log line, found NUL bytes: {}", excerpt(text)));
        }
        if text.first() == Some(&b'#') {
            return self.header(text, at, out);
        }
        let input = &self.state.inputs[self.current];
        if input.other {
            return;
        }
        match input.layout.clone() {
            Some(Layout::Tracking(cols)) => {
                let mailbox = input.mailbox;
                self.tracking_row(text, at, &cols, mailbox, out)
            }
            Some(Layout::Protocol(cols)) => self.protocol_line(text, at, &cols, out),
            None => out.skip(at, format!("expected a #Fields: header before the first data line: {}", excerpt(text))),
        }
    }

    fn save(&self) -> Vec<u8> {
        mailflow_component::resume::save_versioned(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, saved: &[u8]) -> Result<(), String> {
        let state: State = mailflow_component::resume::load_versioned(saved, STATE_VERSION, "exchange")?;
        state.check()?;
        if state.inputs.is_empty() || state.files.is_empty() {
            return Err("the checkpoint of the exchange collector is damaged (no inputs)".into());
        }
        self.state = state;
        self.current = 0;
        self.file = 0;
        Ok(())
    }

    fn finish(&mut self, out: &mut Emitter<'_>) {
        let mut messages: Vec<OutMsg> = self.state.outbound.drain().map(|(_, m)| m).collect();
        messages.sort_by_key(|m| m.seq);
        for msg in messages {
            self.finish_message(msg, out);
        }
        self.sweep_waiting(|_| true, out);
    }

    fn report(&self, out: &mut Emitter<'_>) {
        let t = &self.tally;
        if t.evicted_sessions + t.evicted_messages > 0 {
            out.warn(format!(
                "to stay within its memory limits, the collector dropped {} SMTP sessions and finished {} messages \
                 before their end was in the log; raise max_sessions or max_messages if the logs are that busy",
                t.evicted_sessions, t.evicted_messages
            ));
        }
        if t.tls_unconfigured > 0 {
            out.note(format!(
                "the TLS of {} messages is unknown: message tracking logs do not record TLS, and `protocol_paths` \
                 (the SMTP protocol logs, with protocol logging on the connectors) is not set",
                t.tls_unconfigured
            ));
        }
        if t.tls_no_protocol_read > 0 {
            out.warn(format!(
                "the TLS of {} messages is unknown: `protocol_paths` is set but no protocol log line was read",
                t.tls_no_protocol_read
            ));
        }
        if t.tls_not_found > 0 {
            out.warn(format!(
                "the TLS of {} messages is unknown: their SMTP sessions are not in the protocol logs read (protocol \
                 logging off on that connector, or the protocol logs do not reach back that far)",
                t.tls_not_found
            ));
        }
        if t.tls_no_session > 0 {
            out.warn(format!(
                "the TLS of {} messages is unknown: their tracking rows name no SMTP session in source-context",
                t.tls_no_session
            ));
        }
    }
}

/// `#Fields:` and the like, any case; the rest after the colon.
fn strip<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    starts_with(text, prefix).then(|| &text[prefix.len()..])
}

/// `TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm
/// CALG_AES_256 with strength 256 bits, …`: the version, and the bulk cipher as Exchange Online's
/// message trace names it (`S:tlscipher=CALG_AES_256`).
fn tls_line(text: &[u8]) -> Option<(TlsVersion, Option<String>)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut words = text.split_ascii_whitespace().skip(2);
    let version = TlsVersion::from_protocol(words.next()?)?;
    if version == TlsVersion::Unknown || !words.next()?.eq_ignore_ascii_case("negotiation") {
        return None;
    }
    let cipher = text
        .find("encryption algorithm ")
        .and_then(|i| text[i + "encryption algorithm ".len()..].split([' ', ',']).next())
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Some((version, cipher))
}

/// `XPROXYFROM SID=08DE… IP=… PORT=…`: the Front End session id.
fn proxy_sid(data: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(data).ok()?;
    let sid = text.split_ascii_whitespace().find_map(|w| w.strip_prefix("SID=").or_else(|| w.strip_prefix("sid=")))?;
    fields::session_id(sid.as_bytes())
}

/// The name of a connector of the site's own: `EX01\Partner Inbound` → `Partner Inbound`, a
/// send connector's name as it is; Exchange's built-in connectors are none.
fn named(id: &str) -> Option<String> {
    let id = id.trim();
    if is_builtin_connector(id) || is_internal_send_connector(id) {
        return None;
    }
    let name = id.rsplit_once('\\').map_or(id, |(_, name)| name).trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// A message the same on every server: `network-message-id` (Exchange 2013 and later), else the
/// server's `internal-message-id` with the Message-ID.
fn message_key(row: &Row<'_>, cols: &Tracking) -> u64 {
    let network = row.text(cols.network_id);
    if !network.is_empty() {
        return fnv1a(&[b"n", network.to_ascii_lowercase().as_bytes()]);
    }
    fnv1a(&[b"i", row.text(cols.internal_id).as_bytes(), row.text(cols.message_id).as_bytes()])
}

fn split_addresses(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|a| !a.is_empty())
}

/// Distinct recipients listed, else the row's count.
fn count_of(list: &[&str], count: Option<u32>) -> u32 {
    let mut distinct: Vec<String> = list.iter().map(|a| a.to_ascii_lowercase()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.is_empty() { count.unwrap_or(1).max(1) } else { distinct.len() as u32 }
}

fn push_domain(domains: &mut Vec<String>, domain: &str) {
    if !domains.iter().any(|d| d == domain) {
        domains.push(domain.to_string());
    }
}

/// FNV-1a over the parts: stable across runs, as saved keys must be.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_lines_of_both_sides() {
        let line = b"TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDHE with strength 384 bits";
        assert_eq!(tls_line(line), Some((TlsVersion::Tls1_2, Some("CALG_AES_256".into()))));
        let client =
            b"TLS protocol SP_PROT_TLS1_3_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_128";
        assert_eq!(tls_line(client), Some((TlsVersion::Tls1_3, Some("CALG_AES_128".into()))));
        assert_eq!(
            tls_line(b"TLS protocol SP_PROT_TLS1_0_SERVER negotiation succeeded"),
            Some((TlsVersion::Tls1_0, None))
        );
        assert_eq!(tls_line(b"TLS protocol SP_PROT_TLS9_SERVER negotiation succeeded"), None);
        assert_eq!(tls_line(b"TLS protocol"), None);
    }

    #[test]
    fn connector_names() {
        assert_eq!(named(r"EX01\Partner Inbound"), Some("Partner Inbound".into()));
        assert_eq!(named("To Partner"), Some("To Partner".into()));
        assert_eq!(named(r"EX01\Default Frontend EX01"), None);
        assert_eq!(named(r"EX01\Client Proxy EX01"), None);
        assert_eq!(named("Intra-Organization SMTP Send Connector"), None);
        assert_eq!(named("EdgeSync - Inbound to Default-First-Site-Name"), None);
        assert_eq!(named(r"EX01\"), None);
        assert_eq!(
            proxy_sid(b"XPROXYFROM SID=08DE1A2B3C4D5E6F IP=203.0.113.7 PORT=51234 DOMAIN=x SEQNUM=1"),
            Some(0x08DE_1A2B_3C4D_5E6F)
        );
    }

    fn parser(max: usize) -> Parser {
        let limits = Limits { max_sessions: max, max_messages: max, session_ttl: HOUR, message_ttl: 72 * HOUR };
        let settings =
            Settings { limits, internal: Vec::new(), accepted: Vec::new(), protocol_logs: true, listed: None };
        Parser::new(settings)
    }

    /// Feeds `lines` as the file `name`; returns the warnings.
    fn feed(parser: &mut Parser, name: &str, lines: &[String]) -> (u64, Vec<String>) {
        let mut events = 0;
        let mut count = |_| events += 1;
        let mut out = Emitter::new(&mut count);
        let mut clock = Clock::new(chrono_tz::Tz::UTC, mailflow_component::clock::YearRule::starting(2026));
        parser.start(name, 1);
        for (i, line) in lines.iter().enumerate() {
            parser.line(line.as_bytes(), LineAt { file: name, line: i as u64 + 1 }, &mut clock, &mut out);
        }
        parser.finish(&mut out);
        parser.report(&mut out);
        let warnings = out.into_stats().warnings;
        (events, warnings)
    }

    fn sessions(n: usize) -> Vec<String> {
        let mut lines = vec![
            "#Log-type: SMTP Receive Protocol Log".to_string(),
            "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context"
                .to_string(),
        ];
        for i in 0..n {
            let at = |s: usize| format!("2026-12-04T15:{:02}:{:02}.000Z", i / 60 % 60, s);
            let head = format!(r"EX01\Default Frontend EX01,08DE0000000{i:05X},0,10.0.0.5:25,203.0.113.7:1");
            lines.push(format!("{},{head},+,,", at(0)));
            lines.push(format!("{},{head},<,MAIL FROM:<a@b.example>,", at(1)));
            lines.push(format!("{},{head},-,,Remote", at(2)));
        }
        lines
    }

    #[test]
    fn sessions_stay_within_the_limit_and_unused_ones_go_at_once() {
        let mut parser = parser(10);
        let (_, warnings) = feed(&mut parser, "RECV.LOG", &sessions(200));
        assert!(parser.state.sessions.len() <= 10, "{}", parser.state.sessions.len());
        assert!(parser.tally.evicted_sessions >= 190, "{:?}", parser.tally);
        assert!(warnings.iter().any(|w| w.contains("raise max_sessions")), "{warnings:?}");
        // Without MAIL FROM, a session is gone when it ends.
        let mut parser = self::parser(10);
        let lines: Vec<String> = sessions(5).into_iter().filter(|l| !l.contains("MAIL FROM")).collect();
        feed(&mut parser, "RECV.LOG", &lines);
        assert!(parser.state.sessions.is_empty());
    }

    #[test]
    fn a_checkpoint_of_another_version_or_damaged_is_refused() {
        let mut parser = parser(100);
        feed(&mut parser, "RECV.LOG", &sessions(3));
        let saved = parser.save();
        let mut again = self::parser(100);
        again.restore(&saved).unwrap();
        assert_eq!(again.state.sessions.len(), 3);
        let other = mailflow_component::resume::save_versioned(9, &parser.state);
        let why = self::parser(100).restore(&other).unwrap_err();
        assert!(why.contains("another version of the exchange collector (format 9, this one reads 1)"), "{why}");
        for bytes in [&b"junk"[..], &saved[..saved.len() / 2], &[0xff; 16]] {
            let why = self::parser(100).restore(bytes).unwrap_err();
            assert!(why.starts_with("the checkpoint of the exchange collector is damaged"), "{why}");
        }
        parser.state.sessions.values_mut().for_each(|s| s.line.file = 99);
        let bad = mailflow_component::resume::save_versioned(STATE_VERSION, &parser.state);
        assert!(self::parser(100).restore(&bad).unwrap_err().contains("index out of range"));
    }

    #[test]
    fn the_tenth_oldest() {
        assert_eq!(tenth_oldest((0..100).rev()), 10);
        assert_eq!(tenth_oldest([5].into_iter()), 5);
        assert_eq!(tenth_oldest(std::iter::empty()), Micros::MIN);
    }
}
