//! The enhanced summary report (`-ReportType MessageTrace`): one row per message, its
//! recipients and what became of each in `recipient_status`
//! (`a@x##Receive, Deliver;b@y##Receive, Fail`). It says nothing of TLS.

use mailflow_component::Emitter;
use mailflow_core::{Direction, MessageEvent};
use mailflow_exchange::direction_of_sender;

use crate::fields::{self, Header, Row};

pub fn looks_like(header: &Header) -> bool {
    header.find(&["origin_timestamp_utc"]).is_some() && header.find(&["recipient_status"]).is_some()
}

pub struct Summary {
    time: usize,
    recipient_status: usize,
    sender: Option<usize>,
    size: Option<usize>,
    message_id: Option<usize>,
    client_ip: Option<usize>,
    directionality: Option<usize>,
    connector: Option<usize>,
    /// Messages whose direction came from the sender's domain.
    guessed: u64,
}

impl Summary {
    pub fn new(header: &Header) -> Result<Self, String> {
        Ok(Summary {
            time: header.require("origin_timestamp_utc")?,
            recipient_status: header.require("recipient_status")?,
            sender: header.find(&["sender_address"]),
            size: header.find(&["total_bytes"]),
            message_id: header.find(&["message_id"]),
            client_ip: header.find(&["original_client_ip"]),
            directionality: header.find(&["directionality"]),
            connector: header.find(&["connector_id"]),
            guessed: 0,
        })
    }

    pub fn row(&mut self, row: &Row<'_>, out: &mut Emitter<'_>) -> Result<(), String> {
        let time = row.time(self.time, "origin_timestamp_utc")?;
        let size = row.number(self.size, "total_bytes")?;
        let sender = row.text(self.sender);
        let direction = fields::direction(row.get(self.directionality)).unwrap_or_else(|| {
            self.guessed += 1;
            direction_of_sender(sender.as_deref().unwrap_or(""), row.accepted_domains)
        });
        let mut addresses = Vec::new();
        let mut statuses = Vec::new();
        for entry in row.get(Some(self.recipient_status)).split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (address, events) = entry.split_once("##").unwrap_or((entry, ""));
            addresses.push(address.trim());
            // The last event that says anything about delivery (not `SpamDiagnostic`, say).
            statuses.extend(events.rsplit(',').find_map(fields::status));
        }
        let mut event = MessageEvent::new(time, direction);
        event.connector = fields::connector(row.get(self.connector));
        // The original client is the sending server of inbound mail, but the sender's own
        // client of outbound mail, which is no peer of the edge.
        if direction == Direction::Inbound {
            event.peer.ip = row.get(self.client_ip).parse().ok();
        }
        event.recipients = u32::try_from(addresses.len()).ok().filter(|n| *n > 0);
        event.recipient_domains = fields::domains(addresses);
        event.sender = sender;
        event.size = size;
        event.status = fields::overall(statuses);
        event.message_id = row.text(self.message_id);
        event.evidence = row.evidence();
        out.event(event);
        Ok(())
    }

    pub fn finish(self, file: &str, accepted_domains: &[String], out: &mut Emitter<'_>) {
        warn_guessed(file, self.guessed, accepted_domains, out);
    }
}

/// Without accepted domains every message whose direction is not written counts as inbound;
/// say so rather than let a report quietly lack its outbound mail.
pub fn warn_guessed(file: &str, guessed: u64, accepted_domains: &[String], out: &mut Emitter<'_>) {
    if guessed > 0 && accepted_domains.is_empty() {
        out.warn(format!(
            "{file}: {guessed} messages have a directionality other than Originating or Incoming, and [site] \
             accepted_domains is empty, so they count as inbound; list the tenant's domains there"
        ));
    }
}
