//! The history store end to end, through the binary: `mailflow ingest` reads only what is new
//! (appended parts, rotated, compressed and truncated files), counts everything exactly once
//! even when killed at random points, and `mailflow report` reads the result back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/collectors/postfix/tests/lab");

/// A config in `dir` with the lab site's connectors, a store at `url`, `collector` and a JSON sink.
fn config(dir: &Path, url: &str, collector: &str) -> PathBuf {
    let lab = std::fs::read_to_string(Path::new(LAB).join("mailflow.toml")).unwrap();
    // The lab's connectors and site, without its collector and sink.
    let site: String = lab.split("[[collector]]").next().unwrap().to_string();
    let connectors = &lab[lab.find("[[connector]]").unwrap()..lab.find("[[sink]]").unwrap()];
    let path = dir.join("mailflow.toml");
    std::fs::write(
        &path,
        format!(
            "{site}{connectors}[store]\nurl = \"{url}\"\ncheckpoint_bytes = 8192\nretention_days = 36500\n{collector}\n\
             [[sink]]\ntype = \"json\"\npath = \"report.json\"\n"
        ),
    )
    .unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mailflow(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailflow"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn ingest(config: &Path) -> String {
    let out = mailflow(config, &["ingest"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// The stored counts of the lab's day, per connector and day, as the report from the store has them.
fn stored(config: &Path) -> Value {
    stored_on(config, "2026-12-04")
}

fn stored_on(config: &Path, day: &str) -> Value {
    let out = mailflow(config, &["report", "-q", "--from", day, "--to", day]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let report: Value =
        serde_json::from_slice(&std::fs::read(config.parent().unwrap().join("report.json")).unwrap()).unwrap();
    serde_json::json!({ "totals": report["totals"], "connectors": report["connectors"] })
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(bytes).unwrap();
}

fn lab_log(variant: &str) -> Vec<u8> {
    std::fs::read(Path::new(LAB).join(variant).join("mail.log")).unwrap()
}

fn sqlite(dir: &Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(name).display())
}

const POSTFIX: &str = "[[collector]]\ntype = \"postfix\"\nname = \"mx1\"\npaths = [\"mail.log*\"]\nyear = 2026\n";

/// Ingesting a log whole gives what ingesting it in parts gives, cut anywhere (mid-line too: a
/// line without its newline waits for the rest).
#[test]
fn a_log_ingested_in_three_appended_parts_counts_as_the_whole() {
    for variant in ["retry-filter", "reuse"] {
        let log = lab_log(variant);
        let whole = tempfile::tempdir().unwrap();
        let config_whole = config(whole.path(), &sqlite(whole.path(), "whole.db"), POSTFIX);
        std::fs::write(whole.path().join("mail.log"), &log).unwrap();
        ingest(&config_whole);
        let expected = stored(&config_whole);
        assert!(expected["totals"]["inbound"]["messages"].as_u64().unwrap() > 50, "{expected}");

        let parts = tempfile::tempdir().unwrap();
        let config_parts = config(parts.path(), &sqlite(parts.path(), "parts.db"), POSTFIX);
        let cuts = [0, log.len() / 3 + 17, 2 * log.len() / 3 - 5, log.len()];
        for part in cuts.windows(2) {
            append(&parts.path().join("mail.log"), &log[part[0]..part[1]]);
            ingest(&config_parts);
        }
        assert_eq!(stored(&config_parts), expected, "{variant}");
        // Nothing new: nothing is read, nothing changes.
        let again = ingest(&config_parts);
        assert!(again.contains("mx1 (postfix): ok, 0 events"), "{again}");
        assert_eq!(stored(&config_parts), expected, "{variant} again");
    }
}

/// A small host's ingest stores what a run without a store counts: deliveries held while an
/// smtp instance's TLS logging is undecided count at the end of each ingest, as a run counts
/// them at the end of the log.
#[test]
fn a_small_hosts_ingest_stores_what_a_run_counts() {
    // No TLS line at all, so every delivery's TLS logging stays undecided; and only messages
    // whose end is in the log, as a run counts the others at the end of the log but an ingest
    // when their end comes.
    let log = String::from_utf8(lab_log("reuse")).unwrap();
    fn queue_id(line: &str) -> Option<&str> {
        let id = line.split_once("]: ")?.1.split_once(':')?.0;
        (id.len() >= 8 && id != "NOQUEUE" && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
    }
    let ended: std::collections::HashSet<&str> =
        log.lines().filter(|line| line.ends_with(": removed")).filter_map(queue_id).collect();
    let log: String = log
        .lines()
        .filter(|line| !line.contains("TLS connection established"))
        .filter(|line| queue_id(line).is_none_or(|id| ended.contains(id)))
        .map(|line| format!("{line}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &sqlite(dir.path(), "store.db"), POSTFIX);
    std::fs::write(dir.path().join("mail.log"), &log).unwrap();
    let without_store = dir.path().join("run.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("[store]").unwrap();
    let end = start + text[start..].find("[[collector]]").unwrap();
    std::fs::write(&without_store, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let out = mailflow(&without_store, &["run", "-q", "--from", "2026-12-04", "--to", "2026-12-04"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let counted = serde_json::json!({ "totals": report["totals"], "connectors": report["connectors"] });
    assert!(counted["totals"]["outbound"]["messages"].as_u64().unwrap() > 20, "{counted}");
    ingest(&config);
    assert_eq!(stored(&config), counted);
}

/// Every line-by-line MTA collector resumes the same way: its real lab log ingested in parts,
/// cut mid-line, stores what ingesting it whole stores.
#[test]
fn mta_logs_ingested_in_parts_count_as_the_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/collectors");
    for (options, log) in [
        ("type = \"exim\"", "exim/tests/lab/gnutls-4.96/mainlog"),
        ("type = \"opensmtpd\"\nyear = 2026", "opensmtpd/tests/lab/debian12-6.8/mail.log"),
        ("type = \"sendmail\"", "sendmail/tests/lab/queue-runs/mail.log"),
    ] {
        let log = std::fs::read(root.join(log)).unwrap();
        let collector = format!("[[collector]]\n{options}\nname = \"mta\"\npaths = [\"mail.log*\"]\n");
        let whole = tempfile::tempdir().unwrap();
        let config_whole = config(whole.path(), &sqlite(whole.path(), "whole.db"), &collector);
        std::fs::write(whole.path().join("mail.log"), &log).unwrap();
        ingest(&config_whole);
        let expected = stored_on(&config_whole, "2026-12-05");
        assert!(expected["totals"]["outbound"]["messages"].as_u64().unwrap() > 50, "{options}: {expected}");

        let parts = tempfile::tempdir().unwrap();
        let config_parts = config(parts.path(), &sqlite(parts.path(), "parts.db"), &collector);
        let cuts = [0, log.len() / 3 + 17, 2 * log.len() / 3 - 5, log.len()];
        for part in cuts.windows(2) {
            append(&parts.path().join("mail.log"), &log[part[0]..part[1]]);
            ingest(&config_parts);
        }
        assert_eq!(stored_on(&config_parts, "2026-12-05"), expected, "{options}");
        let again = ingest(&config_parts);
        assert!(again.contains("ok, 0 events"), "{options}: {again}");
    }
}

/// logrotate's ways: rename, compress (a new inode), copy and truncate. Every line is read once.
#[test]
fn rotated_compressed_and_copytruncated_logs_are_read_once() {
    let log = lab_log("plain");
    let whole = tempfile::tempdir().unwrap();
    let config_whole = config(whole.path(), &sqlite(whole.path(), "whole.db"), POSTFIX);
    std::fs::write(whole.path().join("mail.log"), &log).unwrap();
    ingest(&config_whole);
    let expected = stored(&config_whole);

    let line_cut = |at: usize| at + log[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let cuts: Vec<usize> = (1..6).map(|i| line_cut(i * log.len() / 6)).collect();
    let part = |i: usize| &log[if i == 0 { 0 } else { cuts[i - 1] }..if i == 5 { log.len() } else { cuts[i] }];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config_rotated = config(d, &sqlite(d, "rotated.db"), POSTFIX);
    std::fs::write(d.join("mail.log"), part(0)).unwrap();
    ingest(&config_rotated);
    // Renamed after more was written, and a new live file.
    append(&d.join("mail.log"), part(1));
    std::fs::rename(d.join("mail.log"), d.join("mail.log.1")).unwrap();
    std::fs::write(d.join("mail.log"), &part(2)[..part(2).len() / 2]).unwrap();
    ingest(&config_rotated);
    // The rotated file compressed (a new inode); the live file copied and truncated.
    let gz = std::fs::File::create(d.join("mail.log.2.gz")).unwrap();
    let mut encoder = flate2_writer(gz);
    encoder.write_all(&std::fs::read(d.join("mail.log.1")).unwrap()).unwrap();
    drop(encoder);
    std::fs::remove_file(d.join("mail.log.1")).unwrap();
    append(&d.join("mail.log"), &part(2)[part(2).len() / 2..]);
    append(&d.join("mail.log"), part(3));
    std::fs::copy(d.join("mail.log"), d.join("mail.log.1")).unwrap();
    std::fs::write(d.join("mail.log"), part(4)).unwrap();
    let out = ingest(&config_rotated);
    append(&d.join("mail.log"), part(5));
    ingest(&config_rotated);
    assert_eq!(stored(&config_rotated), expected, "{out}");
}

fn flate2_writer(file: std::fs::File) -> impl Write {
    // gzip through the system tool keeps the test free of a compression dependency.
    struct Gzip(Option<std::fs::File>, Vec<u8>);
    impl Write for Gzip {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Gzip {
        fn drop(&mut self) {
            let mut child = Command::new("gzip")
                .arg("-c")
                .stdin(std::process::Stdio::piped())
                .stdout(self.0.take().unwrap())
                .spawn()
                .expect("gzip is installed");
            child.stdin.take().unwrap().write_all(&self.1).unwrap();
            assert!(child.wait().unwrap().success());
        }
    }
    Gzip(Some(file), Vec::new())
}

/// A file truncated in place (no copy kept) is read again from its start, and the ingest says so.
#[test]
fn a_truncated_file_is_read_from_its_start_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = "[[collector]]\ntype = \"events\"\nname = \"ev\"\npaths = [\"events.jsonl\"]\n";
    let config = config(d, &sqlite(d, "s.db"), events);
    let line = |day: u32, direction: &str| {
        format!(
            "{{\"time\":\"2026-12-04T{day:02}:00:00Z\",\"direction\":\"{direction}\",\"peer\":{{\"ip\":\"127.0.2.9\"}}}}\n"
        )
    };
    std::fs::write(d.join("events.jsonl"), line(1, "inbound") + &line(2, "inbound")).unwrap();
    ingest(&config);
    std::fs::write(d.join("events.jsonl"), line(3, "outbound")).unwrap();
    let out = ingest(&config);
    assert!(out.contains("first bytes changed") || out.contains("truncated"), "{out}");
    let stored = stored(&config);
    assert_eq!(stored["totals"]["inbound"]["messages"], 2, "{stored}");
    assert_eq!(stored["totals"]["outbound"]["messages"], 1, "{stored}");
}

/// Export files are read whole each time: their days replace what the store held, so ingesting
/// them again, or a corrected export, never adds up.
#[test]
fn day_window_sources_replace_their_days() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = "[[collector]]\ntype = \"m365_csv\"\nname = \"m365\"\npaths = [\"report.csv\"]\n";
    let config = config(d, &sqlite(d, "s.db"), csv);
    let export = |tls12: u32| {
        format!(
            "Date,Connector direction,Connector name,No TLS,TLS 1.2,Volume\n\
             2026-12-03,Inbound,,1,4,5\n2026-12-04,Inbound,,2,{tls12},{}\n",
            tls12 + 2
        )
    };
    std::fs::write(d.join("report.csv"), export(8)).unwrap();
    ingest(&config);
    ingest(&config);
    assert_eq!(stored(&config)["totals"]["inbound"]["messages"], 10);
    std::fs::write(d.join("report.csv"), export(9)).unwrap();
    ingest(&config);
    assert_eq!(stored(&config)["totals"]["inbound"]["messages"], 11);
}

/// `kill -9` at random points of an ingest, again and again, then one run to the end: the
/// totals are exactly those of one clean run.
#[test]
fn killed_ingests_then_a_full_one_count_exactly_once() {
    // A week of the lab's traffic: each day a copy of the log.
    let log = String::from_utf8(lab_log("retry-filter")).unwrap();
    let mut week = String::new();
    for day in 1..=7 {
        week.push_str(&log.replace("Dec 04 ", &format!("Dec 0{day} ")));
    }
    let clean = tempfile::tempdir().unwrap();
    let config_clean = config(clean.path(), &sqlite(clean.path(), "clean.db"), POSTFIX);
    std::fs::write(clean.path().join("mail.log"), &week).unwrap();
    let started = std::time::Instant::now();
    ingest(&config_clean);
    let one_run = started.elapsed();
    let range = ["report", "-q", "--from", "2026-12-01", "--to", "2026-12-07"];
    let read = |config: &Path| {
        let out = mailflow(config, &range);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: Value =
            serde_json::from_slice(&std::fs::read(config.parent().unwrap().join("report.json")).unwrap()).unwrap();
        serde_json::json!({ "totals": report["totals"], "connectors": report["connectors"] })
    };
    let expected = read(&config_clean);
    let days = expected["connectors"].as_array().map_or(0, |c| c.len());
    assert!(expected["totals"]["inbound"]["messages"].as_u64().unwrap() > 7 * 50 && days > 0, "{expected}");

    let dir = tempfile::tempdir().unwrap();
    let config_killed = config(dir.path(), &sqlite(dir.path(), "killed.db"), POSTFIX);
    std::fs::write(dir.path().join("mail.log"), &week).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut killed = 0;
    for _ in 0..8 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailflow"))
            .args(["ingest", "-q", "--config"])
            .arg(&config_killed)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Each killed run continues from the last one's checkpoint and gets a little further;
        // eight of them add up to about two thirds of a run, so most are killed mid-way.
        let wait = one_run.mul_f64(0.03 + rng.f64() * 0.1);
        std::thread::sleep(wait);
        // Killing a finished process is harmless; its run simply completed.
        let _ = child.kill();
        let status = child.wait().unwrap();
        killed += usize::from(std::os::unix::process::ExitStatusExt::signal(&status) == Some(9));
    }
    assert!(killed >= 4, "only {killed} of 8 ingests were killed before they finished");
    ingest(&config_killed);
    assert_eq!(read(&config_killed), expected);
}

/// The PostgreSQL server of the tests (`.ci/postgres` starts one); under CI it must be there.
fn postgres_url() -> Option<String> {
    match std::env::var("MAILFLOW_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "CI=true but MAILFLOW_TEST_POSTGRES_URL is unset; start a server: export MAILFLOW_TEST_POSTGRES_URL=$(.ci/postgres)"
            )
        }
        Err(_) => {
            eprintln!("skipped: set MAILFLOW_TEST_POSTGRES_URL (see .ci/postgres) to run the PostgreSQL tests");
            None
        }
    }
}

/// A fresh database on the test server, dropped with the guard.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn create(server: &str) -> Database {
        let name = format!("mailflow_e2e_{}", fastrand::u64(..));
        let mut client = postgres::Client::connect(server, postgres::NoTls).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(server).unwrap();
        url.set_path(&name);
        Database { admin: server.to_string(), name, url: url.to_string() }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// Four mail servers ingest into one PostgreSQL at once, each its log in three parts; a central
/// report (a config without collectors) sees each exactly once.
#[test]
fn four_hosts_ingest_into_one_postgresql_concurrently() {
    let Some(server) = postgres_url() else { return };
    let database = Database::create(&server);
    let log = lab_log("retry-filter");
    let single = tempfile::tempdir().unwrap();
    let config_single = config(single.path(), &sqlite(single.path(), "one.db"), POSTFIX);
    std::fs::write(single.path().join("mail.log"), &log).unwrap();
    ingest(&config_single);
    let one: Value = stored(&config_single);

    let hosts: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    std::thread::scope(|scope| {
        for (i, host) in hosts.iter().enumerate() {
            let (log, url) = (&log, &database.url);
            scope.spawn(move || {
                let collector = POSTFIX.replace("name = \"mx1\"", &format!("name = \"mx{}\"", i + 1));
                let config = config(host.path(), url, &collector);
                let cuts = [0, log.len() / 3, 2 * log.len() / 3 + 11, log.len()];
                for part in cuts.windows(2) {
                    append(&host.path().join("mail.log"), &log[part[0]..part[1]]);
                    ingest(&config);
                }
            });
        }
    });
    let central = tempfile::tempdir().unwrap();
    let path = central.path().join("mailflow.toml");
    let lab = std::fs::read_to_string(Path::new(LAB).join("mailflow.toml")).unwrap();
    let site = lab.split("[[collector]]").next().unwrap();
    let connectors = &lab[lab.find("[[connector]]").unwrap()..lab.find("[[sink]]").unwrap()];
    std::fs::write(
        &path,
        format!(
            "{site}{connectors}[store]\nurl = \"{}\"\n[[sink]]\ntype = \"json\"\npath = \"report.json\"\n",
            database.url
        ),
    )
    .unwrap();
    let all = stored(&path);
    let messages = |v: &Value, d: &str| v["totals"][d]["messages"].as_u64().unwrap();
    for direction in ["inbound", "outbound"] {
        assert_eq!(messages(&all, direction), 4 * messages(&one, direction), "{direction}");
    }
    let report: Value = serde_json::from_slice(&std::fs::read(central.path().join("report.json")).unwrap()).unwrap();
    let names: Vec<&str> = report["sources"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mx1", "mx2", "mx3", "mx4"]);
}

/// The shipped `regex` examples, on their real lab logs: parts cut anywhere count as the whole.
#[test]
fn regex_sources_ingested_in_parts_count_as_the_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (example, shipped_paths, log) in [
        ("sendmail.toml", "paths = [\"/var/log/mail.log*\"]", "sendmail/mail.log"),
        ("haraka.toml", "paths = [\"/var/log/haraka.log*\"]", "haraka/haraka.log"),
    ] {
        let shipped = std::fs::read_to_string(root.join("config").join(example)).unwrap();
        assert!(shipped.contains(shipped_paths), "{example}");
        let log = std::fs::read(root.join("crates/collectors/regex/tests/lab").join(log)).unwrap();
        let setup = |dir: &Path| {
            let text = shipped.replacen(shipped_paths, "paths = [\"mail.log*\"]", 1);
            let text = text.split("[[sink]]").next().unwrap();
            let path = dir.join("mailflow.toml");
            std::fs::write(
                &path,
                format!(
                    "{text}\n[store]\nurl = \"{}\"\ncheckpoint_bytes = 4096\n\
                     [[sink]]\ntype = \"json\"\npath = \"report.json\"\n",
                    sqlite(dir, "s.db")
                ),
            )
            .unwrap();
            path
        };
        let whole = tempfile::tempdir().unwrap();
        let config_whole = setup(whole.path());
        std::fs::write(whole.path().join("mail.log"), &log).unwrap();
        ingest(&config_whole);
        let expected = stored(&config_whole);
        assert!(expected["totals"]["outbound"]["messages"].as_u64().unwrap() > 20, "{example}: {expected}");

        let parts = tempfile::tempdir().unwrap();
        let config_parts = setup(parts.path());
        let cuts = [0, log.len() / 4 + 3, log.len() / 2, 3 * log.len() / 4 - 7, log.len()];
        for part in cuts.windows(2) {
            append(&parts.path().join("mail.log"), &log[part[0]..part[1]]);
            ingest(&config_parts);
        }
        assert_eq!(stored(&config_parts), expected, "{example}");
    }
}

/// Days before `retention_days` cannot be ingested: a clear error, not a crash.
/// A source asked for days answers for each of them: a day it now has no events for is emptied
/// in the store, not left as an earlier run stored it.
#[test]
fn a_day_window_source_that_now_has_nothing_for_a_day_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let event = |hour: u32| {
        format!(
            "{{\"time\":\"2026-12-04T{hour:02}:00:00Z\",\"direction\":\"inbound\",\"peer\":{{\"ip\":\"127.0.2.9\"}}}}\n"
        )
    };
    std::fs::write(d.join("events.jsonl"), format!("{}{}", event(9), event(10))).unwrap();
    let exec = "[[collector]]\ntype = \"exec\"\nname = \"gw\"\ncommand = [\"cat\", \"events.jsonl\"]\n";
    let config = config(d, &sqlite(d, "s.db"), exec);
    let days = ["--from", "2026-12-03", "--to", "2026-12-05"];
    let ingested = mailflow(&config, &[&["ingest"][..], &days].concat());
    assert!(ingested.status.success(), "{}", text(&ingested.stderr));
    assert_eq!(stored(&config)["totals"]["inbound"]["messages"], 2);
    std::fs::write(d.join("events.jsonl"), "").unwrap();
    let ingested = mailflow(&config, &[&["ingest"][..], &days].concat());
    assert!(ingested.status.success(), "{}", text(&ingested.stderr));
    assert_eq!(stored(&config)["totals"]["inbound"]["messages"], 0);
}

/// `store prune --source` prunes one source only (a retired host's), others keep their days.
#[test]
fn pruning_one_source_leaves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let event = "{\"time\":\"2026-12-04T09:00:00Z\",\"direction\":\"inbound\",\"peer\":{\"ip\":\"127.0.2.9\"}}\n";
    std::fs::write(d.join("events.jsonl"), event).unwrap();
    let exec = |name: &str| {
        format!("[[collector]]\ntype = \"exec\"\nname = \"{name}\"\ncommand = [\"cat\", \"events.jsonl\"]\n")
    };
    let config = config(d, &sqlite(d, "s.db"), &format!("{}{}", exec("old-mx"), exec("mx")));
    let ingested = mailflow(&config, &["ingest", "--from", "2026-12-04", "--to", "2026-12-04"]);
    assert!(ingested.status.success(), "{}", text(&ingested.stderr));
    assert_eq!(stored(&config)["totals"]["inbound"]["messages"], 2);
    let pruned = Command::new(env!("CARGO_BIN_EXE_mailflow"))
        .args(["store", "--config"])
        .arg(&config)
        .args(["prune", "--before", "2026-12-05", "--source", "old-mx"])
        .output()
        .unwrap();
    assert!(text(&pruned.stdout).contains("deleted 1 rows of source old-mx"), "{}", text(&pruned.stderr));
    let after = stored(&config);
    assert_eq!(after["totals"]["inbound"]["messages"], 1, "{after}");
}

/// Two hosts whose collectors share a name would mix their checkpoints and rows: the second is
/// refused, names the first, and writes nothing.
#[test]
fn a_second_host_with_the_same_source_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let event = "{\"time\":\"2026-12-04T09:00:00Z\",\"direction\":\"inbound\",\"peer\":{\"ip\":\"127.0.2.9\"}}\n";
    std::fs::write(d.join("events.jsonl"), event).unwrap();
    let exec = "[[collector]]\ntype = \"exec\"\nname = \"gw\"\ncommand = [\"cat\", \"events.jsonl\"]\n";
    let config = config(d, &sqlite(d, "s.db"), exec);
    let text_of = std::fs::read_to_string(&config).unwrap();
    let on_host = |host: &str| text_of.replace("[store]\n", &format!("[store]\nhost = \"{host}\"\n"));
    std::fs::write(&config, on_host("mx1")).unwrap();
    let days = ["ingest", "--from", "2026-12-04", "--to", "2026-12-04"];
    assert!(mailflow(&config, &days).status.success());
    std::fs::write(&config, on_host("mx2")).unwrap();
    let refused = mailflow(&config, &days);
    assert!(!refused.status.success());
    let said = format!("{}{}", text(&refused.stdout), text(&refused.stderr));
    assert!(said.contains("source gw is ingested by host mx1, and this host is mx2"), "{said}");
    assert_eq!(stored(&config)["totals"]["inbound"]["messages"], 1);
}

#[test]
fn asking_for_days_older_than_the_store_keeps_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("report.csv"), "Date,Connector direction,Connector name,No TLS,TLS 1.2,Volume\n").unwrap();
    let csv = "[[collector]]\ntype = \"m365_csv\"\nname = \"m365\"\npaths = [\"report.csv\"]\n";
    let config = config(d, &sqlite(d, "s.db"), csv);
    let text_of = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text_of.replace("retention_days = 36500", "retention_days = 400")).unwrap();
    let out = mailflow(&config, &["ingest", "--from", "2020-01-01", "--to", "2020-01-31"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("before the first day kept"), "{}", text(&out.stderr));
}

/// Comparisons come from history: the previous week's log is gone when this week is reported,
/// yet `volume_change` compares with it and `new_connector` knows what it held.
#[test]
fn comparisons_reach_back_into_the_store_after_the_logs_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = "[[collector]]\ntype = \"events\"\nname = \"ev\"\npaths = [\"events.jsonl\"]\n";
    let config = config(d, &sqlite(d, "s.db"), events);
    let today = chrono::Utc::now().date_naive();
    let week = |first_day_back: u64, per_day: usize, host: &str| {
        let mut text = String::new();
        for back in first_day_back - 6..=first_day_back {
            let day = today - chrono::Days::new(back);
            for i in 0..per_day {
                text.push_str(&format!(
                    "{{\"time\":\"{day}T12:{:02}:00Z\",\"direction\":\"outbound\",\"peer\":{{\"host\":\"{host}\"}}}}\n",
                    i % 60
                ));
            }
        }
        text
    };
    std::fs::write(d.join("events.jsonl"), week(14, 40, "mx.legacy10.test")).unwrap();
    ingest(&config);
    // Rotated away; this week has a quarter of the traffic, and a relay the store never saw.
    std::fs::write(d.join("events.jsonl"), week(7, 10, "mx.legacy10.test") + &week(7, 5, "mx.partner13.test")).unwrap();
    ingest(&config);
    let out = mailflow(&config, &["report", "-q", "--days", "7"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["totals"]["previous"]["outbound"]["messages"], 280, "{}", report["totals"]);
    assert_eq!(report["totals"]["outbound"]["messages"], 105);
    let kinds: Vec<(&str, &str)> = report["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap(), i["connector"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("volume_change", "Legacy")), "{kinds:?}");
    assert!(kinds.contains(&("new_connector", "Partner13")), "{kinds:?}");
}
