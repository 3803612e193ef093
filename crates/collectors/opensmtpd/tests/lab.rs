//! Real OpenSMTPD logs against their ground truth (`tests/lab/<run>/`, see `tests/lab/README.md`):
//! per direction, TLS version and status the events count exactly what the truth says, and
//! message by message (by queue id) each one is where the truth puts it. Then the same log read
//! by `mailflow ingest` in three parts, cut mid-line, gives the events of one whole read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailflow_component::{CollectContext, Collector, Emitter, Resume, SourceStats};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, Status, TlsVersion};
use mailflow_testkit::lab::{counted, status, tls, truth, truth_counts};

fn runs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("truth.jsonl").exists())
        .collect();
    runs.sort();
    assert!(!runs.is_empty(), "no lab run under {}", root.display());
    runs
}

fn config(dir: &Path, log: &Path) -> Config {
    let text = format!(
        "[site]\ntimezone = \"UTC\"\ninternal_networks = [\"127.0.0.0/24\"]\n\
         [[collector]]\ntype = \"opensmtpd\"\npaths = [\"{}\"]\nyear = 2026\n",
        log.display()
    );
    Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap()
}

fn context<'a>(config: &'a Config, resume: Option<Resume<'a>>) -> CollectContext<'a> {
    let start = chrono::DateTime::UNIX_EPOCH;
    let end = "2027-01-31T00:00:00Z".parse().unwrap();
    CollectContext { source: "lab", site: &config.site, start, end, report_start: start, resume }
}

/// One one-shot read of the run's log.
fn read(dir: &Path) -> (Vec<MessageEvent>, SourceStats, Config) {
    let config = config(dir, &dir.join("mail.log"));
    let collector = mailflow_collector_opensmtpd::build(&config.collectors[0]).unwrap();
    let mut events = Vec::new();
    let mut push = |e| events.push(e);
    let mut out = Emitter::new(&mut push);
    collector.collect(&context(&config, None), &mut out).unwrap();
    let stats = out.into_stats();
    (events, stats, config)
}

#[test]
fn lab_logs_count_the_truth() {
    for dir in runs() {
        let (events, stats, config) = read(&dir);
        assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]), "{}", dir.display());
        let truth = truth(&dir.join("truth.jsonl"));
        assert_eq!(counted(&events, &config.site), truth_counts(&dir.join("truth.jsonl")), "{}", dir.display());
        assert!(truth.iter().any(|t| t["queued"] == false), "the run has refused relay attempts");
    }
}

#[test]
fn lab_logs_put_each_message_where_the_truth_does() {
    for dir in runs() {
        let (events, _, _) = read(&dir);
        let mut by_queue_id: BTreeMap<&str, Vec<&MessageEvent>> = BTreeMap::new();
        for e in &events {
            by_queue_id.entry(e.queue_id.as_deref().unwrap()).or_default().push(e);
        }
        let truth = truth(&dir.join("truth.jsonl"));
        let mut checked = 0;
        for t in truth.iter().filter(|t| t["queued"] == true) {
            // Local submissions (sendmail) are not told their queue id: they count above.
            let Some(queue_id) = t["queue_id"].as_str() else { continue };
            let got = by_queue_id.remove(queue_id).unwrap_or_default();
            let (inbound, outbound): (Vec<&MessageEvent>, Vec<&MessageEvent>) =
                got.iter().partition(|e| e.direction == Direction::Inbound);
            let [inbound] = inbound[..] else { panic!("{queue_id}: one inbound event, not {inbound:?}") };
            assert_eq!(inbound.peer.ip.map(|ip| ip.to_string()).as_deref(), t["client"].as_str(), "{queue_id}");
            assert_eq!(inbound.tls.version, Some(TlsVersion::None), "{queue_id}: inbound is plaintext");
            assert!(inbound.sender.is_some() && inbound.size.is_some(), "{queue_id}");
            let mut want: Vec<(String, TlsVersion, Status, u32)> = Vec::new();
            if t["kind"] == "outbound" {
                for d in t["deliveries"].as_array().unwrap() {
                    let rcpts = d["rcpt"].as_str().unwrap().split(',').count() as u32;
                    want.push((d["dest"].as_str().unwrap().into(), tls(&d["tls"]), status(&d["status"]), rcpts));
                }
            }
            let mut have: Vec<(String, TlsVersion, Status, u32)> = outbound
                .iter()
                .map(|e| {
                    let [domain] = &e.recipient_domains[..] else { panic!("{queue_id}: {:?}", e.recipient_domains) };
                    (domain.clone(), e.tls.version.unwrap(), e.status.unwrap(), e.recipients.unwrap())
                })
                .collect();
            want.sort();
            have.sort();
            assert_eq!(have, want, "{queue_id}");
            checked += 1;
        }
        assert!(checked > 100, "{}: only {checked} messages had a queue id", dir.display());
        // What is left: the local submissions, outbound only, and their bounces (none here).
        assert!(
            by_queue_id.values().flatten().all(|e| e.direction == Direction::Outbound),
            "{:?}",
            by_queue_id.keys().collect::<Vec<_>>()
        );
    }
}

