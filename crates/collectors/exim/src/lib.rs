//! `[[collector]] type = "exim"`: message events from Exim's main log.
//!
//! Exim writes one line per message received (`<=`) and one per recipient delivered (`=>`,
//! `->`), failed (`**`) or deferred (`==`), each tagged with the message id and carrying the
//! peer (`H=`), the TLS session (`X=`, `CV=`, `DN=`) and the transport (`T=`) of that very
//! session. So unlike Postfix there are no sessions to correlate: an arrival is an inbound event
//! by itself, and deliveries only gather per message and relay until `Completed`, so that a
//! deferral followed by a delivery counts once, with the final status.
//!
//! The log comes as Exim's own files (`/var/log/exim4/mainlog*`) or through syslog
//! (`log_file_path = syslog`), where a syslog header precedes Exim's line and Exim's own stamp
//! may be missing; both are read line by line through `mailflow_component::logs`, which handles
//! rotation, compression and resumption. Lines are handled as bytes, without regular expressions
//! and without allocation for the lines that do not count.
//!
//! # Layout
//! - [`EximConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`EximCollector`]: the running collector built from it.
//! - `parse`: one line → stamp, message id and record; `track`: records → events.

pub mod parse;
mod track;

use std::path::PathBuf;

use chrono_tz::Tz;
use ipnet::IpNet;
use mailflow_component::clock::{self, Clock, Stamp, YearRule};
use mailflow_component::input::PathSpec;
use mailflow_component::logs::{self, LineAt, LogOptions, LogParser, excerpt};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter, syslog};
use mailflow_config::{ComponentSection, ConfigError};
use serde::Deserialize;

use mailflow_component::logs::Loc;
use parse::Record;
use track::{Limits, Tracker};

/// Options of an `exim` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EximConfig {
    /// Files, globs (`/var/log/exim4/mainlog*`, rotated and compressed files included), syslog
    /// files, or `-` for standard input. Relative paths are taken from the config file's folder.
    pub paths: Vec<PathBuf>,
    /// Time zone of stamps without an offset (Exim's own unless `log_timezone` is set, and
    /// year-less syslog ones); default: the site's.
    #[serde(default)]
    pub timezone: Option<Tz>,
    /// Year of the first year-less syslog stamp (lines through syslog without Exim's own stamp).
    /// Default: inferred per file from its modification time (standard input: from the end of
    /// the report range).
    #[serde(default)]
    pub year: Option<i32>,
    /// Syslog program names Exim logs under (`syslog_processname`). Default: every name that
    /// starts with "exim" (`exim`, `exim4`).
    #[serde(default)]
    pub syslog_names: Vec<String>,
    /// Longest line read; longer lines are skipped and counted.
    #[serde(default = "mailflow_component::logs::default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Queued messages held in memory at once; the oldest tenth is finished early beyond it.
    #[serde(default = "mailflow_component::logs::default_max_messages")]
    pub max_messages: usize,
    /// A message with no line for this long is finished with what is known (its deferred relays
    /// count as deferred). Exim's default retry rule gives up after 4 days.
    #[serde(default = "default_message_ttl_hours")]
    pub message_ttl_hours: u32,
}

fn default_message_ttl_hours() -> u32 {
    6 * 24
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: EximConfig = section.options()?;
    let inputs = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    if config.max_line_bytes == 0 || config.max_messages == 0 || config.message_ttl_hours == 0 {
        return Err(section.error("`max_line_bytes`, `max_messages` and `message_ttl_hours` must be above 0"));
    }
    if config.syslog_names.iter().any(|n| n.is_empty() || n.contains([' ', '[', ':'])) {
        return Err(section.error("`syslog_names` are program names like \"exim4\", without spaces, `[` or `:`"));
    }
    clock::check_year(config.year).map_err(|why| section.error(why))?;
    Ok(Box::new(EximCollector { config, inputs }))
}

pub struct EximCollector {
    config: EximConfig,
    inputs: Vec<PathSpec>,
}

