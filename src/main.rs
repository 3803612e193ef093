//! The `mailflow` command. Argument handling, exit codes and output live here; everything else is
//! in the libraries under `crates/`.

mod cli;
mod demo;
mod digest;
mod history;
mod jobs;
mod progress;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use clap::{CommandFactory, Parser};
use mailflow_config::Config;
use mailflow_core::format::printable;
use mailflow_core::report::{SourceReport, SourceStatus};
use mailflow_core::{MessageEvent, RangeSpec, ReportRange};
use mailflow_runner::{Pipeline, summary};

use cli::{Cli, Command, RangeArgs};

/// Exit codes: 0 done; 1 a collector or sink failed (the others still ran); 2 bad config or usage.
pub(crate) const FAILED: u8 = 1;
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A daemon's log is its only output: say what it does by default.
    let default_level = if matches!(cli.command, Command::Daemon { .. }) { "info" } else { "warn" };
    init_logging(&cli, default_level);
    match execute(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = if e.downcast_ref::<mailflow_config::ConfigError>().is_some()
                || e.downcast_ref::<mailflow_core::Error>().is_some()
            {
                BAD_CONFIG
            } else {
                FAILED
            };
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(cli: &Cli, default_level: &str) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => default_level,
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours for a terminal only: a journal or a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn execute(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run { config, range, job: None } => {
            let pipeline = Pipeline::build(Config::load(&config.config)?)?;
            let range = resolve_range(&pipeline, &range, RangeSpec::LastDays(7), Utc::now())?;
            run(&pipeline, range, cli.quiet)
        }
        Command::Ingest { config, range } => {
            history::ingest(&Pipeline::build(Config::load(&config.config)?)?, &range, cli.quiet)
        }
        Command::Report { config, range } => {
            let pipeline = Pipeline::build(Config::load(&config.config)?)?;
            pipeline.store_config()?;
            let range = resolve_range(&pipeline, &range, RangeSpec::LastDays(7), Utc::now())?;
            let mut store = pipeline.open_store()?;
            let report = pipeline.report_from_store(store.as_mut(), range, Utc::now().trunc_subsecs(0))?;
            Ok(deliver(&pipeline, &report, cli.quiet))
        }
        Command::Store { config, action } => history::store(&Pipeline::build(Config::load(&config.config)?)?, &action),
        Command::Run { config, range, job: Some(job) } => {
            jobs::run_now(Config::load(&config.config)?, &job, &range, cli.quiet)
        }
        Command::Digest { config, range, sink, dry_run, out, resend } => digest::run(
            Config::load(&config.config)?,
            digest::DigestArgs { range: &range, sink: sink.as_deref(), dry_run, out: out.as_deref(), resend },
        ),
        Command::Daemon { config } => jobs::daemon(Config::load(&config.config)?),
        Command::Check { config } => {
            let pipeline = Pipeline::build(Config::load(&config.config)?)?;
            print!("{}", describe(pipeline.config()));
            Ok(0)
        }
        Command::Events { config, range } => {
            let pipeline = Pipeline::build(Config::load(&config.config)?)?;
            let range = resolve_range(&pipeline, &range, RangeSpec::LastDays(7), Utc::now())?;
            events(&pipeline, range)
        }
        Command::Demo { out } => demo::run(&out, cli.quiet),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "mailflow", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("cannot write the man page")?;
            Ok(0)
        }
    }
}

/// The range the arguments give, else `default` as of `now`, in the site's time zone.
fn resolve_range(
    pipeline: &Pipeline,
    args: &RangeArgs,
    default: RangeSpec,
    now: DateTime<Utc>,
) -> Result<ReportRange, mailflow_core::Error> {
    let tz = pipeline.config().site.timezone;
    let today = ReportRange::today(now, tz);
    match (args.from, args.to, args.days) {
        (Some(from), Some(to), _) => ReportRange::new(from, to, tz),
        (_, _, Some(days)) => ReportRange::last_days(days, today, tz),
        _ => default.resolve(today, tz),
    }
}

/// The report of `range`: collected now, or, with a `[store]`, ingested and read from the store.
fn build_report(pipeline: &Pipeline, range: ReportRange, quiet: bool) -> anyhow::Result<mailflow_core::Report> {
    if pipeline.config().store.is_some() {
        return history::ingest_and_report(pipeline, range, quiet);
    }
    let collected = progress::while_collecting(pipeline, quiet, || pipeline.collect(&range, None));
    Ok(pipeline.report(range, &collected, Utc::now().trunc_subsecs(0)))
}

/// Builds the report, delivers it and prints the summary. Returns the exit code.
fn run(pipeline: &Pipeline, range: ReportRange, quiet: bool) -> anyhow::Result<u8> {
    let report = build_report(pipeline, range, quiet)?;
    Ok(deliver(pipeline, &report, quiet))
}

