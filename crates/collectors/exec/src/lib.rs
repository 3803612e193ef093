//! `[[collector]] type = "exec"`: any program, in any language, as a source of events.
//!
//! A site often has mail data mailflow has no collector for: a gateway's own export, a vendor
//! API, a database. Rather than link code into mailflow, an admin names a program; mailflow runs
//! it once per report and reads canonical events from its output. The program runs as a process
//! of its own, so whatever it does — crash, hang, print garbage — costs the run that source's
//! events at most, never mailflow itself: it is given a time limit, its lines a length limit,
//! and every line passes the same check as an `events` file's.
//!
//! # The contract
//!
//! mailflow runs `command` directly (argv, no shell), in `working_dir` (default: the config
//! file's folder), with its own environment (with `clear_env`, only its [`KEPT_ENV`]: `PATH`,
//! `HOME`, `LANG`, `LC_ALL`, `TZ`) plus `env` plus:
//!
//! | Variable | Value |
//! |---|---|
//! | `MAILFLOW_PROTOCOL` | `1` |
//! | `MAILFLOW_SOURCE` | the collector's `name` |
//! | `MAILFLOW_START`, `MAILFLOW_END` | the instants wanted, `[start, end)`, RFC 3339 UTC (`2026-12-01T00:00:00Z`) |
//! | `MAILFLOW_REPORT_START` | where the report itself starts; before it, the range reaches back one more period for comparisons |
//! | `MAILFLOW_TIMEZONE` | `site.timezone`, e.g. `Europe/Berlin` |
//!
//! Arguments may hold `{start}`, `{end}`, `{report_start}`, `{source}` and `{timezone}`, which
//! are replaced by the same values. Standard input holds one JSON document, one line, then ends:
//!
//! ```json
//! {"protocol":1,"source":"gateway","start":"2026-11-24T00:00:00Z","end":"2026-12-08T00:00:00Z","report_start":"2026-12-01T00:00:00Z","timezone":"Europe/Berlin","settings":{"path":"/var/log/gw.csv"}}
//! ```
//!
//! `settings` is the section's `settings` table (TOML dates become RFC 3339 text). A program
//! need not read it. Standard output holds canonical JSON Lines (`docs/events.md`), one event
//! per line; blank lines are ignored. The first line may announce the protocol, as
//! `{"mailflow_protocol":1}`. A record of its own input the program could not read, it reports
//! as `{"mailflow_skip":{"at":"export.csv:17","why":"expected a date in column 1"}}`: a skipped
//! line, at the place it names (`export.csv:17: skipped: expected a date in column 1`).
//! Standard error is the program's log: each line goes to mailflow's log, at the level its
//! first word names (`ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`; `info` otherwise). Exit code 0
//! means the output is complete.
//!
//! # Failures
//!
//! A line that is not an event is skipped and counted, like a bad line of an `events` file. A
//! program that cannot be started, or announces a protocol other than 1, is an error of the
//! source, which then has no events. A program that exits non-zero, is killed by a signal or
//! is still running after `timeout_secs` (it is then stopped with its process group: `SIGTERM`,
//! then `SIGKILL` two seconds later) is an
//! error naming the program, how it ended and its last lines on standard error; the events it
//! printed before count, and the source is partial. When the program exits, whatever it left
//! running in its process group is killed. On Linux the program gets `SIGTERM` if mailflow
//! itself dies first (parent-death signal), as its own process group keeps a `Ctrl-C` aimed at
//! mailflow from reaching it. Settings and standard input are never logged.
//!
//! # Layout
//! - [`ExecConfig`] (`config`): the TOML options (see `sample.toml` beside this crate).
//! - [`ExecCollector`]: the running collector built from it; one run per `collect`.
//! - `process`: starting, watching, stopping and reaping the program.
//! - `stdout`: reading its output as it arrives: the protocol line, events, skips (its own
//!   and of lines that are no event).
//! - `stderr`: forwarding its log and keeping the last lines for error messages.

mod config;
mod process;
mod stderr;
mod stdout;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use mailflow_component::{CollectContext, CollectError, Collector, Emitter};
use mailflow_config::{ComponentSection, ConfigError};
use serde::Serialize;

pub use config::{ExecConfig, KEPT_ENV, RESERVED_ENV};
pub use stdout::PROTOCOL;

use process::Process;
use stdout::Msg;