impl Collector for EximCollector {
    fn resumable(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let options = LogOptions {
            timezone: self.config.timezone.unwrap_or(ctx.site.timezone),
            year: self.config.year,
            max_line_bytes: self.config.max_line_bytes,
        };
        let mut parser = EximParser::new(&self.config, &ctx.site.internal_networks);
        logs::read_logs(&self.inputs, &options, ctx, &mut parser, out)
    }
}

/// Runs the whole collector over `text` as if it were one log file, with default options,
/// stamps in UTC and year-less ones in 2026: for fuzzing, property tests and benchmarks.
#[doc(hidden)]
pub fn collect_text(text: &[u8], out: &mut Emitter<'_>) {
    let config = EximConfig {
        paths: Vec::new(),
        timezone: Some(Tz::UTC),
        year: Some(2026),
        syslog_names: Vec::new(),
        max_line_bytes: mailflow_component::logs::default_max_line_bytes(),
        max_messages: mailflow_component::logs::default_max_messages(),
        message_ttl_hours: default_message_ttl_hours(),
    };
    let internal: [IpNet; 1] = ["10.0.0.0/8".parse().expect("a valid network")];
    let mut parser = EximParser::new(&config, &internal);
    let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
    parser.start("text", 1);
    // Line by line over the bytes as `logs::read_logs` hands them out, without its reading thread.
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        number += 1;
        let at = LineAt { file: "text", line: number };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > config.max_line_bytes {
            out.skip(at, format!("line of {} bytes is over max_line_bytes ({})", line.len(), config.max_line_bytes));
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            parser.line(line, at, &mut clock, out);
        }
    }
    parser.finish(out);
    parser.report(out);
}

/// What one run reads: lines to records to events.
struct EximParser<'a> {
    tracker: Tracker<'a>,
    syslog_names: &'a [String],
    file: u32,
    /// Lines of other programs in a shared syslog file, by name (at most 64 names).
    other_programs: Vec<(String, u64)>,
}

impl<'a> EximParser<'a> {
    fn new(config: &'a EximConfig, internal: &'a [IpNet]) -> Self {
        let limits = Limits {
            max_messages: config.max_messages,
            message_ttl: i64::from(config.message_ttl_hours) * 3_600_000_000,
        };
        EximParser {
            tracker: Tracker::new(limits, internal),
            syslog_names: &config.syslog_names,
            file: 0,
            other_programs: Vec::new(),
        }
    }