/// Ingests `log` as it stands, continuing from `state`; returns the events and the new state.
fn ingest(collector: &dyn Collector, config: &Config, state: &[u8]) -> (Vec<MessageEvent>, Vec<u8>) {
    let mut events = Vec::new();
    let mut saved = Vec::new();
    let mut push = |e| events.push(e);
    let mut keep = |s: &[u8]| {
        saved = s.to_vec();
        Ok(())
    };
    let mut out = Emitter::new(&mut push).with_checkpoints(&mut keep);
    let resume = Resume { state, checkpoint_bytes: 16 * 1024 };
    collector.collect(&context(config, Some(resume)), &mut out).unwrap();
    let stats = out.into_stats();
    assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]));
    (events, saved)
}

#[test]
fn ingest_in_three_parts_cut_mid_line_gives_the_events_of_one_read() {
    for dir in runs() {
        let log = std::fs::read(dir.join("mail.log")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mail.log");
        let config = config(tmp.path(), &path);
        let collector = mailflow_collector_opensmtpd::build(&config.collectors[0]).unwrap();

        std::fs::write(&path, &log).unwrap();
        let (whole, _) = ingest(&*collector, &config, &[]);

        // Cut at a third and two thirds, each in the middle of a line.
        let cuts = [log.len() / 3, log.len() * 2 / 3];
        assert!(cuts.iter().all(|&c| log[c - 1] != b'\n' && log[c] != b'\n'));
        let mut parts = Vec::new();
        let mut state = Vec::new();
        for end in cuts.into_iter().chain([log.len()]) {
            std::fs::write(&path, &log[..end]).unwrap();
            let (events, saved) = ingest(&*collector, &config, &state);
            parts.push(events);
            state = saved;
        }
        let joined: Vec<MessageEvent> = parts.iter().flatten().cloned().collect();
        assert_eq!(joined.len(), whole.len());
        assert_eq!(joined, whole, "{}", dir.display());

        // A message received before the first cut and delivered after it counts once, with the
        // TLS of a session whose line was read by the first part.
        let first_cut_line = log[..cuts[0]].iter().filter(|&&b| b == b'\n').count() as u64;
        let straddling = parts[1..]
            .iter()
            .flatten()
            .filter(|e| e.direction == Direction::Outbound)
            .filter(|e| e.evidence.0.iter().any(|l| l.line.is_some_and(|n| n <= first_cut_line)))
            .count();
        assert!(straddling > 0, "no message straddles the first cut");
        let mut ids: Vec<(Option<&str>, Direction, &Vec<String>)> =
            joined.iter().map(|e| (e.queue_id.as_deref(), e.direction, &e.recipient_domains)).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "an event was emitted twice");
    }
}
