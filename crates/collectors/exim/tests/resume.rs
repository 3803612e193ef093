//! `mailflow ingest`: the lab log read in three runs, each cut in the middle of a line and each
//! going on from the checkpoint of the one before, gives exactly the events of one run over the
//! whole log; a message whose lines straddle a cut counts once.

use std::io::Write;
use std::path::Path;

use mailflow_component::{CollectContext, Collector, Emitter, Resume};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, Status};

fn lab_log() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/gnutls-4.96/mainlog")).unwrap()
}

struct Lab {
    config: Config,
    collector: Box<dyn Collector>,
}

impl Lab {
    fn new(dir: &Path) -> Lab {
        let text = "[site]\ntimezone = \"UTC\"\ninternal_networks = [\"127.0.0.0/24\"]\n\
                    [[collector]]\ntype = \"exim\"\nname = \"lab\"\npaths = [\"mainlog\"]\n";
        let config = Config::parse(text, &dir.join("mailflow.toml"), &|_| None).unwrap();
        let collector = mailflow_collector_exim::build(&config.collectors[0]).unwrap();
        Lab { config, collector }
    }

    /// One run: the events, the warnings, and the state of the last checkpoint (`None`: one-shot).
    fn run(&self, state: Option<&[u8]>) -> (Vec<MessageEvent>, Vec<String>, Vec<u8>) {
        let mut events = Vec::new();
        let mut push = |e| events.push(e);
        let mut saved = Vec::new();
        let mut keep = |s: &[u8]| {
            saved = s.to_vec();
            Ok(())
        };
        let mut out = Emitter::new(&mut push).with_checkpoints(&mut keep);
        let start = chrono::DateTime::UNIX_EPOCH;
        let ctx = CollectContext {
            source: "lab",
            site: &self.config.site,
            start,
            end: "2027-01-31T00:00:00Z".parse().unwrap(),
            report_start: start,
            resume: state.map(|state| Resume { state, checkpoint_bytes: 4096 }),
        };
        self.collector.collect(&ctx, &mut out).unwrap();
        let stats = out.into_stats();
        assert_eq!((stats.skipped, &stats.errors), (0, &vec![]));
        (events, stats.warnings, saved)
    }
}

/// The offset of the middle of line `number` (from 1).
fn middle_of_line(text: &[u8], number: usize) -> usize {
    let start: usize = text.split(|&b| b == b'\n').take(number - 1).map(|l| l.len() + 1).sum();
    let len = text[start..].iter().position(|&b| b == b'\n').unwrap();
    start + len / 2
}

#[test]
fn three_ingests_cut_mid_line_give_the_events_of_one() {
    let text = lab_log();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mainlog");
    let lab = Lab::new(dir.path());

    std::fs::write(&log, &text).unwrap();
    let (whole, warnings, _) = lab.run(Some(&[]));
    assert!(warnings.is_empty(), "{warnings:?}");
    let (one_shot, _, _) = lab.run(None);

    // Line 26 is the second recipient of 1xZfaJ-0000je-2s (received on line 21, completed on 27);
    // line 1310 the end of 1xZfaR-0000ul-2B, deferred long before, just delivered by the forced
    // queue run.
    let cuts = [middle_of_line(&text, 26), middle_of_line(&text, 1310)];
    std::fs::write(&log, &text[..cuts[0]]).unwrap();
    let (mut parts, _, state) = lab.run(Some(&[]));
    assert!(
        parts.iter().all(|e| e.queue_id.as_deref() != Some("1xZfaJ-0000je-2s") || e.direction == Direction::Inbound)
    );
    let mut state = state;
    for range in [cuts[0]..cuts[1], cuts[1]..text.len()] {
        std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(&text[range]).unwrap();
        let (events, warnings, next) = lab.run(Some(&state));
        assert!(warnings.is_empty(), "{warnings:?}");
        parts.extend(events);
        state = next;
    }
    assert_eq!(parts, whole);
    for id in ["1xZfaJ-0000je-2s", "1xZfaR-0000ul-2B"] {
        let outbound: Vec<_> =
            parts.iter().filter(|e| e.direction == Direction::Outbound && e.queue_id.as_deref() == Some(id)).collect();
        assert_eq!(outbound.len(), 1, "{id}");
        assert_eq!(outbound[0].status, Some(Status::Delivered), "{id}");
        assert!(outbound[0].sender.is_some(), "{id}: the arrival was read by an earlier run");
    }

    // A one-shot run also counts the three messages still queued at the end, with their latest
    // status; ingest keeps them in its checkpoint until their `Completed` is in the log.
    let held: Vec<_> = one_shot.iter().filter(|e| !whole.contains(e)).collect();
    let mut ids: Vec<_> = held.iter().filter_map(|e| e.queue_id.as_deref()).collect();
    ids.dedup();
    assert_eq!(ids, ["1xZfaK-0000kO-17", "1xZfaK-0000k8-1E", "1xZfaS-0000wD-24"]);
    for e in &held {
        let expected = if e.recipient_domains == ["defer.test"] { Status::Deferred } else { Status::Delivered };
        assert_eq!(e.status, Some(expected), "{e:?}");
    }
    assert_eq!(one_shot.len(), whole.len() + held.len());
}

#[test]
fn a_damaged_checkpoint_is_refused_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mainlog"), &lab_log()[..20_000]).unwrap();
    let lab = Lab::new(dir.path());
    let (_, _, state) = lab.run(Some(&[]));
    // The files' part of the checkpoint is intact; the collector's own is not.
    let mut damaged = state.clone();
    // The collector's state is the last field, `parser`; its first key is its format version.
    let parser = damaged.windows(6).rposition(|w| w == b"parser").unwrap();
    let at = parser + damaged[parser..].windows(7).position(|w| w == b"version").unwrap();
    assert_eq!(damaged[at + 7], 1);
    damaged[at + 7] = 0x07;
    let (events, warnings, _) = lab.run(Some(&damaged));
    assert!(events.is_empty());
    assert!(warnings.iter().any(|w| w.contains("another version of the exim collector (format 7")), "{warnings:?}");
}
