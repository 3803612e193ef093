//! `mailflow ingest`, `mailflow report` and `mailflow store`: the history store's commands.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SubsecRound, Utc};
use mailflow_core::format::{printable, thousands};
use mailflow_core::report::{SourceReport, SourceStatus};
use mailflow_core::{Counters, Direction, RangeSpec, Report, ReportRange};
use mailflow_runner::Pipeline;

use crate::cli::{RangeArgs, StoreAction};

/// Ingests, then builds the report of `range` from the store; `Err` when the store fails.
pub fn ingest_and_report(pipeline: &Pipeline, range: ReportRange, quiet: bool) -> anyhow::Result<Report> {
    let now = Utc::now().trunc_subsecs(0);
    let ingested = crate::progress::while_collecting(pipeline, quiet, || pipeline.ingest(None, now))?;
    let mut store = pipeline.open_store()?;
    let mut report = pipeline.report_from_store(store.as_mut(), range, now)?;
    // This run's word on each source, even where the store could not take it.
    for run in ingested.sources {
        if let Some(source) = report.sources.iter_mut().find(|s| s.name == run.name) {
            let SourceReport { status, skipped, internal, warnings, notes, error, .. } = run;
            (source.status, source.skipped, source.internal) = (status, skipped, internal);
            (source.warnings, source.notes, source.error) = (warnings, notes, error);
        }
    }
    Ok(report)
}

/// `mailflow ingest`.
pub fn ingest(pipeline: &Pipeline, args: &RangeArgs, quiet: bool) -> anyhow::Result<u8> {
    let now = Utc::now().trunc_subsecs(0);
    let days = if args.days.is_some() || args.from.is_some() {
        let range = crate::resolve_range(pipeline, args, RangeSpec::LastDays(1), now)?;
        // Asked for days up to yesterday, an ingest takes today's so far too.
        let today = ReportRange::today(now, range.timezone);
        Some(if args.days.is_some() { ReportRange { to: today, ..range } } else { range })
    } else {
        None
    };
    let ingested = crate::progress::while_collecting(pipeline, quiet, || pipeline.ingest(days, now))?;
    let store = mailflow_store::redact(pipeline.store_config()?.url());
    if !quiet {
        println!("ingested into {}:", printable(&store));
        for s in &ingested.sources {
            println!("  {}", describe_run(s));
            for w in &s.warnings {
                println!("    {}", printable(w));
            }
        }
        if ingested.pruned > 0 {
            println!("  pruned {} rows older than retention_days", thousands(ingested.pruned));
        }
    }
    Ok(if crate::print_failed_sources(&ingested.sources) { crate::FAILED } else { 0 })
}

fn describe_run(s: &SourceReport) -> String {
    let status = match s.status {
        SourceStatus::Ok => "ok",
        SourceStatus::Partial => "PARTIAL",
        SourceStatus::Failed => "FAILED",
    };
    format!(
        "{} ({}): {}, {} events, {} skipped, {} internal",
        printable(&s.name),
        printable(&s.kind),
        status,
        thousands(s.events),
        thousands(s.skipped),
        thousands(s.internal)
    )
}

/// `mailflow store …`.
pub fn store(pipeline: &Pipeline, action: &StoreAction) -> anyhow::Result<u8> {
    let mut store = pipeline.open_store()?;
    match action {
        StoreAction::Show { range, source } => {
            let now = Utc::now();
            let range = crate::resolve_range(pipeline, range, RangeSpec::LastDays(30), now)?;
            let rollup = store.rollup(range.from, range.to)?;
            let mut days: BTreeMap<(&str, chrono::NaiveDate), [Counters; 2]> = BTreeMap::new();
            let rows: Vec<_> = rollup.iter().collect();
            for (key, counters) in &rows {
                if source.as_deref().is_some_and(|s| s != key.source) {
                    continue;
                }
                let slot = usize::from(key.direction == Direction::Outbound);
                days.entry((key.source.as_str(), key.date)).or_default()[slot] += **counters;
            }
            let mut out = String::new();
            let _ = writeln!(out, "{} from {} to {}:", printable(&store.describe()), range.from, range.to);
            let _ = writeln!(
                out,
                "  {:<24} {:<10} {:>12} {:>12} {:>10}",
                "source", "date", "inbound", "outbound", "no TLS"
            );
            for ((name, date), [inbound, outbound]) in &days {
                let plain = inbound.tls.none + outbound.tls.none;
                let _ = writeln!(
                    out,
                    "  {:<24} {date:<10} {:>12} {:>12} {:>10}",
                    printable(name),
                    thousands(inbound.messages),
                    thousands(outbound.messages),
                    thousands(plain)
                );
            }
            let _ = writeln!(out, "sources:");
            for info in store.sources()? {
                if source.as_deref().is_some_and(|s| s != info.name) {
                    continue;
                }
                let when = |t: Option<DateTime<Utc>>| t.map_or("never".to_string(), |t| t.to_rfc3339());
                let _ = writeln!(
                    out,
                    "  {} ({}): data since {}, last ingest {}",
                    printable(&info.name),
                    printable(&info.kind),
                    when(info.first_event),
                    when(info.last_ingest)
                );
                if let Some(run) = info.last_run.as_deref().and_then(|j| serde_json::from_str::<SourceReport>(j).ok()) {
                    let _ = writeln!(out, "    last run: {}", describe_run(&run));
                    if let Some(error) = &run.error {
                        let _ = writeln!(out, "    error: {}", printable(error));
                    }
                }
            }
            print!("{out}");
        }
        StoreAction::Prune { before, source } => {
            let before = before.unwrap_or_else(|| pipeline.horizon(Utc::now()));
            let deleted = store.prune(before, source.as_deref())?;
            let of = source.as_deref().map(|s| format!(" of source {}", printable(s))).unwrap_or_default();
            println!("deleted {} rows{of} dated before {before}", thousands(deleted));
        }
        StoreAction::Forget { source } => {
            let deleted = store.forget(source)?;
            println!(
                "forgot source {}: {} rows deleted; its next ingest reads it from the start",
                printable(source),
                thousands(deleted)
            );
        }
    }
    Ok(0)
}
