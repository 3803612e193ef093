//! Parsed lines → events. Exim logs one line per message received and one per recipient
//! delivered, failed or deferred, all tagged with the message id, so the only state is the
//! messages in the queue:
//!
//! - An arrival (`<=`) from a remote SMTP client is an inbound event at once: the line has all
//!   there is to know. The message is held (sender, size, Message-ID) for its deliveries.
//! - Remote delivery lines (`=>`, `->`, `>>`, `**`, `==` with `H=… [ip]`) gather per message
//!   and relay address. Each recipient belongs to the relay of its latest attempt, so a deferral
//!   at one MX followed by a delivery through another counts once, at the second. A relay's
//!   status is delivered if any of its recipients was delivered, else deferred if any is still
//!   deferred, else failed; its time is the latest line with that status; its TLS that of its
//!   latest `=>`/`**` line. `==` lines carry none (Exim does not log TLS on deferrals), so a
//!   relay that only deferred has TLS of unknown version: the session may well have had TLS.
//! - `Completed` emits the message's relays. The end of a one-shot run, `message_ttl_hours`
//!   without a line, and the `max_messages` limit emit them too, with what is known.

use mailflow_component::logs::Loc;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use chrono::DateTime;
use foldhash::HashMap;
use ipnet::IpNet;
use mailflow_component::Emitter;
use mailflow_core::{Direction, Evidence, Location, MessageEvent, Peer, Status, Tls, TlsVersion, Trust};
use serde::{Deserialize, Serialize};

use crate::parse::{self, Arrival, Delivery, TlsFields};

/// Microseconds since the Unix epoch.
pub type Micros = i64;

const MINUTE: Micros = 60_000_000;

/// Lines kept as evidence per relay of a message; a message retried for days has more.
const MAX_LINES: usize = 32;

/// Input names held before those no message names any more are forgotten.
const MAX_FILES: usize = 64;

/// Version of the saved state's layout; a checkpoint of another version is refused.
const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_messages: usize,
    pub message_ttl: Micros,
}

/// The messages in the queue, and what the run had to finish early.
pub struct Tracker<'a> {
    limits: Limits,
    internal: &'a [IpNet],
    state: State,
    /// Messages finished before their `Completed` to stay within `max_messages`.
    pub evicted: u64,
    /// Messages with remote deliveries finished after `message_ttl_hours` without a line.
    pub expired: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    /// Names of the inputs read, for evidence.
    files: Vec<String>,
    /// By Exim message id.
    messages: HashMap<QueueId, Message>,
    next_sweep: Micros,
    #[serde(skip)]
    file_names: Vec<Arc<str>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    /// The first line seen: finished messages are emitted in log order.
    first: Loc,
    /// The time of its latest line.
    last: Micros,
    #[serde(default)]
    received: Option<Received>,
    #[serde(default)]
    relays: Vec<Relay>,
    #[serde(default)]
    recipients: Vec<Recipient>,
}

/// From the `<=` line.
#[derive(Debug, Serialize, Deserialize)]
struct Received {
    sender: String,
    size: Option<u64>,
    message_id: Option<String>,
    loc: Loc,
}

/// One next hop of a message.
#[derive(Debug, Serialize, Deserialize)]
struct Relay {
    ip: IpAddr,
    port: Option<u16>,
    host: Option<String>,
    transport: Option<String>,
    /// From the latest `=>`/`**` line; `None` while only deferrals were logged.
    tls: Option<Tls>,
    /// `S=` of the latest delivery line (`+delivery_size`).
    size: Option<u64>,
    lines: Vec<Loc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Recipient {
    address: String,
    /// Index of the relay of its latest attempt.
    relay: u32,
    status: Status,
    time: Micros,
}

impl<'a> Tracker<'a> {
    pub fn new(limits: Limits, internal: &'a [IpNet]) -> Self {
        Tracker { limits, internal, state: State::default(), evicted: 0, expired: 0 }
    }

    /// The index of an input's name in evidence.
    pub fn file(&mut self, name: &str) -> u32 {
        if self.state.files.len() >= MAX_FILES {
            self.forget_files();
        }
        let state = &mut self.state;
        match state.files.iter().position(|f| f == name) {
            Some(i) => i as u32,
            None => {
                state.files.push(name.to_string());
                state.file_names.push(Arc::from(name));
                (state.files.len() - 1) as u32
            }
        }
    }

