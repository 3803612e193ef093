//! `cargo run -p xtask -- gen-postfix …`: development tasks that need no installed tools.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use xtask::Options;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write a synthetic Postfix log (syslog format) of a small site's traffic.
    GenPostfix {
        /// About this many lines (sets the message rate); default: 300 messages a weekday.
        #[arg(long)]
        lines: Option<u64>,
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// The log's last local day.
        #[arg(long, default_value = "2026-11-29")]
        end: NaiveDate,
        #[arg(long, default_value = "Europe/Berlin")]
        timezone: chrono_tz::Tz,
        #[arg(long, default_value = "mx1")]
        host: String,
        #[arg(long, default_value_t = 20261129)]
        seed: u64,
        /// Add a few malformed lines and markup in a host name.
        #[arg(long)]
        oddities: bool,
        /// Split into this many older files besides FILE, as logrotate leaves them:
        /// FILE.1, then FILE.2.gz and older compressed.
        #[arg(long, default_value_t = 0)]
        rotate: u32,
        /// Where to write; standard output by default.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let Task::GenPostfix { lines, days, end, timezone, host, seed, oddities, rotate, out } = Cli::parse().task;
    let mut options = Options { end, days, messages_per_day: 300, timezone, host, seed, oddities };
    if let Some(lines) = lines {
        // Calibrate the rate: lines per message depend on the traffic mix.
        let sample = xtask::generate(&options, &mut |_| Ok(()))?;
        options.messages_per_day = ((300 * lines) / sample.max(1)).max(1) as u32;
    }
    match (out, rotate) {
        (None, _) => {
            let mut stdout = BufWriter::new(std::io::stdout().lock());
            xtask::write_all(&options, &mut stdout)?;
            stdout.flush()?;
        }
        (Some(path), 0) => {
            let mut file = BufWriter::new(File::create(&path).with_context(|| format!("{}", path.display()))?);
            let n = xtask::write_all(&options, &mut file)?;
            file.flush()?;
            eprintln!("wrote {n} lines to {}", path.display());
        }
        (Some(path), rotate) => {
            let mut all = Vec::new();
            xtask::generate(&options, &mut |line| {
                all.push(line.to_string());
                Ok(())
            })?;
            let parts = rotate as usize + 1;
            for (k, chunk) in all.chunks(all.len().div_ceil(parts).max(1)).enumerate() {
                let age = parts - 1 - k;
                let name = match age {
                    0 => path.clone(),
                    1 => PathBuf::from(format!("{}.1", path.display())),
                    n => PathBuf::from(format!("{}.{n}.gz", path.display())),
                };
                let file = File::create(&name).with_context(|| format!("{}", name.display()))?;
                let text = chunk.join("\n") + "\n";
                if age >= 2 {
                    let mut gz = flate2::GzBuilder::new().mtime(0).write(file, flate2::Compression::best());
                    gz.write_all(text.as_bytes())?;
                    gz.finish()?;
                } else {
                    BufWriter::new(file).write_all(text.as_bytes())?;
                }
                eprintln!("wrote {} lines to {}", chunk.len(), name.display());
            }
        }
    }
    Ok(())
}
