//! `[[collector]] type = "opensmtpd"`: message events from OpenSMTPD logs.
//!
//! OpenSMTPD (6.4 and later) logs one short line per event, each starting with the id of the
//! session it belongs to: `smtp` sessions receive mail, `mta` sessions deliver it to the next
//! hop, `mda` delivers locally. A received message is its `msgid`; each recipient is an envelope
//! whose id starts with that msgid. TLS is logged once per session (`smtp tls ciphers=…`,
//! `mta tls ciphers=…`), and an outbound session carries many messages, so a delivery's TLS is
//! its session's, whose TLS line may be far earlier in the log. Joining is therefore by ids, and
//! the work is holding sessions and messages until they are complete: `correlate` does that,
//! `parse` reads single lines, and `mailflow_component::{syslog, journal}` read the envelope
//! around them. The shared read loop (`mailflow_component::logs`) handles files, rotation,
//! clocks and `mailflow ingest` checkpoints.
//!
//! Lines are handled as bytes, without allocation or regular expressions for the lines that do
//! not matter; a busy server's week of log is gigabytes.
//!
//! # Layout
//! - [`OpensmtpdConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`build`]: the registry's constructor; [`OpensmtpdCollector`]: the running collector.
//! - `parse`: one OpenSMTPD message → a `Record`; `correlate`: records → events.

mod correlate;
pub mod parse;

use std::path::PathBuf;

use chrono_tz::Tz;
use mailflow_component::clock::{self, Clock};
use mailflow_component::input::PathSpec;
use mailflow_component::logs::{self, LineAt, LogOptions, LogParser, excerpt};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter, journal, syslog};
use mailflow_config::{ComponentSection, ConfigError};
use serde::Deserialize;

use correlate::{Correlator, Limits, Line};
use mailflow_component::logs::Loc;
use parse::Record;

/// Options of an `opensmtpd` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpensmtpdConfig {
    /// Files, globs (`/var/log/maillog*`, rotated and compressed files included) or `-` for
    /// standard input. Relative paths are taken from the config file's folder.
    pub paths: Vec<PathBuf>,
    /// Time zone of year-less syslog stamps (`Dec  4 15:00:00`); default: the site's.
    #[serde(default)]
    pub timezone: Option<Tz>,
    /// Year of the first year-less line. Default: inferred per file from its modification time
    /// (standard input: from the end of the report range).
    #[serde(default)]
    pub year: Option<i32>,
    /// Syslog program names OpenSMTPD logs under; lines of other programs are ignored.
    #[serde(default = "default_syslog_names")]
    pub syslog_names: Vec<String>,
    /// Longest line read; longer lines are skipped and counted.
    #[serde(default = "mailflow_component::logs::default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Queued messages held in memory at once; the oldest are finished early beyond it.
    #[serde(default = "mailflow_component::logs::default_max_messages")]
    pub max_messages: usize,
    /// Open SMTP sessions (receiving and delivering) held at once.
    #[serde(default = "mailflow_component::logs::default_max_sessions")]
    pub max_sessions: usize,
    /// A message with no line for this long is finished with what is known (OpenSMTPD's
    /// `queue ttl` is 4 days by default).
    #[serde(default = "default_message_ttl_hours")]
    pub message_ttl_hours: u32,
}

fn default_syslog_names() -> Vec<String> {
    vec!["smtpd".to_string()]
}
fn default_message_ttl_hours() -> u32 {
    5 * 24
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: OpensmtpdConfig = section.options()?;
    let inputs = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    if config.max_line_bytes == 0 || config.max_messages == 0 || config.max_sessions == 0 {
        return Err(section.error("`max_line_bytes`, `max_messages` and `max_sessions` must be above 0"));
    }
    if config.message_ttl_hours == 0 {
        return Err(section.error("`message_ttl_hours` must be above 0"));
    }
    if config.syslog_names.is_empty() || config.syslog_names.iter().any(|n| n.is_empty() || n.contains(' ')) {
        return Err(section.error("`syslog_names` must list at least one program name, without spaces"));
    }
    clock::check_year(config.year).map_err(|why| section.error(why))?;
    Ok(Box::new(OpensmtpdCollector { config, inputs }))
}

pub struct OpensmtpdCollector {
    config: OpensmtpdConfig,
    inputs: Vec<PathSpec>,
}

