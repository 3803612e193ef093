//! `[[collector]] type = "sendmail"`: message events from Sendmail 8 logs.
//!
//! Sendmail logs a message under its queue id (`from=` when accepted, `to=` per delivery
//! attempt) but logs TLS per connection, without a queue id, in the process that made it: the
//! SMTP session's child for `STARTTLS=server`, the delivering process (the session's child, a
//! forked child, a queue runner) for `STARTTLS=client`. Counting TLS per message is therefore a
//! join by process and relay, and `proto=ESMTPS` on the `from=` line says whether the session
//! used STARTTLS at all. `correlate` holds that logic and its rules; `parse` reads single
//! messages; `mailflow_component::{syslog, journal}` read the envelope around them and
//! `mailflow_component::logs` the files, rotation and checkpoints.
//!
//! Lines are handled as bytes, without allocation or regular expressions for lines that are
//! irrelevant: most of a busy server's log is other programs and connection chatter.
//!
//! # Layout
//! - [`SendmailConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`SendmailCollector`]: the running collector built from it.
//! - `parse`: one Sendmail message → a `Record`; `correlate`: records → events.

mod correlate;
pub mod parse;

use std::path::PathBuf;

use chrono_tz::Tz;
use ipnet::IpNet;
use mailflow_component::clock::{self, Clock, YearRule};
use mailflow_component::input::PathSpec;
use mailflow_component::logs::{self, LineAt, LogOptions, LogParser, excerpt};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter, journal, syslog};
use mailflow_config::{ComponentSection, ConfigError};
use serde::Deserialize;

use correlate::{Correlator, Limits, Line};
use mailflow_component::logs::Loc;

/// Options of a `sendmail` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendmailConfig {
    /// Files, globs (`/var/log/mail.log*`, rotated and compressed files included) or `-` for
    /// standard input. Relative paths are taken from the config file's folder.
    pub paths: Vec<PathBuf>,
    /// Time zone of year-less syslog stamps (`Dec  4 15:00:00`); default: the site's.
    #[serde(default)]
    pub timezone: Option<Tz>,
    /// Year of the first year-less line. Default: inferred per file from its modification time
    /// (standard input: from the end of the report range).
    #[serde(default)]
    pub year: Option<i32>,
    /// Syslog names Sendmail logs under (`sm-mta`, `sendmail`, `sm-msp-queue`, or what `-L`
    /// set). Default: every name that starts with "sendmail" or "sm-".
    #[serde(default)]
    pub syslog_names: Vec<String>,
    /// Sendmail's `LogLevel`. STARTTLS lines are logged from 9 on (the default), and then a
    /// delivery without one was plaintext; below 9 its TLS version is unknown. Default: told by
    /// the log (plaintext once any STARTTLS line was seen).
    #[serde(default)]
    pub log_level: Option<u8>,
    /// Longest line read; longer lines are skipped and counted.
    #[serde(default = "mailflow_component::logs::default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Queued messages held in memory at once; the oldest are finished early beyond it.
    #[serde(default = "mailflow_component::logs::default_max_messages")]
    pub max_messages: usize,
    /// Sendmail processes (SMTP sessions, delivery agents) whose TLS is held at once.
    #[serde(default = "mailflow_component::logs::default_max_sessions")]
    pub max_sessions: usize,
    /// A message with deferred recipients and no line for this long is counted as it is known
    /// (Sendmail's `Timeout.queuereturn` is 5 days by default).
    #[serde(default = "default_message_ttl_hours")]
    pub message_ttl_hours: u32,
}

fn default_message_ttl_hours() -> u32 {
    6 * 24
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: SendmailConfig = section.options()?;
    let inputs = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    if config.max_line_bytes == 0 || config.max_messages == 0 || config.max_sessions == 0 {
        return Err(section.error("`max_line_bytes`, `max_messages` and `max_sessions` must be above 0"));
    }
    if config.message_ttl_hours == 0 {
        return Err(section.error("`message_ttl_hours` must be above 0"));
    }
    if config.syslog_names.iter().any(|n| n.is_empty() || n.contains([' ', '[', ':'])) {
        return Err(section.error("`syslog_names` are syslog tags like \"sm-mta\": not empty, without spaces, [ or :"));
    }
    clock::check_year(config.year).map_err(|why| section.error(why))?;
    Ok(Box::new(SendmailCollector { config, inputs }))
}

pub struct SendmailCollector {
    config: SendmailConfig,
    inputs: Vec<PathSpec>,
}

impl SendmailCollector {
    fn parser<'c>(&'c self, internal: &'c [IpNet]) -> Parser<'c> {
        let limits = Limits {
            max_sessions: self.config.max_sessions,
            max_messages: self.config.max_messages,
            message_ttl: i64::from(self.config.message_ttl_hours) * 3_600_000_000,
        };
        let tls_logged = self.config.log_level.map(|level| level >= 9);
        Parser {
            names: &self.config.syslog_names,
            correlator: Correlator::new(limits, internal, tls_logged),
            file: 0,
            other_programs: Vec::new(),
        }
    }
}

impl Collector for SendmailCollector {
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
        let result = logs::read_logs(&self.inputs, &options, ctx, &mut parser, out);
        if !parser.other_programs.is_empty() {
            let mut programs = parser.other_programs.clone();
            programs.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let names: Vec<String> = programs.iter().take(5).map(|(name, n)| format!("{name} ({n})")).collect();
            tracing::info!(source = ctx.source, programs = %names.join(", "), "lines of other programs ignored");
        }
        result
    }
}

