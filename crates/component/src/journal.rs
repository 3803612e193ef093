//! Lines of `journalctl -o json` (or `-o export`-converted JSON): one JSON object per entry
//! with the syslog fields journald keeps apart. `MESSAGE` is a string, or an array of bytes
//! when it was not valid UTF-8.

use std::borrow::Cow;

use serde::Deserialize;

use crate::syslog::{Header, Stamp, digits};

#[derive(Debug, Deserialize)]
pub struct Entry<'a> {
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
    realtime: Option<Cow<'a, str>>,
    #[serde(rename = "_HOSTNAME", borrow)]
    hostname: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow)]
    identifier: Option<Cow<'a, str>>,
    #[serde(rename = "_PID", borrow)]
    pid: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_PID", borrow)]
    syslog_pid: Option<Cow<'a, str>>,
    #[serde(rename = "MESSAGE", borrow)]
    message: Option<Message<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Message<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Bytes(Vec<u8>),
}

impl<'a> Entry<'a> {
    pub fn parse(line: &'a [u8]) -> Result<Self, String> {
        serde_json::from_slice(line).map_err(|e| format!("expected a journald JSON entry (journalctl -o json): {e}"))
    }

    pub fn header(&self) -> Result<Header<'_>, &'static str> {
        let micros = self
            .realtime
            .as_deref()
            .and_then(|t| digits(t.as_bytes()))
            .ok_or("a journald entry with __REALTIME_TIMESTAMP")?;
        let program = self.identifier.as_deref().ok_or("a journald entry with SYSLOG_IDENTIFIER")?;
        let pid = self.syslog_pid.as_deref().or(self.pid.as_deref()).and_then(|p| digits(p.as_bytes())).unwrap_or(0);
        let message = match &self.message {
            Some(Message::Text(text)) => text.as_bytes(),
            Some(Message::Bytes(bytes)) => bytes,
            None => return Err("a journald entry with MESSAGE"),
        };
        Ok(Header {
            stamp: Stamp::Instant(i64::try_from(micros).map_err(|_| "a journald entry with __REALTIME_TIMESTAMP")?),
            host: self.hostname.as_deref().unwrap_or("").as_bytes(),
            program: program.as_bytes(),
            pid: u32::try_from(pid).unwrap_or(0),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_journalctl_json() {
        let line = br#"{"__REALTIME_TIMESTAMP":"1796396707910102","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/smtpd","_PID":"4242","MESSAGE":"connect from x[192.0.2.1]","PRIORITY":"6"}"#;
        let entry = Entry::parse(line).unwrap();
        let h = entry.header().unwrap();
        assert_eq!((h.host, h.program, h.pid), (&b"mx"[..], &b"postfix/smtpd"[..], 4242));
        assert_eq!(h.stamp, Stamp::Instant(1_796_396_707_910_102));
        assert_eq!(h.message, b"connect from x[192.0.2.1]");
        let bytes = br#"{"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"postfix/qmgr","MESSAGE":[65,255,66]}"#;
        let entry = Entry::parse(bytes).unwrap();
        assert_eq!(entry.header().unwrap().message, b"A\xffB");
        assert!(Entry::parse(br#"{"MESSAGE":"x"}"#).unwrap().header().is_err());
        assert!(Entry::parse(b"{not json").is_err());
    }
}
