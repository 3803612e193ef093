//! Table-driven cases: each folder under `tests/cases/` holds log files, a `config.toml` with the
//! collector's options (and optionally a `[site]`), and what the collector must produce:
//! `expected.jsonl` (the events, with the log lines each was built from) and `expected.txt`
//! (counts, warnings and errors). Run with `BLESS=1` to rewrite the expectations after a
//! deliberate change, then review the diff.

use std::path::Path;

#[test]
fn cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let config = |dir: &Path| {
        let options = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        format!("[[collector]]\ntype = \"sendmail\"\nname = \"case\"\n{options}")
    };
    let end = "2027-01-31T00:00:00Z".parse().unwrap();
    mailflow_testkit::check_cases(&root, 8, mailflow_collector_sendmail::build, config, end);
}