impl OpensmtpdCollector {
    fn parser(&self, internal: &[ipnet::IpNet]) -> Parser {
        let limits = Limits {
            max_sessions: self.config.max_sessions,
            max_messages: self.config.max_messages,
            message_ttl: i64::from(self.config.message_ttl_hours) * 3_600_000_000,
        };
        Parser {
            names: self.config.syslog_names.iter().map(|n| n.as_bytes().to_vec()).collect(),
            correlator: Correlator::new(limits, internal),
            file: 0,
        }
    }
}

impl Collector for OpensmtpdCollector {
    fn resumable(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let options = LogOptions {
            timezone: self.config.timezone.unwrap_or(ctx.site.timezone),
            year: self.config.year,
            max_line_bytes: self.config.max_line_bytes,
        };
        let mut parser = self.parser(&ctx.site.internal_networks);
        logs::read_logs(&self.inputs, &options, ctx, &mut parser, out)
    }
}

/// What the read loop drives: headers and lines parsed here, records correlated there.
struct Parser {
    names: Vec<Vec<u8>>,
    correlator: Correlator,
    /// The current input, as an index of the correlator's file names.
    file: u32,
}

impl LogParser for Parser {
    fn start(&mut self, name: &str, _first_line: u64) {
        self.file = self.correlator.file(name);
    }

    fn line(&mut self, text: &[u8], at: LineAt<'_>, clock: &mut Clock, out: &mut Emitter<'_>) {
        let entry;
        let header = if text.first() == Some(&b'{') {
            entry = match journal::Entry::parse(text) {
                Ok(entry) => entry,
                Err(why) => return out.skip(at, why),
            };
            entry.header()
        } else {
            syslog::parse(text)
        };
        let header = match header {
            Ok(header) => header,
            Err(expected) => return out.skip(at, format!("expected {expected}: {}", excerpt(text))),
        };
        if !self.names.iter().any(|n| n.as_slice() == header.program) {
            return;
        }
        let record = match parse::record(header.message) {
            Ok(Record::Irrelevant) => return,
            Ok(record) => record,
            Err(expected) => return out.skip(at, format!("expected {expected}: {}", excerpt(header.message))),
        };
        let Some(time) = clock.instant(header.stamp) else {
            return out.skip(at, "the date does not exist in the inferred year; set `year`");
        };
        let loc = Loc { file: self.file, line: at.line };
        self.correlator.feed(Line { time, loc, host: header.host, record }, out);
    }

    fn save(&self) -> Vec<u8> {
        self.correlator.save()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.correlator.restore(state)
    }

    fn finish(&mut self, out: &mut Emitter<'_>) {
        self.correlator.finish(out);
    }

    fn report(&self, out: &mut Emitter<'_>) {
        let counts = self.correlator.counts();
        if counts.evicted_messages + counts.evicted_sessions > 0 {
            out.warn(format!(
                "to stay within its memory limits, the collector finished {} queued messages and {} sessions before \
                 their end was in the log; raise max_messages or max_sessions if this log is that busy",
                counts.evicted_messages, counts.evicted_sessions
            ));
        }
        if counts.expired_messages > 0 {
            out.warn(format!(
                "{} messages had no line for message_ttl_hours and were counted with their latest status",
                counts.expired_messages
            ));
        }
        if counts.unknown_clients > 0 {
            out.warn(format!(
                "{} messages were received in sessions that started before the log does; their client (remote or \
                 local) is unknown, so they are not counted as inbound",
                counts.unknown_clients
            ));
        }
    }
}

/// Runs the whole collector over `text` as if it were one log file, with default options and
/// year-less stamps in 2026 UTC: for fuzzing, property tests and benchmarks, which need no files.
#[doc(hidden)]
pub fn collect_text(text: &[u8], out: &mut Emitter<'_>) {
    let config = OpensmtpdConfig {
        paths: Vec::new(),
        timezone: Some(Tz::UTC),
        year: Some(2026),
        syslog_names: default_syslog_names(),
        max_line_bytes: mailflow_component::logs::default_max_line_bytes(),
        max_messages: mailflow_component::logs::default_max_messages(),
        max_sessions: mailflow_component::logs::default_max_sessions(),
        message_ttl_hours: default_message_ttl_hours(),
    };
    let max_line_bytes = config.max_line_bytes;
    let collector = OpensmtpdCollector { config, inputs: Vec::new() };
    let internal = ["10.0.0.0/8".parse().expect("a valid network")];
    let mut parser = collector.parser(&internal);
    let mut clock = Clock::new(Tz::UTC, syslog::YearRule::starting(2026));
    parser.start("text", 1);
    let mut start = 0;
    let mut number = 0;
    while start < text.len() {
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
        let line = &text[start..end];
        start = end + 1;
        number += 1;
        let at = LineAt { file: "text", line: number };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max_line_bytes {
            out.skip(at, format!("line of {} bytes is over max_line_bytes ({max_line_bytes})", line.len()));
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            parser.line(line, at, &mut clock, out);
        }
    }
    parser.finish(out);
    parser.report(out);
}

