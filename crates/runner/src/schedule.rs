//! `mailflow daemon`: runs each `[[job]]` when its schedule says.
//!
//! Each job has its own task that sleeps until the job's next run, takes the job's lock file, runs
//! the job on a blocking thread, and computes the next run from the time the run ended. So:
//! - a run that overruns later runs skips them (with a warning) instead of queueing them up;
//! - the lock file keeps a second daemon, or a `mailflow run --job` by hand, from running the same
//!   job at the same time, and records the due time last run, so a second daemon that wakes late
//!   does not run it again;
//! - a failed run is logged and the job runs again at its next time;
//! - on shutdown, waiting jobs stop at once and a running job finishes first.
//!
//! Times are wall-clock times (a cron schedule means 07:00 on the admin's clock), read through
//! [`Clock`] so tests can run days of schedule in paused tokio time. Long sleeps are cut into
//! minutes and the clock read again, so a suspended machine or a clock step is noticed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mailflow_config::Schedule;
use tokio::sync::watch;

/// The longest single sleep before the clock is read again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Wall-clock time, as the schedule sees it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// One job as the daemon runs it.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub name: String,
    pub schedule: Schedule,
    pub timezone: Tz,
}

/// Runs one job (on a blocking thread): its name and the time it was due. `Ok` says what it did.
pub type RunJob = Arc<dyn Fn(&str, DateTime<Utc>) -> Result<String, String> + Send + Sync>;

/// Runs every job on its schedule until `shutdown` turns true; a running job finishes first.
pub async fn run_jobs(
    jobs: Vec<ScheduledJob>,
    locks: Arc<LockDir>,
    clock: Arc<dyn Clock>,
    run_job: RunJob,
    shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        tasks.spawn(job_loop(job, locks.clone(), clock.clone(), run_job.clone(), shutdown.clone()));
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!("a job's schedule stopped: {e}");
        }
    }
}

async fn job_loop(
    job: ScheduledJob,
    locks: Arc<LockDir>,
    clock: Arc<dyn Clock>,
    run_job: RunJob,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = job.name.as_str();
    let mut after = clock.now();
    loop {
        let Some(due) = job.schedule.next_after(after, job.timezone) else {
            tracing::warn!(job = name, schedule = job.schedule.as_str(), "the schedule has no further run");
            return;
        };
        tracing::info!(job = name, next_run = %due.with_timezone(&job.timezone), "next run");
        if !sleep_until(clock.as_ref(), due, &mut shutdown).await {
            return;
        }
        match locks.try_lock(name) {
            // A recorded run in the future means a clock that was wrong once: not a reason to skip.
            Ok(Lock::Acquired(lock)) if lock.last_due().is_some_and(|last| last >= due && last <= clock.now()) => {
                tracing::info!(job = name, "run skipped: another mailflow daemon already ran it");
            }
            Ok(Lock::Acquired(mut lock)) => {
                if !lock.writable {
                    tracing::warn!(
                        job = name,
                        "the lock file {} belongs to another user: runs are not recorded, so another daemon could \
                         run this one again; remove the file",
                        locks.path(name).display()
                    );
                }
                tracing::info!(job = name, "run started");
                let run_job = run_job.clone();
                let job_name = job.name.clone();
                let result = tokio::task::spawn_blocking(move || {
                    let result = run_job(&job_name, due);
                    if let Err(e) = lock.record_due(due) {
                        tracing::warn!(job = %job_name, "cannot record the run in the lock file: {e}");
                    }
                    result
                })
                .await
                .unwrap_or_else(|panic| Err(format!("the run crashed: {panic}")));
                match result {
                    Ok(done) => tracing::info!(job = name, "run finished: {done}"),
                    Err(e) => tracing::error!(job = name, "run failed: {e}"),
                }
            }
            Ok(Lock::Held { pid }) => tracing::warn!(
                job = name,
                "run skipped: the job is still running in another process ({}); see the lock file {}",
                holder(pid),
                locks.path(name).display()
            ),
            Err(e) => tracing::error!(job = name, "run skipped: cannot take the lock file: {e}"),
        }
        let now = clock.now();
        let skipped = std::iter::successors(job.schedule.next_after(due, job.timezone), |t| {
            job.schedule.next_after(*t, job.timezone)
        })
        .take_while(|t| *t <= now)
        .take(1000)
        .count();
        if skipped > 0 {
            tracing::warn!(job = name, skipped, "the run outlasted later runs of the job; they are skipped");
        }
        // Never the same run twice, even if the clock went back while it ran.
        after = now.max(due);
    }
}