/// Runs the whole collector over `text` as if it were one log file, with default options and
/// year-less stamps in 2026 UTC: for fuzzing, property tests and benches, which need no files.
#[doc(hidden)]
pub fn collect_text(text: &[u8], out: &mut Emitter<'_>) {
    let options = text_defaults();
    let collector = SendmailCollector { config: options, inputs: Vec::new() };
    let internal: [IpNet; 1] = ["10.0.0.0/8".parse().expect("a valid network")];
    let mut parser = collector.parser(&internal);
    let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
    parser.start("text", 1);
    let max = collector.config.max_line_bytes;
    // The lines of `text` as `input::for_each_line` would hand them out, without copying it.
    let ends = memchr::memchr_iter(b'\n', text).chain((!text.ends_with(b"\n")).then_some(text.len()));
    let (mut start, mut number) = (0, 0);
    for end in ends {
        let line = &text[start..end];
        start = end + 1;
        number += 1;
        let at = LineAt { file: "text", line: number };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max {
            out.skip(at, format!("line of {} bytes is over max_line_bytes ({max})", line.len()));
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            parser.line(line, at, &mut clock, out);
        }
    }
    parser.finish(out);
    parser.report(out);
}

/// The options `collect_text` runs with: every default, 2026 and UTC.
fn text_defaults() -> SendmailConfig {
    SendmailConfig {
        paths: Vec::new(),
        timezone: Some(Tz::UTC),
        year: Some(2026),
        syslog_names: Vec::new(),
        log_level: None,
        max_line_bytes: mailflow_component::logs::default_max_line_bytes(),
        max_messages: mailflow_component::logs::default_max_messages(),
        max_sessions: mailflow_component::logs::default_max_sessions(),
        message_ttl_hours: default_message_ttl_hours(),
    }
}

/// The collector's side of the shared read loop: headers, program names, records.
struct Parser<'c> {
    names: &'c [String],
    correlator: Correlator<'c>,
    /// The current input, as an index into the correlator's file names.
    file: u32,
    /// Lines of other programs in a shared mail log (dovecot, opendkim…), by name.
    other_programs: Vec<(String, u64)>,
}

impl Parser<'_> {
    fn is_sendmail(&self, program: &[u8]) -> bool {
        if self.names.is_empty() {
            program.starts_with(b"sendmail") || program.starts_with(b"sm-")
        } else {
            self.names.iter().any(|n| n.as_bytes() == program)
        }
    }

    fn other_program(&mut self, program: &[u8]) {
        let programs = &mut self.other_programs;
        match programs.iter().position(|(n, _)| n.as_bytes() == program) {
            Some(i) => programs[i].1 += 1,
            None if programs.len() < 64 => programs.push((String::from_utf8_lossy(program).into_owned(), 1)),
            None => {}
        }
    }
}

impl LogParser for Parser<'_> {
    fn start(&mut self, name: &str, _first_line: u64) {
        self.file = self.correlator.add_file(name);
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
        if !self.is_sendmail(header.program) {
            return self.other_program(header.program);
        }
        let record = match parse::record(header.message) {
            Ok(parse::Record::Irrelevant) => return,
            Ok(record) => record,
            Err(expected) => return out.skip(at, format!("expected {expected}: {}", excerpt(header.message))),
        };
        let Some(time) = clock.instant(header.stamp) else {
            return out.skip(at, "the date does not exist in the inferred year; set `year`");
        };
        let line =
            Line { time, loc: Loc { file: self.file, line: at.line }, host: header.host, pid: header.pid, record };
        self.correlator.feed(line, out);
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
        let tally = &self.correlator.tally;
        if tally.evicted_messages + tally.evicted_sessions > 0 {
            out.warn(format!(
                "to stay within its memory limits, the collector finished {} queued messages and forgot {} Sendmail \
                 processes before their end was in the log; raise max_messages or max_sessions, or lower \
                 message_ttl_hours, if this log is that busy",
                tally.evicted_messages, tally.evicted_sessions
            ));
        }
        if tally.tls_unknown > 0 {
            out.warn(format!(
                "{} deliveries count as TLS version unknown: the log shows no STARTTLS line (Sendmail logs them \
                 from LogLevel 9); set log_level if the log is from a server that logs them",
                tally.tls_unknown
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use mailflow_config::Config;

    fn build(options: &str) -> Result<(), String> {
        let text = format!("[[collector]]\ntype = \"sendmail\"\n{options}\n");
        let config = Config::parse(&text, std::path::Path::new("/etc/mailflow/mailflow.toml"), &|_| None)
            .map_err(|e| e.to_string())?;
        crate::build(&config.collectors[0]).map(drop).map_err(|e| e.to_string())
    }

    #[test]
    fn the_sample_builds() {
        let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample.toml")).unwrap();
        let config = Config::parse(&sample, std::path::Path::new("/etc/mailflow/mailflow.toml"), &|_| None).unwrap();
        crate::build(&config.collectors[0]).unwrap();
        // Every commented-out default is a valid option with its default value.
        let defaults: Vec<&str> =
            sample.lines().filter_map(|l| l.strip_prefix("# ")).filter(|l| l.contains(" = ")).collect();
        build(&format!("paths = [\"mail.log\"]\n{}", defaults.join("\n"))).unwrap();
    }

    #[test]
    fn options_are_checked() {
        for (options, error) in [
            ("paths = [\"m\"]\nmax_messages = 0", "must be above 0"),
            ("paths = [\"m\"]\nmessage_ttl_hours = 0", "`message_ttl_hours` must be above 0"),
            ("paths = [\"m\"]\nyear = 10000", "`year` must be between"),
            ("paths = [\"m\"]\nsyslog_names = [\"sm mta\"]", "syslog tags"),
            ("paths = [\"m\"]\nlog_levle = 9", "unknown field `log_levle`"),
            ("year = 2026", "missing field `paths`"),
        ] {
            let e = build(options).unwrap_err();
            assert!(e.contains(error), "{options}: {e}");
        }
    }
}