/// How long the program's streams may stay open after it was stopped or exited, before
/// mailflow stops reading them (a process it started outside its group may hold them).
const GRACE: Duration = Duration::from_secs(5);
/// How long a program has to exit after `SIGTERM` before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// Messages between the reading threads and the collecting thread; bounds memory.
const CHANNEL: usize = 256;

/// Builds the collector from its config section (the registry's entry point).
pub fn build(section: &ComponentSection) -> Result<Box<dyn Collector>, ConfigError> {
    let config: ExecConfig = section.options()?;
    Ok(Box::new(ExecCollector::new(config, section)?))
}

/// An `exec` collector: runs its program once per [`collect`](Collector::collect).
#[derive(Debug)]
pub struct ExecCollector {
    /// The program as `command` names it, for messages: `/usr/local/bin/export-mail`, or with
    /// its script when the first argument is a file, `python3 gateway.py`.
    label: String,
    /// The program to start: resolved from the config's folder if named with a path.
    program: PathBuf,
    named_with_path: bool,
    /// Not shown by `Debug`: arguments may hold secrets.
    args: Hidden<Vec<String>>,
    timeout: Duration,
    max_line_bytes: usize,
    settings: Hidden<serde_json::Value>,
    env: Vec<(String, Hidden<String>)>,
    clear_env: bool,
    working_dir: Option<PathBuf>,
}

/// A value that may be a secret: its `Debug` never shows it.
struct Hidden<T>(T);

impl<T> std::fmt::Debug for Hidden<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The document on the program's standard input.
#[derive(Serialize)]
struct Request<'a> {
    protocol: u64,
    source: &'a str,
    start: &'a str,
    end: &'a str,
    report_start: &'a str,
    timezone: &'a str,
    settings: &'a serde_json::Value,
}

impl ExecCollector {
    /// Checks `config` and resolves its paths against `section`'s folder.
    pub fn new(config: ExecConfig, section: &ComponentSection) -> Result<Self, ConfigError> {
        if let Some(problem) = config.problem() {
            return Err(section.error(problem));
        }
        let settings = config.settings.to_json().map_err(|why| section.error(why))?;
        let mut command = config.command.into_iter();
        let name = command.next().unwrap_or_default();
        let args: Vec<String> = command.collect();
        let named_with_path = name.contains('/') || name.contains(std::path::MAIN_SEPARATOR);
        // Absolute, as a relative program and a working folder together are ambiguous.
        let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
        let program =
            if named_with_path { absolute(section.resolve_path(name.as_ref())) } else { PathBuf::from(&name) };
        let working_dir = match config.working_dir {
            Some(dir) => Some(absolute(section.resolve_path(&dir))),
            // Run beside the config, so relative paths in settings mean what they mean there.
            None => Some(section.config_dir()).filter(|d| d.is_dir()).map(|d| absolute(d.to_path_buf())),
        };
        // An interpreter's script names the program better than the interpreter does. Only a
        // file is shown: other arguments may be secrets.
        let script = args.first().filter(|arg| {
            let path = Path::new(arg.as_str());
            let path = working_dir.as_deref().map_or_else(|| path.to_path_buf(), |dir| dir.join(path));
            !arg.starts_with('-') && !arg.contains('{') && path.is_file()
        });
        let label = match script {
            Some(script) => format!("{name} {script}"),
            None => name,
        };
        Ok(ExecCollector {
            label,
            program,
            named_with_path,
            args: Hidden(args),
            timeout: Duration::from_secs(config.timeout_secs),
            max_line_bytes: config.max_line_bytes,
            settings: Hidden(settings),
            env: config.env.into_iter().map(|(k, v)| (k, Hidden(v))).collect(),
            clear_env: config.clear_env,
            working_dir,
        })
    }

    fn command(&self, ctx: &CollectContext<'_>, range: &Range) -> Command {
        let timezone = ctx.site.timezone.to_string();
        let placeholders = config::Placeholders {
            start: &range.start,
            end: &range.end,
            report_start: &range.report_start,
            source: ctx.source,
            timezone: &timezone,
        };
        let mut command = Command::new(&self.program);
        command.args(self.args.0.iter().map(|arg| placeholders.fill(arg)));
        if self.clear_env {
            command.env_clear();
            // PATH among them: a bare program name is looked up on the program's PATH.
            for name in KEPT_ENV {
                if let Some(value) = std::env::var_os(name) {
                    command.env(name, value);
                }
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, &v.0)));
        command
            .env("MAILFLOW_PROTOCOL", PROTOCOL.to_string())
            .env("MAILFLOW_SOURCE", ctx.source)
            .env("MAILFLOW_START", &range.start)
            .env("MAILFLOW_END", &range.end)
            .env("MAILFLOW_REPORT_START", &range.report_start)
            .env("MAILFLOW_TIMEZONE", &timezone);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    fn request(&self, ctx: &CollectContext<'_>, range: &Range) -> Vec<u8> {
        let timezone = ctx.site.timezone.to_string();
        let request = Request {
            protocol: PROTOCOL,
            source: ctx.source,
            start: &range.start,
            end: &range.end,
            report_start: &range.report_start,
            timezone: &timezone,
            settings: &self.settings.0,
        };
        let mut document = serde_json::to_vec(&request).unwrap_or_default();
        document.push(b'\n');
        document
    }

