//! Any CSV with a row per message, read through the `columns` option: Get-MessageTrace piped to
//! Export-Csv, the new message trace's download, another system's export.

use mailflow_component::Emitter;
use mailflow_core::{MessageEvent, TlsVersion};
use mailflow_exchange::direction_of_sender;

use crate::fields::{self, Header, Row};
use crate::{Columns, Run};

pub struct Custom {
    names: Columns,
    pub time: usize,
    direction: Option<usize>,
    sender: Option<usize>,
    recipients: Option<usize>,
    connector: Option<usize>,
    tls: Option<usize>,
    size: Option<usize>,
    status: Option<usize>,
    message_id: Option<usize>,
    peer_ip: Option<usize>,
}

impl Custom {
    pub fn new(header: &Header, names: &Columns) -> Result<Self, String> {
        let find = |key: &str, name: &Option<String>| match name {
            None => Ok(None),
            Some(name) => header
                .find(&[name])
                .map(Some)
                .ok_or_else(|| format!("`columns.{key}` names the column {name:?}, which the header does not have")),
        };
        Ok(Custom {
            names: names.clone(),
            time: find("time", &names.time)?.ok_or("`columns` needs `time`")?,
            direction: find("direction", &names.direction)?,
            sender: find("sender", &names.sender)?,
            recipients: find("recipients", &names.recipients)?,
            connector: find("connector", &names.connector)?,
            tls: find("tls", &names.tls)?,
            size: find("size", &names.size)?,
            status: find("status", &names.status)?,
            message_id: find("message_id", &names.message_id)?,
            peer_ip: find("peer_ip", &names.peer_ip)?,
        })
    }

    pub fn row(&mut self, row: &Row<'_>, run: &mut Run, out: &mut Emitter<'_>) -> Result<(), String> {
        let name = |n: &Option<String>| n.clone().unwrap_or_default();
        let time = row.time(self.time, &name(&self.names.time))?;
        let size = row.number(self.size, &name(&self.names.size))?;
        let cell = row.get(self.direction);
        let direction = fields::direction(cell)
            .or_else(|| self.sender.map(|s| direction_of_sender(row.get(Some(s)), row.accepted_domains)))
            .ok_or_else(|| {
                format!("expected Inbound or Outbound in `{}`, not {cell:?}", name(&self.names.direction))
            })?;
        let cell = row.get(self.tls);
        let tls = match fields::normalize(cell).as_str() {
            "" | "unknown" => None,
            "none" | "notls" | "no" | "plaintext" | "plain" => Some(TlsVersion::None),
            _ => Some(mailflow_core::TlsVersion::from_protocol(cell).ok_or_else(|| {
                format!("expected a TLS version like TLS1.2, or None, in `{}`, not {cell:?}", name(&self.names.tls))
            })?),
        };
        let mut event = MessageEvent::new(time, direction);
        let cell = row.get(self.recipients);
        match fields::number(cell) {
            Some(count) => event.recipients = count.and_then(|n| u32::try_from(n).ok()),
            None => {
                let addresses: Vec<String> = fields::addresses(cell).collect();
                event.recipients = u32::try_from(addresses.len()).ok().filter(|n| *n > 0);
                event.recipient_domains = fields::domains(addresses.iter().map(String::as_str));
            }
        }
        event.connector = fields::connector(row.get(self.connector));
        event.tls.version = tls;
        event.peer.ip = row.get(self.peer_ip).parse().ok();
        event.sender = row.text(self.sender);
        event.size = size;
        event.status = fields::status(row.get(self.status));
        event.message_id = row.text(self.message_id);
        event.evidence = row.evidence();
        let key = event.message_id.as_deref().map(crate::message_key);
        run.emit(key, event, out);
        Ok(())
    }
}
