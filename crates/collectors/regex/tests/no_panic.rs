//! Whatever bytes a log holds, the collector emits, skips or ignores them: it never panics, and
//! its memory stays within `max_open_keys`.

use std::path::Path;
use std::sync::LazyLock;

use mailflow_collector_regex::{RegexCollector, RegexConfig, collect_text};
use mailflow_component::Emitter;
use mailflow_config::Config;
use proptest::prelude::*;

/// The collector of a shipped example, with `extra` options added to its section.
fn example(name: &str, extra: &str) -> RegexCollector {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../config");
    let text = std::fs::read_to_string(root.join(name)).unwrap();
    let text = text.replacen("type = \"regex\"\n", &format!("type = \"regex\"\n{extra}\n"), 1);
    let config = Config::parse(&text, &root.join(name), &|_| None).unwrap();
    let options: RegexConfig = config.collectors[0].options().unwrap();
    RegexCollector::new(options, Vec::new()).unwrap()
}

static HARAKA: LazyLock<RegexCollector> = LazyLock::new(|| example("haraka.toml", ""));
static HARAKA_FEW_KEYS: LazyLock<RegexCollector> = LazyLock::new(|| example("haraka.toml", "max_open_keys = 3"));
static SENDMAIL: LazyLock<RegexCollector> = LazyLock::new(|| example("sendmail.toml", ""));
static SENDMAIL_FEW_KEYS: LazyLock<RegexCollector> = LazyLock::new(|| example("sendmail.toml", "max_open_keys = 3"));

/// Every time format at once, and every option that holds, drops or marks keys.
static EVERY_FORMAT: LazyLock<RegexCollector> = LazyLock::new(|| {
    let text = r#"[[collector]]
type = "regex"
paths = ["x.log"]
time_format = ["unix", "unix_ms", "syslog", "rfc3339", "%Y-%m-%d %H:%M:%S%.f %z", "%d/%b:%H:%M:%S"]
max_open_keys = 4
[[collector.pattern]]
regex = '^(?P<time>[^|]*)\| (?P<message_key>\w) drop'
drop = true
[[collector.pattern]]
regex = '^(?P<time>[^|]*)\| (?P<message_key>\w) (?P<key>\w) (?P<status>\w+)$'
emit = "outbound"
hold = true
hold_secs = 1
unless_delivered = true
[[collector.pattern]]
regex = '^(?P<time>[^|]*)\| (?P<message_key>\w) (?P<status>\w+)'
emit = "outbound"
unless_delivered = true
"#;
    let config = Config::parse(text, Path::new("m.toml"), &|_| None).unwrap();
    let options: RegexConfig = config.collectors[0].options().unwrap();
    RegexCollector::new(options, Vec::new()).unwrap()
});

/// (emitted, skipped)
fn collect(collector: &RegexCollector, text: &[u8]) -> (u64, u64) {
    let mut ignore = |_| {};
    let mut out = Emitter::new(&mut ignore);
    collect_text(collector, text, &mut out);
    let stats = out.into_stats();
    (stats.emitted, stats.skipped)
}

fn sample(name: &str, lines: usize) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab");
    let text = std::fs::read_to_string(root.join(name)).unwrap();
    text.lines().take(lines).flat_map(|l| l.bytes().chain([b'\n'])).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        collect(&HARAKA, &bytes);
        collect(&SENDMAIL, &bytes);
    }

    #[test]
    fn damaged_real_logs(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let examples = [(&HARAKA, &HARAKA_FEW_KEYS, "haraka/haraka.log"), (&SENDMAIL, &SENDMAIL_FEW_KEYS, "sendmail/mail.log")];
        for (collector, few_keys, log) in examples {
            let mut text = sample(log, 400);
            let i = at.index(text.len());
            text[i] = byte;
            // Every line is emitted from, skipped, or ignored; lines emit at most one event each,
            // plus one per held event.
            let lines = text.split(|&b| b == b'\n').count() as u64;
            let (emitted, skipped) = collect(few_keys, &text);
            prop_assert!(emitted + skipped <= lines, "{emitted} emitted, {skipped} skipped of {lines} lines");
            let end = cut.index(text.len());
            collect(collector, &text[..end]);
        }
    }

    #[test]
    fn times_and_keys_of_any_shape(lines in proptest::collection::vec(("[0-9.:+TZ/a-zA-Z -]{0,40}", "[abc]", "[xy]", "(drop|sent|deferred|failed|250|451)"), 0..100)) {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, (time, key, session, word))| match i % 3 {
                0 => format!("{time}| {key} {session} {word}\n"),
                1 => format!("{}| {key} {word}\n", 1_796_400_000 + i),
                _ => format!("{time}| {key} {word}\n"),
            })
            .collect();
        collect(&EVERY_FORMAT, text.as_bytes());
    }

    #[test]
    fn keys_of_any_shape(lines in proptest::collection::vec((0u32..50, 0u8..4, "[a-z@.]{0,12}"), 0..300)) {
        let text: String = lines
            .iter()
            .map(|(key, kind, word)| match kind {
                0 => format!("Dec  4 10:00:00 mx sm-mta[{key}]: STARTTLS=server, relay=[192.0.2.1], version=TLSv1.{}, verify=NO, cipher=X, bits=1\n", key % 4),
                1 => format!("Dec  4 10:00:0{} mx sm-mta[{key}]: Q{key}: to=<{word}>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=1, relay=mx{}.example. [192.0.2.9], dsn=4.0.0, stat=Deferred\n", key % 10, key % 3),
                2 => format!("Dec  4 10:00:01 mx sm-mta[{key}]: Q{key}: to=<{word}>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=1, relay=mx{}.example. [192.0.2.9], dsn=2.0.0, stat=Sent (ok)\n", key % 3),
                _ => format!("Dec  4 10:00:01 mx sm-mta[{key}]: Q{key}: from=<{word}>, size=1, class=0, nrcpts=1, proto=ESMTPS, daemon=MTA, relay=[192.0.2.{key}]\n"),
            })
            .collect();
        collect(&SENDMAIL_FEW_KEYS, text.as_bytes());
    }
}
