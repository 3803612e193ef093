//! Real Postfix logs against their ground truth: each folder under
//! `crates/collectors/postfix/tests/lab/` holds a log written by a real Postfix (see its
//! README.md), the ground truth of every message sent through it and `expected.json`, the
//! counts that truth implies per direction, connector, TLS version and status. `mailflow run`
//! on the log, with the lab site's connectors as `[[connector]]` rules, must give exactly those.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

#[test]
fn reports_match_the_ground_truth_of_real_postfix_logs() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/collectors/postfix/tests/lab");
    let mut variants: Vec<_> = std::fs::read_dir(&lab)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").exists())
        .collect();
    variants.sort();
    assert!(variants.len() >= 4, "lab logs are missing: {variants:?}");
    let out = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for variant in &variants {
        let report = out.path().join("report.json");
        let run = Command::new(env!("CARGO_BIN_EXE_mailflow"))
            .args(["run", "-q", "--from", "2026-12-04", "--to", "2026-12-04", "-c"])
            .arg(lab.join("mailflow.toml"))
            .env("LAB_LOG", variant.join("mail.log"))
            .env("LAB_OUT", &report)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(run.status.success(), "{}: {}", variant.display(), String::from_utf8_lossy(&run.stderr));
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let source = &report["sources"][0];
        assert_eq!(source["skipped"], 0, "{}: {source}", variant.display());
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(variant.join("expected.json")).unwrap()).unwrap();
        let actual = counts(&report);
        if actual != expected {
            failures.push(format!(
                "{}:\nexpected {}\nactual   {}",
                variant.display(),
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&actual).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The report's connectors in the shape of the lab's `expected.json`: per direction and
/// connector ("(none)" for no connector), the non-zero TLS counts, `messages`, and for outbound
/// the non-zero statuses.
fn counts(report: &Value) -> Value {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    out.insert("inbound".into(), BTreeMap::new());
    out.insert("outbound".into(), BTreeMap::new());
    for connector in report["connectors"].as_array().unwrap() {
        if connector["messages"] == 0 {
            continue;
        }
        let direction = connector["direction"].as_str().unwrap();
        let name = match connector["name"].as_str().unwrap() {
            "No connector" => "(none)",
            name => name,
        };
        let non_zero = |v: &Value| -> BTreeMap<String, Value> {
            v.as_object().unwrap().iter().filter(|(_, n)| **n != 0).map(|(k, n)| (k.clone(), n.clone())).collect()
        };
        let mut entry = non_zero(&connector["tls"]);
        entry.insert("messages".into(), connector["messages"].clone());
        if direction == "outbound" {
            entry.insert("status".into(), json!(non_zero(&connector["status"])));
        }
        out.get_mut(direction).unwrap().insert(name.into(), json!(entry));
    }
    json!(out)
}
