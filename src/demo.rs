//! `mailflow demo`: the main job on data bundled with mailflow, so a new user sees a real report
//! in seconds. The files are written out first, so the demo can be read and rerun by hand.

use std::path::Path;

use anyhow::Context;
use mailflow_config::Config;
use mailflow_core::ReportRange;
use mailflow_runner::Pipeline;
use mailflow_sink_email::EmailSink;

/// The week the bundled data describes (the week before it is its "previous period").
pub const FROM: &str = "2026-11-23";
pub const TO: &str = "2026-11-29";

const FILES: &[(&str, &[u8])] = &[
    ("mailflow.toml", include_bytes!("../demo/mailflow.toml")),
    ("mx1/mail.log.3.gz", include_bytes!("../demo/mx1/mail.log.3.gz")),
    ("mx1/mail.log.2.gz", include_bytes!("../demo/mx1/mail.log.2.gz")),
    ("mx1/mail.log.1", include_bytes!("../demo/mx1/mail.log.1")),
    ("mx1/mail.log", include_bytes!("../demo/mx1/mail.log")),
    ("partner-relay.csv", include_bytes!("../demo/partner-relay.csv")),
    ("m365-connectors.csv", include_bytes!("../demo/m365-connectors.csv")),
];

/// The digest admins would get for the demo week (see crates/sinks/email).
const DIGEST: &str = r#"
[[sink]]
type = "email"
smtp_host = "localhost"
tls = "none"
from = "mailflow <mailflow@corp.example>"
to = ["postmaster@corp.example"]
title = "Mail flow at corp.example"
"#;

pub fn run(out: &Path, quiet: bool) -> anyhow::Result<u8> {
    for (name, content) in FILES {
        let path = out.join(name);
        let dir = path.parent().unwrap_or(out);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let config_path = out.join("mailflow.toml");
    let pipeline = Pipeline::build(Config::load(&config_path)?)?;
    let tz = pipeline.config().site.timezone;
    let range = ReportRange::new(FROM.parse()?, TO.parse()?, tz)?;
    let report = super::build_report(&pipeline, range, quiet)?;
    let code = super::deliver(&pipeline, &report, quiet);
    // The weekly digest this report makes, written instead of sent.
    let digest = out.join("digest.eml");
    let message =
        EmailSink::from_section(&Config::parse(DIGEST, &config_path, &|_| None)?.sinks[0])?.compose(&report)?;
    std::fs::write(&digest, message).with_context(|| format!("cannot write {}", digest.display()))?;
    if !quiet {
        let page = out.join("dashboard.html");
        if let Ok(page) = page.canonicalize() {
            println!("\nOpen the dashboard in a browser: file://{}", page.display());
        }
        println!("The weekly email digest (open it in a mail client): {}", digest.display());
        println!(
            "\nThe demo's config and input are in {}; run it again with\n  mailflow run --config {} --from {FROM} --to {TO}",
            out.display(),
            config_path.display()
        );
    }
    Ok(code)
}
