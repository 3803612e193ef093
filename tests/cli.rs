//! End-to-end tests of the `mailflow` binary: exit codes, messages and the files it writes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{mailflow, text};
use serde_json::Value;

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid_report(report: &Value) {
    let validator = schema();
    let errors: Vec<String> =
        validator.iter_errors(report).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "report does not match docs/report.schema.json:\n{}", errors.join("\n"));
}

/// A folder with a config and an events file.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(config_extra: &str, events: &[&str]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events.jsonl"), events.join("\n")).unwrap();
        let config = format!(
            r#"
[site]
timezone = "Europe/Berlin"
internal_networks = ["10.0.0.0/8"]

[[connector]]
name = "Partner"
direction = "outbound"
relay = ["mx*.partner.example"]

[[collector]]
type = "events"
name = "mx1"
paths = ["events.jsonl"]

[[sink]]
type = "json"
path = "out/report.json"
{config_extra}"#
        );
        std::fs::write(dir.path().join("mailflow.toml"), config).unwrap();
        Site { dir }
    }

    fn config(&self) -> String {
        self.dir.path().join("mailflow.toml").display().to_string()
    }

    fn report(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("out/report.json")).unwrap()).unwrap()
    }
}

const EVENTS: &[&str] = &[
    // 00:30 on Dec 1 in Berlin, although Nov 30 in UTC.
    r#"{"time":"2026-11-30T23:30:00Z","direction":"outbound","tls":{"version":"tls1_3"},"peer":{"host":"mx1.partner.example"},"recipients":3,"size":1000}"#,
    r#"{"time":"2026-12-01T10:00:00Z","direction":"outbound","tls":{"version":"none"},"peer":{"host":"mx.elsewhere.example"},"status":"failed"}"#,
    r#"{"time":"2026-12-01T11:00:00Z","direction":"inbound","tls":{"version":"tls1_2","trust":"trusted"},"peer":{"ip":"198.51.100.7"}}"#,
    r#"{"time":"2026-12-01T12:00:00Z","direction":"inbound","peer":{"ip":"10.0.0.5"}}"#,
    // 23:30 on Nov 30 in Berlin: the day before the range.
    r#"{"time":"2026-11-30T22:30:00Z","direction":"outbound","peer":{"host":"mx1.partner.example"}}"#,
    "{\"time\": broken",
];

