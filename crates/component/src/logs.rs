//! The read loop of every log collector that parses line by line (Exim, Sendmail, OpenSMTPD,
//! Exchange): inputs in rotation order, a clock per input, over-long lines, read errors, and for
//! `mailflow ingest` the checkpoints that let the next run go on where this one stopped.
//!
//! A collector implements [`LogParser`]: what one line means, and its in-flight state (sessions
//! and messages whose lines straddle a checkpoint) as bytes. [`read_logs`] does the rest the same
//! way for all of them, so rotation, compression, truncation and resumption behave alike.

use std::fmt;
use std::sync::Arc;

use chrono_tz::Tz;
use mailflow_core::{Evidence, Location};
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, InputClocks, YearRule};
use crate::input::{self, LineRef, PathSpec};
use crate::resume::{self, Files, State};
use crate::{CollectContext, CollectError, Emitter};

/// What one log format does with its lines.
pub trait LogParser {
    /// An input starts: at its first line, or at `first_line` where the last ingest stopped.
    fn start(&mut self, _name: &str, _first_line: u64) {}
    /// One line that is not blank, without its newline. `clock` turns the input's stamps into
    /// instants (year-less ones get the input's year).
    fn line(&mut self, text: &[u8], at: LineAt<'_>, clock: &mut Clock, out: &mut Emitter<'_>);
    /// The state held between lines, for a checkpoint.
    fn save(&self) -> Vec<u8>;
    /// Continues from what [`LogParser::save`] made; `Err` says why it cannot (it is dropped).
    fn restore(&mut self, state: &[u8]) -> Result<(), String>;
    /// The end of a one-shot run: emits what is still held, as it is known.
    fn finish(&mut self, out: &mut Emitter<'_>);
    /// Warnings about the whole run, after either kind of run.
    fn report(&self, _out: &mut Emitter<'_>) {}
}

/// Where a line is: its input's name and its number there (from 1).
#[derive(Debug, Clone, Copy)]
pub struct LineAt<'a> {
    pub file: &'a str,
    pub line: u64,
}

impl fmt::Display for LineAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A line's place, small enough to keep for every event's evidence: an index into the names of
/// the inputs read, and the line's number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Loc {
    pub file: u32,
    pub line: u64,
}

/// Default `max_line_bytes` of the line-by-line log collectors: far above any real log line.
pub fn default_max_line_bytes() -> usize {
    64 * 1024
}

/// Default `max_messages`: queued messages held in memory at once.
pub fn default_max_messages() -> usize {
    1_000_000
}

/// Default `max_sessions`: open SMTP sessions or processes held at once.
pub fn default_max_sessions() -> usize {
    100_000
}

/// A time in microseconds since the epoch, as log clocks give them; the epoch for one out of range.
pub fn utc_micros(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The lines an event was built from, in log order and without repeats; `files` names the
/// inputs `Loc::file` indexes.
pub fn evidence(files: &[Arc<str>], lines: impl IntoIterator<Item = Loc>) -> Evidence {
    let mut lines: Vec<Loc> = lines.into_iter().collect();
    lines.sort();
    lines.dedup();
    Evidence(
        lines
            .into_iter()
            .map(|l| Location { file: files.get(l.file as usize).cloned(), line: Some(l.line), page: None })
            .collect(),
    )
}

/// The time below which the oldest tenth of `times` lie (microseconds), for finishing the
/// oldest tenth of what is held when a limit is reached; `i64::MIN` for none.
pub fn tenth_oldest(times: impl Iterator<Item = i64>) -> i64 {
    let mut times: Vec<i64> = times.collect();
    if times.is_empty() {
        return i64::MIN;
    }
    let k = times.len() / 10;
    *times.select_nth_unstable(k).1
}

/// Options every log collector has.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Time zone of stamps without an offset.
    pub timezone: Tz,
    /// Year of the first year-less stamp; `None` infers it per file.
    pub year: Option<i32>,
    pub max_line_bytes: usize,
}

