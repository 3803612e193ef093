//! The extended report (`-ReportType MessageTraceDetail`): one row per event of a message
//! (RECEIVE, SEND, DELIVER, FAIL, DEFER, …), the message's rows not necessarily together, nor in
//! one file (Start-HistoricalSearch splits a long period into several). Rows are gathered per
//! `network_message_id` over every file of the run, and each message becomes at most one
//! inbound event (its RECEIVE) and one outbound event (its SEND to recipients outside the
//! accepted domains, or the FAIL or DEFER of such a send attempt) at the end of the run. Memory
//! grows with messages, not rows.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use mailflow_component::Emitter;
use mailflow_core::{Direction, Evidence, Location, MessageEvent, Status, TlsVersion};
use mailflow_exchange::{CustomData, OUTBOUND_CONNECTOR_DATA, direction_of_sender, is_accepted};

use crate::Run;
use crate::fields::{self, Header, INTRA_ORGANIZATION, Row};

pub fn looks_like(header: &Header) -> bool {
    header.find(&["network_message_id"]).is_some() && header.find(&["event_id"]).is_some()
}

/// The columns of one detail file.
pub struct Detail {
    pub time: usize,
    event_id: usize,
    network_message_id: usize,
    client_ip: Option<usize>,
    client_hostname: Option<usize>,
    server_ip: Option<usize>,
    server_hostname: Option<usize>,
    source: Option<usize>,
    connector: Option<usize>,
    message_id: Option<usize>,
    recipient: Option<usize>,
    size: Option<usize>,
    sender: Option<usize>,
    directionality: Option<usize>,
    original_client_ip: Option<usize>,
    custom_data: Option<usize>,
}

/// The messages of every detail file of the run, by `network_message_id`.
#[derive(Default)]
pub struct Messages(HashMap<String, Message>);

#[derive(Default)]
struct Message {
    /// Order of first appearance, to emit in the order read.
    seq: usize,
    sender: Option<String>,
    message_id: Option<String>,
    size: Option<u64>,
    direction: Option<Direction>,
    recipients: Vec<String>,
    delivered: bool,
    deferred: bool,
    failed: bool,
    receive: Option<Hop>,
    receive_recipients: Vec<String>,
    /// The row that handed the message out, or tried to.
    send: Option<Hop>,
    send_status: Option<Status>,
    /// The recipients outside the accepted domains it was handed out to.
    send_recipients: Vec<String>,
    send_rows: Vec<Location>,
}

/// One side of the edge, as one row saw it.
struct Hop {
    /// Which row wins: an SMTP RECEIVE over another, a SEND over a failed attempt.
    rank: u8,
    time: DateTime<Utc>,
    at: Location,
    ip: Option<IpAddr>,
    host: Option<String>,
    connector: Option<String>,
    tls: Option<TlsVersion>,
}

impl Detail {
    pub fn new(header: &Header) -> Result<Self, String> {
        let find = |name| header.find(&[name]);
        Ok(Detail {
            time: header.require("date_time_utc")?,
            event_id: header.require("event_id")?,
            network_message_id: header.require("network_message_id")?,
            client_ip: find("client_ip"),
            client_hostname: find("client_hostname"),
            server_ip: find("server_ip"),
            server_hostname: find("server_hostname"),
            source: find("source"),
            connector: find("connector_id"),
            message_id: find("message_id"),
            recipient: find("recipient_address"),
            size: find("total_bytes"),
            sender: find("sender_address"),
            directionality: find("directionality"),
            original_client_ip: find("original_client_ip"),
            custom_data: find("custom_data"),
        })
    }

    pub fn row(&self, row: &Row<'_>, messages: &mut Messages) -> Result<(), String> {
        let id = row.get(Some(self.network_message_id));
        if id.is_empty() {
            return Err("expected a network_message_id, which ties a message's rows together".into());
        }
        let time = row.time(self.time, "date_time_utc")?;
        let size = row.number(self.size, "total_bytes")?;
        let seq = messages.0.len();
        // Network message ids are GUIDs, written with or without dashes, in either case.
        let m = messages.0.entry(crate::network_key(id)).or_insert_with(|| Message { seq, ..Default::default() });
        m.sender = m.sender.take().or_else(|| row.text(self.sender));
        m.message_id = m.message_id.take().or_else(|| row.text(self.message_id));
        m.size = m.size.or(size);
        m.direction = m.direction.or_else(|| fields::directionality(row.get(self.directionality)));
        let recipients: Vec<String> = fields::addresses(row.get(self.recipient)).collect();
        for r in &recipients {
            if !m.recipients.contains(r) {
                m.recipients.push(r.clone());
            }
        }

        let custom = CustomData::parse(row.get(self.custom_data));
        let connector_id = row.get(self.connector);
        let at = Location { file: Some(row.file.clone()), line: Some(row.line), page: None };
        // The connector named in custom_data is the tenant's; connector_id may name the server's
        // receive connector it came through.
        let hop = |rank, direction, ip: Option<IpAddr>, host: Option<String>| Hop {
            rank,
            time,
            at: at.clone(),
            ip,
            host,
            connector: custom
                .connector(direction)
                .and_then(fields::connector)
                .or_else(|| fields::connector(connector_id)),
            tls: custom.tls_version(),
        };
        let intra_organization = connector_id.eq_ignore_ascii_case(INTRA_ORGANIZATION);
        let event = fields::normalize(row.get(Some(self.event_id)));
        let send_status = match event.as_str() {
            "receive" => {
                let rank = if row.get(self.source).eq_ignore_ascii_case("SMTP") { 2 } else { 1 };
                let ip = row.get(self.client_ip).parse().or_else(|_| row.get(self.original_client_ip).parse()).ok();
                if better(&mut m.receive, hop(rank, Direction::Inbound, ip, row.text(self.client_hostname))) {
                    m.receive_recipients.clone_from(&recipients);
                }
                None
            }
            "deliver" => {
                m.delivered = true;
                None
            }
            "send" => {
                // Handed on to a server of the tenant's own (in a hybrid setup): delivered,
                // for the recipients inside; a hop between Microsoft's servers is not.
                m.delivered |= !intra_organization;
                Some(Status::Delivered)
            }
            "fail" | "drop" | "badmail" | "poisonmessage" => {
                m.failed = true;
                Some(Status::Failed)
            }
            "defer" => {
                m.deferred = true;
                Some(Status::Deferred)
            }
            _ => None,
        };
        // A SEND hands the message out, and a FAIL or DEFER is a send attempt when it names the
        // route out; a mailbox's is not, nor is any row of a hop between Microsoft's servers.
        // Only recipients outside the accepted domains count: the others were not sent out.
        let sending = !intra_organization
            && (send_status == Some(Status::Delivered)
                || !connector_id.is_empty()
                || custom.get(OUTBOUND_CONNECTOR_DATA).is_some());
        let outside: Vec<String> = recipients.into_iter().filter(|r| !is_accepted(r, row.accepted_domains)).collect();
        if let Some(status) = send_status.filter(|_| sending && !outside.is_empty()) {
            let ip = row.get(self.server_ip).parse().ok();
            let rank = if status == Status::Delivered { 2 } else { 1 };
            better(&mut m.send, hop(rank, Direction::Outbound, ip, row.text(self.server_hostname)));
            m.send_status = fields::overall(m.send_status.into_iter().chain([status]));
            m.send_rows.push(at);
            for r in outside {
                if !m.send_recipients.contains(&r) {
                    m.send_recipients.push(r);
                }
            }
        }
        Ok(())
    }
}

