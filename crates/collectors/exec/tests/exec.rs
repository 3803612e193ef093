//! Real programs, run the way mailflow runs them: shell scripts written into a temporary config
//! folder, each showing one part of the contract or one way a program can fail.

#![cfg(unix)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mailflow_component::{CollectContext, Emitter, SourceStats};
use mailflow_config::Config;
use mailflow_core::{Direction, MessageEvent, TlsVersion};

const EVENT: &str = r#"{"time":"2026-12-01T08:00:00Z","direction":"inbound"}"#;

/// What one run produced.
struct Outcome {
    events: Vec<MessageEvent>,
    stats: SourceStats,
    result: Result<(), String>,
    elapsed: Duration,
}

fn time(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Writes an executable `#!/bin/sh` script into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(format!("#!/bin/sh\n{body}").as_bytes()).unwrap();
    file.sync_all().unwrap();
    drop(file);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs an `exec` collector named "gw" with `options`, its config file in `dir`, for the
/// week of 2026-12-01 in Berlin (and the week before, for comparisons).
fn run(dir: &Path, options: &str) -> Outcome {
    let text =
        format!("[site]\ntimezone = \"Europe/Berlin\"\n\n[[collector]]\ntype = \"exec\"\nname = \"gw\"\n{options}\n");
    let config = Config::parse(&text, &dir.join("mailflow.toml"), &|_| None).unwrap();
    let collector = mailflow_collector_exec::build(&config.collectors[0]).unwrap();
    let mut events = Vec::new();
    let mut push = |e| events.push(e);
    let mut out = Emitter::new(&mut push);
    let ctx = CollectContext {
        source: "gw",
        site: &config.site,
        start: time("2026-11-23T23:00:00Z"),
        end: time("2026-12-07T23:00:00Z"),
        report_start: time("2026-11-30T23:00:00Z"),
        resume: None,
    };
    let began = Instant::now();
    let result = collector.collect(&ctx, &mut out).map_err(|e| e.to_string());
    let elapsed = began.elapsed();
    let stats = out.into_stats();
    Outcome { events, stats, result, elapsed }
}

/// The build error for `options`.
fn config_error(options: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[[collector]]\ntype = \"exec\"\n{options}\n");
    let config = Config::parse(&text, &dir.path().join("mailflow.toml"), &|_| None).unwrap();
    match mailflow_collector_exec::build(&config.collectors[0]) {
        Ok(_) => panic!("{options} was accepted"),
        Err(e) => e.to_string(),
    }
}

/// Whether process `pid` is gone (or a zombie waiting for its parent: it runs no more).
fn gone(pid: &str) -> bool {
    let pid = pid.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let dead = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) if Path::new("/proc/self").exists() => true,
            Err(_) => !std::process::Command::new("kill").args(["-0", pid]).status().unwrap().success(),
        };
        if dead || Instant::now() > deadline {
            return dead;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_are_counted_exactly_with_evidence_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "events.sh",
        r#"echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound","peer":{"ip":"192.0.2.1"}}'
echo ''
echo '{"time":"2026-12-01T09:00:00Z","direction":"outbound","tls":{"version":"tls1_3"}}'
printf '%s\r\n' '{"time":"2026-12-01T10:00:00+01:00","direction":"outbound","evidence":[{"file":"/var/log/gw.log","line":7}]}'
"#,
    );
    let outcome = run(dir.path(), r#"command = ["./events.sh"]"#);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats, SourceStats { emitted: 3, ..SourceStats::default() });
    let e = &outcome.events;
    assert_eq!(e.len(), 3);
    assert_eq!((e[0].direction, e[0].peer.ip), (Direction::Inbound, Some("192.0.2.1".parse().unwrap())));
    assert_eq!(e[1].tls.version, Some(TlsVersion::Tls1_3));
    assert_eq!(e[2].time, time("2026-12-01T09:00:00Z"));
    let at = |e: &MessageEvent| (e.evidence.0[0].file.as_deref().map(String::from), e.evidence.0[0].line);
    assert_eq!(at(&e[0]), (Some("./events.sh stdout".into()), Some(1)));
    assert_eq!(at(&e[1]), (Some("./events.sh stdout".into()), Some(3)));
    assert_eq!(at(&e[2]), (Some("/var/log/gw.log".into()), Some(7)), "a producer's own evidence is kept");
}

