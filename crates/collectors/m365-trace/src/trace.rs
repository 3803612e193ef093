//! From list rows to events: rows are grouped into messages, each message split by direction
//! into parts, and a part's connector and TLS read from one recipient's trace details.
//!
//! Direction comes from `site.accepted_domains`: a sender outside and a recipient inside is
//! inbound; a sender inside and a recipient outside is outbound; both inside is internal mail,
//! which crosses no connector and is not counted; both outside (mail relayed or forwarded
//! through the tenant) came in and went out, so it counts in both directions, as the detail
//! export counts it. A message counts once per direction, whatever its number of recipients.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use mailflow_component::Emitter;
use mailflow_core::format::{fit, printable};
use mailflow_core::{Direction, Evidence, Location, MessageEvent, Peer, Status, Tls, TlsVersion};
use mailflow_exchange::{
    CustomData, domains, is_accepted, is_builtin_connector, mep_entries, overall_status, status, tls_in_description,
};
use serde::Deserialize;

use crate::http::Stats;

/// One row of the list: one recipient of one message.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    pub id: String,
    #[serde(default)]
    pub sender_address: Option<String>,
    pub recipient_address: String,
    #[serde(default)]
    pub message_id: Option<String>,
    pub received_date_time: DateTime<Utc>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default, rename = "fromIP")]
    pub from_ip: Option<String>,
    #[serde(default, rename = "toIP")]
    pub to_ip: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// One event of a recipient's trace details. Every field may be absent or null, and fields
/// not named here are ignored; a value of another type makes the event unreadable (skipped and
/// counted), rather than read as something it does not say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DetailEvent {
    pub event: Option<String>,
    pub action: Option<String>,
    pub description: Option<String>,
    pub date_time: Option<DateTime<Utc>>,
    pub data: Option<String>,
}

