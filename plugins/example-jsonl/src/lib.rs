//! An example mailflow collector plugin: reads canonical JSON Lines files, as the built-in
//! `events` collector does, to show every part of a plugin in one short file.
//!
//! Settings: `paths`, absolute paths of JSON Lines files; `batch_events`, the most events per
//! batch (default 1000). Events outside the range mailflow asks for are left out here, and each
//! event points at its file and line unless it says where it came from itself. Lines that are
//! not events are passed on as they are: mailflow checks every line, skips the bad ones and says
//! why, so a plugin need not repeat that work.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use mailflow_plugin_sdk::{Batch, Collector, Error, Evidence, Host, MessageEvent, Range, export_collector};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    paths: Vec<PathBuf>,
    #[serde(default = "default_batch_events")]
    batch_events: usize,
}

fn default_batch_events() -> usize {
    1000
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
    lines: std::io::Split<BufReader<File>>,
    line_number: u64,
}

impl Collector for JsonlFiles {
    const NAME: &'static std::ffi::CStr = c"example-jsonl";
    type Settings = Settings;

    fn create(settings: Settings, host: Host) -> Result<Self, Error> {
        if let Some(path) = settings.paths.iter().find(|p| !p.is_absolute()) {
            return Err(format!("`paths` must be absolute, not {}", path.display()).into());
        }
        if settings.batch_events == 0 {
            return Err("`batch_events` must be above 0".into());
        }
        let pending = settings.paths.iter().rev().cloned().collect();
        Ok(JsonlFiles { host, settings, range: None, pending, current: None })
    }

    fn open_range(&mut self, range: Range) -> Result<(), Error> {
        self.range = Some(range);
        Ok(())
    }

    fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, Error> {
        while batch.len() < self.settings.batch_events && !batch.is_full() {
            let Some(file) = &mut self.current else {
                let Some(path) = self.pending.pop() else { return Ok(false) };
                let name = path.display().to_string();
                let opened = File::open(&path).map_err(|e| format!("{name}: {e}"))?;
                self.host.debug(&format!("reading {name}"));
                self.current = Some(OpenFile { name, lines: BufReader::new(opened).split(b'\n'), line_number: 0 });
                continue;
            };
            let Some(line) = file.lines.next() else {
                self.current = None;
                continue;
            };
            let line = line.map_err(|e| format!("{}: {e}", file.name))?;
            file.line_number += 1;
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
                Err(_) => batch.push_json_line(&line),
            }
        }
        Ok(true)
    }
}

export_collector!(JsonlFiles);