#[test]
fn settings_and_range_arrive_as_one_json_document_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    // Keeps standard input as it came, and echoes it back in an event, escaped as a JSON string.
    script(
        dir.path(),
        "echo.sh",
        r#"cat > stdin.json
doc=$(sed 's/\\/\\\\/g; s/"/\\"/g' stdin.json)
printf '{"time":"2026-12-01T08:00:00Z","direction":"inbound","sender":"%s"}\n' "$doc"
"#,
    );
    let outcome = run(
        dir.path(),
        r#"command = ["./echo.sh"]
settings = { path = "/var/log/gw.csv", port = 25, since = 2026-12-01T08:00:00Z, list = [1, "two"], nested = { quote = "say \"hi\" \\ bye" } }"#,
    );
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats.warnings, Vec::<String>::new());
    let raw = std::fs::read_to_string(dir.path().join("stdin.json")).unwrap();
    assert_eq!(raw.matches('\n').count(), 1, "one line, then the end: {raw:?}");
    assert!(raw.ends_with("}\n"), "{raw:?}");
    let expected = serde_json::json!({
        "protocol": 1,
        "source": "gw",
        "start": "2026-11-23T23:00:00Z",
        "end": "2026-12-07T23:00:00Z",
        "report_start": "2026-11-30T23:00:00Z",
        "timezone": "Europe/Berlin",
        "settings": {
            "path": "/var/log/gw.csv",
            "port": 25,
            "since": "2026-12-01T08:00:00Z",
            "list": [1, "two"],
            "nested": { "quote": "say \"hi\" \\ bye" }
        }
    });
    assert_eq!(serde_json::from_str::<serde_json::Value>(&raw).unwrap(), expected);
    let echoed = outcome.events[0].sender.as_deref().unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(echoed).unwrap(), expected);
}

#[test]
fn range_comes_in_the_environment_and_in_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "range.sh",
        r#"printf '{"time":"%s","direction":"inbound","sender":"%s","service":"%s","transport":"%s","message_id":"%s","queue_id":"%s","connector":"%s","recipient_domains":["%s","%s","%s","%s","%s"]}\n' \
  "$MAILFLOW_START" "$1" "$2" "$3" "$4" "$GREETING" "$MAILFLOW_PROTOCOL" \
  "$MAILFLOW_END" "$MAILFLOW_REPORT_START" "$MAILFLOW_SOURCE" "$MAILFLOW_TIMEZONE" "$(pwd)"
"#,
    );
    let outcome = run(
        dir.path(),
        r#"command = ["./range.sh", "--from={start}", "{end}", "{report_start}|{source}|{timezone}", "{time: .t}"]
env = { GREETING = "hello" }"#,
    );
    assert_eq!(outcome.result, Ok(()));
    let e = &outcome.events[0];
    assert_eq!(e.time, time("2026-11-23T23:00:00Z"));
    assert_eq!(e.sender.as_deref(), Some("--from=2026-11-23T23:00:00Z"));
    assert_eq!(e.service.as_deref(), Some("2026-12-07T23:00:00Z"));
    assert_eq!(e.transport.as_deref(), Some("2026-11-30T23:00:00Z|gw|Europe/Berlin"));
    assert_eq!(e.message_id.as_deref(), Some("{time: .t}"), "other braces are left alone");
    assert_eq!(e.queue_id.as_deref(), Some("hello"));
    assert_eq!(e.connector.as_deref(), Some("1"));
    let folder = dir.path().canonicalize().unwrap().display().to_string();
    assert_eq!(
        e.recipient_domains,
        ["2026-12-07T23:00:00Z", "2026-11-30T23:00:00Z", "gw", "Europe/Berlin", folder.as_str()],
        "MAILFLOW_END, MAILFLOW_REPORT_START, MAILFLOW_SOURCE, MAILFLOW_TIMEZONE, and the config folder as working dir"
    );
}

#[test]
fn working_dir_is_taken_from_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    script(dir.path(), "pwd.sh", "pwd > where.txt\n");
    let outcome = run(dir.path(), "command = [\"./pwd.sh\"]\nworking_dir = \"work\"");
    assert_eq!(outcome.result, Ok(()));
    let written = std::fs::read_to_string(dir.path().join("work/where.txt")).unwrap();
    assert_eq!(Path::new(written.trim()), dir.path().join("work").canonicalize().unwrap());

    let outcome = run(dir.path(), "command = [\"./pwd.sh\"]\nworking_dir = \"missing\"");
    let e = outcome.result.unwrap_err();
    assert!(e.contains("`working_dir`") && e.contains("missing is not a folder"), "{e}");
}

