//! Runs mailflow's pipeline: config → collectors → events → connector rules → daily rollups →
//! report → sinks.
//!
//! Every collector runs on its own thread with its own [`Rollup`]; rollups merge exactly, so the
//! threads share nothing until the end. A collector or sink that fails does not stop the others:
//! its failure is recorded in the report's `sources` (or the run's sink outcomes) and the run
//! exits 1.
//!
//! # Layout
//! - [`registry`]: maps `type = "…"` to component constructors. Add new components there.
//! - [`Pipeline`]: the built components and the three stages (`collect`, `report`, `deliver`).
//! - [`ingest`]: `mailflow ingest` into the history store, and reports from it.
//! - [`schedule`]: `mailflow daemon`'s loop: jobs on their schedules, lock files, shutdown.
//! - [`summary`]: the short terminal summary of a report.

pub mod ingest;
pub mod registry;
pub mod schedule;
pub mod summary;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use mailflow_component::{CollectContext, Collector, DayCounts, Emitter, Progress, Resume, Sink, SourceStats};
use mailflow_config::{ComponentSection, Config, ConfigError, JobConfig};
use mailflow_core::report::{self, ReportInput, SourceReport, SourceStatus};
use mailflow_core::rollup::RollupKey;
use mailflow_core::{MessageEvent, Report, ReportRange, Resolution, Rollup};

/// Components built from a config, ready to run.
pub struct Pipeline {
    config: Config,
    /// Bytes read by all collectors, for a progress bar.
    progress: Arc<Progress>,
    collectors: Vec<(ComponentSection, Box<dyn Collector>)>,
    sinks: Vec<(ComponentSection, Box<dyn Sink>)>,
    /// The collectors a job chose, whose sources alone its reports from the store show.
    chosen: Option<Vec<String>>,
}

/// Commits a checkpoint: the collector's state and the rows counted since the last one (emptied
/// once stored).
pub type CommitCheckpoint<'a> = &'a mut dyn FnMut(&[u8], &mut Rollup) -> Result<(), String>;

/// What the collectors produced: rollups of the report range and its previous period.
pub struct Collected {
    pub rollup: Rollup,
    pub sources: Vec<SourceReport>,
}

/// How one sink fared.
pub struct SinkOutcome {
    pub name: String,
    pub result: Result<String, String>,
}

/// Called for each event counted in the report range, with its resolved connector.
pub type Visit<'a> = &'a (dyn Fn(&MessageEvent, &str) + Sync);

impl Pipeline {
    /// Builds every collector and sink; the first invalid section is the error.
    pub fn build(config: Config) -> Result<Pipeline, ConfigError> {
        let collectors = config
            .collectors
            .iter()
            .map(|s| Ok((s.clone(), registry::build_collector(s)?)))
            .collect::<Result<_, ConfigError>>()?;
        let sinks = config
            .sinks
            .iter()
            .map(|s| Ok((s.clone(), registry::build_sink(s)?)))
            .collect::<Result<_, ConfigError>>()?;
        Ok(Pipeline { config, progress: Arc::default(), collectors, sinks, chosen: None })
    }

