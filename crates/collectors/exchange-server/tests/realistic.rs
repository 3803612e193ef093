//! A generated week of an Exchange 2013 server and one of an Exchange 2019 server (a few
//! thousand messages each, with every kind of traffic and internal hop, see
//! `tests/generate/mod.rs`) read exactly as their ground truth says; and read again by
//! `mailflow ingest` in three runs cut mid-line, which must give exactly the events of one run.

mod generate;

use std::path::Path;

use generate::{Truth, Version, Week};
use mailflow_component::{CollectContext, Emitter, Resume};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent};

const START: i64 = 1_795_737_600_000_000; // 2026-11-27T00:00:00Z
const DAY: i64 = 86_400_000_000;

const CONFIG: &str = r#"
[site]
internal_networks = ["10.0.0.0/8"]
accepted_domains = ["corp.example"]

[[collector]]
type = "exchange"
name = "ex01"
paths = ["MessageTracking/MSGTRK*.LOG"]
protocol_paths = ["FrontEnd/RECV*.LOG", "Hub/RECV*.LOG", "Hub/SEND*.LOG"]
"#;

fn config(dir: &Path) -> Config {
    Config::parse(CONFIG, &dir.join("mailflow.toml"), &|_| None).unwrap()
}

fn truth_of(e: &MessageEvent) -> Truth {
    Truth {
        time: e.time.timestamp_micros(),
        direction: e.direction.as_str(),
        peer: e.peer.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        tls: e.tls.version.map(|v| match v {
            mailflow_core::TlsVersion::None => "none",
            mailflow_core::TlsVersion::Tls1_2 => "tls1_2",
            mailflow_core::TlsVersion::Tls1_3 => "tls1_3",
            _ => "other",
        }),
        status: match e.direction {
            Direction::Inbound => None,
            Direction::Outbound => Some(match e.status {
                Some(mailflow_core::Status::Delivered) => "delivered",
                Some(mailflow_core::Status::Deferred) => "deferred",
                Some(mailflow_core::Status::Failed) => "failed",
                _ => "other",
            }),
        },
        connector: e.connector.clone(),
        recipients: e.recipients.unwrap_or(0),
    }
}

/// One run of the collector over `dir`: one-shot, or incremental from `state`.
fn run(dir: &Path, state: Option<&[u8]>) -> (Vec<MessageEvent>, mailflow_component::SourceStats, Vec<u8>) {
    let config = config(dir);
    let collector = mailflow_collector_exchange_server::build(&config.collectors[0]).unwrap();
    let mut events = Vec::new();
    let mut push = |e| events.push(e);
    let mut saved = Vec::new();
    let mut keep = |s: &[u8]| {
        saved = s.to_vec();
        Ok(())
    };
    let mut out = Emitter::new(&mut push).with_checkpoints(&mut keep);
    let (start, end) = (chrono::DateTime::UNIX_EPOCH, "2027-01-31T00:00:00Z".parse().unwrap());
    let resume = state.map(|state| Resume { state, checkpoint_bytes: 256 * 1024 });
    let ctx = CollectContext { source: "ex01", site: &config.site, start, end, report_start: start, resume };
    collector.collect(&ctx, &mut out).unwrap();
    let stats = out.into_stats();
    (events, stats, saved)
}

fn check_week(version: Version, seed: u64) {
    let week = generate::week(version, seed, START, 7, 600);
    let dir = tempfile::tempdir().unwrap();
    week.write(dir.path(), None, false);
    let (events, stats, _) = run(dir.path(), None);
    assert_eq!((stats.skipped, &stats.errors), (0, &vec![]), "{:?}", stats.warnings);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    let mut got: Vec<Truth> = events.iter().map(truth_of).collect();
    got.sort();
    assert!(week.truth.len() > 2500, "a few thousand messages: {}", week.truth.len());
    if got != week.truth {
        let missing: Vec<_> = week.truth.iter().filter(|t| !got.contains(t)).take(5).collect();
        let extra: Vec<_> = got.iter().filter(|t| !week.truth.contains(t)).take(5).collect();
        panic!(
            "{version:?}: {} events, truth {}\nmissing: {missing:#?}\nextra: {extra:#?}",
            got.len(),
            week.truth.len()
        );
    }
    // Everything an event can say is there.
    for e in &events {
        assert!(e.peer.ip.is_some() && e.message_id.is_some() && e.queue_id.is_some() && e.size.is_some(), "{e:?}");
        assert!(!e.recipient_domains.is_empty() && e.sender.is_some() && e.evidence.0.len() >= 2, "{e:?}");
        assert!(e.peer.port.is_some(), "the port comes from the session: {e:?}");
        match e.direction {
            Direction::Inbound => assert!(e.service.is_some()),
            Direction::Outbound => assert!(e.transport.is_some() && e.peer.host.is_some()),
        }
    }
}

#[test]
fn an_exchange_2013_week_counts_its_truth() {
    check_week(Version::E2013, 2013);
}

#[test]
fn an_exchange_2019_week_counts_its_truth() {
    check_week(Version::E2019, 2019);
}

/// Sorted JSON, for comparing event lists whatever order runs emitted them in.
fn sorted(events: &[MessageEvent]) -> Vec<String> {
    let mut all: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    all.sort();
    all
}

#[test]
fn three_ingests_cut_mid_line_give_the_events_of_one() {
    let week: Week = generate::week(Version::E2019, 7, START, 7, 300);
    let whole = tempfile::tempdir().unwrap();
    week.write(whole.path(), None, false);
    let (expected, _, _) = run(whole.path(), Some(&[]));

    let parts = tempfile::tempdir().unwrap();
    let mut state = Vec::new();
    let mut got = Vec::new();
    for until in [Some(START + 2 * DAY + DAY / 3), Some(START + 4 * DAY + DAY / 2 + 7), None] {
        week.write(parts.path(), until, until.is_some());
        let (events, stats, saved) = run(parts.path(), Some(&state));
        assert_eq!(stats.skipped, 0, "{:?}", stats.warnings);
        got.extend(events);
        state = saved;
    }
    // Evidence names the files by their paths; both folders hold the same names.
    let relative = |events: &[MessageEvent], dir: &Path| {
        let text = sorted(events).join("\n");
        text.replace(&format!("{}/", dir.display()), "")
    };
    assert_eq!(relative(&got, parts.path()), relative(&expected, whole.path()));
    assert!(expected.len() > 1000);
    // Messages deferred before a cut and delivered after it are in both, once.
    assert!(week.straddling > 10);
    let delivered_after_deferral =
        expected.iter().filter(|e| e.direction == Direction::Outbound && e.evidence.0.len() >= 3).count();
    assert!(delivered_after_deferral > 10, "{delivered_after_deferral}");
}
