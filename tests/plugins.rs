//! A dylib plugin end to end: the example plugin, built here, read through `mailflow run`.

mod common;

use std::path::Path;

use common::{mailflow, text};
use serde_json::Value;

#[test]
fn the_example_plugin_feeds_a_report_through_mailflow_run() {
    let plugin = &mailflow_testkit::build_cdylibs(
        &["mailflow-plugin-example-jsonl"],
        "dev",
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins"),
    )[0];
    let dir = tempfile::tempdir().unwrap();
    let events = [
        r#"{"time":"2026-12-01T09:00:00Z","direction":"inbound","tls":{"version":"tls1_2"},"peer":{"ip":"198.51.100.7"},"size":1000}"#,
        r#"{"time":"2026-12-01T10:00:00Z","direction":"outbound","tls":{"version":"tls1_3"},"peer":{"host":"mx1.partner.example"}}"#,
        r#"{"time":"2026-12-02T10:00:00Z","direction":"outbound","tls":{"version":"none"},"peer":{"host":"mx2.partner.example"}}"#,
        r#"{"time":"2026-12-01T11:00:00Z","direction":"inbound","tls":{"version":"tls1_0"}, "oops": 1}"#,
    ];
    let log = dir.path().join("appliance.jsonl");
    std::fs::write(&log, events.join("\n")).unwrap();
    let config = format!(
        r#"
[site]
timezone = "UTC"

[[connector]]
name = "Partner"
direction = "outbound"
relay = ["mx*.partner.example"]

[[collector]]
type = "plugin"
name = "appliance"
path = {plugin:?}
settings = {{ paths = [{log:?}] }}

[[sink]]
type = "json"
path = "report.json"
"#
    );
    std::fs::write(dir.path().join("mailflow.toml"), config).unwrap();
    let config = dir.path().join("mailflow.toml").display().to_string();

    let out = mailflow(&["run", "--config", &config, "--from", "2026-12-01", "--to", "2026-12-03"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["totals"]["inbound"]["messages"], 1);
    assert_eq!(report["totals"]["outbound"]["messages"], 2);
    let partner = report["connectors"].as_array().unwrap().iter().find(|c| c["name"] == "Partner").unwrap();
    assert_eq!((partner["tls"]["tls1_3"].as_u64(), partner["tls"]["none"].as_u64()), (Some(1), Some(1)));
    let source = &report["sources"][0];
    assert_eq!(
        (source["name"].as_str(), source["events"].as_u64(), source["skipped"].as_u64()),
        (Some("appliance"), Some(3), Some(1))
    );
    let warning = source["warnings"][0].as_str().unwrap();
    assert!(
        warning.starts_with(&format!("{}:4: skipped: ", log.display())) && warning.contains("unknown field `oops`"),
        "{warning}"
    );

    // Each event points at the file and line it came from.
    let out = mailflow(&["events", "--config", &config, "--from", "2026-12-02", "--to", "2026-12-03"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let event: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["evidence"], serde_json::json!([{"file": log, "line": 3}]));
    assert_eq!(event["source"], "appliance");
}

#[test]
fn check_refuses_a_library_that_is_not_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, "#!/bin/sh\n").unwrap();
    let config = dir.path().join("mailflow.toml");
    std::fs::write(&config, format!("[[collector]]\ntype = \"plugin\"\npath = {fake:?}\n")).unwrap();
    let out = mailflow(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not a library this system can load"), "{}", text(&out.stderr));
}
