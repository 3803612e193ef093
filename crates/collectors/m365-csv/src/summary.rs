//! The enhanced summary report (`-ReportType MessageTrace`): one row per message, its
//! recipients and what became of each in `recipient_status`
//! (`a@x##Receive, Deliver;b@y##Receive, Fail`). It says nothing of TLS.

use mailflow_component::Emitter;
use mailflow_core::{Direction, MessageEvent};
use mailflow_exchange::is_accepted;

use crate::Run;
use crate::fields::{self, Header, Row};

/// The time column's names: older exports write it without `_utc`.
const TIME: &[&str] = &["origin_timestamp_utc", "origin_timestamp"];

pub fn looks_like(header: &Header) -> bool {
    header.find(TIME).is_some() && header.find(&["recipient_status"]).is_some()
}

pub struct Summary {
    pub time: usize,
    /// The time column's name as the file writes it, for messages.
    time_name: String,
    recipient_status: usize,
    sender: Option<usize>,
    size: Option<usize>,
    message_id: Option<usize>,
    network_message_id: Option<usize>,
    client_ip: Option<usize>,
    directionality: Option<usize>,
    connector: Option<usize>,
    /// Without accepted domains: messages whose direction is not written (counted inbound), and
    /// `Originating` (2) messages (counted outbound, though internal mail is `Originating` too).
    guessed: u64,
    unchecked: u64,
}

impl Summary {
    pub fn new(header: &Header) -> Result<Self, String> {
        let time =
            header.find(TIME).ok_or("the header has no `origin_timestamp_utc` (or `origin_timestamp`) column")?;
        Ok(Summary {
            time,
            time_name: header.names()[time].clone(),
            recipient_status: header.require("recipient_status")?,
            sender: header.find(&["sender_address"]),
            size: header.find(&["total_bytes"]),
            message_id: header.find(&["message_id"]),
            network_message_id: header.find(&["network_message_id"]),
            client_ip: header.find(&["original_client_ip"]),
            directionality: header.find(&["directionality"]),
            connector: header.find(&["connector_id"]),
            guessed: 0,
            unchecked: 0,
        })
    }

    pub fn row(&mut self, row: &Row<'_>, run: &mut Run, out: &mut Emitter<'_>) -> Result<(), String> {
        let time = row.time(self.time, &self.time_name)?;
        let size = row.number(self.size, "total_bytes")?;
        let sender = row.text(self.sender);
        // Each recipient and the last event that says anything about its delivery (not
        // `SpamDiagnostic`, say).
        let recipients: Vec<(&str, Option<_>)> = row
            .get(Some(self.recipient_status))
            .split(';')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                let (address, events) = entry.split_once("##").unwrap_or((entry, ""));
                (address.trim(), events.rsplit(',').find_map(fields::status))
            })
            .collect();
        let said = fields::directionality(row.get(self.directionality));
        let accepted = row.accepted_domains;
        let inside = |(address, _): &&(&str, _)| is_accepted(address, accepted);
        // Mail from outside to recipients outside (relayed, forwarded) came in and went out: it
        // counts in both directions, as the detail export and the message trace API count it.
        let (direction, recipients, leaving): (_, Vec<_>, Vec<_>) = if accepted.is_empty() {
            match said {
                Some(Direction::Outbound) => self.unchecked += 1,
                None => self.guessed += 1,
                _ => {}
            }
            (said.unwrap_or(Direction::Inbound), recipients.iter().collect(), Vec::new())
        } else if said == Some(Direction::Inbound) || !is_accepted(sender.as_deref().unwrap_or(""), accepted) {
            // Mail from outside counts for the recipients inside; relayed mail for all of them.
            let kept: Vec<_> = recipients.iter().filter(inside).collect();
            let leaving: Vec<_> = recipients.iter().filter(|r| !inside(r)).collect();
            if kept.is_empty() {
                (Direction::Inbound, leaving.clone(), leaving)
            } else {
                (Direction::Inbound, kept, leaving)
            }
        } else {
            let outside: Vec<_> = recipients.iter().filter(|r| !inside(r)).collect();
            if outside.is_empty() {
                run.internal(self.key(row));
                return Ok(());
            }
            (Direction::Outbound, outside, Vec::new())
        };
        let event_of = |direction, recipients: &[&(&str, Option<_>)]| {
            let mut event = MessageEvent::new(time, direction);
            event.recipients = u32::try_from(recipients.len()).ok().filter(|n| *n > 0);
            event.recipient_domains = fields::domains(recipients.iter().map(|(address, _)| *address));
            event.sender = sender.clone();
            event.size = size;
            event.status = fields::overall(recipients.iter().filter_map(|(_, status)| *status));
            event.message_id = row.text(self.message_id);
            event.evidence = row.evidence();
            event
        };
        let mut event = event_of(direction, &recipients);
        // A row names one connector and one client, taken as the way in: the way relayed mail
        // went out is not in the summary.
        let relayed = (!leaving.is_empty()).then(|| event_of(Direction::Outbound, &leaving));
        event.connector = fields::connector(row.get(self.connector));
        // The original client is the sending server of inbound mail, but the sender's own
        // client of outbound mail, which is no peer of the edge.
        if direction == Direction::Inbound {
            event.peer.ip = row.get(self.client_ip).parse().ok();
        }
        run.emit(self.key(row), event, out);
        if let Some(event) = relayed {
            run.emit(self.key(row), event, out);
        }
        Ok(())
    }

    /// The message's key: its network message id, else its Message-ID.
    fn key(&self, row: &Row<'_>) -> Option<String> {
        match row.get(self.network_message_id) {
            "" => row.text(self.message_id).as_deref().map(crate::message_key),
            id => Some(crate::network_key(id)),
        }
    }

    pub fn finish(self, file: &str, accepted_domains: &[String], out: &mut Emitter<'_>) {
        if accepted_domains.is_empty() {
            warn_no_domains(file, self.guessed, self.unchecked, out);
        }
    }
}

/// Without accepted domains, every message whose direction is not written counts as inbound,
/// and every `Originating` (2) one as outbound, mail between the tenant's own users included: say
/// so rather than let a report quietly lack its outbound mail or hold internal mail.
pub fn warn_no_domains(what: &str, guessed: u64, unchecked: u64, out: &mut Emitter<'_>) {
    if guessed > 0 {
        out.warn(format!(
            "{what}: {guessed} messages have a directionality other than Incoming (1) or Originating (2), and \
             [site] accepted_domains is empty, so they count as inbound; list the tenant's domains there"
        ));
    }
    if unchecked > 0 {
        out.warn(format!(
            "{what}: {unchecked} Originating (2) messages count as outbound, but [site] accepted_domains is empty, so \
             mail between the tenant's own users, Originating too, cannot be told apart and counts among them; \
             list the tenant's domains there"
        ));
    }
}