    /// Keeps only the names of inputs that held messages still name (dated rotated files would
    /// otherwise pile up in the checkpoints of daily ingests).
    fn forget_files(&mut self) {
        let state = &mut self.state;
        let mut used = vec![false; state.files.len()];
        for m in state.messages.values() {
            let lines = m.relays.iter().flat_map(|r| r.lines.iter());
            for loc in lines.chain([&m.first]).chain(m.received.as_ref().map(|r| &r.loc)) {
                used[loc.file as usize] = true;
            }
        }
        let mut index = vec![0u32; state.files.len()];
        let mut kept = 0;
        for (i, used) in used.iter().enumerate() {
            if *used {
                state.files.swap(kept, i);
                state.file_names.swap(kept, i);
                index[i] = kept as u32;
                kept += 1;
            }
        }
        state.files.truncate(kept);
        state.file_names.truncate(kept);
        for m in state.messages.values_mut() {
            let lines = m.relays.iter_mut().flat_map(|r| r.lines.iter_mut());
            for loc in lines.chain([&mut m.first]).chain(m.received.as_mut().map(|r| &mut r.loc)) {
                loc.file = index[loc.file as usize];
            }
        }
    }

    /// Finishes the messages without a line for `message_ttl_hours`; called before each line.
    pub fn tick(&mut self, now: Micros, out: &mut Emitter<'_>) {
        if now < self.state.next_sweep {
            return;
        }
        self.state.next_sweep = now.saturating_add(10 * MINUTE);
        let cutoff = now.saturating_sub(self.limits.message_ttl);
        let stale: Vec<(QueueId, Message)> = self.state.messages.extract_if(|_, m| m.last < cutoff).collect();
        self.expired += stale.iter().filter(|(_, m)| !m.recipients.is_empty()).count() as u64;
        self.emit_all(stale, out);
    }

    /// A `<=` line: an inbound event if it came from a remote SMTP client; the message is held
    /// for its deliveries either way.
    pub fn arrival(&mut self, id: &[u8], a: &Arrival<'_>, time: Micros, loc: Loc, out: &mut Emitter<'_>) -> bool {
        let sender = lossy(a.sender);
        let sender = if sender == "<>" { String::new() } else { sender };
        let message_id = a.message_id.map(|m| format!("<{}>", lossy(m)));
        let remote = a.host.and_then(|h| h.ip).filter(|&ip| !is_this_host(ip));
        let mut readable = true;
        if let Some(ip) = remote
            && !a.fake_reject
            && a.protocol.is_some_and(parse::network_protocol)
        {
            let tls;
            (tls, readable) = session_tls(&a.tls, a.protocol.is_some_and(parse::tls_protocol));
            let host = a.host.and_then(|h| h.name);
            let mut event = MessageEvent::new(instant(time), Direction::Inbound);
            event.tls = tls;
            event.peer = Peer { host: host.map(lossy), ip: Some(ip), port: a.host.and_then(|h| h.port) };
            event.service = a.interface.or(a.protocol).map(lossy);
            event.sender = Some(sender.clone());
            if let Some(list) = a.recipients {
                let (count, domains) = recipients(list);
                event.recipients = Some(count);
                event.recipient_domains = domains;
            }
            event.size = a.size;
            event.message_id = message_id.clone();
            event.queue_id = Some(lossy(id));
            event.evidence = Evidence(vec![self.location(loc)]);
            out.event(event);
        }
        let received = Received { sender, size: a.size, message_id, loc };
        let message = self.message(id, time, loc, out);
        message.received = Some(received);
        readable
    }

