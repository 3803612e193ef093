//! `[[collector]] type = "exchange"`: message events from Exchange Server's own logs.
//!
//! Exchange Server (2010 to Subscription Edition) records every message in its message
//! tracking logs (`MSGTRK*.LOG`), one CSV row per event of a message on a server: RECEIVE,
//! SEND, DEFER, FAIL, DELIVER and a dozen internal ones. Those rows name the connector and the
//! peer but never TLS. TLS is in the SMTP protocol logs (`RECV*.LOG`, `SEND*.LOG`), one row per
//! command of each SMTP session, which name no message. The two meet on the session id: a
//! tracking row of SMTP names its session first in `source-context`. So the collector reads the
//! protocol logs first and keeps each session that carried mail, then reads the tracking logs
//! and gives each message its session's TLS.
//!
//! Both are W3C-style CSV files whose `#Fields:` header names the columns, and the columns
//! differ between versions (Exchange 2016 adds three, 2010 lacks one) and even within a file
//! (a restart after an update writes a new header). Every header is read, and lines are split
//! by hand over bytes: a busy server writes gigabytes a week, most of it rows that are not
//! traffic (DELIVER, AGENTINFO, HAREDIRECT…), which are passed over without allocating.
//!
//! What counts as traffic (mail from outside accepted over SMTP, mail handed to a next hop
//! outside) and the rules that keep Exchange's many internal hops out are in `README.md`.
//!
//! # Layout
//! - [`ExchangeConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`ExchangeCollector`]: the running collector built from it, which hands the inputs to
//!   `mailflow_component::logs::read_logs`.
//! - `parser`: the state between lines (sessions, messages in flight) and what each line does.
//! - `fields`: CSV splitting, `#Fields:` layouts, stamps, addresses.

mod fields;
mod parser;

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use mailflow_component::clock::{Clock, YearRule};
use mailflow_component::input::{self, LineRef, PathSpec};
use mailflow_component::logs::{self, LineAt, LogOptions, LogParser};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter};
use mailflow_config::{ComponentSection, ConfigError};
use serde::Deserialize;

use parser::{Limits, Listed, Parser, Settings};

/// Options of an `exchange` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Message tracking logs: files, globs (`…\TransportRoles\Logs\MessageTracking\MSGTRK*.LOG`)
    /// or `-` for standard input. Relative paths are taken from the config file's folder.
    pub paths: Vec<PathBuf>,
    /// SMTP protocol logs, receive and send (`…\FrontEnd\ProtocolLog\SmtpReceive\RECV*.LOG`,
    /// `…\Hub\ProtocolLog\SmtpSend\SEND*.LOG`). Without them every TLS version is unknown.
    #[serde(default)]
    pub protocol_paths: Vec<PathBuf>,
    /// Longest line read; longer lines are skipped and counted.
    #[serde(default = "mailflow_component::logs::default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// SMTP sessions that carried mail held at once, waiting for their tracking rows.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Messages held at once: deferred ones waiting for their outcome, and recent ones
    /// remembered so their other rows count no second time.
    #[serde(default = "mailflow_component::logs::default_max_messages")]
    pub max_messages: usize,
    /// A session is forgotten this long after its last protocol log line (measured on the
    /// tracking logs' clock).
    #[serde(default = "default_session_ttl_minutes")]
    pub session_ttl_minutes: u32,
    /// A deferred message with no row for this long counts as deferred and is forgotten
    /// (Exchange gives up after 2 days by default: `MessageExpirationTimeout`).
    #[serde(default = "default_message_ttl_hours")]
    pub message_ttl_hours: u32,
}

fn default_max_sessions() -> usize {
    1_000_000
}
fn default_session_ttl_minutes() -> u32 {
    60
}
fn default_message_ttl_hours() -> u32 {
    72
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: ExchangeConfig = section.options()?;
    let tracking = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    let protocol: Vec<PathSpec> =
        config.protocol_paths.iter().map(|p| PathSpec::new(p, section.config_dir())).collect();
    if config.max_line_bytes == 0 || config.max_sessions == 0 || config.max_messages == 0 {
        return Err(section.error("`max_line_bytes`, `max_sessions` and `max_messages` must be above 0"));
    }
    if config.session_ttl_minutes == 0 || config.message_ttl_hours == 0 {
        return Err(section.error("`session_ttl_minutes` and `message_ttl_hours` must be above 0"));
    }
    let mut globs = Vec::new();
    for spec in &protocol {
        if let PathSpec::Glob(pattern) = spec {
            let compiled = glob::Pattern::new(pattern)
                .map_err(|e| section.error(format!("`protocol_paths`: {pattern} is not a valid glob: {e}")))?;
            globs.push(compiled);
        }
    }
    Ok(Box::new(ExchangeCollector { config, tracking, protocol, globs }))
}

pub struct ExchangeCollector {
    config: ExchangeConfig,
    tracking: Vec<PathSpec>,
    protocol: Vec<PathSpec>,
    globs: Vec<glob::Pattern>,
}