#[test]
fn a_first_line_announcing_protocol_1_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "v1.sh", &format!("echo '{{\"mailflow_protocol\":1,\"name\":\"v1\"}}'\necho '{EVENT}'\n"));
    let outcome = run(dir.path(), r#"command = ["./v1.sh"]"#);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats, SourceStats { emitted: 1, ..SourceStats::default() });
    assert_eq!(outcome.events[0].evidence.0[0].line, Some(2));
}

#[test]
fn another_protocol_is_refused_and_the_program_stopped() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "v2.sh",
        &format!("echo '{{\"mailflow_protocol\":2}}'\necho '{EVENT}'\necho 'WARN speaking v2' >&2\nsleep 30\n"),
    );
    let outcome = run(dir.path(), r#"command = ["./v2.sh"]"#);
    let e = outcome.result.unwrap_err();
    assert!(e.starts_with("./v2.sh announces protocol 2; this mailflow speaks protocol 1; it was stopped"), "{e}");
    assert_eq!(outcome.stats.emitted, 0, "nothing after a refused announcement counts");
    assert!(outcome.elapsed < Duration::from_secs(20), "stopped, not waited for: {:?}", outcome.elapsed);
}

#[test]
fn garbage_lines_are_skipped_and_counted_each_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "garbage.sh",
        &format!(
            r#"echo 'Starting export...'
echo '{EVENT}'
echo '{{"time":"2026-12-01T08:00:00","direction":"inbound"}}'
printf '\377\376\001\n'
echo '{{"time":"2026-12-01T08:00:00Z","direction":"inbound","conector":"x"}}'
echo '{{"mailflow_protocol":1}}'
echo '{EVENT}'
printf '{{"time":'
"#
        ),
    );
    let outcome = run(dir.path(), r#"command = ["./garbage.sh"]"#);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!((outcome.stats.emitted, outcome.stats.skipped), (2, 6));
    let w = &outcome.stats.warnings;
    assert_eq!(w.len(), 6);
    assert!(w[0].starts_with("./garbage.sh stdout line 1: skipped: expected one JSON event per line: "), "{}", w[0]);
    assert!(w[1].starts_with("./garbage.sh stdout line 3: skipped: ") && w[1].contains("UTC offset"), "{}", w[1]);
    assert!(w[2].starts_with("./garbage.sh stdout line 4: skipped: "), "{}", w[2]);
    assert!(w[3].contains("line 5: skipped: ") && w[3].contains("unknown field `conector`"), "{}", w[3]);
    assert_eq!(w[4], "./garbage.sh stdout line 6: skipped: a protocol announcement must be the first line of output");
    assert!(w[5].starts_with("./garbage.sh stdout line 8: skipped: "), "an unfinished last line: {}", w[5]);
    assert!(outcome.stats.errors.is_empty(), "{:?}", outcome.stats.errors);
}

#[test]
fn an_overlong_line_is_skipped_and_the_next_still_counts() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "long.sh", &format!("head -c 5000 /dev/zero | tr '\\0' x\necho\necho '{EVENT}'\n"));
    let outcome = run(dir.path(), "command = [\"./long.sh\"]\nmax_line_bytes = 100");
    assert_eq!(outcome.result, Ok(()));
    assert_eq!((outcome.stats.emitted, outcome.stats.skipped), (1, 1));
    assert_eq!(
        outcome.stats.warnings,
        ["./long.sh stdout line 1: skipped: line of 5000 bytes is over max_line_bytes (100)"]
    );
}

#[test]
fn a_non_zero_exit_keeps_the_events_before_and_quotes_stderr() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "fail.sh",
        &format!(
            "echo '{EVENT}'\necho '{EVENT}'\necho 'INFO reading /var/log/gw.csv' >&2\n\
             echo 'ERROR cannot open /var/log/gw.csv: Permission denied' >&2\nexit 3\n"
        ),
    );
    let outcome = run(dir.path(), r#"command = ["./fail.sh"]"#);
    assert_eq!(outcome.result, Ok(()), "the events count; the failure is the source's error");
    assert_eq!(outcome.events.len(), 2);
    assert_eq!(
        outcome.stats.errors,
        ["./fail.sh failed with exit code 3; the 2 events it printed before count, so the source is partial; \
          last lines on stderr: \"INFO reading /var/log/gw.csv\" | \"ERROR cannot open /var/log/gw.csv: Permission denied\""]
    );
}

