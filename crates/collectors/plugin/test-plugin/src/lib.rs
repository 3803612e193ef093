//! A plugin that misbehaves on request: `settings.mode` picks how, `settings.events` how many
//! good events it sends first. The plugin collector's tests load it to see that the host keeps
//! what it can and says what went wrong.

use mailflow_plugin_sdk::{
    Batch, Collector, Direction, Error, Host, MessageEvent, Range, TlsVersion, export_collector,
};
use serde::Deserialize;

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Good,
    FailCreate,
    PanicCreate,
    FailOpen,
    FailNext,
    PanicNext,
    Malformed,
    Hang,
    /// Empty batches, forever.
    Spin,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    events: u32,
    /// How long `hang` hangs.
    #[serde(default = "thirty")]
    hang_secs: u64,
}

fn thirty() -> u64 {
    30
}

struct Misbehaving {
    settings: Settings,
    host: Host,
    range: Option<Range>,
    sent: u32,
}

impl Collector for Misbehaving {
    const NAME: &'static std::ffi::CStr = c"misbehaving";
    type Settings = Settings;

    fn create(settings: Settings, host: Host) -> Result<Self, Error> {
        match settings.mode {
            Mode::FailCreate => Err("cannot reach the log server at 192.0.2.1:514".into()),
            Mode::PanicCreate => panic!("settings were not checked"),
            _ => Ok(Misbehaving { settings, host, range: None, sent: 0 }),
        }
    }

    fn open_range(&mut self, range: Range) -> Result<(), Error> {
        if self.settings.mode == Mode::FailOpen {
            return Err("this source keeps 7 days".into());
        }
        self.range = Some(range);
        Ok(())
    }

    /// Two good events per batch, then, in a call of its own, what `mode` asks for.
    fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, Error> {
        let start = self.range.expect("open_range came first").start;
        while self.sent < self.settings.events && batch.len() < 2 {
            let mut event = MessageEvent::new(start + chrono_seconds(self.sent), Direction::Inbound);
            event.tls.version = Some(TlsVersion::Tls1_3);
            event.size = Some(1000);
            batch.push(&event);
            self.sent += 1;
        }
        if !batch.is_empty() {
            return Ok(true);
        }
        self.host.warn("all good events sent");
        match self.settings.mode {
            Mode::FailNext => Err("the log server closed the connection".into()),
            Mode::PanicNext => panic!("index out of bounds: the len is 3 but the index is 7"),
            Mode::Malformed => {
                batch.push_json_line(br#"{"time":"2026-12-04T10:00:00Z","direction":"sideways"}"#);
                batch.push_json_line(b"not json at all");
                batch.push_json_line(br#"{"time":"2026-12-04 10:00:00","direction":"inbound"}"#);
                batch.push_json_line(
                    br#"{"time":"2026-12-04T10:00:00Z","direction":"outbound","tls":{"version":"tls1_2"}}"#,
                );
                Ok(false)
            }
            Mode::Hang => {
                std::thread::sleep(std::time::Duration::from_secs(self.settings.hang_secs));
                Ok(false)
            }
            Mode::Spin => Ok(true),
            _ => Ok(false),
        }
    }
}

fn chrono_seconds(n: u32) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(i64::from(n))
}

export_collector!(Misbehaving);
