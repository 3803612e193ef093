//! `[[collector]] type = "postfix"`: message events from Postfix logs.
//!
//! Postfix spreads one message over lines of several processes and logs TLS per connection, not
//! per message, so the work here is correlation: which TLS session carried which message, through
//! which relay, with which final status. `correlate` holds that logic and its rules; `parse`
//! reads single lines; `mailflow_component::{syslog, journal}` read the envelope around them.
//!
//! Lines are handled as bytes, without allocation or regular expressions on the hot path:
//! a week of a busy server's log is gigabytes.
//!
//! # Layout
//! - [`PostfixConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`PostfixCollector`]: the running collector built from it.
//! - `parse`: one Postfix message → a `Record`; `correlate`: records → events.

mod correlate;
pub mod parse;

use mailflow_component::journal;
use mailflow_component::logs::excerpt;
pub use mailflow_component::syslog;

use std::path::PathBuf;

use chrono_tz::Tz;
use mailflow_component::clock::{self, InputClocks};
use mailflow_component::input::{self, LineRef, PathSpec};
use mailflow_component::resume::{self, Files, Opened, State};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter, Resume};
use mailflow_config::{ComponentSection, ConfigError};
use serde::Deserialize;

use correlate::{Correlator, Limits, Line};
use mailflow_component::logs::Loc;
use parse::Span;
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
    #[serde(default = "mailflow_component::logs::default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Queued messages held in memory at once; the oldest are finished early beyond it.
    #[serde(default = "mailflow_component::logs::default_max_messages")]
    pub max_messages: usize,
    /// Open smtpd sessions held at once.
    #[serde(default = "mailflow_component::logs::default_max_sessions")]
    pub max_sessions: usize,
    /// A message with no line for this long is finished with what is known (Postfix's
    /// `maximal_queue_lifetime` is 5 days by default).
    #[serde(default = "default_message_ttl_hours")]
    pub message_ttl_hours: u32,
}

