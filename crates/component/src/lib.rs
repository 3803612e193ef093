//! The traits every mailflow component implements, and what they share.
//!
//! A collector turns some source (log files, an API, a plugin) into [`MessageEvent`]s; a sink
//! turns the finished [`Report`] into something people read. Each component has a serde config
//! struct, read with `ComponentSection::options`, and a constructor registered by `type` in the
//! runner's registry; the running component is built from the config and never sees TOML again.
//!
//! Collectors are plain synchronous code: the runner gives each its own thread, so a collector
//! that blocks on files or a network costs no one else anything.
//!
//! # Layout
//! - [`Collector`], [`CollectContext`], [`Resume`], [`Emitter`], [`DayCounts`]: the collector side.
//! - [`Sink`]: the sink side.
//! - [`input`]: files, globs and stdin, shared by every file-reading collector.
//! - [`clock`]: local-time log stamps (year-less syslog ones too) to instants.
//! - [`resume`]: how far `mailflow ingest` read each log file, across rotation.
//! - [`logs`]: the read loop of line-by-line log collectors, one-shot and resumed.
//! - [`syslog`], [`journal`]: syslog headers (BSD, RFC 3339, RFC 5424) and `journalctl -o json`.
//! - [`output`]: atomic file writes, shared by every file-writing sink.
//! - [`net`]: loopback checks and error chains, for components that talk to servers.
//! - [`CollectError`], [`SinkError`].

pub mod clock;
pub mod input;
pub mod journal;
pub mod logs;
pub mod net;
pub mod output;
pub mod resume;
pub mod syslog;

use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use mailflow_core::{Counters, Direction, MessageEvent, Report, SiteConfig};
use thiserror::Error;

/// How many problems a source keeps word for word; the rest are only counted.
pub const MAX_WARNINGS: usize = 10;

/// A source of message events.
pub trait Collector: Send + Sync {
    /// Emits every event the source holds for `ctx`'s window. Malformed records are skipped
    /// through [`Emitter::skip`]; an `Err` means the source could not be read (further).
    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError>;

    /// Whether the source is append-only logs the collector can resume: `mailflow ingest` then
    /// hands it its last checkpoint ([`CollectContext::resume`]) and it reads only what is new.
    /// Other sources are ingested by days: a run's days replace what the store held for them.
    fn resumable(&self) -> bool {
        false
    }

    /// For a source that is not resumable: the days its first ingest asks for, when asking
    /// costs (an API's calls); `None` reads all it holds every time (export files).
    fn first_ingest_days(&self) -> Option<u32> {
        None
    }

    /// How many days back, today included, the source can still be asked for (an API that keeps
    /// 90 days); `None` when it says so itself.
    fn history_days(&self) -> Option<u32> {
        None
    }
}

/// What a collector is asked for.
#[derive(Debug, Clone, Copy)]
pub struct CollectContext<'a> {
    /// The collector's `name`; the runner stamps it on every event as `source`.
    pub source: &'a str,
    pub site: &'a SiteConfig,
    /// The instants wanted, `[start, end)`. A hint: events outside are dropped (and counted)
    /// by the runner, so collectors may skip them early but need not.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Where the report range itself starts; before it, `start` reaches back one more period
    /// for comparisons only, so a source that cannot go back that far loses little.
    pub report_start: DateTime<Utc>,
    /// Set by `mailflow ingest` for a [`Collector::resumable`] collector.
    pub resume: Option<Resume<'a>>,
}

/// Where an incremental run starts, and how it commits what it read.
#[derive(Debug, Clone, Copy)]
pub struct Resume<'a> {
    /// What the collector passed to [`Emitter::checkpoint`] last; empty on its first run.
    pub state: &'a [u8],
    /// Bytes of log to read between checkpoints.
    pub checkpoint_bytes: u64,
}

/// Where a collector sends its events and reports what it had to skip.
pub struct Emitter<'a> {
    on_event: &'a mut dyn FnMut(MessageEvent),
    on_counts: Option<&'a mut dyn FnMut(DayCounts)>,
    on_checkpoint: Option<OnCheckpoint<'a>>,
    /// Whether counts were sent with no receiver, which is said once.
    counts_lost: bool,
    stats: SourceStats,
    progress: Arc<Progress>,
}

/// Stores a checkpoint's state with the events sent since the one before; `Err` says why not.
pub type OnCheckpoint<'a> = &'a mut dyn FnMut(&[u8]) -> Result<(), String>;

/// One day's traffic of one connector that a source has already counted: the rows of an
/// aggregated export (Microsoft's connector report), which hold no single messages.
#[derive(Debug, Clone, PartialEq)]
pub struct DayCounts {
    /// The day as the export names it; it counts as a local date of `site.timezone`.
    pub date: NaiveDate,
    pub direction: Direction,
    /// As the source named it; `None` is no connector. Connector rules see only this and the
    /// direction.
    pub connector: Option<String>,
    pub counters: Counters,
}

/// Bytes to read and bytes read so far, summed over every collector of a run; the terminal
/// draws it as a progress bar. Collectors that read files add to it through
/// [`input::Input::open`].
#[derive(Debug, Default)]
pub struct Progress {
    total: AtomicU64,
    done: AtomicU64,
    calls_total: AtomicU64,
    calls_done: AtomicU64,
}