    /// A delivery, failure or deferral line. Returns whether its `X=` named a known TLS version.
    pub fn delivery(&mut self, id: &[u8], d: &Delivery<'_>, time: Micros, loc: Loc, out: &mut Emitter<'_>) -> bool {
        let ip = d.host.and_then(|h| h.ip);
        let Some(ip) =
            ip.filter(|&ip| !is_this_host(ip) && !self.internal.iter().any(|n| n.contains(&ip.to_canonical())))
        else {
            let Some(message) = self.state.messages.get_mut(&QueueId::new(id)) else { return true };
            message.last = message.last.max(time);
            // Its latest attempt went to a hop that does not count (a fallback smarthost inside
            // the site): it leaves the relay it was deferred at.
            if ip.is_some() {
                message.recipients.retain(|r| r.address.as_bytes() != d.address);
            }
            // `** a@b: retry timeout exceeded`: the end of a recipient deferred at a relay.
            if d.status == Status::Failed
                && d.host.is_none()
                && let Some(r) = message.recipients.iter_mut().find(|r| r.address.as_bytes() == d.address)
            {
                (r.status, r.time) = (Status::Failed, time);
                if let Some(relay) = message.relays.get_mut(r.relay as usize)
                    && relay.lines.len() < MAX_LINES
                {
                    relay.lines.push(loc);
                }
            }
            return true;
        };
        let (mut tls, readable) = session_tls(&d.tls, false);
        // A server always shows a certificate; `DN=` is only missing from the log (no
        // `+tls_peerdn`), so `CV=no` outbound is an unverified certificate, not none.
        if tls.trust == Some(Trust::Anonymous) {
            tls.trust = Some(Trust::Untrusted);
        }
        let host = d.host.and_then(|h| h.name).map(lossy);
        let message = self.message(id, time, loc, out);
        let index = match message.relays.iter().position(|r| r.ip == ip) {
            Some(i) => i,
            None => {
                message.relays.push(Relay {
                    ip,
                    port: None,
                    host: None,
                    transport: None,
                    tls: None,
                    size: None,
                    lines: Vec::new(),
                });
                message.relays.len() - 1
            }
        };
        let relay = &mut message.relays[index];
        relay.port = d.host.and_then(|h| h.port).or(relay.port);
        relay.host = host.or(relay.host.take());
        if let Some(transport) = d.transport {
            relay.transport = Some(lossy(transport));
        }
        relay.size = d.size.or(relay.size);
        if d.status != Status::Deferred {
            relay.tls = Some(tls);
        }
        if relay.lines.len() < MAX_LINES {
            relay.lines.push(loc);
        }
        let relay = index as u32;
        match message.recipients.iter_mut().find(|r| r.address.as_bytes() == d.address) {
            Some(r) => {
                let before = std::mem::replace(&mut r.relay, relay) as usize;
                (r.status, r.time) = (d.status, time);
                // The attempts at the relay it left stay in its evidence.
                if before != index {
                    let earlier = message.relays[before].lines.clone();
                    let lines = &mut message.relays[index].lines;
                    lines.extend(earlier.into_iter().take(MAX_LINES.saturating_sub(lines.len())));
                }
            }
            None => message.recipients.push(Recipient { address: lossy(d.address), relay, status: d.status, time }),
        }
        readable
    }

    /// `Completed`: the message's relays are final.
    pub fn completed(&mut self, id: &[u8], out: &mut Emitter<'_>) {
        let id = QueueId::new(id);
        if let Some(message) = self.state.messages.remove(&id) {
            self.emit(id, message, out);
        }
    }

    /// The end of a one-shot run: every message still queued emits its relays as they are.
    pub fn finish(&mut self, out: &mut Emitter<'_>) {
        let all: Vec<(QueueId, Message)> = self.state.messages.drain().collect();
        self.emit_all(all, out);
    }

    pub fn save(&self) -> Vec<u8> {
        mailflow_component::resume::save_versioned(STATE_VERSION, &self.state)
    }

    /// Continues from a saved state; `Err` says why it cannot (another format version, damage).
    pub fn restore(&mut self, saved: &[u8]) -> Result<(), String> {
        let mut state: State = mailflow_component::resume::load_versioned(saved, STATE_VERSION, "exim")?;
        let files = state.files.len() as u64;
        let valid = state.messages.values().all(|m| {
            let relays = m.relays.len() as u32;
            let loc_ok = |l: &Loc| u64::from(l.file) < files;
            loc_ok(&m.first)
                && m.received.as_ref().is_none_or(|r| loc_ok(&r.loc))
                && m.relays.iter().all(|r| r.lines.iter().all(loc_ok))
                && m.recipients.iter().all(|r| r.relay < relays)
        });
        if !valid {
            return Err("the checkpoint of the exim collector is damaged: it names lines it does not hold".into());
        }
        state.file_names = state.files.iter().map(|f| Arc::from(f.as_str())).collect();
        self.state = state;
        Ok(())
    }

    /// The message with this id, held from now on; beyond `max_messages` the oldest tenth is
    /// finished first.
    fn message(&mut self, id: &[u8], time: Micros, loc: Loc, out: &mut Emitter<'_>) -> &mut Message {
        let id = QueueId::new(id);
        if !self.state.messages.contains_key(&id) && self.state.messages.len() >= self.limits.max_messages {
            let mut lasts: Vec<Micros> = self.state.messages.values().map(|m| m.last).collect();
            let tenth = (lasts.len() / 10).min(lasts.len().saturating_sub(1));
            let cutoff = *lasts.select_nth_unstable(tenth).1;
            let old: Vec<(QueueId, Message)> = self.state.messages.extract_if(|_, m| m.last <= cutoff).collect();
            self.evicted += old.len() as u64;
            self.emit_all(old, out);
        }
        let message = self.state.messages.entry(id).or_insert_with(|| Message {
            first: loc,
            last: time,
            received: None,
            relays: Vec::new(),
            recipients: Vec::new(),
        });
        message.last = message.last.max(time);
        message
    }

