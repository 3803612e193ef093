//! A real Exim's main log against the ground truth of every message sent through it
//! (`tests/lab/gnutls-4.96/`, see `tests/lab/README.md`): the counts per direction, TLS version
//! and status must be exactly the truth's, and resolved by the lab site's `[[connector]]` rules
//! (`tests/lab/mailflow.toml`) exactly those of `expected.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, NO_CONNECTOR, Resolution, Status, TlsVersion, Trust};
use mailflow_testkit::lab::{Counts, counted, truth_counts};
use mailflow_testkit::{Built, Collected};
use serde_json::{Value, json};

fn lab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab")
}

/// The lab's config, its collector reading `paths` (relative to `tests/lab`).
fn config(paths: &[&str]) -> (String, PathBuf) {
    let text = std::fs::read_to_string(lab().join("mailflow.toml")).unwrap();
    let shipped = r#"paths = ["gnutls-4.96/mainlog"]"#;
    assert!(text.contains(shipped));
    let list: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    (text.replacen(shipped, &format!("paths = [{}]", list.join(", ")), 1), lab().join("mailflow.toml"))
}

fn run(paths: &[&str]) -> (Collected, Config) {
    let (text, path) = config(paths);
    let parsed = Config::parse(&text, &path, &|_| None).unwrap();
    let collected = Built::new(mailflow_collector_exim::build, &text, &path)
        .run(chrono::DateTime::UNIX_EPOCH, "2027-01-31T00:00:00Z".parse().unwrap());
    assert_eq!(collected.result, Ok(()));
    (collected, parsed)
}

/// What the ground truth says (per `tests/lab/README.md`), except that Exim logs no TLS on
/// deferrals: a relay that only deferred is unknown.
fn truth() -> Counts {
    let mut counts = Counts::new();
    for ((direction, version, status), n) in truth_counts(&lab().join("gnutls-4.96/truth.jsonl")) {
        let version = if status == Status::Deferred { TlsVersion::Unknown } else { version };
        *counts.entry((direction, version, status)).or_default() += n;
    }
    counts
}

/// The events per direction and connector ("(none)" for no connector) in the shape of
/// `expected.json`: the non-zero TLS counts, `messages`, and outbound the statuses.
fn by_connector(events: &[MessageEvent], config: &Config) -> Value {
    let mut out: BTreeMap<&str, BTreeMap<String, BTreeMap<String, Value>>> = BTreeMap::new();
    for e in events {
        let name = match config.rules().resolve(e) {
            Resolution::Internal => continue,
            Resolution::Connector(NO_CONNECTOR) => "(none)".to_string(),
            Resolution::Connector(name) => name.to_string(),
        };
        let entry = out.entry(e.direction.as_str()).or_default().entry(name).or_default();
        let version = serde_json::to_value(e.tls.version.unwrap_or(TlsVersion::Unknown)).unwrap();
        for key in [version.as_str().unwrap(), "messages"] {
            let n = entry.entry(key.to_string()).or_insert(json!(0));
            *n = json!(n.as_u64().unwrap() + 1);
        }
        if e.direction == Direction::Outbound {
            let status = serde_json::to_value(e.status.unwrap_or(Status::Delivered)).unwrap();
            let statuses = entry.entry("status".to_string()).or_insert(json!({}));
            let n = &mut statuses[status.as_str().unwrap()];
            *n = json!(n.as_u64().unwrap_or(0) + 1);
        }
    }
    json!(out)
}

