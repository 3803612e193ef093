//! Command-line arguments.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

/// Per-connector, per-day mail flow and TLS reports from mail logs and APIs.
#[derive(Debug, Parser)]
#[command(name = "mailflow", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr, and no summary after `run`.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect events, build the report and hand it to every sink. With a `[store]`, collect
    /// into the store (as `ingest`) and report from it (as `report`).
    Run {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        range: RangeArgs,
        /// Run this [[job]] now: its collectors, its sinks and (unless given here) its range.
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
    },
    /// Read what is new from every collector into the history store (`[store]`).
    Ingest {
        #[command(flatten)]
        config: ConfigArg,
        /// The days to ask API, export and program sources for again (they replace what the
        /// store holds for those days); by default, from their last ingest to today. Log files
        /// are always read from where the last ingest stopped.
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Build the report from the history store and hand it to every sink.
    Report {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Show what the history store holds, prune it, or forget a source.
    Store {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Send the email digest (the config's email sinks only), or preview it, or resend spooled ones.
    Digest {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        range: RangeArgs,
        /// Only this email sink, by name.
        #[arg(long, value_name = "NAME")]
        sink: Option<String>,
        /// Write the message instead of sending it.
        #[arg(long)]
        dry_run: bool,
        /// Where --dry-run writes the message (an .eml file); stdout if not given.
        #[arg(long, value_name = "FILE", requires = "dry_run")]
        out: Option<PathBuf>,
        /// Send the digests kept in `spool_dir` after failed sends, oldest first.
        #[arg(long, conflicts_with_all = ["dry_run", "days", "from", "to"])]
        resend: bool,
    },
    /// Run the config's [[job]]s on their schedules until SIGTERM or SIGINT.
    Daemon {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate the config and print the components and connectors it defines.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print the events of the range as JSON Lines, each with its resolved connector and evidence.
    Events {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Run on the bundled demo data (a week of two mail sources) and write the report files.
    Demo {
        /// Where to write the demo's config, input and reports.
        #[arg(long, default_value = "mailflow-demo")]
        out: PathBuf,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Messages per source and day (inbound, outbound, and without TLS), and each source's last ingest.
    Show {
        #[command(flatten)]
        range: RangeArgs,
        /// Only this source.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
    /// Delete days before DATE (by default, those older than `retention_days`).
    Prune {
        #[arg(long, value_name = "DATE")]
        before: Option<NaiveDate>,
        /// Only this source (by default every source in the store, other hosts' too).
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
    /// Delete a source's days and checkpoint, so the next ingest reads it from the start.
    Forget {
        #[arg(value_name = "SOURCE")]
        source: String,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file (see config/mailflow.example.toml).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// The report range: by default the last 7 complete days in the site's time zone (with --job, the
/// job's `range`).
#[derive(Debug, Args, Default)]
pub struct RangeArgs {
    /// The last N complete days, ending yesterday (1-400).
    #[arg(long, value_name = "N", conflicts_with_all = ["from", "to"])]
    pub days: Option<u32>,
    /// First day of the range (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE", requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last day of the range (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE", requires = "from")]
    pub to: Option<NaiveDate>,
}
