//! Table-driven cases: each folder under `tests/cases/` holds a `program.sh`, run as
//! `command = ["sh", "program.sh"]` unless its optional `config.toml` gives other options, and
//! what the collector must produce: `expected.jsonl` (the events) and `expected.txt` (counts,
//! warnings and errors). Run with `BLESS=1` to rewrite the expectations after a deliberate
//! change, then review the diff.

#![cfg(unix)]

use std::path::Path;

#[test]
fn cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let config = |dir: &Path| {
        let options = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
        let command = if options.contains("command =") { "" } else { "command = [\"sh\", \"program.sh\"]\n" };
        format!("[[collector]]\ntype = \"exec\"\n{command}{options}")
    };
    let end = "2026-12-08T00:00:00Z".parse().unwrap();
    mailflow_testkit::check_cases(&root, 5, mailflow_collector_exec::build, config, end);
}
