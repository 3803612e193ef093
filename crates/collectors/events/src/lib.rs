//! `[[collector]] type = "events"`: mailflow's own canonical event format.
//!
//! Reads JSON Lines (one `MessageEvent` per line) or CSV with the same fields flattened with dots
//! (`tls.version`, `peer.ip`). It is the interchange format: `mailflow events` prints it, exec
//! and dylib plugins speak it, and any script can produce it. Both formats go through the same
//! serde model, so a CSV row is checked exactly as a JSON line is.
//!
//! # Layout
//! - [`EventsConfig`]: the TOML options (see `sample.toml` beside this crate).
//! - [`EventsCollector`]: the running collector built from it.
//! - `csv_row`: turning a CSV row into the JSON object the model reads.

use std::io::BufRead;
use std::path::PathBuf;

use mailflow_component::input::{self, Input, LineRef, PathSpec};
use mailflow_component::resume::{self, Files};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter, Resume};
use mailflow_config::{ComponentSection, ConfigError};
use mailflow_core::{Evidence, MessageEvent};
use serde::Deserialize;

mod csv_row;

/// Options of an `events` collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Files, globs (`/var/spool/mailflow/*.jsonl`) or `-` for standard input. Relative paths
    /// are taken from the config file's folder.
    pub paths: Vec<PathBuf>,
    /// `jsonl`, `csv`, or `auto`: files ending in `.csv` are CSV, everything else JSON Lines.
    #[serde(default)]
    pub format: Format,
    /// Longest line read: a longer JSON line is skipped and counted; in CSV, where records may
    /// span lines, it ends the file (the records before it count).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

fn default_max_line_bytes() -> usize {
    1024 * 1024
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Auto,
    Jsonl,
    Csv,
}

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: EventsConfig = section.options()?;
    let inputs = PathSpec::all(&config.paths, section.config_dir()).map_err(|why| section.error(why))?;
    if config.max_line_bytes == 0 {
        return Err(section.error("`max_line_bytes` must be above 0"));
    }
    Ok(Box::new(EventsCollector { config, inputs }))
}

pub struct EventsCollector {
    config: EventsConfig,
    inputs: Vec<PathSpec>,
}