    /// Keeps only the collectors and sinks `job` names (all, where it names none).
    pub fn only(mut self, job: &JobConfig) -> Pipeline {
        if let Some(names) = &job.collectors {
            self.collectors.retain(|(s, _)| names.contains(&s.name));
            self.chosen = Some(names.clone());
        }
        if let Some(names) = &job.sinks {
            self.sinks.retain(|(s, _)| names.contains(&s.name));
        }
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the collectors have read so far, and of how much; updated while `collect` runs.
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Runs all collectors concurrently over `range` and its previous period (for comparisons).
    pub fn collect(&self, range: &ReportRange, visit: Option<Visit<'_>>) -> Collected {
        let window = ReportRange { from: range.previous().from, ..*range };
        let (start, end) = window.utc_bounds();
        let results: Vec<(Rollup, SourceReport)> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .collectors
                .iter()
                .map(|(section, collector)| {
                    let handle = scope
                        .spawn(move || self.run_collector(section, collector.as_ref(), range, start, end, visit, None));
                    (section, handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(section, handle)| {
                    handle.join().unwrap_or_else(|panic| (Rollup::new(), crashed(section, &*panic)))
                })
                .collect()
        });
        let mut rollup = Rollup::new();
        let mut sources = Vec::new();
        for (part, source) in results {
            rollup.merge(part);
            sources.push(source);
        }
        Collected { rollup, sources }
    }

    /// Runs one collector; events of `range` count as its `events`, those of `[start, end)` go
    /// into the rollup. With `resume`, the collector continues from a checkpoint and `commit`
    /// stores each new one with the rows counted since the one before.
    #[allow(clippy::too_many_arguments)]
    fn run_collector(
        &self,
        section: &ComponentSection,
        collector: &dyn Collector,
        range: &ReportRange,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        visit: Option<Visit<'_>>,
        resume: Option<(Resume<'_>, CommitCheckpoint<'_>)>,
    ) -> (Rollup, SourceReport) {
        let name = section.name.as_str();
        // Both callbacks count into the same rollup and source report.
        let tally = std::cell::RefCell::new((Rollup::new(), source_report(section)));
        let mut dates = LocalDates::new(range);
        let mut on_event = |mut event: MessageEvent| {
            let (rollup, source) = &mut *tally.borrow_mut();
            event.source = Some(name.to_string());
            source.first_event = Some(source.first_event.map_or(event.time, |t| t.min(event.time)));
            if event.time < start || event.time >= end {
                source.out_of_range += 1;
                return;
            }
            let date = dates.of(event.time);
            let in_range = range.contains(date);
            match (self.config.rules().resolve(&event), in_range) {
                (Resolution::Internal, true) => source.internal += 1,
                (Resolution::Internal, false) => source.out_of_range += 1,
                (Resolution::Connector(connector), _) => {
                    if in_range {
                        source.events += 1;
                        if let Some(visit) = visit {
                            visit(&event, connector);
                        }
                    } else {
                        source.out_of_range += 1;
                    }
                    rollup.add(date, name, connector, &event);
                }
            }
        };
        let window_first = range.previous().from;
        let mut on_counts = |counts: DayCounts| {
            let (rollup, source) = &mut *tally.borrow_mut();
            // The day's first instant stands for its counts, as far as history goes.
            let day_start = mailflow_core::range::start_of_day(counts.date, range.timezone);
            source.first_event = Some(source.first_event.map_or(day_start, |t| t.min(day_start)));
            if counts.date < window_first || counts.date > range.to {
                source.out_of_range = source.out_of_range.saturating_add(counts.counters.messages);
                return;
            }
            // Rules see what the counts say: direction, connector and source.
            let mut probe = MessageEvent::new(day_start, counts.direction);
            probe.connector = counts.connector;
            probe.source = Some(name.to_string());
            let connector = match self.config.rules().resolve(&probe) {
                Resolution::Connector(connector) => connector,
                // Only a peer address makes traffic internal, and counts carry none.
                Resolution::Internal => return,
            };
            if range.contains(counts.date) {
                source.events = source.events.saturating_add(counts.counters.messages);
            } else {
                source.out_of_range = source.out_of_range.saturating_add(counts.counters.messages);
            }
            let key = RollupKey {
                date: counts.date,
                source: name.to_string(),
                direction: counts.direction,
                connector: connector.to_string(),
            };
            rollup.add_counters(&key, &counts.counters);
        };
        let (resume, commit) = resume.unzip();
        let mut on_checkpoint = commit.map(|commit| {
            let tally = &tally;
            move |state: &[u8]| {
                let (rollup, _) = &mut *tally.borrow_mut();
                commit(state, rollup)
            }
        });
        let mut emitter = Emitter::new(&mut on_event).with_counts(&mut on_counts).with_progress(self.progress.clone());
        if let Some(on_checkpoint) = &mut on_checkpoint {
            emitter = emitter.with_checkpoints(on_checkpoint);
        }
        let report_start = range.utc_bounds().0;
        let ctx = CollectContext { source: name, site: &self.config.site, start, end, report_start, resume };
        let began = std::time::Instant::now();
        let result = collector.collect(&ctx, &mut emitter);
        let stats = emitter.into_stats();
        let (rollup, mut source) = tally.into_inner();
        finish_source(&mut source, stats, result.err().map(|e| e.to_string()));
        tracing::info!(
            source = name,
            events = source.events,
            skipped = source.skipped,
            out_of_range = source.out_of_range,
            internal = source.internal,
            elapsed_ms = began.elapsed().as_millis() as u64,
            "collector finished"
        );
        (rollup, source)
    }

    /// The report of `range` from what was collected.
    pub fn report(&self, range: ReportRange, collected: &Collected, now: DateTime<Utc>) -> Report {
        report::build(ReportInput {
            range,
            rollup: &collected.rollup,
            connectors: &self.config.connectors,
            insights: &self.config.insights,
            sources: collected.sources.clone(),
            generated_at: now,
        })
    }

    /// Hands the report to every sink; a failing sink does not stop the others.
    pub fn deliver(&self, report: &Report) -> Vec<SinkOutcome> {
        self.sinks
            .iter()
            .map(|(section, sink)| {
                let result = sink.write(report).map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(sink = %section.name, error = %e, "sink failed");
                }
                SinkOutcome { name: section.name.clone(), result }
            })
            .collect()
    }
}