impl Progress {
    pub fn add_total(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Announces API calls to come (collectors that read APIs, not files).
    pub fn add_calls(&self, calls: u64) {
        self.calls_total.fetch_add(calls, Ordering::Relaxed);
    }

    pub fn advance_calls(&self, calls: u64) {
        self.calls_done.fetch_add(calls, Ordering::Relaxed);
    }

    /// (API calls made, API calls to make).
    pub fn calls(&self) -> (u64, u64) {
        (self.calls_done.load(Ordering::Relaxed), self.calls_total.load(Ordering::Relaxed))
    }

    /// (bytes read, bytes to read).
    pub fn get(&self) -> (u64, u64) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

/// What a collector reported besides its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub emitted: u64,
    pub skipped: u64,
    /// The first [`MAX_WARNINGS`] problems, each naming where and why.
    pub warnings: Vec<String>,
    /// Problems beyond those kept in `warnings`.
    pub more_warnings: u64,
    /// Inputs that could not be read; the source is then partial (or failed, without events).
    pub errors: Vec<String>,
    /// Facts about the run a reader of the report should know, e.g. API calls made.
    pub notes: Vec<String>,
}

impl<'a> Emitter<'a> {
    pub fn new(on_event: &'a mut dyn FnMut(MessageEvent)) -> Self {
        Emitter {
            on_event,
            on_counts: None,
            on_checkpoint: None,
            counts_lost: false,
            stats: SourceStats::default(),
            progress: Arc::default(),
        }
    }

    /// Accepts [`DayCounts`] too; without this, a source that sends them fails with a message
    /// that says so (`mailflow events` lists single messages only).
    pub fn with_counts(mut self, on_counts: &'a mut dyn FnMut(DayCounts)) -> Self {
        self.on_counts = Some(on_counts);
        self
    }

    /// Commits checkpoints through `on_checkpoint` (`mailflow ingest`).
    pub fn with_checkpoints(mut self, on_checkpoint: OnCheckpoint<'a>) -> Self {
        self.on_checkpoint = Some(on_checkpoint);
        self
    }

    /// Commits every event sent so far together with `state`, from which the next run resumes,
    /// in one transaction. An `Err` (the store failed, or another process ingested the source
    /// meanwhile) means nothing since the last checkpoint counts: the collector must stop.
    pub fn checkpoint(&mut self, state: &[u8]) -> Result<(), CollectError> {
        match &mut self.on_checkpoint {
            Some(commit) => commit(state).map_err(CollectError::Other),
            None => Ok(()),
        }
    }

    /// Reports reading progress to `progress` (the runner's, shared by all collectors).
    pub fn with_progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = progress;
        self
    }

    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    pub fn event(&mut self, event: MessageEvent) {
        self.stats.emitted += 1;
        (self.on_event)(event);
    }

    /// Sends counts of messages the source does not list one by one.
    pub fn counts(&mut self, counts: DayCounts) {
        match &mut self.on_counts {
            Some(on_counts) => {
                // Counts come from input: they saturate, as rollups do.
                self.stats.emitted = self.stats.emitted.saturating_add(counts.counters.messages);
                on_counts(counts);
            }
            None if !self.counts_lost => {
                self.counts_lost = true;
                self.error("this source holds daily totals, not single messages, so it cannot be listed as events")
            }
            None => {}
        }
    }

    /// Skips a malformed record: counts it and keeps the first few reasons.
    /// `at` says where (`file:line`), `why` says what was expected.
    pub fn skip(&mut self, at: impl Display, why: impl Display) {
        self.stats.skipped += 1;
        self.warn(format!("{at}: skipped: {why}"));
    }

    /// Records a problem that lost no data, or a lost record already counted elsewhere.
    pub fn warn(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::debug!(%message, "collector warning");
        if self.stats.warnings.len() < MAX_WARNINGS {
            self.stats.warnings.push(message);
        } else {
            self.stats.more_warnings += 1;
        }
    }

    /// Records a fact about the run for the report (not a problem: see [`warn`](Self::warn)).
    pub fn note(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(%message, "collector note");
        self.stats.notes.push(message);
    }

    /// Records an input that could not be read; the collector goes on with the others.
    pub fn error(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(%message, "collector input failed");
        self.stats.errors.push(message);
    }

    pub fn into_stats(self) -> SourceStats {
        self.stats
    }
}

/// A consumer of the finished report.
pub trait Sink: Send + Sync {
    /// Delivers the report; returns what it did, for the terminal ("wrote report.json").
    fn write(&self, report: &Report) -> Result<String, SinkError>;
}

/// Why a collector could not read its source.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CollectError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

/// Why a sink could not deliver the report.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(messages: u64) -> DayCounts {
        let counters = Counters { messages, ..Counters::default() };
        DayCounts { date: "2026-12-01".parse().unwrap(), direction: Direction::Inbound, connector: None, counters }
    }

    #[test]
    fn counts_need_a_receiver_or_say_why_they_were_lost() {
        let mut ignore = |_| {};
        let mut out = Emitter::new(&mut ignore);
        out.error("an earlier file failed");
        out.counts(counts(3));
        out.counts(counts(4));
        let stats = out.into_stats();
        assert_eq!(stats.errors.len(), 2, "said once: {:?}", stats.errors);
        assert!(stats.errors[1].contains("daily totals, not single messages"));

        let mut received = Vec::new();
        let mut keep = |c: DayCounts| received.push(c.counters.messages);
        let mut ignore = |_| {};
        let mut out = Emitter::new(&mut ignore).with_counts(&mut keep);
        out.counts(counts(3));
        out.counts(counts(u64::MAX));
        assert_eq!(out.into_stats().emitted, u64::MAX, "saturates");
        assert_eq!(received, [3, u64::MAX]);
    }
}