    fn emit_all(&self, mut messages: Vec<(QueueId, Message)>, out: &mut Emitter<'_>) {
        messages.sort_by_key(|(_, m)| m.first);
        for (id, message) in messages {
            self.emit(id, message, out);
        }
    }

    /// One outbound event per relay that still has recipients.
    fn emit(&self, id: QueueId, message: Message, out: &mut Emitter<'_>) {
        for (index, relay) in message.relays.into_iter().enumerate() {
            let mine: Vec<&Recipient> = message.recipients.iter().filter(|r| r.relay as usize == index).collect();
            let status = if mine.iter().any(|r| r.status == Status::Delivered) {
                Status::Delivered
            } else if mine.iter().any(|r| r.status == Status::Deferred) {
                Status::Deferred
            } else if !mine.is_empty() {
                Status::Failed
            } else {
                continue;
            };
            let time = mine.iter().filter(|r| r.status == status).map(|r| r.time).max().unwrap_or_default();
            let mut event = MessageEvent::new(instant(time), Direction::Outbound);
            event.tls = relay.tls.unwrap_or_default();
            event.peer = Peer { host: relay.host, ip: Some(relay.ip), port: relay.port };
            event.transport = relay.transport;
            event.recipients = Some(mine.len() as u32);
            let mut domains: Vec<String> = mine.iter().filter_map(|r| domain(r.address.as_bytes())).collect();
            domains.sort();
            domains.dedup();
            event.recipient_domains = domains;
            event.status = Some(status);
            event.queue_id = Some(id.as_str().to_string());
            let mut lines = relay.lines;
            if let Some(received) = &message.received {
                event.sender = Some(received.sender.clone());
                event.size = relay.size.or(received.size);
                event.message_id = received.message_id.clone();
                lines.push(received.loc);
            } else {
                event.size = relay.size;
            }
            lines.sort();
            lines.dedup();
            event.evidence = Evidence(lines.into_iter().map(|l| self.location(l)).collect());
            out.event(event);
        }
    }

    fn location(&self, loc: Loc) -> Location {
        Location { file: self.state.file_names.get(loc.file as usize).cloned(), line: Some(loc.line), page: None }
    }
}

/// The TLS of a session from its line's `X=`, `CV=` and `DN=`; without `X=`, plaintext, unless
/// the protocol name says TLS was used (`P=esmtps` with `-tls_cipher`): TLS of unknown version.
/// The flag says whether `X=`'s protocol was one mailflow knows.
fn session_tls(fields: &TlsFields<'_>, tls_by_protocol: bool) -> (Tls, bool) {
    let Some(x) = fields.cipher else {
        let version = (!tls_by_protocol).then_some(TlsVersion::None);
        return (Tls { version, ..Tls::default() }, true);
    };
    let (protocol, cipher) = parse::split_cipher(x);
    // Exim's own spellings first: the general reader allocates.
    let known = match protocol {
        b"TLS1.3" | b"TLSv1.3" => Some(TlsVersion::Tls1_3),
        b"TLS1.2" | b"TLSv1.2" => Some(TlsVersion::Tls1_2),
        _ => std::str::from_utf8(protocol).ok().and_then(TlsVersion::from_protocol),
    };
    let trust = match fields.verified {
        Some(b"yes" | b"dane") => Some(Trust::Verified),
        Some(b"no") if fields.peer_dn => Some(Trust::Untrusted),
        Some(b"no") => Some(Trust::Anonymous),
        _ => None,
    };
    let version = known.filter(|&v| v != TlsVersion::Unknown);
    (Tls { version, cipher: cipher.map(lossy), trust }, known.is_some())
}

/// The number of recipients in a `for a b c` list and their domains.
fn recipients(list: &[u8]) -> (u32, Vec<String>) {
    let mut count = 0u32;
    let mut domains = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Ok((word, after)) = parse::token(rest) else { break };
        rest = after;
        if word.is_empty() {
            continue;
        }
        count = count.saturating_add(1);
        if let Some(at) = memchr::memrchr(b'@', word)
            && let Some(name) = Some(&word[at + 1..]).filter(|d| !d.is_empty())
            && !domains.iter().any(|d: &String| d.as_bytes().eq_ignore_ascii_case(name))
        {
            domains.extend(domain(word));
        }
    }
    domains.sort();
    domains.dedup();
    (count, domains)
}

