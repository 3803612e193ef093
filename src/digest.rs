//! `mailflow digest`: the email sinks alone: send the digest, preview it, or resend spooled ones.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use mailflow_config::{Config, ConfigError, ErrorKind};
use mailflow_core::RangeSpec;
use mailflow_core::format::printable;
use mailflow_runner::Pipeline;
use mailflow_sink_email::EmailSink;

use crate::cli::RangeArgs;
use crate::{FAILED, print_failed_sources};

pub struct DigestArgs<'a> {
    pub range: &'a RangeArgs,
    pub sink: Option<&'a str>,
    pub dry_run: bool,
    pub out: Option<&'a Path>,
    pub resend: bool,
}

pub fn run(config: Config, args: DigestArgs<'_>) -> anyhow::Result<u8> {
    let sinks = email_sinks(&config, args.sink)?;
    if args.resend {
        return Ok(resend(&sinks));
    }
    if args.dry_run && sinks.len() > 1 {
        let names: Vec<&str> = sinks.iter().map(EmailSink::name).collect();
        anyhow::bail!(
            "the config has {} email sinks ({}); preview one at a time with --sink NAME",
            sinks.len(),
            names.join(", ")
        );
    }
    // Collect with every collector; deliver to the email sinks only, built once above.
    let mut collect_only = config;
    collect_only.sinks.clear();
    let pipeline = Pipeline::build(collect_only)?;
    let range = crate::resolve_range(&pipeline, args.range, RangeSpec::LastDays(7), Utc::now())?;
    let report = crate::build_report(&pipeline, range, true)?;
    let mut failed = print_failed_sources(&report.sources);
    for sink in &sinks {
        if args.dry_run {
            let message = sink.compose(&report)?;
            match args.out {
                Some(path) => {
                    std::fs::write(path, &message).with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote the digest of sink {} to {} (not sent)", printable(sink.name()), path.display());
                }
                None => std::io::stdout().write_all(&message).context("cannot write the digest")?,
            }
            continue;
        }
        match mailflow_component::Sink::write(sink, &report) {
            Ok(done) => println!("sink {}: {}", printable(sink.name()), printable(&done)),
            Err(e) => {
                eprintln!("error: sink {}: {}", printable(sink.name()), printable(&e.to_string()));
                failed = true;
            }
        }
    }
    Ok(if failed { FAILED } else { 0 })
}

fn email_sinks(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<EmailSink>> {
    let sections: Vec<_> =
        config.sinks.iter().filter(|s| s.type_name == "email" && only.is_none_or(|name| s.name == name)).collect();
    if sections.is_empty() {
        let message = match only {
            Some(name) => format!("there is no email sink named \"{name}\""),
            None => {
                "there is no [[sink]] with type = \"email\"; add one (see crates/sinks/email/sample.toml)".to_string()
            }
        };
        return Err(ConfigError::new(config.path(), ErrorKind::Invalid, message).into());
    }
    Ok(sections.into_iter().map(EmailSink::from_section).collect::<Result<_, _>>()?)
}

fn resend(sinks: &[EmailSink]) -> u8 {
    let mut failed = false;
    for sink in sinks {
        let name = printable(sink.name());
        let Some(dir) = sink.spool_dir() else {
            println!("sink {name}: no `spool_dir`, nothing to resend");
            continue;
        };
        match sink.resend_spooled() {
            Ok(results) if results.is_empty() => println!("sink {name}: nothing to resend in {}", dir.display()),
            Ok(results) => {
                for (path, result) in results {
                    match result {
                        Ok(reply) => println!("sink {name}: sent {}: {reply}", path.display()),
                        Err(e) => {
                            eprintln!("error: sink {name}: {} is still spooled: {}", path.display(), printable(&e));
                            failed = true;
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("error: sink {name}: {e}");
                failed = true;
            }
        }
    }
    if failed { FAILED } else { 0 }
}