/// Hands the report to the sinks and prints the summary. Returns the exit code.
fn deliver(pipeline: &Pipeline, report: &mailflow_core::Report, quiet: bool) -> u8 {
    let outcomes = pipeline.deliver(report);
    if !quiet {
        print!("{}", summary::render(report));
        for o in &outcomes {
            match &o.result {
                Ok(done) => println!("  sink {}: {}", printable(&o.name), printable(done)),
                Err(e) => println!("  sink {}: FAILED: {}", printable(&o.name), printable(e)),
            }
        }
    }
    for o in outcomes.iter().filter(|o| o.result.is_err()) {
        eprintln!("error: sink {}: {}", printable(&o.name), o.result.as_ref().unwrap_err());
    }
    let sources_failed = print_failed_sources(&report.sources);
    if sources_failed || outcomes.iter().any(|o| o.result.is_err()) { FAILED } else { 0 }
}

/// Prints each collector that failed (or stopped early) to stderr; true if there was one.
fn print_failed_sources(sources: &[SourceReport]) -> bool {
    let mut failed = false;
    for s in sources.iter().filter(|s| s.status != SourceStatus::Ok) {
        let why = s.error.as_deref().unwrap_or("failed");
        eprintln!("error: collector {}: {}", printable(&s.name), printable(why));
        failed = true;
    }
    failed
}

fn events(pipeline: &Pipeline, range: ReportRange) -> anyhow::Result<u8> {
    let stdout = Mutex::new(std::io::BufWriter::new(std::io::stdout()));
    let visit = |event: &MessageEvent, connector: &str| {
        let mut resolved = event.clone();
        resolved.connector = Some(connector.to_string());
        let line = serde_json::to_string(&resolved).expect("events serialize");
        let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
        // A closed pipe (`| head`) only means nobody reads the rest.
        let _ = writeln!(out, "{line}");
    };
    let collected = pipeline.collect(&range, Some(&visit));
    let _ = stdout.into_inner().unwrap_or_else(|p| p.into_inner()).flush();
    for s in &collected.sources {
        eprintln!(
            "{}: {} events, {} skipped, {} outside the range, {} internal (not shown)",
            printable(&s.name),
            s.events,
            s.skipped,
            s.out_of_range,
            s.internal
        );
        for w in &s.warnings {
            eprintln!("  {}", printable(w));
        }
    }
    let code = if print_failed_sources(&collected.sources) { FAILED } else { 0 };
    Ok(code)
}

/// What `mailflow check` prints.
fn describe(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let site = &config.site;
    let _ = writeln!(out, "{}: ok", config.path().display());
    let _ = writeln!(
        out,
        "site: time zone {}, internal networks [{}], accepted domains [{}]",
        site.timezone.name(),
        site.internal_networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        site.accepted_domains.join(", ")
    );
    match &config.store {
        Some(store) => {
            let url = mailflow_store::redact(store.url());
            let _ = writeln!(out, "store: {url}, {} days kept", store.retention_days);
        }
        None => {
            let _ = writeln!(out, "store: none (each run reads its sources whole; see docs/store.md)");
        }
    }
    let _ = writeln!(
        out,
        "connectors ({}, first match wins; unmatched traffic goes to \"No connector\"):",
        config.connectors.len()
    );
    for c in &config.connectors {
        let mut keys = Vec::new();
        for (key, values) in [
            ("relay", &c.relay),
            ("peer_host", &c.peer_host),
            ("service", &c.service),
            ("transport", &c.transport),
            ("sender_domain", &c.sender_domain),
            ("recipient_domain", &c.recipient_domain),
            ("source", &c.source),
        ] {
            if !values.is_empty() {
                keys.push(format!("{key}={}", values.join("|")));
            }
        }
        if !c.peer_cidr.is_empty() {
            keys.push(format!(
                "peer_cidr={}",
                c.peer_cidr.iter().map(ToString::to_string).collect::<Vec<_>>().join("|")
            ));
        }
        if c.override_source {
            keys.push("override".to_string());
        }
        let _ = writeln!(out, "  {:<8} {:<28} {}", c.direction, c.name, keys.join(" "));
    }
    let now = Utc::now();
    let _ = writeln!(out, "jobs ({}):", config.jobs.len());
    for job in &config.jobs {
        let tz = job.timezone.unwrap_or(site.timezone);
        let next = job.schedule.next_after(now, tz).map_or("never".to_string(), |t| t.with_timezone(&tz).to_string());
        let _ = writeln!(
            out,
            "  {}: \"{}\" in {}, {}, next run {next}",
            job.name,
            job.schedule.as_str(),
            tz.name(),
            job.range
        );
    }
    for (role, sections) in [("collectors", &config.collectors), ("sinks", &config.sinks)] {
        let _ = writeln!(out, "{role} ({}):", sections.len());
        if sections.is_empty() {
            let hint =
                if role == "collectors" { "nothing will be read" } else { "the report goes nowhere but the terminal" };
            let _ = writeln!(out, "  none: {hint} (see config/mailflow.example.toml)");
        }
        for s in sections {
            let _ = writeln!(out, "  {} (type \"{}\")", s.name, s.type_name);
        }
    }
    out
}
