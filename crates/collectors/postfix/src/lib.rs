//! `[[collector]] type = "postfix"`: message events from Postfix logs.
//!
//! Postfix spreads one message over lines of several processes and logs TLS per connection, not
//! per message, so the work here is correlation: which TLS session carried which message, through
//! which relay, with which final status. `correlate` holds that logic and its rules; `parse`
//! reads single lines; `syslog` and `journal` read the envelope around them.
//!
//! Lines are handled as bytes, without allocation or regular expressions on the hot path:
//! a week of a busy server's log is gigabytes.
//!
//! # Layout
//! - [`PostfixConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`PostfixCollector`]: the running collector built from it.
//! - `syslog`: header formats and year-less timestamps; `journal`: `journalctl -o json` lines.
//! - `parse`: one Postfix message → a `Record`; `correlate`: records → events.

mod correlate;
mod journal;
pub mod parse;
pub mod syslog;

use std::path::PathBuf;

use chrono::NaiveDate;
use chrono_tz::Tz;
use mailflow_component::input::{self, Input, LineRef, PathSpec};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter};
use mailflow_config::{ComponentSection, ConfigError};
use serde::Deserialize;

use correlate::{Correlator, Limits, Line, Loc};
use syslog::{Clock, YearRule};

/// Options of a `postfix` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostfixConfig {
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
    /// First parts of the syslog names to read (`syslog_name` in main.cf and master.cf).
    /// Default: every name that starts with "postfix".
    #[serde(default)]
    pub syslog_names: Vec<String>,
    /// Postfix's `smtp_tls_loglevel`. By default the log tells: once a delivery agent logs a TLS
    /// session, its silent connections are plaintext; if it never does, their TLS is unknown.
    #[serde(default)]
    pub smtp_tls_loglevel: Option<u8>,
    /// Longest line read; longer lines are skipped and counted.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Queued messages held in memory at once; the oldest are finished early beyond it.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// Open smtpd sessions held at once.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// A message with no line for this long is finished with what is known (Postfix's
    /// `maximal_queue_lifetime` is 5 days by default).
    #[serde(default = "default_message_ttl_hours")]
    pub message_ttl_hours: u32,
}

fn default_max_line_bytes() -> usize {
    64 * 1024
}
fn default_max_messages() -> usize {
    1_000_000
}
fn default_max_sessions() -> usize {
    100_000
}
fn default_message_ttl_hours() -> u32 {
    6 * 24
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: PostfixConfig = section.options()?;
    if config.paths.is_empty() {
        return Err(section.error("`paths` is empty; name at least one file, glob or \"-\""));
    }
    if config.max_line_bytes == 0 || config.max_messages == 0 || config.max_sessions == 0 {
        return Err(section.error("`max_line_bytes`, `max_messages` and `max_sessions` must be above 0"));
    }
    if config.year.is_some_and(|y| !(1970..=9999).contains(&y)) {
        return Err(section.error("`year` must be between 1970 and 9999"));
    }
    let inputs = config.paths.iter().map(|p| PathSpec::new(p, section.config_dir())).collect();
    Ok(Box::new(PostfixCollector { config, inputs }))
}

pub struct PostfixCollector {
    config: PostfixConfig,
    inputs: Vec<PathSpec>,
}

impl PostfixCollector {
    fn limits(&self) -> Limits {
        Limits {
            max_sessions: self.config.max_sessions,
            max_messages: self.config.max_messages,
            message_ttl: i64::from(self.config.message_ttl_hours) * 3_600_000_000,
            max_undecided: 100_000,
        }
    }

    fn is_postfix(&self, first: &[u8]) -> bool {
        if self.config.syslog_names.is_empty() {
            first.starts_with(b"postfix")
        } else {
            self.config.syslog_names.iter().any(|n| n.as_bytes() == first)
        }
    }
}

/// Counts that end up in the source's warnings.
#[derive(Default)]
struct Tally {
    /// Lines of other programs in a shared mail log (dovecot, opendkim…), by name.
    other_programs: Vec<(String, u64)>,
}