#[test]
fn the_lab_log_counts_the_truth() {
    let (collected, config) = run(&["gnutls-4.96/mainlog"]);
    let stats = &collected.stats;
    assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]));
    let events = &collected.events;
    assert_eq!(counted(events, &config.site), truth());

    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(lab().join("gnutls-4.96/expected.json")).unwrap()).unwrap();
    // expected.json counts the TLS the relay offers; the lab's only relay that defers
    // (mx.defer.test) offers none, and Exim's log cannot tell it: unknown.
    for connector in expected["outbound"].as_object_mut().unwrap().values_mut() {
        let deferred = connector["status"]["deferred"].as_u64().unwrap_or(0);
        if deferred > 0 {
            let plain = connector["none"].as_u64().unwrap() - deferred;
            connector["none"] = json!(plain);
            connector["unknown"] = json!(deferred);
        }
    }
    assert_eq!(by_connector(events, &config), expected);

    // Every queued message from a client, internal ones too (reports drop those), and nothing else:
    // the four bounces Exim generated itself (`<= <> … P=local`) are not inbound.
    let inbound: Vec<_> = events.iter().filter(|e| e.direction == Direction::Inbound).collect();
    assert_eq!(inbound.len(), 227);
    assert!(inbound.iter().all(|e| e.peer.ip.is_some() && e.sender.is_some() && e.size.is_some()));
    assert!(inbound.iter().all(|e| e.recipients.is_some_and(|n| n > 0) && !e.recipient_domains.is_empty()));
    assert!(inbound.iter().all(|e| e.message_id.as_deref().is_some_and(|m| m.starts_with("<gt-91-"))));
    assert!(inbound.iter().all(|e| matches!(e.service.as_deref(), Some("esmtp" | "esmtps"))));
    assert!(inbound.iter().filter(|e| e.tls.version != Some(TlsVersion::None)).all(|e| {
        e.tls.cipher.as_deref().is_some_and(|c| c.contains("__")) && e.tls.trust == Some(Trust::Anonymous)
    }));
    // Outbound: one per message and relay, each relay's recipients together.
    let outbound: Vec<_> = events.iter().filter(|e| e.direction == Direction::Outbound).collect();
    assert!(outbound.iter().all(|e| e.recipient_domains.len() == 1 && e.queue_id.is_some() && e.sender.is_some()));
    let tls: Vec<_> = outbound.iter().filter(|e| e.tls.version.is_some_and(|v| v != TlsVersion::None)).collect();
    assert!(tls.iter().all(|e| e.tls.trust == Some(Trust::Untrusted)), "CV=no with the peer's DN logged");
    let recipients: u32 = outbound.iter().map(|e| e.recipients.unwrap()).sum();
    let truth_recipients: usize = std::fs::read_to_string(lab().join("gnutls-4.96/truth.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|t| t["kind"] == "outbound" && t["queued"] == true)
        .flat_map(|t| t["deliveries"].as_array().unwrap().clone())
        .map(|d| d["rcpt"].as_str().unwrap().split(',').count())
        .sum();
    assert_eq!(recipients as usize, truth_recipients);
    // The messages mx.flaky.test deferred count once, delivered, at the forced queue run.
    let flaky: Vec<_> = outbound.iter().filter(|e| e.recipient_domains == ["flaky.test"]).collect();
    assert!(!flaky.is_empty());
    assert!(flaky.iter().all(|e| e.status == Some(Status::Delivered) && e.tls.version == Some(TlsVersion::Tls1_2)));
    assert!(flaky.iter().any(|e| e.time.to_rfc3339() == "2026-12-05T02:36:44+00:00" && e.evidence.0.len() >= 3));
}

#[test]
fn the_reject_log_adds_nothing() {
    let (alone, _) = run(&["gnutls-4.96/mainlog"]);
    let (with_rejects, _) = run(&["gnutls-4.96/mainlog", "gnutls-4.96/rejectlog"]);
    let stats = &with_rejects.stats;
    assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]));
    assert_eq!(with_rejects.events, alone.events);

    // It is read: a damaged line added to a copy of it is the one skipped.
    let dir = tempfile::tempdir().unwrap();
    let mut rejects = std::fs::read(lab().join("gnutls-4.96/rejectlog")).unwrap();
    rejects.extend_from_slice(b"2026-12-05 02:33:26 1xZfaX-00014c-24 <= x@y H=[127.0.1.5\n");
    std::fs::write(dir.path().join("rejectlog"), rejects).unwrap();
    let copy = dir.path().join("rejectlog");
    let (damaged, _) = run(&["gnutls-4.96/mainlog", copy.to_str().unwrap()]);
    assert_eq!(damaged.stats.skipped, 1);
    assert!(damaged.stats.warnings[0].contains("rejectlog:14: skipped"), "{:?}", damaged.stats.warnings);
    assert_eq!(damaged.events, alone.events);
}