impl EventsCollector {
    fn is_csv(&self, input: &Input) -> bool {
        match self.config.format {
            Format::Csv => true,
            Format::Jsonl => false,
            Format::Auto => {
                matches!(input, Input::File(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
            }
        }
    }

    /// `mailflow ingest`: the new lines of JSON Lines files; CSV files once, whole.
    fn collect_new(&self, resume: Resume<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let mut files: Files = resume::load(resume.state).map_err(CollectError::Other)?;
        let inputs = input::expand(&self.inputs, out);
        files.plan(&inputs);
        for input in inputs {
            let result = if self.is_csv(&input) {
                self.read_csv_once(&mut files, &input, out)
            } else {
                let mut lines = JsonLines { name: input.display_name(), max_line_bytes: self.config.max_line_bytes };
                resume::read_new_lines(&mut files, &input, resume, self.config.max_line_bytes, &mut lines, out)
            };
            if let Err(e) = result {
                out.error(e.to_string());
            }
        }
        files.forget_old();
        out.checkpoint(&resume::save(&files))
    }

    /// A CSV file's header is at its start, so rows added later cannot be read alone: a CSV
    /// file is read once, and one that changed after is reported.
    fn read_csv_once(&self, files: &mut Files, input: &Input, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let name = input.display_name();
        let Some((reader, opened)) = files.open(input, &out.progress().clone(), out)? else {
            return Ok(());
        };
        if opened.hold_tail && !ends_with_newline(input) {
            // Still being written: read once it is done.
            return Ok(());
        }
        let mut result = Ok(());
        if opened.offset > 0 {
            out.warn(format!(
                "{name}: changed after it was ingested; CSV event files are read once, so write new rows to a new file"
            ));
        } else {
            result = csv_row::read(reader, &name, self.config.max_line_bytes, out);
        }
        // After an error too: the rows before it count, and must not count again.
        files.read_whole(&opened);
        out.checkpoint(&resume::save(&*files))?;
        result
    }
}

/// Whether a file's last byte is a newline (a writer has finished its last record).
fn ends_with_newline(input: &Input) -> bool {
    use std::os::unix::fs::FileExt;
    let Input::File(path) = input else { return true };
    let Ok(file) = std::fs::File::open(path) else { return true };
    let len = file.metadata().map_or(0, |m| m.len());
    let mut last = [0u8];
    len == 0 || file.read_exact_at(&mut last, len - 1).is_ok_and(|()| last[0] == b'\n')
}

/// JSON Lines read line by line for [`resume::read_new_lines`].
struct JsonLines {
    name: String,
    max_line_bytes: usize,
}

impl resume::Lines for JsonLines {
    fn line(&mut self, line: LineRef<'_>, number: u64, out: &mut Emitter<'_>) {
        read_line(line, &self.name, number, self.max_line_bytes, out);
    }

    fn save(&self, files: &Files) -> Vec<u8> {
        resume::save(files)
    }
}

impl Collector for EventsCollector {
    fn resumable(&self) -> bool {
        true
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        if let Some(resume) = ctx.resume {
            return self.collect_new(resume, out);
        }
        for input in input::expand(&self.inputs, out) {
            let name = input.display_name();
            let is_csv = self.is_csv(&input);
            let result = input.open(out.progress()).and_then(|reader| {
                if is_csv {
                    csv_row::read(reader, &name, self.config.max_line_bytes, out)
                } else {
                    read_jsonl(reader, &name, self.config.max_line_bytes, out)
                }
            });
            if let Err(e) = result {
                out.error(e.to_string());
            }
        }
        Ok(())
    }
}

fn read_jsonl(
    reader: Box<dyn BufRead + Send>,
    name: &str,
    max_line_bytes: usize,
    out: &mut Emitter<'_>,
) -> Result<(), CollectError> {
    let mut line_number = 0u64;
    input::for_each_line(reader, max_line_bytes, |line| {
        line_number += 1;
        read_line(line, name, line_number, max_line_bytes, out);
    })
    .map_err(|source| CollectError::Io { path: name.into(), source })
}

fn read_line(line: LineRef<'_>, name: &str, line_number: u64, max_line_bytes: usize, out: &mut Emitter<'_>) {
    let at = || format!("{name}:{line_number}");
    match line {
        LineRef::TooLong(n) => out.skip(at(), format!("line of {n} bytes is over max_line_bytes ({max_line_bytes})")),
        LineRef::Text(text) if text.iter().all(u8::is_ascii_whitespace) => {}
        LineRef::Text(text) => match decode_line(strip_bom(text, line_number)) {
            Ok(record) => emit(record, name, line_number, out),
            Err(why) => out.skip(at(), why),
        },
    }
}

/// One line of canonical JSON Lines: an event, or a producer's word that it skipped a record
/// of its own input (`{"mailflow_skip":{"at":"export.csv:17","why":"no date"}}`), which counts
/// as a skipped line, so a program or plugin that reads a source loses nothing silently.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "moved once, right after decoding; boxing costs an allocation per event")]
pub enum Record {
    Event(MessageEvent),
    Skipped { at: String, why: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipRecord {
    mailflow_skip: Skip,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Skip {
    at: String,
    why: String,
}

/// Reads one line of canonical JSON Lines: the one check every producer's lines pass, whether
/// they come from a file, an `exec` program or a dylib plugin. The error says what was expected.
pub fn decode_line(line: &[u8]) -> Result<Record, String> {
    match serde_json::from_slice::<MessageEvent>(line) {
        Ok(event) => Ok(Record::Event(event)),
        Err(e) => match serde_json::from_slice::<SkipRecord>(line) {
            Ok(SkipRecord { mailflow_skip: Skip { at, why } }) => Ok(Record::Skipped { at, why }),
            // A line meant as a skip record is told what a skip record needs.
            Err(skip) if e.to_string().starts_with("unknown field `mailflow_skip`") => {
                Err(format!("expected a skip record, {{\"mailflow_skip\":{{\"at\":\"…\",\"why\":\"…\"}}}}: {skip}"))
            }
            Err(_) => Err(format!("expected one JSON event per line: {e}")),
        },
    }
}

/// Counts a decoded line: an event goes out with `evidence` pointing at `file:line` unless it
/// says where it came from; a producer's skip is counted at the place it names, or this line.
pub fn emit(record: Record, file: &str, line: u64, out: &mut Emitter<'_>) {
    match record {
        Record::Event(event) => out.event(with_evidence(event, file, line)),
        Record::Skipped { at, why } if at.trim().is_empty() => out.skip(format!("{file}:{line}"), why),
        Record::Skipped { at, why } => out.skip(at, why),
    }
}

/// Keeps evidence the producer supplied (it knows better); otherwise points at this line.
pub fn with_evidence(mut event: MessageEvent, file: &str, line: u64) -> MessageEvent {
    if event.evidence.is_empty() {
        event.evidence = Evidence::at_line(file, line);
    }
    event
}

/// Editors on Windows start UTF-8 files with a byte-order mark; it is not part of the first event.
fn strip_bom(line: &[u8], line_number: u64) -> &[u8] {
    match line_number {
        1 => line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line),
        _ => line,
    }
}