    fn failed(&self, what: &str, e: std::io::Error) -> CollectError {
        CollectError::Other(format!("{}: {what}: {e}", self.label))
    }
}

/// The instants of a run, as the program gets them.
struct Range {
    start: String,
    end: String,
    report_start: String,
}

impl Range {
    fn of(ctx: &CollectContext<'_>) -> Range {
        let text = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        Range { start: text(ctx.start), end: text(ctx.end), report_start: text(ctx.report_start) }
    }
}

/// How reading the program's output ended.
enum End {
    /// Output closed and the program exited.
    Finished,
    /// The deadline passed first.
    TimedOut,
    /// The program announced a protocol this collector does not speak.
    Refused(String),
}

/// The collecting thread's view of a run.
struct Run<'r> {
    rx: &'r mpsc::Receiver<Msg>,
    process: &'r mut Process,
    label: &'r str,
    stdout_open: bool,
    exited: bool,
    /// When the program's exit was seen; its output has [`GRACE`] more to close.
    exited_at: Option<Instant>,
    emitted: u64,
    read_error: Option<std::io::Error>,
}

impl Run<'_> {
    /// Passes on what the threads report until output has closed and the program has exited
    /// (`Finished`), `until` passes (`TimedOut`), or the program refuses.
    fn pump(&mut self, until: Instant, out: &mut Emitter<'_>) -> End {
        while self.stdout_open || !self.exited {
            let until = self.exited_at.map_or(until, |at| until.min(at + GRACE));
            let now = Instant::now();
            if now >= until {
                return End::TimedOut;
            }
            let wait = process::POLL.map_or(until - now, |poll| poll.min(until - now));
            match self.rx.recv_timeout(wait) {
                Ok(Msg::Event(event)) => {
                    self.emitted += 1;
                    out.event(*event);
                }
                Ok(Msg::Skip { line, why }) => out.skip(format_args!("{} stdout line {line}", self.label), why),
                Ok(Msg::Skipped { at, why }) => out.skip(at, why),
                Ok(Msg::Refused(why)) => return End::Refused(why),
                Ok(Msg::Closed(result)) => {
                    self.stdout_open = false;
                    self.read_error = result.err();
                }
                Ok(Msg::Exited) => self.exit_seen(),
                Err(RecvTimeoutError::Timeout) => {
                    if !self.exited && self.process.poll_exit() {
                        self.exit_seen();
                    }
                }
                // The collecting thread holds a sender itself; this does not happen.
                Err(RecvTimeoutError::Disconnected) => return End::Finished,
            }
        }
        End::Finished
    }

    fn exit_seen(&mut self) {
        self.exited = true;
        self.exited_at = Some(Instant::now());
        self.process.exited();
        // Whatever the program left running goes with it; its output so far stays readable.
        self.process.kill();
    }

    /// `the 3 events it printed before count, so the source is partial`.
    fn kept(&self) -> String {
        match self.emitted {
            0 => "it printed no events".to_string(),
            1 => "the 1 event it printed before counts, so the source is partial".to_string(),
            n => format!("the {n} events it printed before count, so the source is partial"),
        }
    }
}

impl Collector for ExecCollector {
    /// Programs are asked for days since their last ingest, as APIs are: one that reads an
    /// API would otherwise be asked for every day kept, every time.
    fn first_ingest_days(&self) -> Option<u32> {
        Some(7)
    }

