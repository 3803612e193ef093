//! Each fixture's totals per direction, connector and TLS version, counted by hand from the
//! files: the UTF-8 and UTF-16 copies of an export must add up to the same numbers.

use std::collections::BTreeMap;
use std::path::Path;

use mailflow_component::{CollectContext, DayCounts, Emitter};
use mailflow_config::Config;
use mailflow_core::{MessageEvent, TlsVersion};

/// "direction connector tls" → messages, plus (emitted, skipped).
fn totals(case: &str) -> (BTreeMap<String, u64>, u64, u64) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases").join(case);
    let extra = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
    let text = format!(
        "[site]\naccepted_domains = [\"contoso.example\"]\n[[collector]]\ntype = \"m365_csv\"\npaths = [\"input.csv\"]\n{extra}"
    );
    let config = Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_m365_csv::build(&config.collectors[0]).unwrap();
    let mut sums = BTreeMap::new();
    let key = |direction: &dyn std::fmt::Display, connector: &Option<String>, tls: &str| {
        format!("{direction} {} {tls}", connector.as_deref().unwrap_or("-"))
    };
    let mut events: Vec<MessageEvent> = Vec::new();
    let mut counts: Vec<DayCounts> = Vec::new();
    let mut on_event = |e| events.push(e);
    let mut on_counts = |c| counts.push(c);
    let mut out = Emitter::new(&mut on_event).with_counts(&mut on_counts);
    let start = chrono::DateTime::UNIX_EPOCH;
    let ctx = CollectContext { source: "t", site: &config.site, start, end: chrono::Utc::now(), report_start: start };
    collector.collect(&ctx, &mut out).unwrap();
    let stats = out.into_stats();
    assert!(stats.errors.is_empty(), "{case}: {:?}", stats.errors);
    for e in &events {
        let tls = format!("{:?}", e.tls.version.unwrap_or(TlsVersion::Unknown));
        *sums.entry(key(&e.direction, &e.connector, &tls)).or_default() += 1;
    }
    for c in &counts {
        for version in TlsVersion::ALL {
            let n = c.counters.tls.get(version);
            if n > 0 {
                *sums.entry(key(&c.direction, &c.connector, &format!("{version:?}"))).or_default() += n;
            }
        }
    }
    (sums, stats.emitted, stats.skipped)
}

fn expect(case: &str, emitted: u64, skipped: u64, want: &[(&str, u64)]) {
    let want: BTreeMap<String, u64> = want.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(totals(case), (want, emitted, skipped), "{case}");
}

#[test]
fn summary() {
    let want = [
        ("inbound - Unknown", 2),
        ("inbound From Fabrikam Unknown", 1),
        ("outbound - Unknown", 3),
        ("outbound To Fabrikam Unknown", 2),
    ];
    expect("summary-utf8", 8, 4, &want);
    expect("summary-utf16le-bom", 8, 4, &want);
}

#[test]
fn detail() {
    let want = [
        ("inbound - Tls1_2", 1),
        ("inbound - Tls1_3", 1),
        ("inbound - Unknown", 1),
        ("inbound From Fabrikam Tls1_2", 1),
        ("outbound - Tls1_2", 2),
        ("outbound - Tls1_3", 1),
        ("outbound To Fabrikam Tls1_2", 1),
    ];
    expect("detail-utf8-bom", 8, 5, &want);
    expect("detail-utf16le", 8, 5, &want);
}

#[test]
fn connector_report() {
    expect(
        "report-utf8",
        1225,
        5,
        &[
            ("inbound - None", 3),
            ("inbound - Tls1_0", 1),
            ("inbound - Tls1_2", 400),
            ("inbound - Tls1_3", 96),
            ("inbound - Unknown", 20),
            ("inbound From Fabrikam Tls1_2", 168),
            ("inbound From Fabrikam Tls1_3", 12),
            ("outbound - None", 5),
            ("outbound - Tls1_1", 2),
            ("outbound - Tls1_2", 300),
            ("outbound - Tls1_3", 93),
            ("outbound To Fabrikam Tls1_2", 120),
            ("outbound To Fabrikam Tls1_3", 5),
        ],
    );
    expect(
        "report-utf16le-bom",
        5230,
        1,
        &[
            ("inbound - None", 2),
            ("inbound - Tls1_0", 1),
            ("inbound - Tls1_2", 900),
            ("inbound - Tls1_3", 97),
            ("inbound From Fabrikam Tls1_2", 1180),
            ("inbound From Fabrikam Tls1_3", 20),
            ("outbound - None", 8),
            ("outbound - Tls1_0", 12),
            ("outbound - Tls1_2", 2410),
            ("outbound - Tls1_3", 600),
        ],
    );
}

#[test]
fn custom_columns() {
    expect(
        "custom-utf8",
        4,
        2,
        &[
            ("inbound - Unknown", 1),
            ("inbound From Fabrikam Tls1_2", 1),
            ("outbound - Tls1_3", 1),
            ("outbound To Fabrikam None", 1),
        ],
    );
    expect("custom-utf16le", 5, 0, &[("inbound - Unknown", 2), ("outbound - Unknown", 3)]);
}