fn domain(address: &[u8]) -> Option<String> {
    let at = memchr::memrchr(b'@', address)?;
    let domain = address[at + 1..].strip_suffix(b">").unwrap_or(&address[at + 1..]);
    let mut domain = (!domain.is_empty()).then(|| lossy(domain))?;
    domain.make_ascii_lowercase();
    Some(domain)
}

/// This machine: a content filter's hop, not a relay or a client.
fn is_this_host(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// An Exim message id (16 or 23 ASCII characters), held without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct QueueId {
    len: u8,
    bytes: [u8; 23],
}

impl QueueId {
    fn new(id: &[u8]) -> Self {
        let mut bytes = [0; 23];
        let len = id.len().min(23);
        bytes[..len].copy_from_slice(&id[..len]);
        QueueId { len: len as u8, bytes }
    }

    /// Message ids are ASCII by their shape.
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Serialize for QueueId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for QueueId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = std::borrow::Cow::<str>::deserialize(deserializer)?;
        match parse::message_id(id.as_bytes()) {
            Some((id, b"")) => Ok(QueueId::new(id)),
            _ => Err(serde::de::Error::custom(format!("not an Exim message id: {id:?}"))),
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    // `from_utf8` checks ASCII much faster than `from_utf8_lossy` does.
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn instant(micros: Micros) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_of_another_format_or_damaged_ones_are_refused() {
        let limits = Limits { max_messages: 10, message_ttl: 3_600_000_000 };
        let mut tracker = Tracker::new(limits, &[]);
        tracker.file("mainlog");
        let saved = tracker.save();
        assert!(Tracker::new(limits, &[]).restore(&saved).is_ok());

        let other = mailflow_component::resume::save_versioned(7, &tracker.state);
        let why = Tracker::new(limits, &[]).restore(&other).unwrap_err();
        assert!(why.contains("another version of the exim collector (format 7, this one reads 1)"), "{why}");

        // A message naming a relay it does not hold, or a file the state does not name.
        let loc = Loc { file: 3, line: 1 };
        let message = Message { first: loc, last: 0, received: None, relays: Vec::new(), recipients: Vec::new() };
        tracker.state.messages.insert(QueueId::new(b"1xZfaJ-0000jh-2i"), message);
        let why = Tracker::new(limits, &[]).restore(&tracker.save()).unwrap_err();
        assert!(why.contains("damaged"), "{why}");
        assert!(Tracker::new(limits, &[]).restore(b"\x93garbage").unwrap_err().contains("damaged"));
    }

    #[test]
    fn names_of_inputs_no_held_message_needs_are_forgotten() {
        let limits = Limits { max_messages: 10, message_ttl: i64::MAX };
        let mut tracker = Tracker::new(limits, &[]);
        let mut events = Vec::new();
        let mut push = |e| events.push(e);
        let mut out = Emitter::new(&mut push);
        tracker.file("old.log");
        let file = tracker.file("main.log-20261201");
        let delivery = Delivery {
            status: Status::Deferred,
            address: b"a@b.example",
            transport: None,
            host: Some(parse::Host { name: None, ip: "192.0.2.1".parse().ok(), port: None }),
            tls: TlsFields::default(),
            size: None,
        };
        tracker.delivery(b"1xZfaJ-0000jh-2i", &delivery, 0, Loc { file, line: 7 }, &mut out);
        for day in 2..=80 {
            tracker.file(&format!("main.log-202612{day:02}"));
        }
        assert!(tracker.state.files.len() <= MAX_FILES, "{}", tracker.state.files.len());
        assert!(!tracker.state.files.iter().any(|f| f == "old.log"));
        tracker.finish(&mut out);
        drop(out);
        let evidence = events[0].evidence.to_string();
        assert_eq!(evidence, "main.log-20261201:7");
    }

    #[test]
    fn queue_ids_round_trip_and_nothing_else_passes_for_one() {
        for id in ["1xZfaJ-0000jh-2i", "1tHRd4-00000003Cq6-1aBc"] {
            let bytes = rmp_serde::to_vec(&QueueId::new(id.as_bytes())).unwrap();
            assert_eq!(rmp_serde::from_slice::<QueueId>(&bytes).unwrap().as_str(), id);
        }
        let bytes = rmp_serde::to_vec("not-an-id").unwrap();
        assert!(rmp_serde::from_slice::<QueueId>(&bytes).is_err());
    }
}