impl Messages {
    /// Emits every message's events, in the order their first rows were read.
    pub fn finish(self, accepted_domains: &[String], run: &mut Run, out: &mut Emitter<'_>) {
        let mut messages: Vec<(String, Message)> = self.0.into_iter().collect();
        messages.sort_unstable_by_key(|(_, m)| m.seq);
        let (mut guessed, mut unchecked, mut unreceived) = (0u64, 0u64, 0u64);
        for (id, m) in messages {
            let direction = m.direction.unwrap_or_else(|| {
                guessed += 1;
                direction_of_sender(m.sender.as_deref().unwrap_or(""), accepted_domains)
            });
            // Grouped by `network_key` already.
            let key = || Some(id.clone());
            let event = |hop: &Hop, direction, recipients: &[String], status, rows: &[Location]| {
                let mut event = MessageEvent::new(hop.time, direction);
                event.connector = hop.connector.clone();
                event.tls.version = hop.tls;
                event.peer.ip = hop.ip;
                event.peer.host = hop.host.clone();
                event.sender = m.sender.clone();
                event.recipients = u32::try_from(recipients.len()).ok().filter(|n| *n > 0);
                event.recipient_domains = fields::domains(recipients.iter().map(String::as_str));
                event.size = m.size;
                event.status = status;
                event.message_id = m.message_id.clone();
                event.evidence = Evidence(rows.to_vec());
                event
            };
            let mut emitted = false;
            // Incoming mail, or mail that came through a connector of the tenant's (from its own
            // servers, in a hybrid setup): the RECEIVE of the tenant's own users is no edge.
            match &m.receive {
                Some(hop) if direction == Direction::Inbound || hop.connector.is_some() => {
                    let status = fields::overall(
                        [(m.delivered || m.send_status == Some(Status::Delivered), Status::Delivered)]
                            .into_iter()
                            .chain([(m.deferred, Status::Deferred), (m.failed, Status::Failed)])
                            .filter_map(|(seen, status)| seen.then_some(status)),
                    );
                    // The recipients it arrived for; forwarding may add others later.
                    let recipients =
                        if m.receive_recipients.is_empty() { &m.recipients } else { &m.receive_recipients };
                    run.emit(
                        key(),
                        event(hop, Direction::Inbound, recipients, status, std::slice::from_ref(&hop.at)),
                        out,
                    );
                    emitted = true;
                }
                None if direction == Direction::Inbound && m.send.is_none() => unreceived += 1,
                _ => {}
            }
            if let Some(hop) = &m.send {
                run.emit(key(), event(hop, Direction::Outbound, &m.send_recipients, m.send_status, &m.send_rows), out);
                emitted = true;
                unchecked += u64::from(accepted_domains.is_empty() && m.direction == Some(Direction::Outbound));
            }
            // Mail between the tenant's own users crosses no edge.
            let inside = |address: &str| is_accepted(address, accepted_domains);
            if !emitted
                && m.sender.as_deref().is_some_and(inside)
                && !m.recipients.is_empty()
                && m.recipients.iter().all(|r| inside(r))
            {
                run.internal(key());
            }
        }
        if accepted_domains.is_empty() {
            crate::summary::warn_no_domains("detail files", guessed, unchecked, out);
        }
        if unreceived > 0 {
            out.warn(format!(
                "detail files: {unreceived} incoming messages have no RECEIVE row (the export may begin after they \
                 arrived), so they are not counted"
            ));
        }
    }
}

/// Keeps the better of two rows, the higher rank, else the earlier; true if that is `new`.
fn better(kept: &mut Option<Hop>, new: Hop) -> bool {
    let wins =
        kept.as_ref().is_none_or(|k| (new.rank, std::cmp::Reverse(new.time)) > (k.rank, std::cmp::Reverse(k.time)));
    if wins {
        *kept = Some(new);
    }
    wins
}