fn default_message_ttl_hours() -> u32 {
    6 * 24
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: PostfixConfig = section.options()?;
    let inputs = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    if config.max_line_bytes == 0 || config.max_messages == 0 || config.max_sessions == 0 {
        return Err(section.error("`max_line_bytes`, `max_messages` and `max_sessions` must be above 0"));
    }
    clock::check_year(config.year).map_err(|why| section.error(why))?;
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
            max_undecided: UNDECIDED_DELIVERIES,
        }
    }

    /// Reads one input, named `name` in evidence and messages, into the correlator.
    fn read(
        &self,
        source: Box<dyn std::io::BufRead + Send>,
        name: &str,
        clock: &mut Clock,
        correlator: &mut Correlator<'_>,
        tally: &mut Tally,
        out: &mut Emitter<'_>,
    ) -> Result<(), CollectError> {
        let file = correlator.add_file(name);
        let reader = FileReader { collector: self, clock, line_number: 0, tally, batch: Batch::default() };
        reader.run(source, file, name, correlator, None, out)
    }

    /// `mailflow ingest`: the lines after the last checkpoint, with the sessions and messages it
    /// held; checkpoints every `checkpoint_bytes` and after each file. Messages whose end is not
    /// yet in the log stay in the checkpoint instead of being finished.
    fn collect_new(
        &self,
        ctx: &CollectContext<'_>,
        resume: Resume<'_>,
        out: &mut Emitter<'_>,
    ) -> Result<(), CollectError> {
        let tz = self.config.timezone.unwrap_or(ctx.site.timezone);
        let logged = self.config.smtp_tls_loglevel.map(|level| level > 0);
        let mut correlator = Correlator::new(self.limits(), &ctx.site.internal_networks, logged);
        let saved: State = resume::load(resume.state).map_err(CollectError::Other)?;
        if !saved.parser.is_empty()
            && let Err(why) = correlator.restore(&saved.parser)
        {
            out.warn(format!("{why}; the sessions and messages in flight at the last ingest are dropped"));
        }
        let mut files = saved.files;
        let mut clocks = InputClocks::new(tz, self.config.year, ctx.end);
        if let Some(year) = saved.year {
            clocks.carry(year);
        }
        let mut tally = Tally::default();
        let inputs = input::expand(&self.inputs, out);
        files.plan(&inputs);
        for input in inputs {
            let name = input.display_name();
            let (source, opened) = match files.open(&input, &out.progress().clone(), out) {
                Ok(Some(opened)) => opened,
                Ok(None) => continue,
                Err(e) => {
                    out.error(e.to_string());
                    continue;
                }
            };
            let mut clock = clocks.start(&input);
            let file = correlator.add_file(&name);
            let reader = FileReader {
                collector: self,
                clock: &mut clock,
                line_number: opened.lines,
                tally: &mut tally,
                batch: Batch::default(),
            };
            let every = resume.checkpoint_bytes;
            let mut checkpoints = Checkpoints { files: &mut files, opened: &opened, every, failed: None };
            let result = reader.run(source, file, &name, &mut correlator, Some(&mut checkpoints), out);
            if let Some(e) = checkpoints.failed {
                return Err(e);
            }
            clocks.finish(&clock);
            match result {
                Ok(()) => files.finished(&opened),
                Err(e) => out.error(e.to_string()),
            }
        }
        files.forget_old();
        correlator.release_held(out);
        let state = State { files, year: clocks.carried(), parser: correlator.save() };
        out.checkpoint(&resume::save(&state))?;
        self.report(&correlator, &tally, ctx, out);
        Ok(())
    }

    /// Warnings about what the run had to guess or drop.
    fn report(&self, correlator: &Correlator<'_>, tally: &Tally, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) {
        let evicted = &correlator.evicted;
        if evicted.messages + evicted.sessions > 0 {
            out.warn(format!(
                "to stay within its memory limits, the collector finished {} queued messages and {} smtpd sessions \
                 before their end was in the log; raise max_messages or max_sessions, or lower message_ttl_hours, \
                 if this log is that busy",
                evicted.messages, evicted.sessions
            ));
        }
        for (instance, n) in correlator.late_tls_logging() {
            out.warn(format!(
                "{instance} logged its first TLS session only after {} deliveries without one, which count \
                 as TLS version unknown; set smtp_tls_loglevel if the log is from a server that logs TLS",
                n
            ));
        }
        if !tally.other_programs.is_empty() {
            let mut programs = tally.other_programs.clone();
            programs.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let names: Vec<String> = programs.iter().take(5).map(|(name, n)| format!("{name} ({n})")).collect();
            tracing::info!(source = ctx.source, programs = %names.join(", "), "lines of other programs ignored");
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

/// Silent deliveries of an smtp/lmtp instance, without any TLS line, after which the instance
/// counts as not logging TLS (`smtp_tls_loglevel = 0`).
const UNDECIDED_DELIVERIES: usize = 1000;

/// Counts that end up in the source's warnings.
#[derive(Default)]
struct Tally {
    /// Lines of other programs in a shared mail log (dovecot, opendkim…), by name.
    other_programs: Vec<(String, u64)>,
}

/// How an incremental read checkpoints within a file.
struct Checkpoints<'a> {
    files: &'a mut Files,
    opened: &'a Opened,
    every: u64,
    /// A checkpoint that could not be stored: the run must stop.
    failed: Option<CollectError>,
}

impl Collector for PostfixCollector {
    fn resumable(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        if let Some(resume) = ctx.resume {
            return self.collect_new(ctx, resume, out);
        }
        let tz = self.config.timezone.unwrap_or(ctx.site.timezone);
        let logged = self.config.smtp_tls_loglevel.map(|level| level > 0);
        let mut correlator = Correlator::new(self.limits(), &ctx.site.internal_networks, logged);
        let mut tally = Tally::default();
        let mut clocks = InputClocks::new(tz, self.config.year, ctx.end);
        for input in input::expand(&self.inputs, out) {
            let name = input.display_name();
            let mut clock = clocks.start(&input);
            let result = input
                .open(out.progress())
                .and_then(|source| self.read(source, &name, &mut clock, &mut correlator, &mut tally, out));
            if let Err(e) = result {
                out.error(e.to_string());
            }
            clocks.finish(&clock);
        }
        correlator.finish(out);
        self.report(&correlator, &tally, ctx, out);
        Ok(())
    }
}

/// Runs the whole collector over `text` as if it were one log file, with default options and
/// year-less stamps in 2026 UTC: for fuzzing and property tests, which need no files.
#[doc(hidden)]
pub fn collect_text(text: &[u8], out: &mut Emitter<'_>) {
    let config = PostfixConfig {
        paths: Vec::new(),
        timezone: Some(Tz::UTC),
        year: Some(2026),
        syslog_names: Vec::new(),
        smtp_tls_loglevel: None,
        max_line_bytes: mailflow_component::logs::default_max_line_bytes(),
        max_messages: mailflow_component::logs::default_max_messages(),
        max_sessions: mailflow_component::logs::default_max_sessions(),
        message_ttl_hours: default_message_ttl_hours(),
    };
    let collector = PostfixCollector { config, inputs: Vec::new() };
    let internal = ["10.0.0.0/8".parse().expect("a valid network")];
    let mut correlator = Correlator::new(collector.limits(), &internal, None);
    let mut clock = Clock::new(Tz::UTC, YearRule::starting(2026));
    let source = Box::new(std::io::Cursor::new(text.to_vec()));
    if let Err(e) = collector.read(source, "text", &mut clock, &mut correlator, &mut Tally::default(), out) {
        out.error(e.to_string());
    }
    correlator.finish(out);
}

/// Reads one input's lines into the correlator, on two threads: this one parses (and
/// `input::for_each_line` reads on a third), the caller's correlates. Parsed lines cross over
/// in batches: the relevant lines copied into one buffer, each with spans into it.
struct FileReader<'r> {
    collector: &'r PostfixCollector,
    clock: &'r mut Clock,
    line_number: u64,
    tally: &'r mut Tally,
    batch: Batch,
}