#[test]
fn run_writes_a_report_cut_in_the_site_time_zone() {
    let site = Site::new("", EVENTS);
    let out = mailflow(&["run", "--config", &site.config(), "--from", "2026-12-01", "--to", "2026-12-02"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = site.report();
    assert_valid_report(&report);
    assert_eq!(
        report["range"],
        serde_json::json!({"from": "2026-12-01", "to": "2026-12-02", "timezone": "Europe/Berlin"})
    );
    assert_eq!(report["totals"]["outbound"]["messages"], 2);
    assert_eq!(report["totals"]["outbound"]["recipients"], 4);
    assert_eq!(report["totals"]["outbound"]["daily"][0]["messages"], 2);
    assert_eq!(report["totals"]["inbound"]["messages"], 1, "internal traffic is not inbound");
    let partner = report["connectors"].as_array().unwrap().iter().find(|c| c["name"] == "Partner").unwrap();
    assert_eq!(partner["tls"]["tls1_3"], 1);
    assert_eq!(partner["bytes"], 1000);
    let source = &report["sources"][0];
    assert_eq!((source["events"].as_u64(), source["skipped"].as_u64()), (Some(3), Some(1)));
    assert_eq!((source["internal"].as_u64(), source["out_of_range"].as_u64()), (Some(1), Some(1)));
    assert!(source["warnings"][0].as_str().unwrap().contains("events.jsonl:6: skipped"), "{source}");
    let summary = text(&out.stdout);
    assert!(summary.contains("Mail flow 2026-12-01 to 2026-12-02 (Europe/Berlin)"), "{summary}");
    assert!(summary.contains("Partner"), "{summary}");
    assert!(summary.contains("wrote the JSON report to"), "{summary}");

    let quiet = mailflow(&["run", "-q", "--config", &site.config(), "--days", "3"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet.stderr));
    assert!(quiet.stdout.is_empty(), "--quiet prints no summary");
}

#[test]
fn a_failed_collector_exits_1_and_the_report_says_so() {
    let site =
        Site::new("[[collector]]\ntype = \"events\"\nname = \"gone\"\npaths = [\"/nonexistent/x.jsonl\"]\n", EVENTS);
    let out = mailflow(&["run", "--config", &site.config(), "--from", "2026-12-01", "--to", "2026-12-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("collector gone: /nonexistent/x.jsonl"), "{}", text(&out.stderr));
    let report = site.report();
    assert_valid_report(&report);
    assert_eq!(report["sources"][1]["status"], "failed");
    assert_eq!(report["sources"][0]["status"], "ok");
    assert_eq!(report["totals"]["outbound"]["messages"], 2, "the other collector still counted");
}

#[test]
fn a_failed_sink_exits_1() {
    let site = Site::new("", EVENTS);
    std::fs::write(site.dir.path().join("out"), "a file where a folder should be").unwrap();
    let out = mailflow(&["run", "--config", &site.config(), "--days", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("sink json"), "{}", text(&out.stderr));
}

#[test]
fn bad_config_exits_2_naming_file_line_column_and_key() {
    let site = Site::new("", EVENTS);
    let config = site.dir.path().join("mailflow.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        original.replace("paths = [\"events.jsonl\"]", "paths = [\"events.jsonl\"]\npath_glob = \"x\""),
    )
    .unwrap();
    let out = mailflow(&["run", "--config", &site.config()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let line = std::fs::read_to_string(&config).unwrap().lines().position(|l| l.starts_with("path_glob")).unwrap() + 1;
    assert!(
        stderr.contains(&format!(
            "mailflow.toml:{line}:1: [[collector]] \"mx1\" (type \"events\"): unknown field `path_glob`"
        )),
        "{stderr}"
    );

    std::fs::write(&config, original.replace("type = \"json\"", "type = \"jsn\"")).unwrap();
    let out = mailflow(&["check", "--config", &site.config()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown sink type \"jsn\"; known types: json"), "{}", text(&out.stderr));

    let out = mailflow(&["run", "--config", "/nonexistent/mailflow.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/mailflow.toml: cannot read the config file"));
}

#[test]
fn usage_errors_exit_2() {
    let site = Site::new("", EVENTS);
    for args in [
        vec!["run", "--config", &site.config(), "--days", "0"],
        vec!["run", "--config", &site.config(), "--days", "401"],
        vec!["run", "--config", &site.config(), "--days", "3", "--from", "2026-12-01", "--to", "2026-12-02"],
        vec!["run", "--config", &site.config(), "--from", "2026-12-02", "--to", "2026-12-01"],
        vec!["run", "--config", &site.config(), "--from", "2026-12-01"],
        vec!["frobnicate"],
    ] {
        let out = mailflow(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn check_prints_components_and_connectors() {
    let site = Site::new("", EVENTS);
    let out = mailflow(&["check", "--config", &site.config()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("time zone Europe/Berlin"), "{stdout}");
    assert!(stdout.contains("outbound Partner") && stdout.contains("relay=mx*.partner.example"), "{stdout}");
    assert!(stdout.contains("mx1 (type \"events\")"), "{stdout}");
}

#[test]
fn events_prints_resolved_connectors_with_evidence() {
    let site = Site::new("", EVENTS);
    let out = mailflow(&["events", "--config", &site.config(), "--from", "2026-12-01", "--to", "2026-12-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    let partner = lines.iter().find(|e| e["peer"]["host"] == "mx1.partner.example").unwrap();
    assert_eq!(partner["connector"], "Partner");
    assert_eq!(partner["source"], "mx1");
    assert!(partner["evidence"][0]["file"].as_str().unwrap().ends_with("events.jsonl"));
    assert_eq!(partner["evidence"][0]["line"], 1);
    assert!(lines.iter().any(|e| e["connector"] == "No connector"));
    assert!(text(&out.stderr).contains("mx1: 3 events, 1 skipped"), "{}", text(&out.stderr));

    // The output is itself valid input for the events collector.
    std::fs::write(site.dir.path().join("events.jsonl"), text(&out.stdout)).unwrap();
    let again = mailflow(&["events", "--config", &site.config(), "--from", "2026-12-01", "--to", "2026-12-01"]);
    assert_eq!(text(&again.stdout).lines().count(), 3, "{}", text(&again.stderr));
}

#[test]
fn demo_writes_a_valid_report_with_every_seed_insight() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir: PathBuf = dir.path().join("demo");
    let out = mailflow(&["demo", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_valid_report(&report);
    let kinds: Vec<&str> = report["insights"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    for kind in ["no_tls_over", "tls1_0_above", "volume_change", "new_connector", "silent_connector"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    for version in ["none", "ssl3", "tls1_0", "tls1_1", "tls1_2", "tls1_3", "unknown"] {
        let n =
            ["inbound", "outbound"].iter().map(|d| report["totals"][d]["tls"][version].as_u64().unwrap()).sum::<u64>();
        assert!(n > 0, "the demo has no {version} traffic");
    }
    assert_eq!(report["sources"][0]["type"], "postfix", "the demo reads a Postfix log");
    assert!(report["sources"][0]["skipped"].as_u64().unwrap() > 0, "the demo shows skipped lines");

    // The schema is strict enough to catch a drifting report.
    let mut drifted = report.clone();
    drifted["connectors"][0]["tls"]["tls1_4"] = 1.into();
    drifted["totals"]["inbound"].as_object_mut().unwrap().remove("daily");
    assert_eq!(schema().iter_errors(&drifted).count(), 2);
    assert!(text(&out.stdout).contains("mailflow run --config"), "{}", text(&out.stdout));
    let page = out_dir.join("dashboard.html").canonicalize().unwrap();
    assert!(text(&out.stdout).contains(&format!("file://{}", page.display())), "{}", text(&out.stdout));

    // And the digest the week makes, ready for a mail client.
    let digest = std::fs::read(out_dir.join("digest.eml")).unwrap();
    let message = mail_parser::MessageParser::default().parse(&digest).unwrap();
    let inbound = mailflow_core::format::thousands(report["totals"]["inbound"]["messages"].as_u64().unwrap());
    assert!(message.subject().unwrap().starts_with(&format!("mailflow: {inbound} in / ")), "{:?}", message.subject());
    assert!(message.body_text(0).unwrap().contains("Fabrikam legacy"));
}

#[test]
fn completions_and_man_page() {
    let out = mailflow(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("mailflow"));
    let out = mailflow(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).starts_with(".ie") || text(&out.stdout).contains(".TH mailflow"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn shipped_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Every full config in config/, the worked examples of the regex collector among them.
    for entry in std::fs::read_dir(root.join("config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = mailflow(&["check", "--config", path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), text(&out.stderr));
        }
    }
    // Every component's sample.toml is a valid section of a config file.
    let mut samples = Vec::new();
    for kind in ["collectors", "sinks"] {
        for entry in std::fs::read_dir(root.join("crates").join(kind)).unwrap() {
            samples.push(entry.unwrap().path().join("sample.toml"));
        }
    }
    assert!(samples.len() >= 2);
    let dir = tempfile::tempdir().unwrap();
    // The plugin sample names the example plugin where an admin would install it.
    let example_plugin = mailflow_testkit::build_cdylibs(
        &["mailflow-plugin-example-jsonl"],
        "dev",
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugins"),
    )
    .remove(0);
    for sample in samples {
        let config = dir.path().join("mailflow.toml");
        let sample_text = std::fs::read_to_string(&sample)
            .unwrap()
            .replace("/usr/local/lib/mailflow/libmailflow_plugin_example_jsonl.so", example_plugin.to_str().unwrap());
        std::fs::write(&config, sample_text).unwrap();
        // Samples take secrets from the environment, as they should be given.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailflow"))
            .args(["check", "--config", config.to_str().unwrap()])
            .env("M365_CLIENT_SECRET", "example")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}: {}", sample.display(), text(&out.stderr));
    }
}

#[test]
fn events_from_standard_input_and_only_one_reader() {
    use std::io::Write;
    let site = Site::new("", &[]);
    let config = site.dir.path().join("mailflow.toml");
    let stdin_config =
        std::fs::read_to_string(&config).unwrap().replace("paths = [\"events.jsonl\"]", "paths = [\"-\"]");
    std::fs::write(&config, &stdin_config).unwrap();
    let run = |config: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailflow"))
            .args(["events", "--config", config, "--from", "2026-12-01", "--to", "2026-12-01"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(EVENTS.join("\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&site.config());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 3);
    assert!(text(&out.stderr).contains("<stdin>:6: skipped"), "{}", text(&out.stderr));

    std::fs::write(
        &config,
        format!("{stdin_config}\n[[collector]]\ntype = \"events\"\nname = \"second\"\npaths = [\"-\"]\n"),
    )
    .unwrap();
    let out = run(&site.config());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already read by another collector"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 3, "the first reader still read everything");
}

#[test]
fn html_sink_settings_are_checked_before_anything_runs() {
    for (extra, expected) in [
        ("default_days = 0", "`default_days` must be at least 1"),
        ("template_dir = \"no-such-folder\"", "no-such-folder cannot be read"),
        ("template_dir = \".\"\nfancy = true", "unknown field `fancy`"),
    ] {
        let site = Site::new(&format!("\n[[sink]]\ntype = \"html\"\npath = \"out/dashboard.html\"\n{extra}\n"), EVENTS);
        let out = mailflow(&["check", "--config", &site.config()]);
        assert_eq!(out.status.code(), Some(2), "{extra}");
        assert!(text(&out.stderr).contains(expected), "{extra}: {}", text(&out.stderr));
    }
    let site =
        Site::new("\n[[sink]]\ntype = \"html\"\npath = \"out/dashboard.html\"\ntemplate_dir = \"brand\"\n", EVENTS);
    std::fs::create_dir(site.dir.path().join("brand")).unwrap();
    std::fs::write(site.dir.path().join("brand/brand.html"), "<div>\n{{ title }\n</div>").unwrap();
    let out = mailflow(&["check", "--config", &site.config()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("template brand.html, line 2: syntax error"), "{}", text(&out.stderr));
}
