//! Every case against the ground truth `tests/make_cases.py` wrote with its logs: for each
//! message the events it must give (direction, time, TLS version, status, connector, peer,
//! recipients), nothing more and nothing less. Blessing `expected.jsonl` cannot change this.

use std::path::Path;

use mailflow_core::{Direction, MessageEvent};
use serde_json::{Value, json};

fn summary(e: &MessageEvent) -> Value {
    json!({
        "direction": e.direction.as_str(),
        "time": e.time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "tls": e.tls.version.map(|v| serde_json::to_value(v).unwrap()),
        "status": match e.direction {
            Direction::Inbound => Value::Null,
            Direction::Outbound => serde_json::to_value(e.status).unwrap(),
        },
        "connector": e.connector,
        "peer": e.peer.ip.map(|ip| ip.to_string()),
        "recipients": e.recipients,
    })
}

fn sort_key(v: &Value) -> (String, String, String) {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    (s("time"), s("direction"), s("peer"))
}

#[test]
fn every_case_gives_exactly_its_truth() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut cases = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let options = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        let text = format!("[[collector]]\ntype = \"exchange\"\nname = \"case\"\n{options}");
        let run = mailflow_testkit::collect(
            mailflow_collector_exchange_server::build,
            &text,
            &dir.join("mailflow.toml"),
            chrono::DateTime::UNIX_EPOCH,
            "2027-01-31T00:00:00Z".parse().unwrap(),
        );
        run.result.unwrap();
        let mut got: Vec<Value> = run.events.iter().map(summary).collect();
        got.sort_by_key(sort_key);
        let truth = std::fs::read_to_string(dir.join("truth.jsonl")).unwrap();
        let mut want: Vec<Value> = truth.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        want.sort_by_key(sort_key);
        let pretty = |v: &[Value]| v.iter().map(|e| format!("  {e}\n")).collect::<String>();
        assert!(got == want, "{}:\nwant:\n{}got:\n{}", dir.display(), pretty(&want), pretty(&got));
        if dir.ends_with("only-tracking") {
            assert!(run.stats.notes.iter().any(|n| n.contains("`protocol_paths`")), "{:?}", run.stats.notes);
        } else {
            assert!(run.stats.notes.is_empty(), "{}: {:?}", dir.display(), run.stats.notes);
        }
        cases += 1;
    }
    assert!(cases >= 10);
}