/// Reads `inputs` into `parser`: everything (then [`LogParser::finish`]) or, when `ctx.resume`
/// is set, what is new since the last checkpoint, checkpointing as it goes; messages still in
/// flight at the end stay in the checkpoint. A file that cannot be read is an error for that
/// file; the run goes on with the others.
pub fn read_logs(
    inputs: &[PathSpec],
    options: &LogOptions,
    ctx: &CollectContext<'_>,
    parser: &mut dyn LogParser,
    out: &mut Emitter<'_>,
) -> Result<(), CollectError> {
    let mut clocks = InputClocks::new(options.timezone, options.year, ctx.end);
    let Some(resume) = ctx.resume else {
        for input in input::expand(inputs, out) {
            let name = input.display_name();
            let mut clock = clocks.start(&input);
            parser.start(&name, 1);
            let mut reader = Reader { parser: &mut *parser, clock: &mut clock, name: &name, options, number: 0 };
            let result = input.open(out.progress()).and_then(|source| {
                input::for_each_line(source, options.max_line_bytes, |line| reader.line(line, out))
                    .map_err(|e| CollectError::Other(format!("{name}: stopped after line {}: {e}", reader.number)))
            });
            if let Err(e) = result {
                out.error(e.to_string());
            }
            clocks.finish(&clock);
        }
        parser.finish(out);
        parser.report(out);
        return Ok(());
    };
    let saved: State = resume::load(resume.state).map_err(CollectError::Other)?;
    if !saved.parser.is_empty()
        && let Err(why) = parser.restore(&saved.parser)
    {
        out.warn(format!("{why}; the sessions and messages in flight at the last ingest are dropped"));
    }
    if let Some(year) = saved.year {
        clocks.carry(year);
    }
    let mut files = saved.files;
    let inputs = input::expand(inputs, out);
    files.plan(&inputs);
    for input in inputs {
        let name = input.display_name();
        let mut clock = clocks.start(&input);
        let reader = Reader { parser: &mut *parser, clock: &mut clock, name: &name, options, number: 0 };
        let mut lines = NewLines { reader, started: false };
        let result = resume::read_new_lines(&mut files, &input, resume, options.max_line_bytes, &mut lines, out);
        clocks.finish(&clock);
        if let Err(e) = result {
            out.error(e.to_string());
        }
    }
    files.forget_old();
    let state = State { files, year: clocks.carried(), parser: parser.save() };
    out.checkpoint(&resume::save(&state))?;
    parser.report(out);
    Ok(())
}

/// The start of a line or field for a message: lossy UTF-8, control characters escaped, at most
/// 80 characters, quoted.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let mut short: String = text.chars().take(80).flat_map(char::escape_debug).collect();
    if text.chars().count() > 80 {
        short.push('…');
    }
    format!("\"{short}\"")
}

/// One input's lines on their way to the parser.
struct Reader<'a> {
    parser: &'a mut dyn LogParser,
    clock: &'a mut Clock,
    name: &'a str,
    options: &'a LogOptions,
    /// The number of the last line read.
    number: u64,
}

impl Reader<'_> {
    fn line(&mut self, line: LineRef<'_>, out: &mut Emitter<'_>) {
        self.number += 1;
        let at = LineAt { file: self.name, line: self.number };
        match line {
            LineRef::TooLong(n) => {
                out.skip(at, format!("line of {n} bytes is over max_line_bytes ({})", self.options.max_line_bytes))
            }
            LineRef::Text(text) if text.iter().all(u8::is_ascii_whitespace) => {}
            LineRef::Text(text) => self.parser.line(text, at, self.clock, out),
        }
    }
}

/// The lines of one input of an incremental run.
struct NewLines<'a> {
    reader: Reader<'a>,
    started: bool,
}

