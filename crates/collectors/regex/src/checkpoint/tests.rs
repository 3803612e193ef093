//! A run stopped after any line, its state saved and restored into a new reader, must emit what
//! a run that never stopped emits: the same events, in the same order, with the same evidence.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailflow_component::Emitter;
use mailflow_component::clock::{Clock, YearRule};
use mailflow_component::input::{self, LineRef};
use mailflow_config::Config;
use mailflow_core::MessageEvent;
use serde::Serialize;

use super::{Checkpoint, FORMAT};
use crate::{Reader, RegexCollector, RegexConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The options of the first collector of `config`, and the clock its lines are read with.
fn regex_options(config: &Config) -> (RegexConfig, Clock) {
    let options: RegexConfig = config.collectors[0].options().unwrap();
    let tz = options.timezone.unwrap_or(config.site.timezone);
    let year = options.year.map_or(2026, i64::from);
    (options, Clock::new(tz, YearRule::starting(year)))
}

/// `config/<example>` as shipped.
fn shipped(example: &str) -> (RegexConfig, Clock) {
    regex_options(&Config::load(&root().join("../../../config").join(example)).unwrap())
}

fn lab_log(path: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/lab").join(path)).unwrap()
}

/// The events `run` emits, as JSON.
fn events(run: impl FnOnce(&mut Emitter<'_>)) -> Vec<String> {
    let mut events = Vec::new();
    {
        let mut push = |e: MessageEvent| events.push(serde_json::to_string(&e).unwrap());
        let mut out = Emitter::new(&mut push);
        run(&mut out);
    }
    events
}

/// Where each line starts, and where the text ends: `starts[k]` is the end of the first `k`
/// lines.
fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(memchr::memchr_iter(b'\n', text).map(|i| i + 1));
    if starts.last() != Some(&text.len()) {
        starts.push(text.len());
    }
    starts
}

/// Reads `text` on from where the reader is, as [`RegexCollector::read`] reads a file.
fn feed(collector: &RegexCollector, reader: &mut Reader, text: &[u8], out: &mut Emitter<'_>) {
    let source = Box::new(Cursor::new(text.to_vec()));
    input::for_each_line(source, collector.config.max_line_bytes, |line| match line {
        LineRef::Text(text) => reader.line(collector, text, out),
        LineRef::TooLong(_) => reader.line_number += 1,
    })
    .unwrap();
}

/// The events of one run over all of `text`.
fn uninterrupted(collector: &RegexCollector, clock: &Clock, text: &[u8]) -> Vec<String> {
    let mut reader = Reader::new(collector, clock.clone());
    events(|out| {
        collector.read(Box::new(Cursor::new(text.to_vec())), "log", &mut reader, out).unwrap();
        reader.finish(out);
    })
}

/// What the checkpoints of [`check_splits`] held, at their largest.
#[derive(Debug, Default)]
struct Kept {
    bytes: usize,
    keys: usize,
    held: usize,
}

/// Saves a running reader after each line in `splits`, restores each state into a new reader
/// and reads on: the events must be those of one run over all of `text`, and so must the
/// running reader's, saving having changed nothing.
fn check_splits(
    name: &str,
    collector: &RegexCollector,
    clock: &Clock,
    text: &[u8],
    splits: impl IntoIterator<Item = usize>,
) -> Kept {
    let expected = uninterrupted(collector, clock, text);
    let starts = line_starts(text);
    let mut splits: Vec<usize> = splits.into_iter().collect();
    splits.sort_unstable();
    splits.dedup();
    let mut kept = Kept::default();
    let mut running = Reader::new(collector, clock.clone());
    running.file = Arc::from("log");
    let mut before = Vec::new();
    let mut read = 0;
    for k in splits {
        let at = starts[k];
        before.extend(events(|out| feed(collector, &mut running, &text[read..at], out)));
        read = at;
        assert_eq!(running.line_number, k as u64);
        let saved = running.save();
        let after = events(|out| {
            // The clock is the caller's to carry over, like the position in the file.
            let mut second = Reader::new(collector, running.clock.clone());
            second.restore(&saved).unwrap_or_else(|e| panic!("{name}, after line {k}: {e}"));
            assert!(second.save() == saved, "{name}, after line {k}: a restored state saves as it was saved");
            kept.bytes = kept.bytes.max(saved.len());
            kept.keys = kept.keys.max(second.sessions.len() + second.messages.len());
            kept.held = kept.held.max(second.sessions.held() + second.messages.held());
            (second.file, second.line_number) = (Arc::from("log"), k as u64);
            feed(collector, &mut second, &text[at..], out);
            second.finish(out);
        });
        same_events(&format!("{name}, stopped after line {k}"), &[&before[..], &after[..]].concat(), &expected);
    }
    before.extend(events(|out| {
        feed(collector, &mut running, &text[read..], out);
        running.finish(out);
    }));
    same_events(&format!("{name}, saved as it ran"), &before, &expected);
    kept
}

fn same_events(run: &str, got: &[String], expected: &[String]) {
    if got != expected {
        let first = got.iter().zip(expected).position(|(g, e)| g != e).unwrap_or(got.len().min(expected.len()));
        panic!(
            "{run}: {} events instead of {}; the first that differs, #{first}:\n  got      {:?}\n  expected {:?}",
            got.len(),
            expected.len(),
            got.get(first),
            expected.get(first)
        );
    }
}

#[test]
fn a_run_stopped_anywhere_in_the_lab_logs_continues_as_if_it_had_not_stopped() {
    for (example, log) in [("haraka.toml", "haraka/haraka.log"), ("sendmail.toml", "sendmail/mail.log")] {
        let (options, clock) = shipped(example);
        let collector = RegexCollector::new(options, Vec::new()).unwrap();
        let text = lab_log(log);
        assert!(uninterrupted(&collector, &clock, &text).len() > 100, "{log}: the log has traffic");
        let n = line_starts(&text).len() - 1;
        // Spread over the log, and a run of consecutive lines in its middle.
        let splits = (0..=60).map(|i| i * n / 60).chain(n / 2..n / 2 + 30);
        let kept = check_splits(log, &collector, &clock, &text, splits);
        assert!(kept.keys > 10 && kept.held > 0, "{log}: checkpoints held keys and events: {kept:?}");
    }
}

#[test]
fn a_run_stopped_after_any_line_of_a_log_continues_as_if_it_had_not_stopped() {
    let (options, clock) = shipped("sendmail.toml");
    let collector = RegexCollector::new(options, Vec::new()).unwrap();
    let text = lab_log("sendmail/mail.log");
    let n = line_starts(&text).len() - 1;
    check_splits("mail.log", &collector, &clock, &text, 0..=n);
}

/// Each case (`hold_secs`, `drop`, `unless_delivered`, keys over the cap…) stopped after
/// every line.
#[test]
fn every_case_stopped_after_any_line_continues_as_if_it_had_not_stopped() {
    let cases = root().join("tests/cases");
    let mut dirs: Vec<_> = std::fs::read_dir(&cases).unwrap().map(|d| d.unwrap().path()).collect();
    dirs.sort();
    let mut checked = 0;
    for dir in dirs.iter().filter(|d| d.join("input.log").exists()) {
        let options = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        let text = format!("[[collector]]\ntype = \"regex\"\nname = \"case\"\n{options}");
        let (options, clock) = regex_options(&Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap());
        let collector = RegexCollector::new(options, Vec::new()).unwrap();
        let text = std::fs::read(dir.join("input.log")).unwrap();
        let n = line_starts(&text).len() - 1;
        check_splits(&dir.display().to_string(), &collector, &clock, &text, 0..=n);
        checked += 1;
    }
    assert!(checked >= 10, "the cases were found: {checked}");
}

/// Two things the cases do not show: a line without a time is seen at the latest time before
/// it, and a new held event's id must differ from those that stale `hold_secs` deadlines name.
#[test]
fn the_log_time_and_held_ids_carry_over() {
    let inline = |options: &str| {
        let text = format!("[[collector]]\ntype = \"regex\"\npaths = [\"x.log\"]\ntime_format = \"unix\"\n{options}");
        let (options, clock) = regex_options(&Config::parse(&text, Path::new("m.toml"), &|_| None).unwrap());
        (RegexCollector::new(options, Vec::new()).unwrap(), clock)
    };
    let (timeless, clock) = inline(
        r#"session_timeout_secs = 60
[[collector.pattern]]
regex = '^(?P<time>\d+) (?:(?P<key>\w+) )?sent'
emit = "outbound"
[[collector.pattern]]
regex = '^- (?P<key>\w+) tls=(?P<tls_version>\S+)'
"#,
    );
    let log = b"1000 sent\n- s1 tls=TLSv1.3\n1010 s1 sent\n";
    assert!(uninterrupted(&timeless, &clock, log)[1].contains(r#""tls1_3""#));
    check_splits("timeless", &timeless, &clock, log, 0..=3);
    let (held, clock) = inline(
        r#"[[collector.pattern]]
regex = '^(?P<time>\d+) (?P<message_key>\w+) deferred'
emit = "outbound"
hold = true
hold_secs = 60
[[collector.pattern]]
regex = '^(?P<time>\d+) (?P<message_key>\w+) refused'
drop = true
"#,
    );
    let log = b"0 M deferred\n10 M deferred\n20 M deferred\n65 X deferred\n70 M refused\n";
    assert_eq!(uninterrupted(&held, &clock, log).len(), 1, "M is dropped, X counts");
    check_splits("held", &held, &clock, log, 0..=5);
}

/// A reader of the sendmail example stopped after `lines` of its lab log, with keys and held
/// events; the collector, the clock and the lines after.
fn stopped_after(lines: usize) -> (RegexCollector, Clock, Reader, Vec<u8>) {
    let (options, clock) = shipped("sendmail.toml");
    let collector = RegexCollector::new(options, Vec::new()).unwrap();
    let text = lab_log("sendmail/mail.log");
    let at = line_starts(&text)[lines];
    let mut reader = Reader::new(&collector, clock.clone());
    events(|out| feed(&collector, &mut reader, &text[..at], out));
    assert!(reader.sessions.len() > 0 && reader.messages.held() > 0);
    (collector, clock, reader, text[at..].to_vec())
}

#[test]
fn damaged_checkpoints_are_refused_without_panicking() {
    // Small enough to try it cut at every length, and changed at every third byte.
    let (collector, clock, reader, rest) = stopped_after(60);
    let saved = reader.save();
    let fresh = || Reader::new(&collector, clock.clone());
    let unchanged = fresh().save();
    let mut garbage: Vec<Vec<u8>> = vec![b"".to_vec(), b"\xc1".to_vec(), b"not a checkpoint".to_vec(), vec![0xff; 64]];
    garbage.extend((0..saved.len()).map(|len| saved[..len].to_vec()));
    for bytes in &garbage {
        let mut reader = fresh();
        let e = reader.restore(bytes).unwrap_err();
        assert!(e.starts_with("the checkpoint of the regex collector is damaged: "), "{e}");
        assert!(reader.save() == unchanged, "a refused checkpoint leaves the reader as it was");
    }
    // A changed byte may still decode; reading on from it must not panic either.
    let rest = &rest[..line_starts(&rest)[40]];
    let mut decoded = 0;
    for i in (0..saved.len()).step_by(3) {
        let mut bytes = saved.clone();
        bytes[i] ^= 0x5a;
        let mut reader = fresh();
        if reader.restore(&bytes).is_ok() {
            decoded += 1;
            events(|out| {
                feed(&collector, &mut reader, rest, out);
                reader.finish(out);
            });
        }
    }
    assert!(decoded > 0, "some changed checkpoints decode, and were read on from");
}

#[test]
fn a_checkpoint_of_another_format_is_refused_by_name() {
    let (collector, clock, reader, _) = stopped_after(270);
    let mut checkpoint: Checkpoint<'static> = rmp_serde::from_slice(&reader.save()).unwrap();
    checkpoint.format = FORMAT + 1;
    let next = rmp_serde::to_vec_named(&checkpoint).unwrap();
    // A later format may save something else entirely.
    #[derive(Serialize)]
    struct Later {
        format: u32,
        state: Vec<String>,
    }
    let later = rmp_serde::to_vec_named(&Later { format: 7, state: vec!["x".into()] }).unwrap();
    for (bytes, format) in [(next, FORMAT + 1), (later, 7)] {
        let e = Reader::new(&collector, clock.clone()).restore(&bytes).unwrap_err();
        let want = format!(
            "the checkpoint was written by another version of the regex collector (format {format}, this one reads \
             1)"
        );
        assert_eq!(e, want);
    }
}

#[test]
fn a_checkpoint_of_other_patterns_is_refused() {
    let (options, clock) = shipped("sendmail.toml");
    let (_, _, reader, _) = stopped_after(270);
    let saved = reader.save();
    let restore = |options: RegexConfig| {
        let collector = RegexCollector::new(options, Vec::new()).unwrap();
        Reader::new(&collector, clock.clone()).restore(&saved)
    };
    let mut edited = options.clone();
    edited.patterns[0].regex.push_str("(?:)");
    let mut reordered = options.clone();
    reordered.patterns.swap(0, 1);
    let mut renamed = options.clone();
    renamed.patterns[1].name = Some("another".into());
    let mut fewer = options.clone();
    fewer.patterns.retain(|p| !p.drop);
    let mut held = options.clone();
    let hold = held.patterns.iter_mut().find(|p| p.hold).unwrap();
    (hold.hold, hold.hold_secs) = (false, None);
    for changed in [edited, reordered, renamed, fewer, held] {
        let e = restore(changed).unwrap_err();
        assert!(e.starts_with("the patterns changed since the checkpoint was written"), "{e}");
    }
    // Limits and time zones shape only what comes next.
    let mut limits = options.clone();
    (limits.max_open_keys, limits.message_timeout_secs) = (10, 60);
    limits.timezone = Some(chrono_tz::Tz::Europe__Berlin);
    restore(limits).unwrap();
    restore(options).unwrap();
}