impl Collector for PostfixCollector {
    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let tz = self.config.timezone.unwrap_or(ctx.site.timezone);
        let logged = self.config.smtp_tls_loglevel.map(|level| level > 0);
        let mut correlator = Correlator::new(self.limits(), &ctx.site.internal_networks, logged);
        let mut tally = Tally::default();
        for input in input::expand(&self.inputs, out) {
            let name = input.display_name();
            let year = match (self.config.year, &input) {
                (Some(year), _) => YearRule::starting(i64::from(year)),
                (None, Input::File(path)) => YearRule::not_after(modified_date(path, tz)),
                (None, Input::Stdin) => YearRule::not_after(ctx.end.with_timezone(&tz).date_naive()),
            };
            let file = correlator.add_file(name.clone());
            let mut reader = FileReader {
                collector: self,
                name: &name,
                file,
                clock: Clock::new(tz, year),
                line_number: 0,
                tally: &mut tally,
            };
            let result = input.open_counted(Some(out.progress().clone())).and_then(|source| {
                input::for_each_line(source, self.config.max_line_bytes, |line| reader.line(line, &mut correlator, out))
                    .map_err(|e| CollectError::Other(format!("{name}: stopped after line {}: {e}", reader.line_number)))
            });
            if let Err(e) = result {
                out.error(e.to_string());
            }
        }
        correlator.finish(out);
        let evicted = &correlator.evicted;
        if evicted.messages + evicted.sessions + evicted.undecided > 0 {
            out.warn(format!(
                "to stay within its memory limits, the collector finished {} queued messages and {} smtpd sessions \
                 before their end was in the log, and decided the TLS of {} deliveries as unknown early; \
                 raise max_messages or max_sessions, or lower message_ttl_hours, if this log is that busy",
                evicted.messages, evicted.sessions, evicted.undecided
            ));
        }
        if !tally.other_programs.is_empty() {
            tally.other_programs.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let names: Vec<String> =
                tally.other_programs.iter().take(5).map(|(name, n)| format!("{name} ({n})")).collect();
            tracing::info!(source = ctx.source, programs = %names.join(", "), "lines of other programs ignored");
        }
        Ok(())
    }
}

/// The local date a file was last written, the latest date its year-less lines can have.
fn modified_date(path: &std::path::Path, tz: Tz) -> NaiveDate {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let modified: chrono::DateTime<chrono::Utc> = modified.map(Into::into).unwrap_or_default();
    modified.with_timezone(&tz).date_naive()
}

/// Reads one input's lines into the correlator.
struct FileReader<'r> {
    collector: &'r PostfixCollector,
    name: &'r str,
    file: u32,
    clock: Clock,
    line_number: u64,
    tally: &'r mut Tally,
}

impl FileReader<'_> {
    fn line(&mut self, line: LineRef<'_>, correlator: &mut Correlator<'_>, out: &mut Emitter<'_>) {
        self.line_number += 1;
        let at = || format!("{}:{}", self.name, self.line_number);
        let text = match line {
            LineRef::TooLong(n) => {
                return out.skip(
                    at(),
                    format!("line of {n} bytes is over max_line_bytes ({})", self.collector.config.max_line_bytes),
                );
            }
            LineRef::Text(text) if text.iter().all(u8::is_ascii_whitespace) => return,
            LineRef::Text(text) => text,
        };
        let entry;
        let header = if text.first() == Some(&b'{') {
            entry = match journal::Entry::parse(text) {
                Ok(entry) => entry,
                Err(why) => return out.skip(at(), why),
            };
            entry.header()
        } else {
            syslog::parse(text)
        };
        let header = match header {
            Ok(header) => header,
            Err(expected) => return out.skip(at(), format!("expected {expected}: {}", excerpt(text))),
        };
        let program = match parse::program(header.program, &|first| self.collector.is_postfix(first)) {
            Ok(Some(program)) => program,
            Ok(None) => return self.other_program(header.program),
            Err(parse::UnknownDaemon) => {
                return out.skip(at(), format!("unknown Postfix daemon: {}", excerpt(header.program)));
            }
        };
        let record = match parse::record(program.daemon, header.message) {
            Ok(parse::Record::Irrelevant) => return,
            Ok(record) => record,
            Err(expected) => return out.skip(at(), format!("expected {expected}: {}", excerpt(header.message))),
        };
        let Some(time) = self.clock.instant(header.stamp) else {
            return out.skip(at(), "the date does not exist in the inferred year; set `year`");
        };
        let loc = Loc { file: self.file, line: self.line_number };
        correlator.feed(Line { time, loc, host: header.host, pid: header.pid, program, record }, out);
    }

    fn other_program(&mut self, program: &[u8]) {
        let name = program.split(|&b| b == b'/').next().unwrap_or(program);
        let programs = &mut self.tally.other_programs;
        match programs.iter().position(|(n, _)| n.as_bytes() == name) {
            Some(i) => programs[i].1 += 1,
            None if programs.len() < 64 => programs.push((String::from_utf8_lossy(name).into_owned(), 1)),
            None => {}
        }
    }
}

/// The start of a line for a message: lossy UTF-8, control characters escaped, at most 80 chars.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let mut short: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        short.push('…');
    }
    format!("\"{short}\"")
}
