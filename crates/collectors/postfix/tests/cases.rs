//! Table-driven cases: each folder under `tests/cases/` holds log files, a `config.toml` with the
//! collector's options (and optionally a `[site]`), and what the collector must produce:
//! `expected.jsonl` (the events, with the log lines each was built from) and `expected.txt`
//! (counts, warnings and errors). Run with `BLESS=1` to rewrite the expectations after a
//! deliberate change, then review the diff.

use std::fmt::Write as _;
use std::path::Path;

use mailflow_component::{CollectContext, Emitter};
use mailflow_config::Config;
use mailflow_core::MessageEvent;

#[test]
fn cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "cases are missing");
    let mut failures = Vec::new();
    for dir in dirs {
        let (events, summary) = run_case(&dir);
        for (file, actual) in [("expected.jsonl", events), ("expected.txt", summary)] {
            let path = dir.join(file);
            if std::env::var_os("BLESS").is_some() {
                std::fs::write(&path, &actual).unwrap();
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected != actual {
                failures.push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn run_case(dir: &Path) -> (String, String) {
    let options = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let text = format!("[[collector]]\ntype = \"postfix\"\nname = \"case\"\n{options}");
    let config = Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_postfix::build(&config.collectors[0]).unwrap();

    let mut events: Vec<MessageEvent> = Vec::new();
    let mut push = |e: MessageEvent| events.push(e);
    let mut out = Emitter::new(&mut push);
    let end = "2027-01-31T00:00:00Z".parse().unwrap();
    let ctx = CollectContext { source: "case", site: &config.site, start: chrono::DateTime::UNIX_EPOCH, end };
    let result = collector.collect(&ctx, &mut out);
    let stats = out.into_stats();

    let prefix = format!("{}/", dir.display());
    let portable = |s: &str| s.replace(&prefix, "");
    let mut jsonl = String::new();
    for e in &events {
        writeln!(jsonl, "{}", portable(&serde_json::to_string(e).unwrap())).unwrap();
    }
    let mut summary = format!(
        "result: {:?}\nemitted: {}\nskipped: {}\n",
        result.map_err(|e| e.to_string()),
        stats.emitted,
        stats.skipped
    );
    for w in &stats.warnings {
        writeln!(summary, "warning: {}", portable(w)).unwrap();
    }
    for e in &stats.errors {
        writeln!(summary, "error: {}", portable(e)).unwrap();
    }
    (jsonl, summary)
}
