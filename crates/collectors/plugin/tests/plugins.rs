//! The plugin host against real libraries: the example plugin and a misbehaving one, both
//! built with the SDK, and a plugin written in C against the checked-in header, compiled here
//! with the system's C compiler (`cc`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};
use mailflow_config::Config;
use mailflow_core::{Direction, TlsVersion};
use mailflow_testkit::{Built, Collected, build_cdylibs, collect};

fn target_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// The SDK plugins, built once for all tests: (example-jsonl, misbehaving).
fn rust_plugins() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut built = build_cdylibs(
            &["mailflow-plugin-example-jsonl", "mailflow-test-plugin"],
            "dev",
            &target_dir().join("plugins"),
        );
        let misbehaving = built.pop().unwrap();
        (built.pop().unwrap(), misbehaving)
    })
}

/// `tests/c/plugin.c` compiled with `define` (or none) into a library of its own.
fn c_plugin(define: Option<&str>) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = target_dir().join(format!("c-plugin-{}.so", define.unwrap_or("good")));
    let mut cc = Command::new(std::env::var_os("CC").unwrap_or("cc".into()));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-unused", "-fvisibility=hidden", "-shared", "-fPIC"])
        .arg("-I")
        .arg(root.join("../../plugin-abi/include"))
        .arg("-o")
        .arg(&output)
        .arg(root.join("tests/c/plugin.c"));
    if let Some(define) = define {
        cc.arg(format!("-D{define}"));
    }
    let status = cc.status().expect("a C compiler (`cc`, or $CC) is installed");
    assert!(status.success(), "cc failed on tests/c/plugin.c");
    output
}

const START: &str = "2026-12-01T00:00:00Z";

fn bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let start: DateTime<Utc> = START.parse().unwrap();
    (start, start + TimeDelta::days(7))
}

fn run_plugin(path: &Path, settings: &str, timeout_secs: u64) -> Collected {
    let text = format!(
        "[[collector]]\ntype = \"plugin\"\npath = {path:?}\ntimeout_secs = {timeout_secs}\nsettings = {settings}\n"
    );
    let start: DateTime<Utc> = START.parse().unwrap();
    collect(
        mailflow_collector_plugin::build,
        &text,
        &target_dir().join("mailflow.toml"),
        start,
        start + TimeDelta::days(7),
    )
}

fn build_error(path: &Path, settings: &str) -> String {
    let text = format!("[[collector]]\ntype = \"plugin\"\npath = {path:?}\nsettings = {settings}\n");
    let config = Config::parse(&text, &target_dir().join("mailflow.toml"), &|_| None).unwrap();
    match mailflow_collector_plugin::build(&config.collectors[0]) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

fn versions(run: &Collected) -> Vec<(Direction, Option<TlsVersion>)> {
    run.events.iter().map(|e| (e.direction, e.tls.version)).collect()
}

#[test]
fn the_example_plugin_reads_json_lines_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let mut lines = String::new();
    for day in ["11-29", "11-30", "12-01", "12-01", "12-03"] {
        lines += &format!(
            "{{\"time\":\"2026-{day}T12:00:00Z\",\"direction\":\"inbound\",\"tls\":{{\"version\":\"tls1_3\"}}}}\n"
        );
    }
    lines += "{\"time\":\"2026-12-02T12:00:00Z\",\"direction\":\"outbound\",\"connector\":\"partner\"}\n\n";
    lines += "{\"time\":\"2026-12-02T12:00:00Z\",\"direction\":\"outward\"}\n";
    lines += &format!(
        "{{\"time\":\"2026-12-02T12:00:00Z\",\"direction\":\"inbound\",\"sender\":\"{}\"}}\n",
        "a".repeat(300)
    );
    lines += "{\"time\":\"2026-12-02T13:00:00Z\",\"direction\":\"inbound\"}";
    std::fs::write(&file, lines).unwrap();

    let settings = format!("{{ paths = [{file:?}], batch_events = 2, max_line_bytes = 200 }}");
    let run = run_plugin(&rust_plugins().0, &settings, 60);
    assert_eq!(run.result, Ok(()));
    // November is before the range.
    let days: Vec<String> = run.events.iter().map(|e| e.time.format("%m-%d").to_string()).collect();
    assert_eq!(days, ["12-01", "12-01", "12-03", "12-02", "12-02"], "the last line has no newline");
    assert_eq!(run.events[3].connector.as_deref(), Some("partner"));
    assert_eq!(run.events[3].evidence.to_string(), format!("{}:6", file.display()));
    assert_eq!(run.stats.skipped, 2);
    let shown = file.display();
    assert_eq!(
        run.stats.warnings,
        [
            format!(
                "{shown}:8: skipped: expected one JSON event per line: unknown variant `outward`, expected `inbound` or `outbound` at line 1 column 52"
            ),
            format!("{shown}:9: skipped: the line is over max_line_bytes (200)"),
        ]
    );

    let missing = run_missing_file(&dir.path().join("gone.jsonl"));
    assert_eq!(missing.events.len(), 0);
    let gone = dir.path().join("gone.jsonl");
    assert!(
        missing.stats.errors[0]
            .ends_with(&format!("next_batch failed: {}: No such file or directory (os error 2)", gone.display())),
        "{:?}",
        missing.stats.errors
    );
}