/// Sleeps until `due` by the clock; false if shutdown came first.
async fn sleep_until(clock: &dyn Clock, due: DateTime<Utc>, shutdown: &mut watch::Receiver<bool>) -> bool {
    loop {
        if *shutdown.borrow() {
            return false;
        }
        let left = (due - clock.now()).to_std().unwrap_or_default();
        if left.is_zero() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(left.min(MAX_SLEEP)) => {}
            changed = shutdown.changed() => if changed.is_err() { return false },
        }
    }
}

/// The folder of per-job lock files. A lock is an OS file lock (`flock`), so it is released when
/// the process holding it exits, however it exits: a stale lock file never blocks a job.
#[derive(Debug)]
pub struct LockDir {
    dir: PathBuf,
    /// Set apart the same job name in two config files.
    config_tag: String,
}

/// The result of [`LockDir::try_lock`].
pub enum Lock {
    /// The job is ours to run until this is dropped.
    Acquired(JobLock),
    /// Another process runs the job.
    Held { pid: Option<u32> },
}

/// A held job lock; dropping it releases the lock. The file says which process holds it and
/// which due time was run last, so two daemons never run the same due time twice.
#[derive(Debug)]
pub struct JobLock {
    file: File,
    last_due: Option<DateTime<Utc>>,
    writable: bool,
}

impl JobLock {
    /// The due time of the last scheduled run of the job, by any daemon.
    pub fn last_due(&self) -> Option<DateTime<Utc>> {
        self.last_due
    }

    /// Records a scheduled run; a lock file this process may not write records nothing.
    pub fn record_due(&mut self, due: DateTime<Utc>) -> std::io::Result<()> {
        self.last_due = Some(due);
        if !self.writable {
            return Ok(());
        }
        self.write()
    }

    fn write(&mut self) -> std::io::Result<()> {
        let mut text = format!("{}\n", std::process::id());
        if let Some(due) = self.last_due {
            text.push_str(&format!("last_due={}\n", due.to_rfc3339()));
        }
        // Overwrite, then cut: a crash in between leaves the old record readable, not nothing.
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())?;
        self.file.set_len(text.len() as u64)
    }
}

impl LockDir {
    /// Lock files for the jobs of the config at `config_path`, in `dir` (created if needed).
    pub fn new(dir: PathBuf, config_path: &Path) -> LockDir {
        let canonical = config_path.canonicalize().unwrap_or_else(|_| config_path.to_path_buf());
        LockDir {
            dir,
            config_tag: format!("{:08x}", mailflow_core::fnv1a(canonical.to_string_lossy().as_bytes()) as u32),
        }
    }

    /// The default folder: `$RUNTIME_DIRECTORY` (systemd's `RuntimeDirectory=`), else
    /// `/run/mailflow` when it exists (so runs by hand see the service's locks), else
    /// `$XDG_RUNTIME_DIR/mailflow`, else `~/.cache/mailflow/locks`. Never a shared temp folder,
    /// where another user could take the name first.
    pub fn default_dir() -> PathBuf {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let system = Path::new("/run/mailflow");
        var("RUNTIME_DIRECTORY")
            .or_else(|| system.is_dir().then(|| system.to_path_buf()))
            .or_else(|| var("XDG_RUNTIME_DIR").map(|d| d.join("mailflow")))
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("mailflow/locks")))
            .or_else(|| var("HOME").map(|d| d.join(".cache/mailflow/locks")))
            .unwrap_or_else(|| PathBuf::from("/run/mailflow"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{}-{}.lock", mailflow_component::output::file_name_for(job), self.config_tag))
    }

    /// Takes the job's lock if no other process holds it. A lock file another user created (root
    /// ran the job by hand) is locked through a read-only handle: the lock still works.
    pub fn try_lock(&self, job: &str) -> std::io::Result<Lock> {
        let path = self.path(job);
        let context = |e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("lock file {}: {e} (can this user write to its folder?)", path.display()),
            )
        };
        std::fs::create_dir_all(&self.dir).map_err(context)?;
        let (mut file, writable) =
            match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path) {
                Ok(file) => (file, true),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    (File::open(&path).map_err(context)?, false)
                }
                Err(e) => return Err(context(e)),
            };
        let locked = file.try_lock();
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        match locked {
            Ok(()) => {
                let last_due = text
                    .lines()
                    .find_map(|l| l.strip_prefix("last_due="))
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                let mut lock = JobLock { file, last_due, writable };
                if writable {
                    lock.write()?;
                }
                Ok(Lock::Acquired(lock))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                Ok(Lock::Held { pid: text.lines().next().and_then(|l| l.trim().parse().ok()) })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(context(e)),
        }
    }
}

