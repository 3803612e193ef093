//! Test support shared by mailflow's components (a dev-dependency only).
//!
//! Every collector is tested the same way: a folder per case under `tests/cases/` with the input,
//! the collector's options, and what it must produce. One runner keeps those tests alike, so a new
//! collector's cases read like the others'.
//!
//! # Layout
//! - [`check_cases`]: runs every case folder and compares with `expected.jsonl` / `expected.txt`.
//! - [`fleet_report`]: a large report (many connectors, many days) for sink tests and benches.
//! - [`lab`]: real MTA logs' ground truth and what events count, in the same terms.
//! - [`run_text`], [`damaged_lines`]: property tests of the log collectors.

mod fleet;
pub mod lab;

pub use fleet::fleet_report;

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use mailflow_component::{CollectContext, Collector, DayCounts, Emitter, SourceStats};
use mailflow_config::{ComponentSection, Config, ConfigError};
use mailflow_core::MessageEvent;

/// A collector's registry constructor.
pub type Build = fn(&ComponentSection) -> Result<Box<dyn Collector>, ConfigError>;

/// Runs each folder under `root` (at least `min_cases` of them) as a case.
///
/// `config(dir)` gives the case's config text (a `[[collector]]` section, optionally a `[site]`);
/// the collector built from it by `build` reads events up to `end`. What it produced must equal
/// the folder's `expected.jsonl` (the events) and `expected.txt` (the result, counts, the daily
/// counts of aggregated sources, warnings and errors), with the folder's path left out so the
/// files are portable. With `BLESS=1` set, the expectations are rewritten instead, to be
/// reviewed in the diff.
pub fn check_cases(root: &Path, min_cases: usize, build: Build, config: impl Fn(&Path) -> String, end: DateTime<Utc>) {
    let mut dirs: Vec<_> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    assert!(dirs.len() >= min_cases, "cases are missing under {}", root.display());
    let mut failures = Vec::new();
    for dir in dirs {
        let (events, summary) = run_case(&dir, build, &config(&dir), end);
        for (file, actual) in [("expected.jsonl", events), ("expected.txt", summary)] {
            let path = dir.join(file);
            if std::env::var_os("BLESS").is_some() {
                std::fs::write(&path, &actual).unwrap();
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected != actual {
                failures.push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What one collector run produced.
#[derive(Debug)]
pub struct Collected {
    pub result: Result<(), String>,
    pub events: Vec<MessageEvent>,
    pub day_counts: Vec<DayCounts>,
    pub stats: SourceStats,
}

/// A collector built from a config text, to run once or many times.
pub struct Built {
    config: Config,
    collector: Box<dyn Collector>,
}

impl Built {
    /// Builds the first `[[collector]]` of `text` (as if read from `config_path`) with `build`.
    /// Panics if the config is wrong: tests of config errors call `build` themselves.
    pub fn new(build: Build, text: &str, config_path: &Path) -> Built {
        let config = Config::parse(text, config_path, &|_| None).unwrap();
        let collector = build(&config.collectors[0]).unwrap_or_else(|e| panic!("{e}"));
        Built { config, collector }
    }

    /// Runs the collector over `[start, end)`.
    pub fn run(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Collected {
        let mut events: Vec<MessageEvent> = Vec::new();
        let mut push = |e: MessageEvent| events.push(e);
        let mut day_counts: Vec<DayCounts> = Vec::new();
        let mut push_counts = |c: DayCounts| day_counts.push(c);
        let mut out = Emitter::new(&mut push).with_counts(&mut push_counts);
        let ctx =
            CollectContext { source: "case", site: &self.config.site, start, end, report_start: start, resume: None };
        let result = self.collector.collect(&ctx, &mut out).map_err(|e| e.to_string());
        let stats = out.into_stats();
        Collected { result, events, day_counts, stats }
    }
}

/// Builds the first `[[collector]]` of `text` (see [`Built::new`]) and runs it once.
pub fn collect(build: Build, text: &str, config_path: &Path, start: DateTime<Utc>, end: DateTime<Utc>) -> Collected {
    Built::new(build, text, config_path).run(start, end)
}

fn run_case(dir: &Path, build: Build, text: &str, end: DateTime<Utc>) -> (String, String) {
    let Collected { result, events, day_counts, stats } =
        collect(build, text, &dir.join("mailflow.toml"), DateTime::UNIX_EPOCH, end);

    let prefix = format!("{}/", dir.display());
    let portable = |s: &str| s.replace(&prefix, "");
    let mut jsonl = String::new();
    for e in &events {
        writeln!(jsonl, "{}", portable(&serde_json::to_string(e).unwrap())).unwrap();
    }
    let mut summary = format!("result: {:?}\nemitted: {}\nskipped: {}\n", result, stats.emitted, stats.skipped);
    for c in &day_counts {
        let connector = c.connector.as_ref().map_or("-".to_string(), |name| format!("{name:?}"));
        let tls = &c.counters.tls;
        let versions = [
            ("none", tls.none),
            ("ssl3", tls.ssl3),
            ("tls1_0", tls.tls1_0),
            ("tls1_1", tls.tls1_1),
            ("tls1_2", tls.tls1_2),
            ("tls1_3", tls.tls1_3),
            ("unknown", tls.unknown),
        ];
        write!(summary, "counts: {} {} {connector} messages={}", c.date, c.direction, c.counters.messages).unwrap();
        for (name, n) in versions.iter().filter(|(_, n)| *n > 0) {
            write!(summary, " {name}={n}").unwrap();
        }
        summary.push('\n');
    }
    for w in &stats.warnings {
        writeln!(summary, "warning: {}", portable(w)).unwrap();
    }
    for e in &stats.errors {
        writeln!(summary, "error: {}", portable(e)).unwrap();
    }
    (jsonl, summary)
}

/// Builds the `cdylib` of each workspace package in `packages` with cargo's `profile` (`dev`,
/// `release`) and returns their paths, in order. It builds into `target_dir` (give it a folder
/// under `env!("CARGO_TARGET_TMPDIR")`), not the target folder of the tests that call it, so it
/// never waits for their build to release it.
pub fn build_cdylibs(packages: &[&str], profile: &str, target_dir: &Path) -> Vec<std::path::PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let mut command = std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    command.arg("build").arg("--manifest-path").arg(&workspace).arg("--target-dir").arg(target_dir);
    command.args(["--profile", profile, "--message-format", "json-render-diagnostics"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command.stderr(std::process::Stdio::inherit()).output().expect("cargo runs");
    assert!(output.status.success(), "cargo build {packages:?} failed");
    packages
        .iter()
        .map(|package| {
            let target = package.replace('-', "_");
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == target)
                .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
                .filter_map(|name| name.as_str().map(std::path::PathBuf::from))
                .find(|path| path.to_string_lossy().ends_with(std::env::consts::DLL_SUFFIX))
                .unwrap_or_else(|| panic!("cargo built no library for {package}"))
        })
        .collect()
}

/// A writer that keeps everything written to it, shared by its clones: give a clone to a log
/// subscriber (`with_writer(move || capture.clone())`) to test what a component logs.
#[derive(Debug, Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs a collector's `collect_text` over `text`: the events it emitted and the lines it skipped.
pub fn run_text(collect_text: fn(&[u8], &mut mailflow_component::Emitter<'_>), text: &[u8]) -> (u64, u64) {
    let mut events = 0u64;
    let mut count = |_| events += 1;
    let mut out = mailflow_component::Emitter::new(&mut count);
    collect_text(text, &mut out);
    let skipped = out.into_stats().skipped;
    (events, skipped)
}

/// Real-looking lines damaged the way logs are: one line per pick `(line, cut, byte, at)` of
/// `lines`, cut after `cut` bytes (at least one), the byte at `at` (if any) replaced by `byte`.
pub fn damaged_lines(lines: &[&str], picks: &[(usize, usize, u8, usize)]) -> Vec<u8> {
    let mut text = Vec::new();
    for &(line, cut, byte, at) in picks {
        let mut bytes = lines[line].as_bytes().to_vec();
        bytes.truncate(cut.max(1));
        if let Some(b) = bytes.get_mut(at) {
            *b = byte;
        }
        text.extend_from_slice(&bytes);
        text.push(b'\n');
    }
    text
}