fn run_missing_file(path: &Path) -> Collected {
    run_plugin(&rust_plugins().0, &format!("{{ paths = [{path:?}] }}"), 60)
}

#[test]
fn a_plugin_written_in_c_works_through_the_header() {
    let run = run_plugin(&c_plugin(None), "{ region = \"eu\" }", 60);
    assert_eq!(run.result, Ok(()));
    assert!(run.stats.errors.is_empty() && run.stats.warnings.is_empty(), "{:?}", run.stats);
    assert_eq!(
        versions(&run),
        [
            (Direction::Inbound, Some(TlsVersion::Tls1_2)),
            (Direction::Outbound, Some(TlsVersion::None)),
            (Direction::Inbound, Some(TlsVersion::Tls1_3))
        ]
    );
    assert_eq!(run.events[0].time, START.parse::<DateTime<Utc>>().unwrap());
    assert_eq!(run.events[0].size, Some(2048));
    assert_eq!(run.events[1].evidence.to_string(), "plugin c-example:2");

    let refused = run_plugin(&c_plugin(Some("FAIL_CREATE")), "{}", 60);
    assert_eq!(refused.events.len(), 0);
    assert!(
        refused.stats.errors[0].ends_with("): create failed: settings need a \"region\""),
        "{:?}",
        refused.stats.errors
    );
}

#[test]
fn libraries_that_are_not_plugins_of_this_abi_are_refused_at_load_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("libnothing.so");
    assert!(build_error(&missing, "{}").contains(&format!("plugin library {} does not exist", missing.display())));

    let text = dir.path().join("libtext.so");
    std::fs::write(&text, "not a library").unwrap();
    let error = build_error(&text, "{}");
    assert!(error.contains(&format!("{} is not a library this system can load", text.display())), "{error}");

    let error = build_error(Path::new("plugins/libmine.so"), "{}");
    assert!(error.contains("`path` must be an absolute path to the plugin library"), "{error}");

    let error = build_error(&c_plugin(Some("WRONG_VERSION")), "{}");
    assert!(error.contains("is built for plugin ABI version 2, but this mailflow speaks version 1"), "{error}");

    let error = build_error(&c_plugin(Some("NO_ENTRY")), "{}");
    assert!(error.contains("is not a mailflow plugin: it exports no `mailflow_plugin_v1` function"), "{error}");

    let error = build_error(&c_plugin(Some("NO_NEXT_BATCH")), "{}");
    assert!(error.contains("its function table has no `next_batch` function"), "{error}");

    let error = build_error(&c_plugin(Some("SHORT_TABLE")), "{}");
    assert!(error.contains("its function table is 48 bytes, but version 1 needs 56"), "{error}");

    // A library that exports nothing of mailflow's: the C compiler's runtime will do.
    let libc = Path::new("/lib/x86_64-linux-gnu/libm.so.6");
    if libc.exists() {
        let error = build_error(libc, "{}");
        assert!(error.contains("exports no `mailflow_plugin_abi_version` function"), "{error}");
    }
}

#[test]
fn errors_and_panics_in_a_plugin_keep_the_events_before_them() {
    let plugin = &rust_plugins().1;
    let shown = format!("plugin \"misbehaving\" ({})", plugin.display());
    for (mode, events, error) in [
        ("fail_create", 0, "create failed: cannot reach the log server at 192.0.2.1:514"),
        ("panic_create", 0, "panicked in create: settings were not checked"),
        ("fail_open", 0, "open_range failed: this source keeps 7 days"),
        ("fail_next", 5, "next_batch failed: the log server closed the connection"),
        ("panic_next", 5, "panicked in next_batch: index out of bounds: the len is 3 but the index is 7"),
    ] {
        let run = run_plugin(plugin, &format!("{{ mode = \"{mode}\", events = 5 }}"), 60);
        assert_eq!(run.events.len(), events, "{mode}");
        assert_eq!(run.stats.errors, [format!("{shown}: {error}")], "{mode}");
    }
    let error = build_error(plugin, "[1, 2]");
    assert!(error.contains("`settings` must be a table"), "{error}");
    let run = run_plugin(plugin, "{ mode = \"none_such\" }", 60);
    assert!(
        run.stats.errors[0]
            .contains("create failed: the plugin's settings are not valid: unknown variant, expected one of `good`"),
        "{:?}",
        run.stats.errors
    );
}