/// "pid 1234", or "pid unknown" when the lock file does not say.
pub fn holder(pid: Option<u32>) -> String {
    pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Wall time that starts at `base` and moves with tokio's (paused) clock, plus what a test adds
    /// to stand for time a run took.
    struct TestClock {
        base: DateTime<Utc>,
        start: tokio::time::Instant,
        extra: Mutex<chrono::Duration>,
    }

    impl TestClock {
        fn at(base: &str) -> Arc<TestClock> {
            Arc::new(TestClock {
                base: base.parse().unwrap(),
                start: tokio::time::Instant::now(),
                extra: Mutex::new(chrono::Duration::zero()),
            })
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc> {
            let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap();
            self.base + elapsed + *self.extra.lock().unwrap()
        }
    }

    fn job(schedule: &str, timezone: Tz) -> ScheduledJob {
        ScheduledJob { name: "weekly digest".into(), schedule: schedule.parse().unwrap(), timezone }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Runs `job` until `runs` runs were attempted; returns the times each was due and started.
    async fn run_until(
        job: ScheduledJob,
        clock: Arc<TestClock>,
        locks: Arc<LockDir>,
        runs: usize,
        each: impl Fn(usize, &TestClock) -> Result<String, String> + Send + Sync + 'static,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let (stop, shutdown) = watch::channel(false);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let run_job: RunJob = {
            let seen = seen.clone();
            let clock = clock.clone();
            Arc::new(move |_: &str, due| {
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push((due, clock.now()));
                    seen.len()
                };
                let result = each(n, &clock);
                if n == runs {
                    stop.send_replace(true);
                }
                result
            })
        };
        tokio::time::timeout(
            Duration::from_secs(400 * 24 * 3600),
            run_jobs(vec![job], locks, clock.clone(), run_job, shutdown),
        )
        .await
        .expect("the daemon stops after the runs");
        Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
    }

    fn locks() -> (tempfile::TempDir, Arc<LockDir>) {
        let dir = tempfile::tempdir().unwrap();
        let locks = Arc::new(LockDir::new(dir.path().join("locks"), &dir.path().join("mailflow.toml")));
        (dir, locks)
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_local_times_across_both_dst_changes() {
        let (_dir, locks) = locks();
        let berlin = chrono_tz::Europe::Berlin;
        let clock = TestClock::at("2026-03-27T12:00:00Z");
        let runs = run_until(job("30 2 * * *", berlin), clock, locks.clone(), 3, |_, _| Ok("done".into())).await;
        let due: Vec<_> = runs.iter().map(|(due, _)| *due).collect();
        // 02:30 CET; 02:30 does not exist on the 29th, so 03:00 CEST; then 02:30 CEST.
        assert_eq!(due, [at("2026-03-28T01:30:00Z"), at("2026-03-29T01:00:00Z"), at("2026-03-30T00:30:00Z")]);
        for (due, started) in &runs {
            assert!(*started >= *due && *started - *due < chrono::Duration::seconds(1), "{due} {started}");
        }

        let clock = TestClock::at("2026-10-24T12:00:00Z");
        let runs = run_until(job("30 2 * * *", berlin), clock, locks, 2, |_, _| Ok("done".into())).await;
        // 02:30 happens twice on the 25th (CEST, then CET): one run.
        let due: Vec<_> = runs.iter().map(|(due, _)| *due).collect();
        assert_eq!(due, [at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_run_is_survived_and_an_overrun_skips_runs_instead_of_overlapping() {
        let (_dir, locks) = locks();
        let clock = TestClock::at("2026-12-07T06:59:30Z");
        let runs = run_until(job("* * * * *", Tz::UTC), clock, locks, 3, |n, clock| {
            if n == 1 {
                // The first run takes 150 s and fails.
                *clock.extra.lock().unwrap() += chrono::Duration::seconds(150);
                return Err("the SMTP server refused the digest".into());
            }
            Ok("done".into())
        })
        .await;
        let due: Vec<_> = runs.iter().map(|(due, _)| *due).collect();
        // 07:01 and 07:02 fell inside the first run: skipped, not queued or run alongside.
        assert_eq!(due, [at("2026-12-07T07:00:00Z"), at("2026-12-07T07:03:00Z"), at("2026-12-07T07:04:00Z")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_held_by_another_process_is_skipped_until_it_is_free() {
        let (_dir, locks) = locks();
        let Lock::Acquired(held) = locks.try_lock("weekly digest").unwrap() else { panic!("the lock is free") };
        assert!(
            matches!(locks.try_lock("weekly digest").unwrap(), Lock::Held { pid: Some(p) } if p == std::process::id())
        );
        let clock = TestClock::at("2026-12-07T06:59:30Z");
        let (stop, shutdown) = watch::channel(false);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let run_job: RunJob = {
            let seen = seen.clone();
            Arc::new(move |_: &str, due| {
                seen.lock().unwrap().push(due);
                stop.send_replace(true);
                Ok("done".into())
            })
        };
        let daemon =
            tokio::spawn(run_jobs(vec![job("* * * * *", Tz::UTC)], locks.clone(), clock.clone(), run_job, shutdown));
        // Two runs come due while the other process holds the lock.
        tokio::time::sleep(Duration::from_secs(165)).await;
        assert!(seen.lock().unwrap().is_empty(), "no run while the lock is held");
        drop(held);
        daemon.await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [at("2026-12-07T07:03:00Z")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_due_time_another_daemon_already_ran_is_not_run_again() {
        let (_dir, locks) = locks();
        // The other daemon ran 07:00 and finished before this one woke up.
        let Lock::Acquired(mut other) = locks.try_lock("weekly digest").unwrap() else { panic!("free") };
        other.record_due(at("2026-12-07T07:00:00Z")).unwrap();
        drop(other);
        let clock = TestClock::at("2026-12-07T06:59:30Z");
        let runs = run_until(job("* * * * *", Tz::UTC), clock, locks.clone(), 1, |_, _| Ok("done".into())).await;
        assert_eq!(runs.iter().map(|(due, _)| *due).collect::<Vec<_>>(), [at("2026-12-07T07:01:00Z")]);
        let Lock::Acquired(mut lock) = locks.try_lock("weekly digest").unwrap() else { panic!("free") };
        assert_eq!(lock.last_due(), Some(at("2026-12-07T07:01:00Z")));

        // A run recorded in the future (a clock set wrong once) does not stop the job for a year.
        lock.record_due(at("2027-12-07T07:00:00Z")).unwrap();
        drop(lock);
        let clock = TestClock::at("2026-12-07T07:01:30Z");
        let runs = run_until(job("* * * * *", Tz::UTC), clock, locks, 1, |_, _| Ok("done".into())).await;
        assert_eq!(runs.iter().map(|(due, _)| *due).collect::<Vec<_>>(), [at("2026-12-07T07:02:00Z")]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_the_running_job_finish_and_starts_no_other() {
        let (_dir, locks) = locks();
        let clock = TestClock::at("2026-12-07T06:59:30Z");
        let (stop, shutdown) = watch::channel(false);
        // A tokio channel: waiting on it is not waiting on time, which stands still while a run
        // (a blocking task) is in progress.
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let started_tx = Mutex::new(Some(started_tx));
        let finished = Arc::new(Mutex::new(0));
        let run_job: RunJob = {
            let finished = finished.clone();
            Arc::new(move |_: &str, _| {
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    tx.send(()).unwrap();
                }
                // A run in progress when the signal comes.
                std::thread::sleep(Duration::from_millis(300));
                *finished.lock().unwrap() += 1;
                Ok("done".into())
            })
        };
        let daemon = tokio::spawn(run_jobs(vec![job("* * * * *", Tz::UTC)], locks, clock, run_job, shutdown));
        started_rx.await.unwrap();
        stop.send_replace(true);
        daemon.await.unwrap();
        assert_eq!(*finished.lock().unwrap(), 1, "the running job finished before the daemon returned");
    }
}