#[test]
fn a_program_killed_by_a_signal_says_which() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "signal.sh", &format!("echo '{EVENT}'\nkill -TERM $$\nsleep 5\n"));
    let outcome = run(dir.path(), r#"command = ["./signal.sh"]"#);
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(
        outcome.stats.errors,
        [
            "./signal.sh was killed by signal 15 (SIGTERM); the 1 event it printed before counts, so the source is partial"
        ]
    );
}

#[test]
fn a_program_over_its_time_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "slow.sh",
        &format!("echo '{EVENT}'\nsleep 30 &\necho $! > child.pid\necho 'INFO waiting for the API' >&2\nsleep 30\n"),
    );
    let outcome = run(dir.path(), "command = [\"./slow.sh\"]\ntimeout_secs = 1");
    assert!(outcome.elapsed < Duration::from_secs(20), "{:?}", outcome.elapsed);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.events.len(), 1, "what it printed before counts");
    assert_eq!(
        outcome.stats.errors,
        [
            "./slow.sh timed out: it did not finish within 1 s (timeout_secs) and was killed; the 1 event it printed before counts, \
          so the source is partial; last lines on stderr: \"INFO waiting for the API\""
        ]
    );
    let child = std::fs::read_to_string(dir.path().join("child.pid")).unwrap();
    assert!(gone(&child), "the background sleep {child} was killed with its group");
}

#[test]
fn a_program_ignoring_sigterm_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "stubborn.sh", "trap '' TERM\nsleep 30\n");
    let outcome = run(dir.path(), "command = [\"./stubborn.sh\"]\ntimeout_secs = 1");
    assert!(outcome.elapsed < Duration::from_secs(20), "{:?}", outcome.elapsed);
    assert_eq!(
        outcome.stats.errors,
        ["./stubborn.sh timed out: it did not finish within 1 s (timeout_secs) and was killed; it printed no events"]
    );
}

#[test]
fn what_a_program_leaves_running_is_killed_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    // The background sleep holds standard output open; the run must not wait for it.
    script(dir.path(), "leaves.sh", &format!("sleep 30 &\necho $! > child.pid\necho '{EVENT}'\n"));
    let outcome = run(dir.path(), r#"command = ["./leaves.sh"]"#);
    assert!(outcome.elapsed < Duration::from_secs(20), "{:?}", outcome.elapsed);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats, SourceStats { emitted: 1, ..SourceStats::default() });
    let child = std::fs::read_to_string(dir.path().join("child.pid")).unwrap();
    assert!(gone(&child), "the background sleep {child} was killed");
}

#[test]
fn a_program_that_cannot_start_says_why_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().display();

    let e = run(dir.path(), r#"command = ["./missing.sh"]"#).result.unwrap_err();
    assert_eq!(
        e,
        format!(
            "cannot run {folder}/missing.sh: No such file or directory (os error 2); the program was not found: \
             check `command` (a relative path is taken from the config file's folder)"
        )
    );

    let e = run(dir.path(), r#"command = ["mailflow-test-no-such-program"]"#).result.unwrap_err();
    assert!(e.starts_with("cannot run mailflow-test-no-such-program: No such file or directory"), "{e}");
    assert!(e.contains("; no program of that name was found on PATH: install it"), "{e}");

    std::fs::write(dir.path().join("plain.sh"), format!("#!/bin/sh\necho '{EVENT}'\n")).unwrap();
    let e = run(dir.path(), r#"command = ["./plain.sh"]"#).result.unwrap_err();
    assert!(e.contains("plain.sh: Permission denied (os error 13); make it executable (chmod +x"), "{e}");

    std::fs::write(dir.path().join("interp.sh"), "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(dir.path().join("interp.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = run(dir.path(), r#"command = ["./interp.sh"]"#).result.unwrap_err();
    assert!(
        e.contains("interp.sh: No such file or directory (os error 2); the file exists, but the interpreter"),
        "{e}"
    );

    let e = run(dir.path(), r#"command = ["./"]"#).result.unwrap_err();
    assert!(e.contains("it is a folder, not a program"), "{e}");
}

#[test]
fn stderr_is_logged_by_level_and_a_flood_of_it_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "noisy.sh",
        &format!(
            r#"yes 'WARN noise noise noise noise' | head -n 40000 >&2
head -c 1048576 /dev/zero | tr '\0' e >&2
echo >&2
i=0
while [ $i -lt 300 ]; do echo '{EVENT}'; i=$((i+1)); done
echo 'ERROR last words' >&2
"#
        ),
    );
    let captured = mailflow_testkit::LogCapture::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let outcome = tracing::subscriber::with_default(subscriber, || run(dir.path(), r#"command = ["./noisy.sh"]"#));
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats, SourceStats { emitted: 300, ..SourceStats::default() });
    let log = captured.text();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.iter().filter(|l| l.contains(" WARN ") && l.contains("noise noise")).count(), 40_000);
    let last = lines.iter().find(|l| l.contains("last words")).expect("the last line is logged");
    assert!(
        last.contains("ERROR") && last.contains("program=\"./noisy.sh\"") && last.contains("source=\"gw\""),
        "{last}"
    );
    assert!(!last.contains("ERROR last words"), "the level word is not repeated: {last}");
    let long = lines.iter().find(|l| l.contains("eeee")).expect("the long line is logged");
    assert!(long.contains(&format!("{}…", "e".repeat(100))) && long.len() < 5000, "cut: {} bytes", long.len());
}

#[test]
fn a_program_that_never_reads_its_input_does_not_stall_the_run() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "deaf.sh", &format!("echo '{EVENT}'\n"));
    let big = "x".repeat(512 * 1024);
    let outcome =
        run(dir.path(), &format!("command = [\"./deaf.sh\"]\ntimeout_secs = 30\nsettings = {{ blob = \"{big}\" }}"));
    assert!(outcome.elapsed < Duration::from_secs(20), "{:?}", outcome.elapsed);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats, SourceStats { emitted: 1, ..SourceStats::default() });
}