/// The report of a collector whose thread panicked.
fn crashed(section: &ComponentSection, panic: &(dyn std::any::Any + Send)) -> SourceReport {
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    let mut source = source_report(section);
    source.status = SourceStatus::Failed;
    source.error = Some(format!("the collector crashed: {why}"));
    source
}

fn source_report(section: &ComponentSection) -> SourceReport {
    empty_source(&section.name, &section.type_name)
}

fn empty_source(name: &str, kind: &str) -> SourceReport {
    SourceReport {
        name: name.to_string(),
        kind: kind.to_string(),
        status: SourceStatus::Ok,
        events: 0,
        skipped: 0,
        out_of_range: 0,
        internal: 0,
        first_event: None,
        warnings: Vec::new(),
        notes: Vec::new(),
        error: None,
        ingested_at: None,
    }
}

fn finish_source(source: &mut SourceReport, stats: SourceStats, fatal: Option<String>) {
    source.skipped = stats.skipped;
    source.warnings = stats.warnings;
    source.notes = stats.notes;
    if stats.more_warnings > 0 {
        source.warnings.push(format!("… and {} more", stats.more_warnings));
    }
    let errors: Vec<String> = stats.errors.into_iter().chain(fatal).collect();
    if !errors.is_empty() {
        source.status = if stats.emitted > 0 { SourceStatus::Partial } else { SourceStatus::Failed };
        source.error = Some(errors.join("; "));
    }
}

/// Local dates of instants, looked up once per quarter hour: time-zone offsets change only at
/// quarter hours, and events come mostly in time order.
struct LocalDates<'r> {
    range: &'r ReportRange,
    cached: Option<(i64, NaiveDate)>,
}

impl<'r> LocalDates<'r> {
    fn new(range: &'r ReportRange) -> Self {
        LocalDates { range, cached: None }
    }