/// `detail = "all" | "none" | { sample = N }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DetailRepr")]
pub enum Detail {
    #[default]
    All,
    None,
    /// Details of at most N messages per local day and direction, the same ones on every run.
    Sample(u32),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DetailRepr {
    Word(String),
    Sample { sample: u32 },
}

impl TryFrom<DetailRepr> for Detail {
    type Error = String;
    fn try_from(repr: DetailRepr) -> Result<Detail, String> {
        match repr {
            DetailRepr::Word(w) if w == "all" => Ok(Detail::All),
            DetailRepr::Word(w) if w == "none" => Ok(Detail::None),
            DetailRepr::Word(w) => Err(format!("`detail` must be \"all\", \"none\" or {{ sample = N }}, not \"{w}\"")),
            DetailRepr::Sample { sample } => Ok(Detail::Sample(sample)),
        }
    }
}

impl Detail {
    /// The parts of one day whose details to fetch, in order.
    pub fn choose(&self, parts: &[Part]) -> Vec<usize> {
        match *self {
            Detail::All => (0..parts.len()).collect(),
            Detail::None => Vec::new(),
            Detail::Sample(n) => {
                // The parts with the smallest hash of their id: spread over the day, and stable
                // from run to run, so a rerun fetches the same details.
                let mut by_direction: HashMap<Direction, Vec<(u64, usize)>> = HashMap::new();
                for (index, part) in parts.iter().enumerate() {
                    by_direction
                        .entry(part.direction)
                        .or_default()
                        .push((mailflow_core::fnv1a(part.id.as_bytes()), index));
                }
                let mut chosen: Vec<usize> = by_direction
                    .into_values()
                    .flat_map(|mut day| {
                        day.sort_unstable();
                        day.into_iter().take(n as usize).map(|(_, index)| index)
                    })
                    .collect();
                chosen.sort_unstable();
                chosen
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Detail::All => "\"all\"".into(),
            Detail::None => "\"none\"".into(),
            Detail::Sample(n) => format!("{{ sample = {n} }}"),
        }
    }
}

/// One message in one direction: what becomes one event.
#[derive(Debug, Clone)]
pub struct Part {
    pub id: String,
    pub direction: Direction,
    pub time: DateTime<Utc>,
    sender: Option<String>,
    recipients: u32,
    recipient_domains: Vec<String>,
    size: Option<u64>,
    status: Option<Status>,
    message_id: Option<String>,
    peer_ip: Option<IpAddr>,
    /// The recipient whose details stand for the part.
    pub detail_recipient: String,
    connector: Option<String>,
    tls: Option<TlsVersion>,
    detailed: bool,
}

/// What the collector counts besides events, for its notes.
#[derive(Debug, Default)]
pub struct Tally {
    pub duplicates: u64,
    pub internal: u64,
    pub undetailed: u64,
    pub detail_failures: u64,
    pub tls_unknown: u64,
    /// Rows whose status no status word maps (`unknownFutureValue`, a new value, none).
    pub unknown_status: u64,
    /// A few of those statuses, for the note.
    pub unknown_status_words: BTreeSet<String>,
}

/// How many unknown status words a note quotes.
const STATUS_WORDS_QUOTED: usize = 5;

/// Groups rows by message and splits each message by direction.
pub fn parts(rows: Vec<ListRow>, accepted_domains: &[String], tally: &mut Tally) -> Vec<Part> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut messages: Vec<Vec<ListRow>> = Vec::new();
    for row in rows {
        let slot = *index.entry(row.id.clone()).or_insert_with(|| {
            messages.push(Vec::new());
            messages.len() - 1
        });
        messages[slot].push(row);
    }
    let mut parts = Vec::new();
    for rows in messages {
        let sender = rows.iter().find_map(|r| r.sender_address.clone());
        let sender_inside = sender.as_deref().is_some_and(|s| is_accepted(s, accepted_domains));
        let (mut inbound, mut outbound) = (Vec::new(), Vec::new());
        for row in &rows {
            let word = row.status.as_deref().unwrap_or("").trim();
            if status(word).is_none() {
                tally.unknown_status += 1;
                if tally.unknown_status_words.len() < STATUS_WORDS_QUOTED {
                    let word = if word.is_empty() { "none".to_string() } else { fit(&printable(word), 40) };
                    tally.unknown_status_words.insert(word);
                }
            }
            match (sender_inside, is_accepted(&row.recipient_address, accepted_domains)) {
                (true, true) => {}
                (true, false) => outbound.push(row),
                (false, true) => inbound.push(row),
                (false, false) => {
                    inbound.push(row);
                    outbound.push(row);
                }
            }
        }
        if inbound.is_empty() && outbound.is_empty() {
            tally.internal += 1;
        }
        for (direction, rows) in [(Direction::Inbound, inbound), (Direction::Outbound, outbound)] {
            if let Some(part) = Part::new(direction, &rows, sender.clone()) {
                parts.push(part);
            }
        }
    }
    parts
}

impl Part {
    fn new(direction: Direction, rows: &[&ListRow], sender: Option<String>) -> Option<Part> {
        let first = rows.first()?;
        let status = overall_status(rows.iter().filter_map(|r| status(r.status.as_deref()?)));
        let peer = match direction {
            Direction::Inbound => &first.from_ip,
            Direction::Outbound => &first.to_ip,
        };
        Some(Part {
            id: first.id.clone(),
            direction,
            time: rows.iter().map(|r| r.received_date_time).min().unwrap_or(first.received_date_time),
            sender,
            recipients: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            recipient_domains: domains(rows.iter().map(|r| r.recipient_address.as_str())),
            size: rows.iter().filter_map(|r| r.size).max(),
            status,
            message_id: first.message_id.clone().filter(|m| !m.is_empty()),
            peer_ip: peer.as_deref().and_then(|ip| ip.trim().parse().ok()),
            detail_recipient: first.recipient_address.clone(),
            connector: None,
            tls: None,
            detailed: false,
        })
    }

