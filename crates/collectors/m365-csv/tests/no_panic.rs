//! Whatever bytes an export holds, in whichever encoding, the collector emits, skips or reports
//! an error: it never panics.

use std::path::Path;

use mailflow_component::{CollectContext, Emitter};
use mailflow_config::Config;
use proptest::prelude::*;

fn collect(content: &[u8], format: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.csv"), content).unwrap();
    let text = format!(
        "[site]\naccepted_domains = [\"contoso.example\"]\n[[collector]]\ntype = \"m365_csv\"\npaths = [\"x.csv\"]\n\
         max_record_bytes = 4096\nformat = \"{format}\"\n{}",
        if matches!(format, "auto" | "custom") { "columns = { time = \"Received\", sender = \"From\" }" } else { "" }
    );
    let config = Config::parse(&text, &dir.path().join("m.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_m365_csv::build(&config.collectors[0]).unwrap();
    let (mut on_event, mut on_counts) = (|_| {}, |_| {});
    let mut out = Emitter::new(&mut on_event).with_counts(&mut on_counts);
    let start = chrono::DateTime::UNIX_EPOCH;
    let ctx = CollectContext {
        source: "t",
        site: &config.site,
        start,
        end: chrono::Utc::now(),
        report_start: start,
        resume: None,
    };
    collector.collect(&ctx, &mut out).unwrap();
}

/// The UTF-8 fixtures, as text (the UTF-16 ones hold the same).
fn fixtures() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    ["summary-utf8", "detail-utf8-bom", "report-utf8", "custom-utf8", "report-eac-percent"]
        .iter()
        .map(|case| String::from_utf8_lossy(&std::fs::read(root.join(case).join("input.csv")).unwrap()).into_owned())
        .collect()
}

const FORMATS: [&str; 5] = ["auto", "summary", "detail", "connector_report", "custom"];

proptest! {
    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000), format in 0..FORMATS.len()) {
        collect(&bytes, FORMATS[format]);
    }

    #[test]
    fn damaged_fixtures(which in 0..5usize, at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let text = &fixtures()[which];
        for bytes in [text.as_bytes().to_vec(), text.encode_utf16().flat_map(u16::to_le_bytes).collect()] {
            let mut bytes = bytes;
            let i = at.index(bytes.len());
            bytes[i] = byte;
            collect(&bytes, "auto");
            bytes.truncate(cut.index(bytes.len()));
            collect(&bytes, "auto");
        }
    }
}
