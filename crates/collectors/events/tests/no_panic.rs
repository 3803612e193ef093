//! Whatever bytes an events file holds, the collector emits, skips or reports an error: it never
//! panics.

use mailflow_component::{CollectContext, Emitter};
use mailflow_config::Config;
use proptest::prelude::*;

/// (emitted, skipped)
fn collect(name: &str, content: &[u8]) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), content).unwrap();
    let text = format!("[[collector]]\ntype = \"events\"\npaths = [\"{name}\"]\nmax_line_bytes = 4096\n");
    let config = Config::parse(&text, &dir.path().join("m.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_events::build(&config.collectors[0]).unwrap();
    let mut count = 0u64;
    let mut on_event = |_| count += 1;
    let mut out = Emitter::new(&mut on_event);
    let site = Default::default();
    let start = chrono::DateTime::UNIX_EPOCH;
    let ctx =
        CollectContext { source: "t", site: &site, start, end: chrono::Utc::now(), report_start: start, resume: None };
    collector.collect(&ctx, &mut out).unwrap();
    let stats = out.into_stats();
    (stats.emitted, stats.skipped)
}

const VALID: &str = r#"{"time":"2026-12-01T08:00:00Z","direction":"inbound","tls":{"version":"tls1_2"},"peer":{"ip":"192.0.2.1","port":25},"size":10}"#;
const CSV: &str = "time,direction,peer.port,recipient_domains\n2026-12-01T08:00:00Z,inbound,25,a.example;b.example\n";

proptest! {
    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        collect("x.jsonl", &bytes);
        collect("x.csv", &bytes);
    }

    #[test]
    fn damaged_events(at in 0..VALID.len(), byte in any::<u8>(), csv_at in 0..CSV.len()) {
        let mut line = VALID.as_bytes().to_vec();
        line[at] = byte;
        line.push(b'\n');
        line.extend_from_slice(VALID.as_bytes());
        // The damaged line is emitted or skipped; the intact one after it always counts.
        let (emitted, skipped) = collect("x.jsonl", &line);
        prop_assert!(emitted >= 1 && emitted + skipped >= 2, "{emitted} emitted, {skipped} skipped");
        let mut csv = CSV.as_bytes().to_vec();
        csv[csv_at] = byte;
        collect("x.csv", &csv);
    }
}
