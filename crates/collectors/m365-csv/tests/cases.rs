//! Table-driven cases: each folder under `tests/cases/` holds an `input.csv` (UTF-8 or UTF-16),
//! optional `config.toml` options, and what the collector must produce: `expected.jsonl` (the
//! events) and `expected.txt` (counts, daily counts, warnings and errors). Run with `BLESS=1` to
//! rewrite the expectations after a deliberate change, then review the diff.

use std::path::Path;

#[test]
fn cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let config = |dir: &Path| {
        let extra = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
        format!(
            "[site]\naccepted_domains = [\"contoso.example\"]\n\
             [[collector]]\ntype = \"m365_csv\"\npaths = [\"input.csv\"]\n{extra}"
        )
    };
    mailflow_testkit::check_cases(&root, 18, mailflow_collector_m365_csv::build, config, chrono::Utc::now());
}

#[test]
fn sample_config_builds_with_and_without_columns() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = std::fs::read_to_string(dir.join("sample.toml")).unwrap();
    for text in [sample.clone(), sample.replace("# columns", "columns")] {
        let config = mailflow_config::Config::parse(&text, &dir.join("sample.toml"), &|_| None).unwrap();
        mailflow_collector_m365_csv::build(&config.collectors[0]).unwrap();
    }
}