    /// The stamp and the text after it, of Exim's own line or of one Exim wrote to syslog;
    /// `Ok(None)` for lines that are not Exim's.
    fn split<'t>(&mut self, text: &'t [u8]) -> Result<Option<(Stamp, &'t [u8])>, String> {
        let why = match parse::stamp(text) {
            Some(Ok(found)) => return Ok(Some(found)),
            Some(Err(why)) => why,
            None => "",
        };
        // RFC 3339 syslog stamps start with a date too.
        match (syslog::parse(text), why) {
            (Ok(header), _) => self.syslog(header),
            (Err(_), why) if !why.is_empty() => Err(format!("expected {why}: {}", excerpt(text))),
            (Err(header), _) => Err(format!(
                "expected an Exim line (\"2026-12-04 15:00:00 …\") or a syslog line ({header}): {}",
                excerpt(text)
            )),
        }
    }

    fn syslog<'t>(&mut self, header: syslog::Header<'t>) -> Result<Option<(Stamp, &'t [u8])>, String> {
        if !self.is_exim(header.program) {
            self.other_program(header.program);
            return Ok(None);
        }
        let mut message = header.message;
        if let Some((part, rest)) = parse::syslog_part(message) {
            if part != 1 {
                return Ok(None);
            }
            message = rest;
        }
        match parse::stamp(message) {
            Some(Ok(found)) => Ok(Some(found)),
            Some(Err(why)) => Err(format!("expected {why} after the syslog header: {}", excerpt(message))),
            None => Ok(Some((header.stamp, message))),
        }
    }

    fn is_exim(&self, program: &[u8]) -> bool {
        if self.syslog_names.is_empty() {
            program.starts_with(b"exim")
        } else {
            self.syslog_names.iter().any(|n| n.as_bytes() == program)
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

impl LogParser for EximParser<'_> {
    fn start(&mut self, name: &str, _first_line: u64) {
        self.file = self.tracker.file(name);
    }

    fn line(&mut self, text: &[u8], at: LineAt<'_>, clock: &mut Clock, out: &mut Emitter<'_>) {
        if parse::continuation(text) {
            return;
        }
        let (stamp, rest) = match self.split(text) {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(why) => return out.skip(at, why),
        };
        let (id, record) = match parse::body(rest) {
            Ok((Some(id), record)) if !matches!(record, Record::Irrelevant) => (id, record),
            Ok(_) => return,
            Err(why) => return out.skip(at, format!("expected {why}: {}", excerpt(rest))),
        };
        let Some(time) = clock.instant(stamp) else {
            return out.skip(at, "the date does not exist in the inferred year; set `year`");
        };
        self.tracker.tick(time, out);
        let loc = Loc { file: self.file, line: at.line };
        let readable = match &record {
            Record::Arrival(arrival) => self.tracker.arrival(id, arrival, time, loc, out),
            Record::Delivery(delivery) => self.tracker.delivery(id, delivery, time, loc, out),
            Record::Completed => {
                self.tracker.completed(id, out);
                true
            }
            Record::Irrelevant => true,
        };
        if !readable {
            out.warn(format!("{at}: X= names no TLS version mailflow knows, counted as unknown: {}", excerpt(rest)));
        }
    }

    fn save(&self) -> Vec<u8> {
        self.tracker.save()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.tracker.restore(state)
    }

    fn finish(&mut self, out: &mut Emitter<'_>) {
        self.tracker.finish(out);
    }

    fn report(&self, out: &mut Emitter<'_>) {
        if self.tracker.evicted > 0 {
            out.warn(format!(
                "to stay within max_messages, the collector finished {} queued messages before their end was in \
                 the log; raise max_messages if this log is that busy",
                self.tracker.evicted
            ));
        }
        if self.tracker.expired > 0 {
            out.warn(format!(
                "{} messages had no line for message_ttl_hours and were counted with their latest status",
                self.tracker.expired
            ));
        }
        if !self.other_programs.is_empty() {
            let mut programs = self.other_programs.clone();
            programs.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let names: Vec<String> = programs.iter().take(5).map(|(name, n)| format!("{name} ({n})")).collect();
            tracing::info!(programs = %names.join(", "), "lines of other programs ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use mailflow_config::Config;

    fn build(options: &str) -> Result<(), String> {
        let text = format!("[[collector]]\ntype = \"exim\"\n{options}\n");
        let config = Config::parse(&text, std::path::Path::new("/etc/mailflow/mailflow.toml"), &|_| None).unwrap();
        crate::build(&config.collectors[0]).map(drop).map_err(|e| e.to_string())
    }

    #[test]
    fn the_sample_config_builds() {
        let sample = include_str!("../sample.toml");
        let config = Config::parse(sample, std::path::Path::new("/etc/mailflow/mailflow.toml"), &|_| None).unwrap();
        let options: crate::EximConfig = config.collectors[0].options().unwrap();
        assert_eq!(options.paths, [std::path::PathBuf::from("/var/log/exim4/mainlog*")]);
        assert_eq!((options.max_line_bytes, options.message_ttl_hours), (65536, 144));
        assert!(crate::build(&config.collectors[0]).is_ok());
    }

    #[test]
    fn wrong_options_are_named() {
        assert!(build("paths = [\"mainlog\"]").is_ok());
        for (options, says) in [
            ("paths = [\"mainlog\"]\nmax_messages = 0", "must be above 0"),
            ("paths = [\"mainlog\"]\nyear = 12", "`year` must be between"),
            ("paths = [\"mainlog\"]\nsyslog_names = [\"exim[1]\"]", "program names"),
            ("paths = [\"mainlog\"]\nmax_line = 5", "unknown field `max_line`"),
            ("paths = [\"mainlog\"]\ntimezone = \"Mars/Olympus\"", "Mars/Olympus"),
            ("", "missing field `paths`"),
        ] {
            let e = build(options).unwrap_err();
            assert!(e.contains(says), "{options}: {e}");
        }
    }
}
