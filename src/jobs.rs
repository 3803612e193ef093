//! `mailflow daemon` and `mailflow run --job`: the config's `[[job]]`s, on schedule or now.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mailflow_config::{Config, ConfigError, ErrorKind, JobConfig};
use mailflow_core::ReportRange;
use mailflow_core::format::{printable, thousands};
use mailflow_runner::Pipeline;
use mailflow_runner::schedule::{Lock, LockDir, RunJob, ScheduledJob, SystemClock, holder, run_jobs};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::RangeArgs;

/// `mailflow run --job NAME`: the job's collectors and sinks over its range (or the one given),
/// unless another process is running the same job.
pub fn run_now(config: Config, name: &str, args: &RangeArgs, quiet: bool) -> anyhow::Result<u8> {
    let job = find(&config, name)?.clone();
    let locks = lock_dir(&config);
    let pipeline = Pipeline::build(config)?.only(&job);
    let range = crate::resolve_range(&pipeline, args, job.range, Utc::now())?;
    let _lock = match locks.try_lock(name)? {
        Lock::Acquired(lock) => lock,
        Lock::Held { pid } => anyhow::bail!(
            "job \"{}\" is already running ({}); try again when it has finished",
            printable(name),
            holder(pid)
        ),
    };
    crate::run(&pipeline, range, quiet)
}

/// `mailflow daemon`: every job on its schedule until SIGTERM or SIGINT.
pub fn daemon(config: Config) -> anyhow::Result<u8> {
    if config.jobs.is_empty() {
        return Err(ConfigError::new(
            config.path(),
            ErrorKind::Invalid,
            "there is no [[job]] to run; add one with a `schedule` (see config/mailflow.example.toml)",
        )
        .into());
    }
    // Every job's components are built now: a broken config stops the start, not Monday's run.
    let mut pipelines = BTreeMap::new();
    for job in &config.jobs {
        pipelines.insert(job.name.clone(), (job.clone(), Pipeline::build(config.clone())?.only(job)));
    }
    let site_timezone = config.site.timezone;
    let scheduled = config
        .jobs
        .iter()
        .map(|job| ScheduledJob {
            name: job.name.clone(),
            schedule: job.schedule.clone(),
            timezone: job.timezone.unwrap_or(site_timezone),
        })
        .collect();
    let locks = Arc::new(lock_dir(&config));
    tracing::info!(config = %config.path().display(), jobs = config.jobs.len(), lock_dir = %locks.dir().display(), "daemon started");
    let run_job: RunJob = Arc::new(move |name: &str, due: DateTime<Utc>| {
        let (job, pipeline) = pipelines.get(name).ok_or_else(|| format!("no job named {name}"))?;
        // The range is the one of the day the run was due, even if it starts late.
        let today = ReportRange::today(due, site_timezone);
        let range = job.range.resolve(today, site_timezone).map_err(|e| e.to_string())?;
        run_scheduled(pipeline, range)
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            tokio::select! { _ = terminate.recv() => {}, _ = interrupt.recv() => {} }
            tracing::info!("stopping: running jobs finish first (signal again to stop at once)");
            stop.send_replace(true);
            // The shell's convention: 128 + the signal's number.
            let code = tokio::select! { _ = terminate.recv() => 143, _ = interrupt.recv() => 130 };
            tracing::warn!("stopped while a job was running; its sinks may not have been written");
            std::process::exit(code);
        });
        run_jobs(scheduled, locks, Arc::new(SystemClock), run_job, shutdown).await;
        anyhow::Ok(())
    })?;
    tracing::info!("daemon stopped");
    Ok(0)
}

fn find<'c>(config: &'c Config, name: &str) -> Result<&'c JobConfig, ConfigError> {
    config.jobs.iter().find(|j| j.name == name).ok_or_else(|| {
        let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
        let known = if names.is_empty() { "there are none".to_string() } else { format!("jobs: {}", names.join(", ")) };
        ConfigError::new(config.path(), ErrorKind::Invalid, format!("no [[job]] is named \"{name}\"; {known}"))
    })
}

fn lock_dir(config: &Config) -> LockDir {
    LockDir::new(config.daemon.lock_dir.clone().unwrap_or_else(LockDir::default_dir), config.path())
}

/// One scheduled run: what it did, or every collector and sink that failed.
fn run_scheduled(pipeline: &Pipeline, range: ReportRange) -> Result<String, String> {
    let report = crate::build_report(pipeline, range, true).map_err(|e| format!("{e:#}"))?;
    let mut problems = Vec::new();
    for s in report.sources.iter().filter(|s| s.error.is_some()) {
        problems.push(format!("collector {}: {}", printable(&s.name), printable(s.error.as_deref().unwrap_or(""))));
    }
    for outcome in pipeline.deliver(&report) {
        match outcome.result {
            Ok(done) => tracing::info!(sink = %printable(&outcome.name), "{}", printable(&done)),
            Err(e) => problems.push(format!("sink {}: {}", printable(&outcome.name), printable(&e))),
        }
    }
    let summary = format!(
        "report {} to {}: {} messages in, {} out",
        range.from,
        range.to,
        thousands(report.totals.inbound.counters.messages),
        thousands(report.totals.outbound.counters.messages)
    );
    if problems.is_empty() { Ok(summary) } else { Err(format!("{summary}; {}", problems.join("; "))) }
}
