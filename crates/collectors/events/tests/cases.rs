//! Table-driven cases: each folder under `tests/cases/` holds an `input.*` file, optional
//! `config.toml` options, and what the collector must produce: `expected.jsonl` (the events) and
//! `expected.txt` (counts, warnings and errors). Run with `BLESS=1` to rewrite the expectations
//! after a deliberate change, then review the diff.

use std::path::Path;

#[test]
fn cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let config = |dir: &Path| {
        let input = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with("input."))
            .expect("a case has an input.* file");
        let extra = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
        format!("[[collector]]\ntype = \"events\"\npaths = [\"{input}\"]\n{extra}")
    };
    mailflow_testkit::check_cases(&root, 5, mailflow_collector_events::build, config, chrono::Utc::now());
}