    fn collect(&self, ctx: &CollectContext<'_>, out: &mut Emitter<'_>) -> Result<(), CollectError> {
        let range = Range::of(ctx);
        let began = Instant::now();
        // A timeout too long to add is no limit at all.
        let deadline = began.checked_add(self.timeout).unwrap_or(began + Duration::from_secs(365 * 86_400));
        if let Some(dir) = &self.working_dir
            && !dir.is_dir()
        {
            return Err(CollectError::Other(format!(
                "cannot run {}: `working_dir` {} is not a folder",
                self.label,
                dir.display()
            )));
        }
        let mut process = process::spawn(&mut self.command(ctx, &range))
            .map_err(|e| CollectError::Other(process::spawn_error(&self.program, self.named_with_path, &e)))?;
        tracing::debug!(source = ctx.source, program = %self.label, "program started");
        let (mut stdin, stdout, stderr) = process.stdio().map_err(|e| self.failed("cannot start", e))?;

        // Each stream has a thread, so a program that never reads its input, or fills its error
        // stream, cannot stall the others. Threads outlive the run only while a process the
        // program started outside its group keeps a stream open.
        let request = self.request(ctx, &range);
        let label: Arc<str> = self.label.as_str().into();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(format!("exec-{name}")).spawn(f).map(drop)
        };
        spawn(
            "stdin",
            Box::new(move || {
                // A program may exit without reading its input (broken pipe): that is its right.
                let _ = stdin.write_all(&request);
            }),
        )
        .map_err(|e| self.failed("cannot start a thread", e))?;

        let (tx, rx) = mpsc::sync_channel::<Msg>(CHANNEL);
        let (reader_label, reader_tx, max) = (label.clone(), tx.clone(), self.max_line_bytes);
        spawn("stdout", Box::new(move || stdout::read(stdout, &reader_label, max, &reader_tx)))
            .map_err(|e| self.failed("cannot start a thread", e))?;

        let tail = Arc::new(stderr::Tail::default());
        let (stderr_done, stderr_closed) = mpsc::channel::<()>();
        let (log_label, log_tail, source) = (label.clone(), tail.clone(), ctx.source.to_string());
        // The caller's log subscriber, for the lines logged on the stderr thread.
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        spawn(
            "stderr",
            Box::new(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    stderr::forward(stderr, &log_label, &source, &log_tail);
                });
                drop(stderr_done);
            }),
        )
        .map_err(|e| self.failed("cannot start a thread", e))?;
        process.watch(tx.clone()).map_err(|e| self.failed("cannot start a thread", e))?;

        let mut run = Run {
            rx: &rx,
            process: &mut process,
            label: &self.label,
            stdout_open: true,
            exited: false,
            exited_at: None,
            emitted: 0,
            read_error: None,
        };
        let end = run.pump(deadline, out);
        // The program exited, but something it started outside its group holds its output.
        let held_open = matches!(end, End::TimedOut) && run.exited;
        if !matches!(end, End::Finished) {
            if matches!(end, End::TimedOut) && !run.exited {
                // A chance to clean up, then no more.
                run.process.terminate();
                run.pump(Instant::now() + TERM_GRACE, out);
            }
            run.process.kill();
            // What it printed before it was stopped still counts.
            run.pump(Instant::now() + GRACE, out);
        }
        let (exited, emitted) = (run.exited, run.emitted);
        let kept = run.kept();
        let read_error = run.read_error.take();
        let status = if exited { process.reap() } else { None };
        // Its last words on standard error, for the message.
        let _ = stderr_closed.recv_timeout(GRACE);
        let last_words = tail.quoted();
        drop(tx);
        tracing::debug!(
            source = ctx.source,
            program = %self.label,
            events = emitted,
            elapsed_ms = began.elapsed().as_millis() as u64,
            status = ?status.map(process::describe),
            "program finished"
        );

        let label = &self.label;
        let secs = self.timeout.as_secs();
        match end {
            End::Refused(why) => return Err(CollectError::Other(format!("{why}; it was stopped{last_words}"))),
            End::TimedOut if held_open => out.error(format!(
                "{label} exited, but its output stayed open (a process it started outside its process group \
                 holds it), so mailflow stopped reading it; {kept}{last_words}"
            )),
            End::TimedOut => out.error(format!(
                "{label} timed out: it did not finish within {secs} s (timeout_secs) and was killed; {kept}{last_words}"
            )),
            End::Finished => match status {
                Some(status) if status.success() => {}
                Some(status) => out.error(format!("{label} {}; {kept}{last_words}", process::describe(status))),
                None => out.error(format!("{label} ended, but its exit status was lost; {kept}{last_words}")),
            },
        }
        if let Some(e) = read_error {
            out.error(format!("{label}: reading its output failed: {e}; {kept}"));
        }
        Ok(())
    }
}
