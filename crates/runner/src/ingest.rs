//! `mailflow ingest` and reports from the history store.
//!
//! Resumable collectors (log files) continue from their last checkpoint. Each checkpoint commits
//! the rollup rows counted since the one before together with the collector's state, in one
//! transaction: a run killed at any point loses nothing and counts nothing twice. Other
//! collectors (APIs, exports, programs) are read by days: the days a run returns replace what the
//! store held for them, so re-reading a window never double counts.

use std::cell::RefCell;

use chrono::{DateTime, Days, NaiveDate, Utc};
use mailflow_component::{Collector, Resume};
use mailflow_config::{ComponentSection, StoreConfig};
use mailflow_core::report::{self, ReportInput, SourceReport, SourceStatus};
use mailflow_core::{Report, ReportRange, Rollup};
use mailflow_store::{Checkpoint, Commit, ErrorKind, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::{Pipeline, source_report};

/// What a day-window source's checkpoint holds: the last day it was asked for, which may have
/// been incomplete then and is asked for again.
#[derive(Debug, Serialize, Deserialize)]
struct Through {
    through: NaiveDate,
}

/// The first of the `days` days that end with `today`.
fn last_days(today: NaiveDate, days: u32) -> NaiveDate {
    today.checked_sub_days(Days::new(u64::from(days.max(1)) - 1)).unwrap_or(today)
}

/// The start of the earliest day among `rows`: how far back the stored data of a source reaches.
fn first_stored(rows: &Rollup, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let first = rows.iter().map(|(key, _)| key.date).min()?;
    Some(mailflow_core::range::start_of_day(first, tz))
}

/// What `mailflow ingest` did.
pub struct Ingested {
    pub sources: Vec<SourceReport>,
    /// Rollup rows older than `retention_days`, deleted.
    pub pruned: u64,
}

impl Pipeline {
    /// The `[store]` section; `Err` says how to add one.
    pub fn store_config(&self) -> Result<&StoreConfig, StoreError> {
        self.config.store.as_ref().ok_or_else(|| {
            StoreError::new(
                mailflow_store::ErrorKind::Url,
                format!(
                    "{} has no [store] section; add one (an empty `[store]` keeps the history in {})",
                    self.config.path().display(),
                    StoreConfig::default_url()
                ),
            )
        })
    }

    /// A connection to the store (each thread opens its own).
    pub fn open_store(&self) -> Result<Box<dyn Store>, StoreError> {
        let config = self.store_config()?;
        mailflow_store::open(config.url(), config.password.as_ref().map(|p| p.expose()))
    }

    /// Reads what is new from every collector into the store, then prunes days older than
    /// `retention_days`. `days` overrides the days asked of day-window sources.
    pub fn ingest(&self, days: Option<ReportRange>, now: DateTime<Utc>) -> Result<Ingested, StoreError> {
        // Opening runs the migrations once, before the collectors' threads connect.
        let mut store = self.open_store()?;
        let sources = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .collectors
                .iter()
                .map(|(section, collector)| {
                    let handle = scope.spawn(move || self.ingest_one(section, collector.as_ref(), days, now));
                    (section, handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(section, handle)| handle.join().unwrap_or_else(|panic| crate::crashed(section, &*panic)))
                .collect()
        });
        // Each host prunes its own sources: on a shared store, others may keep days longer.
        let mut pruned = 0;
        for (section, _) in &self.collectors {
            match store.prune(self.horizon(now), Some(&section.name)) {
                Ok(n) => pruned += n,
                Err(e) => tracing::warn!(source = %section.name, error = %e, "pruning old days failed"),
            }
        }
        Ok(Ingested { sources, pruned })
    }

    /// The source's checkpoint and this host's name, unless another host owns the source: then
    /// the ingest fails before it reads anything.
    fn own_checkpoint(&self, store: &mut dyn Store, name: &str) -> Result<(Checkpoint, String), StoreError> {
        let host = self.store_config()?.host();
        let checkpoint = store.checkpoint(name)?;
        match &checkpoint.host {
            Some(owner) if *owner != host => Err(StoreError::owned(name, owner, &host)),
            _ => Ok((checkpoint, host)),
        }
    }

    /// The first day kept: `retention_days` days end today.
    pub fn horizon(&self, now: DateTime<Utc>) -> NaiveDate {
        let today = ReportRange::today(now, self.config.site.timezone);
        last_days(today, self.config.store.as_ref().map_or(400, |s| s.retention_days))
    }

    fn ingest_one(
        &self,
        section: &ComponentSection,
        collector: &dyn Collector,
        days: Option<ReportRange>,
        now: DateTime<Utc>,
    ) -> SourceReport {
        let failed = |why: String| {
            let mut source = source_report(section);
            source.status = SourceStatus::Failed;
            source.error = Some(why);
            source
        };
        let mut store = match self.open_store() {
            Ok(store) => store,
            Err(e) => return failed(e.to_string()),
        };
        let waiting =
            &mut || tracing::info!(source = %section.name, "another ingest of this source is running; waiting");
        if let Err(e) = store.lock_source(&section.name, waiting) {
            return failed(e.to_string());
        }
        let result = if collector.resumable() {
            self.ingest_resumable(section, collector, store.as_mut(), now)
        } else {
            self.ingest_days(section, collector, store.as_mut(), days, now)
        };
        result.unwrap_or_else(|e| failed(e.to_string()))
    }

    /// Reads from the last checkpoint; every checkpoint the collector makes commits.
    fn ingest_resumable(
        &self,
        section: &ComponentSection,
        collector: &dyn Collector,
        store: &mut dyn Store,
        now: DateTime<Utc>,
    ) -> Result<SourceReport, StoreError> {
        let name = section.name.as_str();
        let (checkpoint, host) = self.own_checkpoint(store, name)?;
        let tz = self.config.site.timezone;
        let today = ReportRange::today(now, tz);
        // Every day kept, and tomorrow for clocks a little ahead.
        let window = ReportRange { from: self.horizon(now), to: today + Days::new(1), timezone: tz };
        let (start, end) = window.utc_bounds();
        let store = RefCell::new(store);
        let mut generation = checkpoint.generation;
        let mut state = checkpoint.state.clone();
        let mut commit = |new_state: &[u8], rows: &mut Rollup| {
            let done = store.borrow_mut().commit(&Commit {
                source: name,
                kind: &section.type_name,
                host: &host,
                expected_generation: generation,
                clear_days: &[],
                rows,
                state: new_state,
                first_event: first_stored(rows, tz),
                ingested_at: now,
                last_run: None,
            });
            generation = done.map_err(|e| e.to_string())?;
            *rows = Rollup::new();
            new_state.clone_into(&mut state);
            Ok(())
        };
        let resume = Resume { state: &checkpoint.state, checkpoint_bytes: self.store_config()?.checkpoint_bytes };
        // Rows counted after the last checkpoint are left for the next run, which reads their
        // lines again.
        let (_uncommitted, mut source) =
            self.run_collector(section, collector, &window, start, end, None, Some((resume, &mut commit)));
        source.ingested_at = Some(now);
        let last_run = serde_json::to_string(&source).expect("source reports serialize");
        store.into_inner().commit(&Commit {
            source: name,
            kind: &section.type_name,
            host: &host,
            expected_generation: generation,
            clear_days: &[],
            rows: &Rollup::new(),
            state: &state,
            first_event: None,
            ingested_at: now,
            last_run: Some(&last_run),
        })?;
        Ok(source)
    }

    /// Reads whole days, which replace what the store held for them.
    fn ingest_days(
        &self,
        section: &ComponentSection,
        collector: &dyn Collector,
        store: &mut dyn Store,
        days: Option<ReportRange>,
        now: DateTime<Utc>,
    ) -> Result<SourceReport, StoreError> {
        let name = section.name.as_str();
        let (checkpoint, host) = self.own_checkpoint(store, name)?;
        let tz = self.config.site.timezone;
        let today = ReportRange::today(now, tz);
        let horizon = self.horizon(now);
        let through = serde_json::from_slice::<Through>(&checkpoint.state).ok().map(|t| t.through);
        let window = match (days, through, collector.first_ingest_days()) {
            (Some(days), _, _) => days,
            (None, Some(through), Some(_)) => {
                // A source down for longer than the API keeps data starts at what it still has.
                let kept = collector.history_days().map_or(horizon, |days| last_days(today, days));
                ReportRange { from: through.min(today).max(kept), to: today, timezone: tz }
            }
            (None, None, Some(first)) => ReportRange { from: last_days(today, first), to: today, timezone: tz },
            // A source that holds its own history (export files) is read whole every time.
            (None, _, None) => ReportRange { from: horizon, to: today + Days::new(1), timezone: tz },
        };
        if window.to < horizon {
            return Err(StoreError::new(
                ErrorKind::Invalid,
                format!("the days asked for end before the first day kept ({horizon}, by retention_days)"),
            ));
        }
        let window = ReportRange { from: window.from.max(horizon), ..window };
        let (start, end) = window.utc_bounds();
        let (rollup, mut source) = self.run_collector(section, collector, &window, start, end.min(now), None, None);
        source.ingested_at = Some(now);
        let stored = source.status == SourceStatus::Ok;
        if !stored {
            let why = source.error.get_or_insert_default();
            why.push_str("; nothing of this run was stored: the store keeps what it held for these days");
        }
        let last_run = serde_json::to_string(&source).expect("source reports serialize");
        let (rows, clear_days, state) = if stored {
            let mut days: Vec<NaiveDate> = rollup.iter().map(|(key, _)| key.date).collect();
            if collector.first_ingest_days().is_some() {
                // Asked for these days, the source answered for all of them: a day it now has
                // nothing for had nothing, whatever an earlier run stored.
                days.extend(window.dates().filter(|day| *day <= today));
            }
            days.sort_unstable();
            days.dedup();
            // Asking for older days again does not move where the next run starts back.
            let through = through.into_iter().chain([window.to.min(today)]).max();
            let state = serde_json::to_vec(&Through { through: through.unwrap_or(today) }).expect("dates serialize");
            (rollup, days, state)
        } else {
            (Rollup::new(), Vec::new(), checkpoint.state.clone())
        };
        store.commit(&Commit {
            source: name,
            kind: &section.type_name,
            host: &host,
            expected_generation: checkpoint.generation,
            clear_days: &clear_days,
            rows: &rows,
            state: &state,
            first_event: first_stored(&rows, tz),
            ingested_at: now,
            last_run: Some(&last_run),
        })?;
        Ok(source)
    }

    /// The report of `range` from the store: its rows of the range and the previous period, and
    /// each source as its last ingest left it. Sources the config does not name (other hosts')
    /// are included, unless a job chose its collectors.
    pub fn report_from_store(
        &self,
        store: &mut dyn Store,
        range: ReportRange,
        now: DateTime<Utc>,
    ) -> Result<Report, StoreError> {
        let wanted = |source: &str| self.chosen.as_ref().is_none_or(|names| names.iter().any(|n| n == source));
        let stored = store.rollup(range.previous().from, range.to)?;
        let mut rollup = Rollup::new();
        for (key, counters) in stored.iter().filter(|(key, _)| wanted(&key.source)) {
            rollup.add_counters(&key, counters);
        }
        let mut sources: Vec<SourceReport> = Vec::new();
        for info in store.sources()?.into_iter().filter(|info| wanted(&info.name)) {
            let mut source = info
                .last_run
                .as_deref()
                .and_then(|json| serde_json::from_str::<SourceReport>(json).ok())
                .unwrap_or_else(|| crate::empty_source(&info.name, &info.kind));
            source.name = info.name;
            source.kind = info.kind;
            source.first_event = info.first_event;
            source.ingested_at = info.last_ingest;
            source.out_of_range = 0;
            source.events = rollup
                .iter()
                .filter(|(key, _)| key.source == source.name && range.contains(key.date))
                .map(|(_, c)| c.messages)
                .fold(0, u64::saturating_add);
            sources.push(source);
        }
        for (section, _) in &self.collectors {
            if !sources.iter().any(|s| s.name == section.name) {
                let mut source = source_report(section);
                source.status = SourceStatus::Failed;
                source.error = Some("nothing of this source is in the store yet; run `mailflow ingest`".into());
                sources.push(source);
            }
        }
        Ok(report::build(ReportInput {
            range,
            rollup: &rollup,
            connectors: &self.config.connectors,
            insights: &self.config.insights,
            sources,
            generated_at: now,
        }))
    }
}