#[derive(Default)]
struct Batch {
    buffer: Vec<u8>,
    lines: Vec<Parsed>,
    /// Lines skipped, with why.
    skipped: Vec<(u64, String)>,
    /// After the batch: bytes read of the input, its line number, and the clock's year rule.
    end: Option<(u64, u64, YearRule)>,
    /// Whether a checkpoint is due after the batch (`checkpoint_bytes` were read since the last).
    checkpoint: bool,
}

struct Parsed {
    line: u64,
    time: i64,
    host: Span,
    pid: u32,
    program: parse::Program<Span>,
    record: parse::Record<Span>,
}

/// Bytes of relevant lines per batch: large enough to make handing over cheap, small enough
/// to stay in cache.
const BATCH_BYTES: usize = 256 * 1024;

impl FileReader<'_> {
    fn run(
        mut self,
        source: Box<dyn std::io::BufRead + Send>,
        file: u32,
        name: &str,
        correlator: &mut Correlator<'_>,
        mut checkpoints: Option<&mut Checkpoints<'_>>,
        out: &mut Emitter<'_>,
    ) -> Result<(), CollectError> {
        use std::sync::mpsc::sync_channel;
        let (full_tx, full_rx) = sync_channel::<Batch>(2);
        let (empty_tx, empty_rx) = sync_channel::<Batch>(3);
        let max_line_bytes = self.collector.config.max_line_bytes;
        let hold_tail = checkpoints.as_ref().is_some_and(|c| c.opened.hold_tail);
        // A batch ends where a checkpoint is due, so checkpoints come as often as asked.
        let every = checkpoints.as_ref().map_or(u64::MAX, |c| c.every);
        let mut due = every;
        let first_line = self.line_number;
        let result = std::thread::scope(|scope| {
            let parser = scope.spawn(move || {
                let result = input::for_each_line_at(source, max_line_bytes, hold_tail, |line, offset| {
                    self.line(line);
                    self.batch.end = Some((offset, self.line_number, self.clock.year_rule()));
                    if offset >= due {
                        due = offset.saturating_add(every);
                        self.batch.checkpoint = true;
                    }
                    if self.batch.buffer.len() >= BATCH_BYTES || self.batch.skipped.len() >= 64 || self.batch.checkpoint
                    {
                        let next = empty_rx.try_recv().unwrap_or_default();
                        // A closed channel means the correlating side is gone: stop reading.
                        return full_tx.send(std::mem::replace(&mut self.batch, next)).is_ok();
                    }
                    true
                });
                let _ = full_tx.send(std::mem::take(&mut self.batch));
                (result, self.line_number)
            });
            for mut batch in full_rx {
                for (line, why) in batch.skipped.drain(..) {
                    out.skip(format!("{name}:{line}"), why);
                }
                for parsed in batch.lines.drain(..) {
                    let resolve = &mut |span: Span| span.get(&batch.buffer);
                    let line = Line {
                        time: parsed.time,
                        loc: Loc { file, line: parsed.line },
                        host: parsed.host.get(&batch.buffer),
                        pid: parsed.pid,
                        program: parsed.program.map(resolve),
                        record: parsed.record.map(resolve),
                    };
                    correlator.feed(line, out);
                }
                if let (Some(c), Some((offset, lines, year))) = (checkpoints.as_deref_mut(), batch.end.take()) {
                    c.files.advance(c.opened, offset, lines - first_line);
                    if batch.checkpoint {
                        let state = State { files: c.files.clone(), year: Some(year), parser: correlator.save() };
                        if let Err(e) = out.checkpoint(&resume::save(&state)) {
                            c.failed = Some(e);
                            break;
                        }
                    }
                }
                batch.buffer.clear();
                batch.checkpoint = false;
                let _ = empty_tx.try_send(batch);
            }
            parser.join()
        });
        match result {
            Ok((Ok(_), _)) => Ok(()),
            Ok((Err(e), lines)) => Err(CollectError::Other(format!("{name}: stopped after line {lines}: {e}"))),
            Err(_) => Err(CollectError::Other(format!("{name}: the parser crashed; please report this as a bug"))),
        }
    }

    /// Parses one line into the batch: relevant lines as `Parsed`, malformed ones as skipped.
    fn line(&mut self, line: LineRef<'_>) {
        self.line_number += 1;
        let text = match line {
            LineRef::TooLong(n) => {
                let max = self.collector.config.max_line_bytes;
                return self.skip(format!("line of {n} bytes is over max_line_bytes ({max})"));
            }
            LineRef::Text(text) if text.iter().all(u8::is_ascii_whitespace) => return,
            LineRef::Text(text) => text,
        };
        let entry;
        let header = if text.first() == Some(&b'{') {
            entry = match journal::Entry::parse(text) {
                Ok(entry) => entry,
                Err(why) => return self.skip(why),
            };
            entry.header()
        } else {
            syslog::parse(text)
        };
        let header = match header {
            Ok(header) => header,
            Err(expected) => return self.skip(format!("expected {expected}: {}", excerpt(text))),
        };
        let program = match parse::program(header.program, &|first| self.collector.is_postfix(first)) {
            Ok(Some(program)) => program,
            Ok(None) => return self.other_program(header.program),
            Err(parse::UnknownDaemon) => {
                return self.skip(format!("unknown Postfix daemon: {}", excerpt(header.program)));
            }
        };
        let record = match parse::record(program.daemon, header.message) {
            Ok(parse::Record::Irrelevant) => return,
            Ok(record) => record,
            Err(expected) => return self.skip(format!("expected {expected}: {}", excerpt(header.message))),
        };
        let Some(time) = self.clock.instant(header.stamp) else {
            return self.skip("the date does not exist in the inferred year; set `year`".into());
        };
        let buffer = &mut self.batch.buffer;
        let (host_at, program_at) = (buffer.len(), buffer.len() + header.host.len());
        let message_at = program_at + header.program.len();
        buffer.extend_from_slice(header.host);
        buffer.extend_from_slice(header.program);
        buffer.extend_from_slice(header.message);
        self.batch.lines.push(Parsed {
            line: self.line_number,
            time,
            host: Span::of(header.host, header.host, host_at),
            pid: header.pid,
            program: program.map(&mut |part| Span::of(part, header.program, program_at)),
            record: record.map(&mut |part| Span::of(part, header.message, message_at)),
        });
    }

    fn skip(&mut self, why: String) {
        self.batch.skipped.push((self.line_number, why));
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

#[cfg(test)]
mod tests {
    use mailflow_component::{CollectContext, Emitter};
    use mailflow_config::Config;

    /// With `year` set, rotated files read oldest first continue one another: `mail.log.1` ends
    /// on 31 December, `mail.log` starts on 1 January of the next year.
    #[test]
    fn a_configured_year_carries_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let delivery = |stamp: &str, id: &str| {
            format!(
                "{stamp} mx1 postfix/qmgr[1500]: {id}: from=<app@corp.example>, size=1000, nrcpt=1 (queue active)\n\
                 {stamp} mx1 postfix/smtp[2201]: {id}: to=<a@example.net>, relay=mx.example.net[203.0.113.31]:25, \
                 delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n\
                 {stamp} mx1 postfix/qmgr[1500]: {id}: removed\n"
            )
        };
        std::fs::write(dir.path().join("mail.log.1"), delivery("Dec 31 23:00:00", "7D4E51C0B1")).unwrap();
        std::fs::write(dir.path().join("mail.log"), delivery("Jan  1 01:00:00", "7D4E51C0B2")).unwrap();
        let text =
            "[[collector]]\ntype = \"postfix\"\npaths = [\"mail.log*\"]\nyear = 2026\n[site]\ntimezone = \"UTC\"\n";
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
