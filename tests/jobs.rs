//! `mailflow digest`, `mailflow run --job` and `mailflow daemon`, run as an admin runs them.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{mailflow, text};
use mail_parser::{MessageParser, MimeHeaders};
use mailflow_core::format::thousands;
use serde_json::Value;

const WEEK: [&str; 4] = ["--from", "2026-11-23", "--to", "2026-11-29"];

/// The demo's files and config, with `extra` appended to the config.
fn demo(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = mailflow(&["-q", "demo", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = dir.path().join("mailflow.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    text.push_str(&format!("\n[daemon]\nlock_dir = \"{}\"\n", dir.path().join("locks").display()));
    std::fs::write(&config, text).unwrap();
    for file in ["report.json", "dashboard.html"] {
        std::fs::remove_file(dir.path().join(file)).unwrap();
    }
    (dir, config)
}

fn email_sink(port: u16) -> String {
    format!(
        "\n[[sink]]\ntype = \"email\"\nname = \"weekly digest\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
         tls = \"none\"\nfrom = \"mailflow@corp.example\"\nto = [\"postmaster@corp.example\"]\nspool_dir = \"spool\"\n\
         attach_json = true\n"
    )
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(config: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![args[0], "--config", config.to_str().unwrap()];
    all.extend(&args[1..]);
    mailflow(&all)
}

#[test]
fn digest_dry_run_writes_the_message_it_would_send() {
    let (dir, config) = demo(&email_sink(closed_port()));
    let eml = dir.path().join("digest.eml");
    let out = run(&config, &[&["digest"], &WEEK[..], &["--dry-run", "--out", eml.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("(not sent)"));
    assert!(!dir.path().join("report.json").exists(), "digest runs the email sinks only");

    let raw = std::fs::read(&eml).unwrap();
    let message = MessageParser::default().parse(&raw).unwrap();
    let report: Value = serde_json::from_slice(
        message.attachments().find(|a| a.attachment_name().is_some_and(|n| n.ends_with(".json"))).unwrap().contents(),
    )
    .unwrap();
    let inbound = thousands(report["totals"]["inbound"]["messages"].as_u64().unwrap());
    let outbound = thousands(report["totals"]["outbound"]["messages"].as_u64().unwrap());
    let insights = report["insights"].as_array().unwrap().len();
    let subject = message.subject().unwrap();
    assert!(subject.starts_with(&format!("mailflow: {inbound} in / {outbound} out, ")), "{subject}");
    assert!(subject.ends_with(&format!("{insights} insights (Nov 23 – Nov 29)")), "{subject}");
    let plain = message.body_text(0).unwrap();
    let html = message.body_html(0).unwrap();
    for part in [&plain, &html] {
        assert!(part.contains(&inbound) && part.contains(&outbound));
        assert!(part.contains("Fabrikam legacy") && part.contains("TLS 1.0 is above 50%"));
    }
}

#[test]
fn a_failed_send_exits_1_keeps_the_digest_and_resend_sends_it_later() {
    let port = closed_port();
    let (dir, config) = demo(&email_sink(port));
    let out = run(&config, &[&["digest"], &WEEK[..]].concat());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot send the digest through 127.0.0.1:{port} (no TLS): cannot reach")),
        "{stderr}"
    );
    assert!(stderr.contains("mailflow digest --resend"), "{stderr}");
    let spool: Vec<_> = std::fs::read_dir(dir.path().join("spool/weekly%20digest")).unwrap().collect();
    assert_eq!(spool.len(), 1);

    // Still no server: the digest stays.
    let out = run(&config, &["digest", "--resend"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is still spooled"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(dir.path().join("spool/weekly%20digest")).unwrap().count(), 1);

    // `mailflow run` delivers to every sink: the others still write, the run exits 1.
    let out = run(&config, &[&["run"], &WEEK[..]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(dir.path().join("report.json").exists() && dir.path().join("dashboard.html").exists());
    assert!(text(&out.stdout).contains("sink weekly digest: FAILED: cannot send the digest"), "{}", text(&out.stdout));
    assert_eq!(std::fs::read_dir(dir.path().join("spool/weekly%20digest")).unwrap().count(), 2);
}

#[test]
fn digest_needs_an_email_sink() {
    let (_dir, config) = demo("");
    let out = run(&config, &["digest", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("there is no [[sink]] with type = \"email\""), "{}", text(&out.stderr));
}

const JOBS: &str = r#"
[[job]]
name = "nightly json"
schedule = "0 6 * * *"
range = "yesterday"
sinks = ["json"]

[[job]]
name = "weekly"
schedule = "0 7 * * MON"
timezone = "America/New_York"
range = "previous calendar week"
"#;

#[test]
fn run_job_uses_the_jobs_sinks_and_refuses_to_run_twice() {
    let (dir, config) = demo(JOBS);
    let out = run(&config, &[&["run", "--job", "nightly json"], &WEEK[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.path().join("report.json").exists());
    assert!(!dir.path().join("dashboard.html").exists(), "the job names only the json sink");

    let out = run(&config, &["run", "--job", "monthly"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no [[job]] is named \"monthly\"; jobs: nightly json, weekly"));

    // While another process runs the job, a second run refuses.
    let locks = mailflow_runner::schedule::LockDir::new(dir.path().join("locks"), &config);
    let mailflow_runner::schedule::Lock::Acquired(_held) = locks.try_lock("nightly json").unwrap() else {
        panic!("the lock is free")
    };
    let out = run(&config, &[&["run", "--job", "nightly json"], &WEEK[..]].concat());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("job \"nightly json\" is already running (pid {})", std::process::id())),
        "{stderr}"
    );
}

#[test]
fn check_shows_each_jobs_next_run() {
    let (_dir, config) = demo(JOBS);
    let out = run(&config, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("jobs (2):"), "{stdout}");
    assert!(
        stdout.contains("weekly: \"0 7 * * MON\" in America/New_York, previous calendar week, next run "),
        "{stdout}"
    );
}

/// A daemon whose stderr is read line by line; killed if a test fails.
struct Daemon {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailflow"))
            .args(["daemon", "--config", config.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Daemon { child, lines, seen: Vec::new() }
    }

    /// Waits for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no log line with {needle:?} within {timeout:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the daemon did not exit within {timeout:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_daemon_logs_its_next_runs_and_stops_on_sigterm() {
    let (_dir, config) = demo(JOBS);
    let mut daemon = Daemon::start(&config);
    let line = daemon.wait_for("job=\"weekly\"", Duration::from_secs(30));
    // 07:00 in the job's own time zone, whichever half of the year this runs in.
    assert!(line.contains("next run") && (line.contains("07:00:00 EST") || line.contains("07:00:00 EDT")), "{line}");
    daemon.wait_for("job=\"nightly json\"", Duration::from_secs(5));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    daemon.wait_for("daemon stopped", Duration::from_secs(5));
}

#[test]
fn the_daemon_runs_a_job_when_it_is_due() {
    // Every minute: the first run comes within 60 s.
    let (dir, config) = demo(
        "\n[[job]]\nname = \"every minute\"\nschedule = \"* * * * *\"\nrange = \"last 30 days\"\nsinks = [\"json\"]\n",
    );
    let mut daemon = Daemon::start(&config);
    daemon.wait_for("run started", Duration::from_secs(75));
    let done = daemon.wait_for("run finished", Duration::from_secs(60));
    assert!(done.contains("messages in"), "{done}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["range"]["to"].as_str().unwrap().len(), 10);
    daemon.signal("INT");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn the_daemon_needs_a_job() {
    let (_dir, config) = demo("");
    let out = run(&config, &["daemon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("there is no [[job]] to run"), "{}", text(&out.stderr));
}