    fn of(&mut self, time: DateTime<Utc>) -> NaiveDate {
        let quarter = time.timestamp().div_euclid(900);
        match self.cached {
            Some((q, date)) if q == quarter => date,
            _ => {
                let date = self.range.local_date(time);
                // Only a quarter hour that does not start or end a local day may be reused.
                let start = DateTime::from_timestamp(quarter * 900, 0).unwrap_or(time);
                let end = DateTime::from_timestamp(quarter * 900 + 899, 0).unwrap_or(time);
                if self.range.local_date(start) == date && self.range.local_date(end) == date {
                    self.cached = Some((quarter, date));
                }
                date
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cached_local_dates_match_the_time_zone_across_dst_and_midnight() {
        for tz in [chrono_tz::Europe::Berlin, chrono_tz::Asia::Kolkata, chrono_tz::America::St_Johns] {
            let range = ReportRange::new("2026-10-24".parse().unwrap(), "2026-10-27".parse().unwrap(), tz).unwrap();
            let mut dates = LocalDates::new(&range);
            let start = DateTime::parse_from_rfc3339("2026-10-24T00:00:00Z").unwrap().timestamp();
            for step in 0..(4 * 24 * 60 / 7) {
                let time = DateTime::from_timestamp(start + step * 7 * 60, 0).unwrap();
                assert_eq!(dates.of(time), range.local_date(time), "{tz} at {time}");
            }
        }
    }

    fn pipeline(dir: &Path, extra: &str) -> Pipeline {
        let text = format!(
            "[site]\ntimezone = \"Europe/Berlin\"\ninternal_networks = [\"10.0.0.0/8\"]\n\
             [[connector]]\nname = \"Partner\"\ndirection = \"outbound\"\nrelay = [\"mx.partner.example\"]\n\
             [[collector]]\ntype = \"events\"\nname = \"a\"\npaths = [\"a.jsonl\"]\n\
             [[collector]]\ntype = \"events\"\nname = \"b\"\npaths = [\"missing.jsonl\"]\n{extra}"
        );
        Pipeline::build(Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap()).unwrap()
    }

    #[test]
    fn daily_counts_meet_the_rules_the_range_and_history_as_events_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("report.csv"),
            "Date,Connector direction,Connector name,No TLS,TLS 1.2,Volume\n\
             2026-11-01,Inbound,,0,7,7\n\
             2026-11-30,Inbound,,1,2,4\n\
             2026-12-01,Inbound,,2,8,10\n\
             2026-12-01,Outbound,To Partner,0,5,5\n\
             2026-10-01,Inbound,,0,0,18446744073709551615\n\
             2026-10-02,Inbound,,0,0,18446744073709551615\n",
        )
        .unwrap();
        let config = "[site]\ntimezone = \"Europe/Berlin\"\n\
             [[connector]]\nname = \"M365 inbound\"\ndirection = \"inbound\"\nsource = [\"m365\"]\n\
             [[collector]]\ntype = \"m365_csv\"\nname = \"m365\"\npaths = [\"report.csv\"]\n";
        let p = Pipeline::build(Config::parse(config, &dir.path().join("mailflow.toml"), &|_| None).unwrap()).unwrap();
        let tz = p.config().site.timezone;
        let range = ReportRange::new("2026-12-01".parse().unwrap(), "2026-12-01".parse().unwrap(), tz).unwrap();
        let collected = p.collect(&range, None);
        let source = &collected.sources[0];
        assert_eq!((source.status, source.events, source.out_of_range), (SourceStatus::Ok, 15, u64::MAX));
        assert_eq!(source.first_event, Some("2026-09-30T22:00:00Z".parse().unwrap()), "midnight in Berlin");

        let report = p.report(range, &collected, "2026-12-02T06:00:00Z".parse().unwrap());
        let names: Vec<(&str, u64, u64)> = report
            .connectors
            .iter()
            .filter(|c| c.traffic.counters.messages > 0)
            .map(|c| (c.name.as_str(), c.traffic.counters.messages, c.traffic.counters.tls.none))
            .collect();
        assert_eq!(names, [("M365 inbound", 10, 2), ("To Partner", 5, 0)]);
        let previous = report.totals.previous.expect("the source covers the previous period");
        assert_eq!(previous.inbound.messages, 4);
    }

    #[test]
    fn counts_in_local_days_and_keeps_failures_per_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.jsonl"),
            [
                // 2026-12-01 00:30 in Berlin: inside the range although 2026-11-30 in UTC.
                r#"{"time":"2026-11-30T23:30:00Z","direction":"outbound","peer":{"host":"mx.partner.example"}}"#,
                r#"{"time":"2026-12-01T12:00:00Z","direction":"inbound","peer":{"ip":"10.1.1.1"}}"#,
                r#"{"time":"2026-11-30T22:30:00Z","direction":"outbound"}"#,
                r#"{"time":"2026-11-01T22:30:00Z","direction":"outbound"}"#,
                "garbage",
            ]
            .join("\n"),
        )
        .unwrap();
        let p = pipeline(dir.path(), "");
        let tz = p.config().site.timezone;
        let range = ReportRange::new("2026-12-01".parse().unwrap(), "2026-12-01".parse().unwrap(), tz).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let visit = |e: &MessageEvent, c: &str| seen.lock().unwrap().push((e.source.clone().unwrap(), c.to_string()));
        let collected = p.collect(&range, Some(&visit));
        assert_eq!(seen.into_inner().unwrap(), [("a".to_string(), "Partner".to_string())]);
        let a = &collected.sources[0];
        assert_eq!((a.events, a.internal, a.out_of_range, a.skipped), (1, 1, 2, 1));
        assert_eq!(a.status, SourceStatus::Ok);
        let b = &collected.sources[1];
        assert_eq!(b.status, SourceStatus::Failed);
        assert!(b.error.as_deref().unwrap().contains("missing.jsonl"), "{:?}", b.error);

        let report = p.report(range, &collected, "2026-12-02T06:00:00Z".parse().unwrap());
        assert_eq!(report.totals.outbound.counters.messages, 1);
        assert_eq!(report.totals.inbound.counters.messages, 0);
    }
}