impl resume::Lines for NewLines<'_> {
    fn line(&mut self, line: LineRef<'_>, number: u64, out: &mut Emitter<'_>) {
        if !self.started {
            self.started = true;
            self.reader.parser.start(self.reader.name, number);
        }
        self.reader.number = number - 1;
        self.reader.line(line, out);
    }

    fn save(&self, files: &Files) -> Vec<u8> {
        let year: Option<YearRule> = self.reader.options.year.map(|_| self.reader.clock.year_rule());
        resume::save(&State { files: files.clone(), year, parser: self.reader.parser.save() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailflow_core::{Direction, MessageEvent, SiteConfig};

    /// Emits one event per line `IN <unix seconds>`; holds a line `HOLD <n>` until `DONE <n>`.
    #[derive(Default)]
    struct Toy {
        held: Vec<String>,
        starts: Vec<(String, u64)>,
    }

    impl LogParser for Toy {
        fn start(&mut self, name: &str, first_line: u64) {
            self.starts.push((name.rsplit('/').next().unwrap().to_string(), first_line));
        }
        fn line(&mut self, text: &[u8], at: LineAt<'_>, _clock: &mut Clock, out: &mut Emitter<'_>) {
            let text = String::from_utf8_lossy(text);
            match text.split_once(' ') {
                Some(("IN", secs)) => match secs.parse::<i64>() {
                    Ok(secs) => out.event(MessageEvent::new(
                        chrono::DateTime::from_timestamp(secs, 0).unwrap(),
                        Direction::Inbound,
                    )),
                    Err(_) => out.skip(at, "expected seconds"),
                },
                Some(("HOLD", id)) => self.held.push(id.to_string()),
                Some(("DONE", id)) => {
                    if let Some(i) = self.held.iter().position(|h| h == id) {
                        self.held.remove(i);
                        out.event(MessageEvent::new(chrono::DateTime::UNIX_EPOCH, Direction::Outbound));
                    }
                }
                _ => out.skip(at, "expected IN, HOLD or DONE"),
            }
        }
        fn save(&self) -> Vec<u8> {
            self.held.join(",").into_bytes()
        }
        fn restore(&mut self, state: &[u8]) -> Result<(), String> {
            self.held = String::from_utf8_lossy(state).split(',').map(String::from).collect();
            Ok(())
        }
        fn finish(&mut self, out: &mut Emitter<'_>) {
            for _ in self.held.drain(..) {
                out.event(MessageEvent::new(chrono::DateTime::UNIX_EPOCH, Direction::Outbound));
            }
        }
    }

    fn run(paths: &[&std::path::Path], state: Option<&[u8]>, parser: &mut Toy) -> (u64, Vec<String>, Vec<u8>) {
        let specs: Vec<PathSpec> = paths.iter().map(|p| PathSpec::new(p, std::path::Path::new("/"))).collect();
        let options = LogOptions { timezone: Tz::UTC, year: None, max_line_bytes: 40 };
        let site = SiteConfig::default();
        let mut events = 0;
        let mut on_event = |_| events += 1;
        let mut saved = Vec::new();
        let mut on_checkpoint = |s: &[u8]| {
            saved = s.to_vec();
            Ok(())
        };
        let mut out = Emitter::new(&mut on_event).with_checkpoints(&mut on_checkpoint);
        let ctx = CollectContext {
            source: "toy",
            site: &site,
            start: chrono::DateTime::UNIX_EPOCH,
            end: chrono::Utc::now(),
            report_start: chrono::DateTime::UNIX_EPOCH,
            resume: state.map(|state| crate::Resume { state, checkpoint_bytes: 4096 }),
        };
        read_logs(&specs, &options, &ctx, parser, &mut out).unwrap();
        let warnings = out.into_stats().warnings;
        (events, warnings, saved)
    }

    #[test]
    fn one_shot_runs_finish_what_is_held_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, format!("IN 1\n\nHOLD x\nbad\n{}\nIN 2\n", "y".repeat(50))).unwrap();
        let (events, problems, _) = run(&[&log], None, &mut Toy::default());
        assert_eq!(events, 3);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("a.log:4") && problems[0].contains("expected IN"), "{problems:?}");
        assert!(problems[1].contains("a.log:5") && problems[1].contains("over max_line_bytes (40)"), "{problems:?}");
    }

    #[test]
    fn ingest_keeps_what_is_held_and_goes_on_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, "IN 1\nHOLD x\n").unwrap();
        let (events, _, state) = run(&[&log], Some(&[]), &mut Toy::default());
        assert_eq!(events, 1, "the held message waits for its end");
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("IN 2\nDONE x\n");
        std::fs::write(&log, text).unwrap();
        let mut parser = Toy::default();
        let (events, _, _) = run(&[&log], Some(&state), &mut parser);
        assert_eq!(events, 2, "only the new lines, and the held message once its end came");
        assert_eq!(parser.starts, [("a.log".to_string(), 3)]);
    }
}
