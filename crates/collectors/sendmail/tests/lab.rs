//! Real Sendmail logs with known ground truth: `../regex/tests/lab/sendmail/` (Sendmail 8.17.1.9,
//! delivery in the background, traditional syslog stamps) and `tests/lab/queue-runs/` (the same
//! Sendmail queue-only, deliveries by queue runners, LogLevel 10, RFC 3339 stamps, a flaky MX);
//! see `tests/lab/README.md`. The events must count exactly what the truth says per direction,
//! TLS version and status, leaving out mail from the internal clients (127.0.0.0/24) as
//! reports do. A resumed read of each log cut in three gives the events of one read.

use std::path::{Path, PathBuf};

use mailflow_component::{CollectContext, Emitter, Resume, SourceStats};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, TlsVersion, Trust};
use mailflow_testkit::lab::{counted, truth_counts};

fn labs() -> [PathBuf; 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [root.join("../regex/tests/lab/sendmail"), root.join("tests/lab/queue-runs")]
}

fn config(dir: &Path, log: &Path) -> Config {
    let text = format!(
        "[site]\ntimezone = \"UTC\"\ninternal_networks = [\"127.0.0.0/24\"]\n\
         [[collector]]\ntype = \"sendmail\"\nname = \"lab\"\npaths = [{:?}]\nyear = 2026\n",
        log.display().to_string()
    );
    Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap()
}

/// One read of `log`, whole (`state` None) or resumed from `state`; the events, what the run
/// reported and its last checkpoint.
fn read(dir: &Path, log: &Path, state: Option<&[u8]>) -> (Vec<MessageEvent>, SourceStats, Vec<u8>) {
    let config = config(dir, log);
    let collector = mailflow_collector_sendmail::build(&config.collectors[0]).unwrap();
    let mut events = Vec::new();
    let mut push = |e| events.push(e);
    let mut saved = Vec::new();
    let mut keep = |s: &[u8]| {
        saved = s.to_vec();
        Ok(())
    };
    let mut out = Emitter::new(&mut push).with_checkpoints(&mut keep);
    let (start, end) = (chrono::DateTime::UNIX_EPOCH, "2027-01-31T00:00:00Z".parse().unwrap());
    let resume = state.map(|state| Resume { state, checkpoint_bytes: 8192 });
    let ctx = CollectContext { source: "lab", site: &config.site, start, end, report_start: start, resume };
    collector.collect(&ctx, &mut out).unwrap();
    let stats = out.into_stats();
    (events, stats, saved)
}

/// Messages the truth says were queued, inbound and relayed (from the internal clients).
fn queued(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("truth.jsonl")).unwrap();
    text.lines().filter(|l| l.contains("\"queued\": true")).count()
}

#[test]
fn each_lab_log_counts_its_truth() {
    for dir in labs() {
        let (events, stats, _) = read(&dir, &dir.join("mail.log"), None);
        assert_eq!((stats.skipped, &stats.warnings, &stats.errors), (0, &vec![], &vec![]), "{}", dir.display());
        let site = config(&dir, &dir.join("mail.log")).site;
        assert_eq!(counted(&events, &site), truth_counts(&dir.join("truth.jsonl")), "{}", dir.display());
        // Mail of the internal clients is inbound too, from an internal address: every queued
        // message is an inbound event, with its peer and envelope.
        let inbound: Vec<_> = events.iter().filter(|e| e.direction == Direction::Inbound).collect();
        assert_eq!(inbound.len(), queued(&dir), "{}", dir.display());
        for e in &inbound {
            assert!(e.peer.ip.is_some() && e.sender.is_some() && e.size.is_some() && e.queue_id.is_some(), "{e:?}");
            assert!(e.message_id.is_some() && e.recipients.is_some_and(|n| n > 0), "{e:?}");
            assert!(e.service.as_deref().is_some_and(|s| s.starts_with("MTA") || s.starts_with("MSP")), "{e:?}");
            if e.tls.version != Some(TlsVersion::None) {
                assert_eq!(e.tls.trust, Some(Trust::Anonymous), "clients presented no certificate: {e:?}");
            }
        }
        for e in events.iter().filter(|e| e.direction == Direction::Outbound) {
            let host = e.peer.host.as_deref().unwrap_or_default();
            assert!(host.starts_with("mx.") && !host.ends_with('.'), "{e:?}");
            assert_eq!(e.transport.as_deref(), Some("esmtp"));
            assert_eq!(e.recipient_domains.len(), 1, "{e:?}");
            assert!(e.sender.as_deref().is_some_and(|s| s.ends_with("@corp.test")), "{e:?}");
            if !matches!(e.tls.version, Some(TlsVersion::None)) {
                // The lab's MXes have certificates Sendmail cannot verify.
                assert_eq!((e.tls.trust, e.tls.cipher.is_some()), (Some(Trust::Untrusted), true), "{e:?}");
            }
        }
    }
}

/// The one line each event was built from that names its queue id: a message counted twice
/// would show up as the same key twice.
#[test]
fn no_message_counts_twice_per_relay() {
    for dir in labs() {
        let (events, _, _) = read(&dir, &dir.join("mail.log"), None);
        let mut keys: Vec<_> = events.iter().map(|e| (e.direction, e.queue_id.clone(), e.peer.ip)).collect::<Vec<_>>();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "{}", dir.display());
    }
}