#[cfg(test)]
mod tests {
    use mailflow_component::{CollectContext, Emitter};
    use mailflow_config::Config;

    fn build(options: &str) -> Result<Box<dyn mailflow_component::Collector>, String> {
        let text = format!("[[collector]]\ntype = \"opensmtpd\"\n{options}\n");
        let config = Config::parse(&text, std::path::Path::new("/etc/mailflow/m.toml"), &|_| None).unwrap();
        crate::build(&config.collectors[0]).map_err(|e| e.to_string())
    }

    #[test]
    fn the_sample_config_builds() {
        let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample.toml")).unwrap();
        let config = Config::parse(&sample, std::path::Path::new("/etc/mailflow/m.toml"), &|_| None).unwrap();
        assert!(crate::build(&config.collectors[0]).is_ok());
        // Every commented-out default is the default.
        let defaults: Vec<&str> = sample.lines().filter_map(|l| l.strip_prefix("# ")).collect();
        let options = defaults.iter().filter(|l| !l.starts_with("timezone") && !l.starts_with("year")).copied();
        assert!(build(&format!("paths = [\"x\"]\n{}", options.collect::<Vec<_>>().join("\n"))).is_ok());
    }

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        for (options, why) in [
            ("paths = []", "`paths` is empty"),
            ("paths = [\"x\"]\nmax_line_bytes = 0", "must be above 0"),
            ("paths = [\"x\"]\nmessage_ttl_hours = 0", "must be above 0"),
            ("paths = [\"x\"]\nsyslog_names = []", "`syslog_names`"),
            ("paths = [\"x\"]\nyear = 12", "`year`"),
            ("paths = [\"x\"]\nmax_mesages = 1", "max_mesages"),
        ] {
            let e = build(options).err().unwrap_or_else(|| panic!("{options} was accepted"));
            assert!(e.contains(why), "{options}: {e}");
        }
    }

    /// With `year` set, rotated files read oldest first continue one another: `maillog.1` ends
    /// on 31 December, `maillog` starts on 1 January of the next year.
    #[test]
    fn a_configured_year_carries_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let session = |stamp: &str, sid: &str, msgid: &str| {
            format!(
                "{stamp} mx1 smtpd[1]: {sid} smtp connected address=192.0.2.1 host=a.example\n\
                 {stamp} mx1 smtpd[1]: {sid} smtp message msgid={msgid} size=1 nrcpt=1 proto=ESMTP\n\
                 {stamp} mx1 smtpd[1]: {sid} smtp envelope evpid={msgid}00000001 from=<a@a.example> to=<b@corp.example>\n"
            )
        };
        std::fs::write(dir.path().join("maillog.1"), session("Dec 31 23:00:00", "0000000000000001", "0a0a0a0a"))
            .unwrap();
        std::fs::write(dir.path().join("maillog"), session("Jan  1 01:00:00", "0000000000000002", "0b0b0b0b")).unwrap();
        let text =
            "[[collector]]\ntype = \"opensmtpd\"\npaths = [\"maillog*\"]\nyear = 2026\n[site]\ntimezone = \"UTC\"\n";
        let config = Config::parse(text, &dir.path().join("m.toml"), &|_| None).unwrap();
        let collector = crate::build(&config.collectors[0]).unwrap();
        let mut times = Vec::new();
        let mut push = |e: mailflow_core::MessageEvent| times.push(e.time.to_rfc3339());
        let mut out = Emitter::new(&mut push);
        let start = chrono::DateTime::UNIX_EPOCH;
        let ctx = CollectContext {
            source: "t",
            site: &config.site,
            start,
            end: chrono::Utc::now(),
            report_start: start,
            resume: None,
        };
        collector.collect(&ctx, &mut out).unwrap();
        assert_eq!(times, ["2026-12-31T23:00:00+00:00", "2027-01-01T01:00:00+00:00"]);
    }
}