#[test]
fn malformed_events_are_skipped_with_the_plugins_name_and_the_rest_count() {
    let run = run_plugin(&rust_plugins().1, "{ mode = \"malformed\", events = 3 }", 60);
    assert_eq!(run.result, Ok(()));
    assert!(run.stats.errors.is_empty(), "{:?}", run.stats.errors);
    assert_eq!(run.events.len(), 4, "3 good, then one good among three bad");
    assert_eq!(run.events[3].tls.version, Some(TlsVersion::Tls1_2));
    assert_eq!(run.stats.skipped, 3);
    let reasons: Vec<&str> = run.stats.warnings.iter().map(|w| w.split(": skipped: ").nth(1).unwrap()).collect();
    assert!(run.stats.warnings[0].contains("plugin \"misbehaving\""), "{:?}", run.stats.warnings);
    assert!(run.stats.warnings[0].contains("event 4: skipped"), "{:?}", run.stats.warnings);
    assert!(reasons[0].contains("unknown variant `sideways`"), "{reasons:?}");
    assert!(reasons[1].contains("expected ident"), "{reasons:?}");
    assert!(reasons[2].contains("`time` must be RFC 3339"), "{reasons:?}");
}

#[test]
fn a_plugin_that_hangs_is_left_behind_when_the_time_is_up_and_not_run_again_until_it_returns() {
    let config = |mode: &str| {
        format!(
            "[[collector]]\ntype = \"plugin\"\npath = {:?}\ntimeout_secs = 1\nsettings = {{ mode = \"{mode}\", events = 4, hang_secs = 3 }}\n",
            rust_plugins().1
        )
    };
    for mode in ["hang", "spin"] {
        let collector =
            Built::new(mailflow_collector_plugin::build, &config(mode), &target_dir().join("mailflow.toml"));
        let started = std::time::Instant::now();
        let first = collector.run(bounds().0, bounds().1);
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{mode}: waited for the plugin");
        assert_eq!(first.events.len(), 4, "{mode}");
        assert!(
            first.stats.errors[0].ends_with("did not finish within timeout_secs (1 s); the events it gave before count. Its call is left running until it returns"),
            "{mode}: {:?}",
            first.stats.errors
        );
        // The call left behind holds the plugin: a second run right away is refused. (A spinning
        // plugin sees at its next call that no one listens, which may already have happened.)
        let second = collector.run(bounds().0, bounds().1);
        if mode == "hang" {
            assert!(
                second.result.as_ref().is_err_and(|e| e.contains("a call of an earlier run")),
                "{mode}: {:?}",
                second.result
            );
        }
        // Once the call returns (hang) or sees that no one listens (spin), the plugin runs again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let again = collector.run(bounds().0, bounds().1);
            if again.result.is_ok() {
                assert_eq!(again.events.len(), 4, "{mode}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{mode}: the plugin's thread never ended");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

#[test]
fn plugin_logs_reach_the_log_with_the_plugins_name() {
    let captured = mailflow_testkit::LogCapture::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    tracing::subscriber::with_default(subscriber, || {
        let run = run_plugin(&rust_plugins().1, "{ events = 1 }", 60);
        assert_eq!(run.events.len(), 1);
    });
    let logged = captured.text();
    assert!(logged.contains("WARN") && logged.contains("all good events sent plugin=\"misbehaving\""), "{logged}");
}

#[test]
fn events_over_max_line_bytes_are_skipped() {
    let text = format!(
        "[[collector]]\ntype = \"plugin\"\npath = {:?}\nmax_line_bytes = 80\nsettings = {{ mode = \"malformed\" }}\n",
        rust_plugins().1
    );
    let run = Built::new(mailflow_collector_plugin::build, &text, &target_dir().join("mailflow.toml"))
        .run(bounds().0, bounds().1);
    assert_eq!(run.events.len(), 0);
    assert_eq!(run.stats.skipped, 4);
    assert!(
        run.stats.warnings[3].ends_with("event 4: skipped: an event of 81 bytes is over max_line_bytes (80)"),
        "{:?}",
        run.stats.warnings
    );
}