    /// Reads connector and TLS from the recipient's trace events.
    ///
    /// Inbound, both come from the Receive event. Outbound, the connector comes from the
    /// outbound-connector data of any event, else the `ConnectorId` of the event that handed the
    /// message out (`Send external`, or `Fail` after the remote server refused it), else a
    /// `RouteMessageUsingConnector` event; TLS comes from that hand-out event only, never from
    /// the Receive event of the sender's own submission.
    pub fn apply_details(&mut self, events: &[DetailEvent]) {
        self.detailed = true;
        let mut events: Vec<&DetailEvent> = events.iter().collect();
        events.sort_by_key(|e| e.date_time);
        let is = |e: &DetailEvent, name: &str| e.event.as_deref().is_some_and(|n| n.trim().eq_ignore_ascii_case(name));
        let read = |e: &DetailEvent| {
            let entries = mep_entries(e.data.as_deref().unwrap_or(""));
            let get = |name: &str| entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
            (get("ConnectorId").filter(|c| !is_builtin_connector(c)), get("CustomData").unwrap_or_default())
        };
        let tls_of = |e: &DetailEvent, custom: &str| {
            CustomData::parse(custom).tls_version().or_else(|| tls_in_description(e.description.as_deref()?))
        };
        match self.direction {
            Direction::Inbound => {
                if let Some(receive) = events.iter().find(|e| is(e, "Receive")) {
                    let (connector_id, custom) = read(receive);
                    let named = CustomData::parse(&custom).connector(Direction::Inbound).map(str::to_string);
                    self.connector = named.or(connector_id);
                    self.tls = tls_of(receive, &custom);
                }
            }
            Direction::Outbound => {
                let named = events
                    .iter()
                    .find_map(|e| CustomData::parse(&read(e).1).connector(Direction::Outbound).map(str::to_string));
                let handout = events.iter().rev().find(|e| is(e, "Send external") || is(e, "Fail"));
                let routed = events.iter().find(|e| {
                    e.action.as_deref().is_some_and(|a| a.trim().eq_ignore_ascii_case("RouteMessageUsingConnector"))
                });
                let handout_read = handout.map(|e| read(e));
                self.connector = named
                    .or_else(|| handout_read.as_ref().and_then(|(id, _)| id.clone()))
                    .or_else(|| routed.and_then(|e| read(e).0));
                self.tls = handout.zip(handout_read.as_ref()).and_then(|(e, (_, custom))| tls_of(e, custom));
            }
        }
    }