fn sorted(events: &[MessageEvent]) -> Vec<String> {
    let mut events: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    events.sort();
    events
}

/// `mailflow ingest` of a log that grows in three steps, each cut in the middle of a line,
/// counts what one ingest of the whole log counts; a message whose lines straddle a cut (its
/// `from=` before, its delivery after) counts once. What is still in flight at the end stays in
/// the checkpoint; a one-shot read finishes it instead, and those are its only extra events.
#[test]
fn a_log_read_in_three_ingests_counts_as_one_read() {
    for dir in labs() {
        let text = std::fs::read(dir.join("mail.log")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("mail.log");
        let relabel = |events: Vec<MessageEvent>| -> Vec<MessageEvent> {
            events
                .into_iter()
                .map(|mut e| {
                    for l in &mut e.evidence.0 {
                        l.file = Some("mail.log".into());
                    }
                    e
                })
                .collect()
        };
        std::fs::write(&log, &text).unwrap();
        let (whole, _, _) = read(&dir, &log, Some(&[]));
        let whole = relabel(whole);
        let (mut parts, mut state) = (Vec::new(), Vec::new());
        let cuts = [text.len() / 3 + 17, 2 * text.len() / 3 + 5, text.len()];
        let mut straddling = 0;
        for (i, &cut) in cuts.iter().enumerate() {
            assert!(i == 2 || text[cut - 1] != b'\n', "cut {i} is inside a line");
            std::fs::write(&log, &text[..cut]).unwrap();
            let (events, stats, saved) = read(&dir, &log, Some(&state));
            assert!(stats.warnings.is_empty() && stats.errors.is_empty(), "{stats:?}");
            let before = &text[..cuts[0]];
            straddling += events
                .iter()
                .filter(|e| {
                    i > 0 && e.queue_id.as_ref().is_some_and(|q| memchr::memmem::find(before, q.as_bytes()).is_some())
                })
                .count();
            parts.extend(relabel(events));
            state = saved;
        }
        assert!(straddling > 0, "some message straddles the first cut");
        assert_eq!(sorted(&parts), sorted(&whole), "{}", dir.display());
        // A one-shot read: the same events, and those still in flight, finished.
        let (one_shot, _, _) = read(&dir, &dir.join("mail.log"), None);
        let one_shot = relabel(one_shot);
        let extra: Vec<_> = sorted(&one_shot).into_iter().filter(|e| !sorted(&whole).contains(e)).collect();
        assert_eq!(one_shot.len(), whole.len() + extra.len(), "{}", dir.display());
        assert!(extra.iter().all(|e| e.contains("\"status\":\"deferred\"")), "{extra:#?}");
    }
}

/// A checkpoint after every line (every fourth of the lab log), each restored by the next
/// ingest: the events of the case logs and of the first lab log are those of one ingest of the
/// whole log. Catches state that a
/// checkpoint loses (held messages, sessions, the due list, the year, what the log has shown).
#[test]
fn a_checkpoint_after_every_line_changes_no_event() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(root.join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path().join("input.log"))
        .filter(|p| p.exists())
        .collect();
    logs.sort();
    logs.push(labs()[0].join("mail.log"));
    for source in logs {
        let step = if source.starts_with(root.join("tests/cases")) { 1 } else { 4 };
        let dir = source.parent().unwrap();
        let text = std::fs::read(&source).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("mail.log");
        std::fs::write(&log, &text).unwrap();
        let (whole, _, _) = read(dir, &log, Some(&[]));
        std::fs::write(&log, b"").unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let (mut parts, mut state) = (Vec::new(), Vec::new());
        let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
        for chunk in lines.chunks(step) {
            chunk.iter().for_each(|line| std::io::Write::write_all(&mut file, line).unwrap());
            let (events, _, saved) = read(dir, &log, Some(&state));
            parts.extend(events);
            state = saved;
        }
        assert_eq!(sorted(&parts), sorted(&whole), "{}", source.display());
    }
}

/// Tight in-flight limits finish messages early and forget processes, and say so; nothing is
/// lost without a warning and every inbound message still counts once.
#[test]
fn memory_limits_finish_early_and_say_so() {
    let dir = &labs()[1];
    let text = format!(
        "[[collector]]\ntype = \"sendmail\"\npaths = [{:?}]\nmax_messages = 4\nmax_sessions = 3\n",
        dir.join("mail.log").display().to_string()
    );
    let config = Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_sendmail::build(&config.collectors[0]).unwrap();
    let mut events: Vec<MessageEvent> = Vec::new();
    let mut push = |e| events.push(e);
    let mut out = Emitter::new(&mut push);
    let (start, end) = (chrono::DateTime::UNIX_EPOCH, "2027-01-31T00:00:00Z".parse().unwrap());
    let ctx = CollectContext { source: "lab", site: &config.site, start, end, report_start: start, resume: None };
    collector.collect(&ctx, &mut out).unwrap();
    let stats = out.into_stats();
    assert_eq!(stats.warnings.len(), 1, "{stats:?}");
    assert!(stats.warnings[0].contains("to stay within its memory limits"), "{stats:?}");
    let inbound = events.iter().filter(|e| e.direction == Direction::Inbound).count();
    assert_eq!(inbound, queued(dir));
}