#[test]
fn argv_is_never_given_to_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(
        dir.path(),
        &format!(
            r#"command = ["sh", "-c", "echo '{}' ; echo \"$1\"", "sh", "$(touch pwned); {{source}}"]"#,
            EVENT.replace('"', "\\\"")
        ),
    );
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats.emitted, 1);
    assert_eq!(
        outcome.stats.warnings,
        ["sh stdout line 2: skipped: expected one JSON event per line: expected value at line 1 column 1"]
    );
    assert!(!dir.path().join("pwned").exists(), "an argument is text, not a command");
}

#[test]
fn config_mistakes_are_config_errors() {
    let cases = [
        ("command = []", "`command` is empty; give the program and its arguments"),
        ("command = [\"\"]", "`command` starts with an empty program name"),
        ("command = \"/usr/bin/x --flag\"", "invalid type: string"),
        ("command = [\"x\"]\ntimeout_secs = 0", "`timeout_secs` must be above 0"),
        ("command = [\"x\"]\nmax_line_bytes = 0", "`max_line_bytes` must be above 0"),
        ("command = [\"x\"]\nshell = true", "unknown field `shell`"),
        (
            "command = [\"x\"]\nsettings = 5",
            "`settings` must be a table, like settings = { path = \"/var/log/gw.csv\" }, not an integer",
        ),
        ("command = [\"x\"]\nsettings = { ratio = nan }", "`settings.ratio` is NaN, which JSON cannot hold"),
        ("command = [\"x\"]\nenv = { MAILFLOW_START = \"x\" }", "`env` may not set MAILFLOW_START"),
        ("command = [\"x\"]\nenv = { \"A=B\" = \"x\" }", "is not a variable name"),
    ];
    for (options, expected) in cases {
        let e = config_error(options);
        assert!(e.contains(expected), "{options}: {e}");
        assert!(e.contains("[[collector]] \"exec\""), "{options}: names the section: {e}");
    }
}

#[test]
fn a_bare_program_name_is_found_on_path() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(dir.path(), &format!(r#"command = ["echo", "{}"]"#, EVENT.replace('"', "\\\"")));
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.stats, SourceStats { emitted: 1, ..SourceStats::default() });
    assert_eq!(outcome.events[0].evidence.0[0].file.as_deref(), Some("echo stdout"));
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever a program prints, each line is an event, a skip or blank; nothing panics.
        #[test]
        fn any_output(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("out.bin"), &bytes).unwrap();
            let outcome = run(dir.path(), "command = [\"cat\", \"out.bin\"]\nmax_line_bytes = 512");
            prop_assert_eq!(outcome.result, Ok(()));
            prop_assert!(outcome.stats.errors.is_empty(), "{:?}", outcome.stats.errors);
            let lines = bytes.split(|&b| b == b'\n').count() as u64;
            prop_assert!(outcome.stats.emitted + outcome.stats.skipped <= lines);
        }
    }
}

