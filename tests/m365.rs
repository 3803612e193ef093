//! `mailflow run` with an `m365_message_trace` collector against the local Graph emulator: the
//! config reaches the collector, and the report counts each connector's TLS versions exactly.

#[path = "../crates/collectors/m365-trace/tests/emulator/mod.rs"]
mod emulator;

use std::collections::BTreeMap;
use std::process::Command;

use chrono::Utc;
use emulator::{CLIENT_ID, Emulator, TENANT, populate};
use serde_json::Value;

#[tokio::test]
async fn a_run_reports_each_connectors_tls_from_the_api() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    // Three full UTC days before today: exactly the range `--days 3` asks for.
    let today = now.date_naive();
    let truth = populate(&emulator, today.and_hms_opt(0, 0, 0).unwrap().and_utc(), 3, 60);

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator, "");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mailflow"))
            .args(["run", "--config", config.to_str().unwrap(), "--days", "3"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(emulator::SECRET) && !stderr.contains(emulator::SECRET));
    assert!(stdout.contains("made ") && stdout.contains(" API calls"), "{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let source = &report["sources"][0];
    assert_eq!((source["type"].as_str(), source["status"].as_str()), (Some("m365_message_trace"), Some("ok")));
    assert_eq!(tls_per_connector(&report), expected(truth));
}

/// Ingesting the same days again, into the history store, replaces them: the stored counts are
/// the truth, not twice the truth.
#[tokio::test]
async fn ingesting_the_same_api_days_again_does_not_double_count() {
    let now = Utc::now();
    let emulator = Emulator::start(now).await;
    let today = now.date_naive();
    let truth = populate(&emulator, today.and_hms_opt(0, 0, 0).unwrap().and_utc(), 2, 40);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator, "[store]\nurl = \"sqlite://history.db\"\n");
    let config = config.to_str().unwrap().to_string();
    let run = move |args: &'static [&'static str]| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_mailflow"))
                .args(args)
                .args(["--config", &config])
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        })
    };
    run(&["ingest", "--days", "2"]).await.unwrap();
    run(&["ingest", "--days", "2"]).await.unwrap();
    // Without --days: from the last day asked for (today) on; the earlier days stay.
    run(&["ingest"]).await.unwrap();
    run(&["report", "--days", "2"]).await.unwrap();
    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert!(report["sources"][0]["ingested_at"].is_string(), "{}", report["sources"]);
    assert_eq!(tls_per_connector(&report), expected(truth));
}

/// A config in `dir` for the emulator's tenant, with `extra` sections and a JSON sink.
fn write_config(dir: &std::path::Path, emulator: &Emulator, extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("secret"), format!("{}\n", emulator::SECRET)).unwrap();
    let config = dir.join("mailflow.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\ntimezone = \"UTC\"\naccepted_domains = [\"corp.example\"]\n{extra}\
             [[collector]]\ntype = \"m365_message_trace\"\nname = \"m365\"\ntenant_id = \"{TENANT}\"\n\
             client_id = \"{CLIENT_ID}\"\nclient_secret_file = \"secret\"\n\
             graph_url = \"{base}\"\nlogin_url = \"{base}\"\n\
             [[sink]]\ntype = \"json\"\npath = \"report.json\"\n",
            base = emulator.base
        ),
    )
    .unwrap();
    config
}

type Counts = BTreeMap<(String, String, String), u64>;

/// Per (direction, connector): messages per TLS version, as the truth has them.
fn expected(truth: emulator::Truth) -> Counts {
    let label = |version: Option<mailflow_core::TlsVersion>| match version {
        Some(v) => serde_json::to_value(v).unwrap().as_str().unwrap().to_string(),
        None => "unknown".to_string(),
    };
    let mut expected: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for ((direction, connector, tls), n) in truth {
        let connector = connector.unwrap_or_else(|| "No connector".into());
        *expected.entry((direction.to_string(), connector, label(tls))).or_default() += n;
    }
    expected
}

fn tls_per_connector(report: &Value) -> Counts {
    let mut seen: Counts = BTreeMap::new();
    for c in report["connectors"].as_array().unwrap() {
        for (version, n) in c["tls"].as_object().unwrap() {
            if n.as_u64().unwrap() > 0 {
                let key =
                    (c["direction"].as_str().unwrap().into(), c["name"].as_str().unwrap().into(), version.clone());
                seen.insert(key, n.as_u64().unwrap());
            }
        }
    }
    seen
}
