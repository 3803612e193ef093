//! An example mailflow collector plugin: reads canonical JSON Lines files, as the built-in
//! `events` collector does, to show every part of a plugin in one short file.
//!
//! Settings: `paths`, absolute paths of JSON Lines files; `batch_events`, the most events per
//! batch (default 1000); `max_line_bytes`, the longest line read (default 1 MiB). Events
//! outside the range mailflow asks for are left out here, and each event points at its file and
//! line unless it says where it came from itself. A line that is not an event is reported with
//! `Batch::skip`, so mailflow counts it and shows where it was and why.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use mailflow_plugin_sdk::{Batch, Collector, Error, Evidence, Host, MessageEvent, Range, export_collector};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    paths: Vec<PathBuf>,
    #[serde(default = "default_batch_events")]
    batch_events: usize,
    #[serde(default = "default_max_line_bytes")]
    max_line_bytes: usize,
}

fn default_batch_events() -> usize {
    1000
}

fn default_max_line_bytes() -> usize {
    1 << 20
}

struct JsonlFiles {
    host: Host,
    settings: Settings,
    range: Option<Range>,
    /// Files not opened yet, last first.
    pending: Vec<PathBuf>,
    current: Option<OpenFile>,
}

struct OpenFile {
    name: String,
    reader: BufReader<File>,
    line_number: u64,
}

impl OpenFile {
    /// Reads the next line, without its newline, into `line`, keeping at most `max` bytes: a
    /// longer line is read to its end and dropped. `None` at the end of the file, else whether
    /// the line was too long.
    fn read_line(&mut self, max: usize, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
        line.clear();
        if (&mut self.reader).take(max as u64 + 1).read_until(b'\n', line)? == 0 {
            return Ok(None);
        }
        self.line_number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            return Ok(Some(false));
        }
        if line.len() <= max {
            return Ok(Some(false));
        }
        loop {
            let buffer = self.reader.fill_buf()?;
            match buffer.iter().position(|&b| b == b'\n') {
                Some(end) => break self.reader.consume(end + 1),
                None if buffer.is_empty() => break,
                None => {
                    let all = buffer.len();
                    self.reader.consume(all)
                }
            }
        }
        Ok(Some(true))
    }
}

impl Collector for JsonlFiles {
    const NAME: &'static std::ffi::CStr = c"example-jsonl";
    type Settings = Settings;

    fn create(settings: Settings, host: Host) -> Result<Self, Error> {
        if let Some(path) = settings.paths.iter().find(|p| !p.is_absolute()) {
            return Err(format!("`paths` must be absolute, not {}", path.display()).into());
        }
        if settings.batch_events == 0 || settings.max_line_bytes == 0 {
            return Err("`batch_events` and `max_line_bytes` must be above 0".into());
        }
        let pending = settings.paths.iter().rev().cloned().collect();
        Ok(JsonlFiles { host, settings, range: None, pending, current: None })
    }

    fn open_range(&mut self, range: Range) -> Result<(), Error> {
        self.range = Some(range);
        Ok(())
    }

    fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, Error> {
        let max = self.settings.max_line_bytes;
        let mut line = Vec::new();
        while batch.len() < self.settings.batch_events && !batch.is_full() {
            let Some(file) = &mut self.current else {
                let Some(path) = self.pending.pop() else { return Ok(false) };
                let name = path.display().to_string();
                let opened = File::open(&path).map_err(|e| format!("{name}: {e}"))?;
                self.host.debug(&format!("reading {name}"));
                self.current = Some(OpenFile { name, reader: BufReader::new(opened), line_number: 0 });
                continue;
            };
            let too_long = match file.read_line(max, &mut line).map_err(|e| format!("{}: {e}", file.name))? {
                None => {
                    self.current = None;
                    continue;
                }
                Some(too_long) => too_long,
            };
            let at = || format!("{}:{}", file.name, file.line_number);
            if too_long {
                batch.skip(&at(), &format!("the line is over max_line_bytes ({max})"));
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<MessageEvent>(&line) {
                Ok(event) if self.range.is_some_and(|r| event.time < r.start || event.time >= r.end) => {}
                Ok(mut event) => {
                    if event.evidence.is_empty() {
                        event.evidence = Evidence::at_line(file.name.as_str(), file.line_number);
                    }
                    batch.push(&event);
                }
                Err(e) => batch.skip(&at(), &format!("expected one JSON event per line: {e}")),
            }
        }
        Ok(true)
    }
}

export_collector!(JsonlFiles);