impl ExchangeCollector {
    fn limits(&self) -> Limits {
        Limits {
            max_sessions: self.config.max_sessions,
            max_messages: self.config.max_messages,
            session_ttl: i64::from(self.config.session_ttl_minutes) * 60_000_000,
            message_ttl: i64::from(self.config.message_ttl_hours) * 3_600_000_000,
        }
    }

    /// Whether an input of the run, by its name, came from `protocol_paths`.
    fn listed_as_protocol(&self) -> Listed {
        let files: Vec<String> = self
            .protocol
            .iter()
            .filter_map(|spec| match spec {
                PathSpec::File(path) => Some(path.display().to_string()),
                PathSpec::Stdin => Some("<stdin>".to_string()),
                PathSpec::Glob(_) => None,
            })
            .collect();
        let globs = self.globs.clone();
        Box::new(move |name: &str| {
            files.iter().any(|f| f == name) || globs.iter().any(|g| g.matches_path(Path::new(name)))
        })
    }
}

impl Collector for ExchangeCollector {
    fn resumable(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let settings = Settings {
            limits: self.limits(),
            internal: ctx.site.internal_networks.clone(),
            accepted: ctx.site.accepted_domains.clone(),
            protocol_logs: !self.protocol.is_empty(),
            listed: Some(self.listed_as_protocol()),
        };
        let mut parser = Parser::new(settings);
        // Protocol logs first: tracking rows look their sessions up.
        let inputs: Vec<PathSpec> = self.protocol.iter().chain(&self.tracking).cloned().collect();
        // Every stamp is UTC with its `Z`: no time zone or year to configure.
        let options = LogOptions { timezone: Tz::UTC, year: None, max_line_bytes: self.config.max_line_bytes };
        logs::read_logs(&inputs, &options, ctx, &mut parser, out)
    }
}

/// Runs the whole collector over `text` as one input, with default limits, `10.0.0.0/8` as the
/// internal networks and protocol logs expected (a text may hold protocol and tracking header
/// blocks one after the other): for fuzzing, property tests and benches, which need no files.
#[doc(hidden)]
pub fn collect_text(text: &[u8], out: &mut Emitter<'_>) {
    let limits = Limits {
        max_sessions: default_max_sessions(),
        max_messages: mailflow_component::logs::default_max_messages(),
        session_ttl: i64::from(default_session_ttl_minutes()) * 60_000_000,
        message_ttl: i64::from(default_message_ttl_hours()) * 3_600_000_000,
    };
    let settings = Settings {
        limits,
        internal: vec!["10.0.0.0/8".parse().expect("a valid network")],
        accepted: Vec::new(),
        protocol_logs: true,
        listed: None,
    };
    let mut parser = Parser::new(settings);
    let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
    let max_line_bytes = mailflow_component::logs::default_max_line_bytes();
    parser.start("text", 1);
    let mut number = 0;
    let source = Box::new(std::io::Cursor::new(text.to_vec()));
    let result = input::for_each_line(source, max_line_bytes, |line| {
        number += 1;
        let at = LineAt { file: "text", line: number };
        match line {
            LineRef::TooLong(n) => out.skip(at, format!("line of {n} bytes is over max_line_bytes ({max_line_bytes})")),
            LineRef::Text(text) if text.iter().all(u8::is_ascii_whitespace) => {}
            LineRef::Text(text) => parser.line(text, at, &mut clock, out),
        }
    });
    if let Err(e) = result {
        out.error(format!("text: stopped after line {number}: {e}"));
    }
    parser.finish(out);
    parser.report(out);
}

#[cfg(test)]
mod tests {
    use mailflow_config::Config;

    fn build(options: &str) -> Result<(), String> {
        let text = format!("[[collector]]\ntype = \"exchange\"\n{options}");
        let config = Config::parse(&text, std::path::Path::new("/etc/mailflow/m.toml"), &|_| None).unwrap();
        crate::build(&config.collectors[0]).map(drop).map_err(|e| e.to_string())
    }

    #[test]
    fn the_sample_config_builds() {
        let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample.toml")).unwrap();
        let config = Config::parse(&sample, std::path::Path::new("/etc/mailflow/m.toml"), &|_| None).unwrap();
        assert!(crate::build(&config.collectors[0]).is_ok());
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        assert!(build("paths = []").unwrap_err().contains("`paths` is empty"));
        assert!(build("paths = [\"a\"]\nmax_sessions = 0").unwrap_err().contains("must be above 0"));
        assert!(build("paths = [\"a\"]\nmessage_ttl_hours = 0").unwrap_err().contains("must be above 0"));
        assert!(build("paths = [\"a\"]\ntimezone = \"UTC\"").unwrap_err().contains("unknown field `timezone`"));
        assert!(build("paths = [\"a\"]\nprotocol_paths = [\"[x*\"]").unwrap_err().contains("not a valid glob"));
        assert!(build("paths = [\"a\"]\nprotocol_paths = [\"RECV*.LOG\"]").is_ok());
    }
}