#[test]
fn the_sample_config_builds_with_every_option() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = std::fs::read_to_string(dir.join("sample.toml")).unwrap();
    let every: String = sample
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(option) if option.contains(" = ") => option,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(every, sample);
    for text in [sample, every] {
        let config = Config::parse(&text, &dir.join("sample.toml"), &|_| Some("secret".into())).unwrap();
        mailflow_collector_exec::build(&config.collectors[0]).unwrap();
    }
}

/// The names of the variables `env.sh` found in its environment, from `env.txt`. The shell's
/// own (`PWD`, `SHLVL`, `_`, `OLDPWD`) are left out.
fn program_env(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    text.split('\0')
        .filter_map(|entry| entry.split_once('='))
        .filter(|(name, _)| !["PWD", "SHLVL", "_", "OLDPWD"].contains(name))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn clear_env_passes_only_the_basics_env_and_the_mailflow_variables() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "env.sh", "env -0 > env.txt\n");
    // A variable of the test's own environment that clear_env must drop (cargo sets several).
    let (inherited, value) = std::env::vars()
        .find(|(name, _)| !mailflow_collector_exec::KEPT_ENV.contains(&name.as_str()) && !name.starts_with("MAILFLOW_"))
        .expect("the test runs with some variable beyond PATH, HOME, LANG, LC_ALL, TZ");

    let outcome = run(dir.path(), "command = [\"./env.sh\"]\nenv = { GREETING = \"hello\" }");
    assert_eq!(outcome.result, Ok(()));
    let all = program_env(dir.path());
    assert_eq!(all.get(&inherited), Some(&value), "by default, mailflow's whole environment is passed on");

    let outcome = run(dir.path(), "command = [\"./env.sh\"]\nenv = { GREETING = \"hello\" }\nclear_env = true");
    assert_eq!(outcome.result, Ok(()));
    let cleared = program_env(dir.path());
    let mut expected: Vec<&str> = mailflow_collector_exec::KEPT_ENV
        .iter()
        .copied()
        .filter(|name| std::env::var_os(name).is_some())
        .chain(["GREETING"])
        .chain(mailflow_collector_exec::RESERVED_ENV)
        .collect();
    expected.sort_unstable();
    assert_eq!(cleared.keys().map(String::as_str).collect::<Vec<_>>(), expected, "{inherited} among those dropped");
    assert_eq!(cleared["GREETING"], "hello");
    assert_eq!(cleared["MAILFLOW_SOURCE"], "gw");
    for name in mailflow_collector_exec::KEPT_ENV {
        assert_eq!(cleared.get(*name).map(String::as_str), std::env::var(name).ok().as_deref(), "{name} is kept");
    }

    // PATH is kept, so a bare program name is still found.
    let outcome =
        run(dir.path(), &format!(r#"command = ["echo", "{}"]{}clear_env = true"#, EVENT.replace('"', "\\\""), "\n"));
    assert_eq!((outcome.result, outcome.stats.emitted), (Ok(()), 1));
}

/// Not a test of its own: `a_program_is_stopped_when_mailflow_dies` runs it in a process of
/// its own, standing in for mailflow, and kills that process while the program runs.
#[test]
#[ignore = "run by a_program_is_stopped_when_mailflow_dies"]
fn stand_in_for_mailflow() {
    let Some(dir) = std::env::var_os("MAILFLOW_EXEC_TEST_STAND_IN") else {
        return;
    };
    run(Path::new(&dir), "command = [\"./forever.sh\"]\ntimeout_secs = 60");
}

/// mailflow may die without stopping the program (a second signal to the daemon exits at once;
/// `SIGKILL`), and the program's own process group keeps a `Ctrl-C` from reaching it: it gets
/// `SIGTERM` as its parent-death signal.
#[cfg(target_os = "linux")]
#[test]
fn a_program_is_stopped_when_mailflow_dies() {
    let dir = tempfile::tempdir().unwrap();
    // `exec`: the program itself is the sleep, which ends on SIGTERM.
    script(dir.path(), "forever.sh", "echo $$ > program.pid.tmp\nmv program.pid.tmp program.pid\nexec sleep 60\n");
    let mut mailflow = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stand_in_for_mailflow", "--ignored", "--test-threads=1"])
        .env("MAILFLOW_EXEC_TEST_STAND_IN", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("program.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "the stand-in never started the program");
        assert!(mailflow.try_wait().unwrap().is_none(), "the stand-in ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let program = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    assert!(!gone(&program), "the program {program} runs");
    // No chance to clean up: nothing but the kernel can stop the program now.
    mailflow.kill().unwrap();
    mailflow.wait().unwrap();
    assert!(gone(&program), "the program {program} outlived mailflow");
}