    pub fn into_event(self, tally: &mut Tally) -> MessageEvent {
        if !self.detailed {
            tally.undetailed += 1;
        } else if self.tls.is_none() {
            tally.tls_unknown += 1;
        }
        let mut event = MessageEvent::new(self.time, self.direction);
        event.connector = self.connector;
        event.tls = Tls { version: self.tls, ..Tls::default() };
        event.peer = Peer { ip: self.peer_ip, ..Peer::default() };
        event.sender = self.sender;
        event.recipients = Some(self.recipients);
        event.recipient_domains = self.recipient_domains;
        event.size = self.size;
        event.status = self.status;
        event.message_id = self.message_id;
        event.evidence =
            Evidence(vec![Location { page: Some(format!("messageTraces/{}", self.id)), ..Location::default() }]);
        event
    }
}

impl Tally {
    /// Notes what the report should say about this run.
    pub fn finish(&self, detail: &Detail, stats: Stats, requests_per_5min: u32, out: &mut Emitter<'_>) {
        out.note(format!(
            "made {} API calls ({} retried) and {} token requests; waited {} for the limit of {requests_per_5min} \
             requests per 5 minutes and {} after throttling or errors",
            stats.calls,
            stats.retries,
            stats.token_requests,
            duration(stats.paced),
            duration(stats.backed_off)
        ));
        if self.undetailed > 0 {
            out.note(format!(
                "connector and TLS are unknown for {} messages whose trace details were not read (detail = {}); \
                 only connector rules place them",
                self.undetailed,
                detail.describe()
            ));
        }
        if self.tls_unknown > 0 {
            out.note(format!("{} messages' trace details name no TLS version", self.tls_unknown));
        }
        if self.detail_failures > 0 {
            out.note(format!("{} messages' trace details could not be read", self.detail_failures));
        }
        if self.unknown_status > 0 {
            let words: Vec<&str> = self.unknown_status_words.iter().map(String::as_str).collect();
            out.note(format!(
                "{} recipients' status is not known to mailflow ({}); their messages take the status of their other \
                 recipients, or none",
                self.unknown_status,
                words.join(", ")
            ));
        }
        if self.internal > 0 {
            out.note(format!("{} messages between accepted domains are internal and not counted", self.internal));
        }
        if self.duplicates > 0 {
            out.note(format!("{} repeated rows (same id and recipient) were counted once", self.duplicates));
        }
    }
}

fn duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, sender: &str, recipient: &str, status: &str) -> ListRow {
        ListRow {
            id: id.into(),
            sender_address: Some(sender.into()),
            recipient_address: recipient.into(),
            message_id: Some(format!("<{id}@x>")),
            received_date_time: "2026-12-01T10:00:00Z".parse().unwrap(),
            size: Some(1000),
            from_ip: Some("192.0.2.1".into()),
            to_ip: Some("198.51.100.2".into()),
            status: Some(status.into()),
        }
    }

    #[test]
    fn a_message_counts_once_per_direction() {
        let accepted = vec!["corp.example".to_string()];
        let mut tally = Tally::default();
        let parts = parts(
            vec![
                row("m1", "a@outside.example", "x@corp.example", "Delivered"),
                row("m1", "a@outside.example", "y@corp.example", "Failed"),
                row("m2", "x@corp.example", "b@one.example", "Failed"),
                row("m2", "x@corp.example", "c@two.example", "Pending"),
                row("m2", "x@corp.example", "y@corp.example", "Delivered"),
                row("m3", "x@corp.example", "y@corp.example", "Delivered"),
                // Forwarded through the tenant: in and out.
                row("m4", "a@outside.example", "fwd@elsewhere.example", "Delivered"),
                row("m4", "a@outside.example", "x@corp.example", "Delivered"),
            ],
            &accepted,
            &mut tally,
        );
        let m4: Vec<(Direction, u32)> =
            parts.iter().filter(|p| p.id == "m4").map(|p| (p.direction, p.recipients)).collect();
        assert_eq!(m4, [(Direction::Inbound, 2), (Direction::Outbound, 1)]);
        assert_eq!(parts.len(), 4);
        assert_eq!(
            (parts[0].direction, parts[0].recipients, parts[0].status),
            (Direction::Inbound, 2, Some(Status::Delivered))
        );
        assert_eq!(
            (parts[1].direction, parts[1].recipients, parts[1].status),
            (Direction::Outbound, 2, Some(Status::Deferred))
        );
        assert_eq!(parts[1].recipient_domains, ["one.example", "two.example"]);
        assert_eq!(tally.internal, 1);
    }

    proptest::proptest! {
        /// Trace details are read from whatever the API returns, without panicking.
        #[test]
        fn any_details_read_without_panicking(
            events in proptest::collection::vec(
                ("(Receive|Send external|Fail|Deliver|.{0,12})", ".{0,20}", "(?s).{0,60}", "(?s)(<MEP Name=\"[A-Za-z]{0,12}\" String=\"[^\"]{0,40}\" ?/?>|.{0,30}){0,4}"),
                0..6,
            ),
            sender in ".{0,20}",
            recipient in ".{0,20}",
        ) {
            let events: Vec<DetailEvent> = events
                .into_iter()
                .map(|(event, action, description, data)| DetailEvent {
                    event: Some(event), action: Some(action), description: Some(description), date_time: None, data: Some(data),
                })
                .collect();
            let accepted = vec!["corp.example".to_string()];
            for sender in [sender.as_str(), "a@corp.example", "a@outside.example"] {
                let rows = vec![row("m", sender, &recipient, "Delivered"), row("m", sender, "x@corp.example", "")];
                for mut part in parts(rows, &accepted, &mut Tally::default()) {
                    part.apply_details(&events);
                    let _ = part.into_event(&mut Tally::default());
                }
            }
        }
    }

    #[test]
    fn samples_are_stable_and_per_direction() {
        let accepted = vec!["corp.example".to_string()];
        let rows: Vec<ListRow> =
            (0..50).map(|i| row(&format!("m{i}"), "a@outside.example", "x@corp.example", "Delivered")).collect();
        let parts = parts(rows, &accepted, &mut Tally::default());
        let chosen = Detail::Sample(5).choose(&parts);
        assert_eq!(chosen.len(), 5);
        let mut reversed = parts.clone();
        reversed.reverse();
        let again: Vec<&str> = Detail::Sample(5).choose(&reversed).iter().map(|&i| reversed[i].id.as_str()).collect();
        let mut first: Vec<&str> = chosen.iter().map(|&i| parts[i].id.as_str()).collect();
        first.sort_unstable();
        let mut again = again;
        again.sort_unstable();
        assert_eq!(first, again);
    }
}
