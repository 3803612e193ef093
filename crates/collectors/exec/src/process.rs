//! Starting, watching, stopping and reaping the program.
//!
//! On Unix the program leads a process group of its own, so stopping it stops whatever it
//! started too (the `sleep` a shell script is waiting for). A thread waits for its exit
//! without reaping it (`waitid` with `WNOWAIT`): until the collecting thread reaps it, its
//! process ID, and so its group's, cannot be reused, which makes signalling the group safe at
//! any moment before. Elsewhere the program alone is stopped, and its exit is looked for
//! every [`POLL`].
//!
//! Its own group also keeps a `Ctrl-C` at the terminal, which goes to mailflow's group, from
//! reaching it, and mailflow may end without dropping [`Process`] (a second signal to the
//! daemon exits at once; a crash). On Linux the program therefore gets `SIGTERM` when mailflow
//! dies (its parent-death signal); what it started gets nothing, unless the program passes it
//! on. Elsewhere such a program runs on until it ends by itself.

use std::io;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use crate::stdout::Msg;

/// How often to look whether the program exited, where no thread can wait for it.
pub const POLL: Option<Duration> = if cfg!(unix) { None } else { Some(Duration::from_millis(100)) };

/// A running program, stopped with everything it started if dropped before [`reap`](Self::reap).
pub struct Process {
    child: Child,
    /// The program has exited. On Unix it is not reaped yet, so its group is still ours.
    exited: bool,
    reaped: bool,
}

/// Starts `command` (with its standard streams piped) as a process group of its own, to be
/// sent `SIGTERM` should mailflow die before it (Linux).
pub fn spawn(command: &mut Command) -> io::Result<Process> {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    #[cfg(target_os = "linux")]
    on_parent_death_terminate(command);
    let mut attempt = 0;
    loop {
        match command.spawn() {
            Ok(child) => return Ok(Process { child, exited: false, reaped: false }),
            // A program just written (by a deployment, or a test) may still be open for
            // writing in a process being started elsewhere; that passes in moments.
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempt < 5 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20 * attempt));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Has the program started by `command` sent `SIGTERM` when mailflow dies.
///
/// The kernel sends a parent-death signal when the *thread* that forked the program exits, not
/// only the process. That thread is the collecting thread, which calls [`spawn`] and does not
/// return before the program is reaped or killed ([`Process`]'s `drop`), so the signal comes
/// only when mailflow ends while the program runs. The setting survives `exec`, except of a
/// set-user-ID or set-group-ID program, or one with file capabilities, which drops it.
#[cfg(target_os = "linux")]
fn on_parent_death_terminate(command: &mut Command) {
    use rustix::process::{Signal, getpid, getppid, set_parent_process_death_signal};
    let parent = getpid();
    let set = move || -> io::Result<()> {
        // Runs in the child between fork and exec: only async-signal-safe calls (raw system
        // calls here; the error is a code, not an allocation).
        set_parent_process_death_signal(Some(Signal::TERM))?;
        // mailflow died between the fork and the line above: the child was handed to another
        // parent (init, a subreaper) and no signal will come. Fail the start instead of running
        // orphaned; nobody is left to see the error.
        if getppid() != Some(parent) {
            return Err(rustix::io::Errno::SRCH.into());
        }
        Ok(())
    };
    // SAFETY: `set` makes only async-signal-safe system calls and touches no lock or memory
    // shared with other threads.
    unsafe { std::os::unix::process::CommandExt::pre_exec(command, set) };
}

impl Process {
    /// The program's standard streams, each taken once.
    pub fn stdio(&mut self) -> io::Result<(ChildStdin, ChildStdout, ChildStderr)> {
        match (self.child.stdin.take(), self.child.stdout.take(), self.child.stderr.take()) {
            (Some(stdin), Some(stdout), Some(stderr)) => Ok((stdin, stdout, stderr)),
            _ => Err(io::Error::other("the program's standard streams are not piped")),
        }
    }

    /// Sends [`Msg::Exited`] to `tx` when the program exits (Unix; elsewhere see [`POLL`]).
    #[cfg(unix)]
    pub fn watch(&self, tx: SyncSender<Msg>) -> io::Result<()> {
        use rustix::process::{WaitId, WaitIdOptions, waitid};
        let pid = rustix::process::Pid::from_child(&self.child);
        std::thread::Builder::new().name("exec-wait".into()).spawn(move || {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
            // Any error but an interruption means there is nothing left to wait for (a process
            // that reaps every child, say); the collecting thread's reap then returns at once.
            while let Err(rustix::io::Errno::INTR) = waitid(WaitId::Pid(pid), options) {}
            let _ = tx.send(Msg::Exited);
        })?;
        Ok(())
    }

    #[cfg(not(unix))]
    pub fn watch(&self, _tx: SyncSender<Msg>) -> io::Result<()> {
        Ok(())
    }

    /// Whether the program has exited, looked at without waiting (where [`POLL`] is set).
    pub fn poll_exit(&mut self) -> bool {
        if cfg!(unix) || self.exited {
            return self.exited;
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            self.exited = true;
        }
        self.exited
    }

    /// Records that the program exited (told by [`watch`](Self::watch)'s message).
    pub fn exited(&mut self) {
        self.exited = true;
    }

    /// Asks the program and everything in its process group to stop (`SIGTERM`).
    pub fn terminate(&mut self) {
        self.signal(false);
    }

    /// Kills the program and everything in its process group (`SIGKILL`).
    pub fn kill(&mut self) {
        self.signal(true);
    }

    #[cfg(unix)]
    fn signal(&mut self, kill: bool) {
        use rustix::process::{Pid, Signal, kill_process_group};
        // Once reaped, the group's ID may belong to someone else.
        if self.reaped {
            return;
        }
        let signal = if kill { Signal::KILL } else { Signal::TERM };
        // ESRCH: the group is already gone.
        let _ = kill_process_group(Pid::from_child(&self.child), signal);
    }

    #[cfg(not(unix))]
    fn signal(&mut self, _kill: bool) {
        if !self.reaped {
            let _ = self.child.kill();
        }
    }

    /// Reaps the program: its exit status, or `None` if it has not exited (it is then left to
    /// be killed on drop) or its status was lost.
    pub fn reap(&mut self) -> Option<ExitStatus> {
        let status = if self.exited { self.child.wait().ok() } else { self.child.try_wait().ok().flatten() };
        self.reaped = status.is_some();
        status
    }
}

impl Drop for Process {
    /// Kills the program with its group and reaps it, so no zombie is left for mailflow's
    /// lifetime.
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        self.kill();
        self.reap_killed();
    }
}

impl Process {
    /// Reaps the program after [`kill`](Self::kill).
    #[cfg(unix)]
    fn reap_killed(&mut self) {
        use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};
        let pid = Pid::from_child(&self.child);
        // Not reaped yet, so `pid` is still the program's. The group's `SIGKILL` may have reached
        // others only: this says whether the program itself got it (an exited one not yet reaped
        // does too).
        if kill_process(pid, Signal::KILL).is_ok() {
            // `SIGKILL` cannot be caught, blocked or ignored, so the wait is short. The one
            // residual risk: a process in uninterruptible sleep (`D`, a hung NFS mount, a stuck
            // device) dies only when the kernel call it is in returns, and this waits for that.
            let _ = self.child.wait();
        } else {
            // Not ours to kill (it changed its user, as `sudo` does), or already reaped by
            // someone else: a blocking wait could last forever. Reap it whenever it ends, off
            // this thread; `ECHILD` ends that wait at once if there is nothing to reap.
            let reaper = std::thread::Builder::new()
                .name("exec-reap".into())
                .spawn(move || while let Err(rustix::io::Errno::INTR) = waitpid(Some(pid), WaitOptions::empty()) {});
            if reaper.is_err() {
                let _ = self.child.try_wait();
            }
        }
        self.reaped = true;
    }

    /// Windows leaves no zombies: the kill is enough, and a wait could only block.
    #[cfg(not(unix))]
    fn reap_killed(&mut self) {
        let _ = self.child.try_wait();
        self.reaped = true;
    }
}

/// `failed with exit code 3`, `was killed by signal 9 (SIGKILL)`.
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("failed with exit code {code}");
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        let name = match signal {
            1 => " (SIGHUP)",
            2 => " (SIGINT)",
            3 => " (SIGQUIT)",
            4 => " (SIGILL)",
            6 => " (SIGABRT)",
            7 if cfg!(target_os = "linux") => " (SIGBUS)",
            8 => " (SIGFPE)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            13 => " (SIGPIPE)",
            14 => " (SIGALRM)",
            15 => " (SIGTERM)",
            _ => "",
        };
        return format!("was killed by signal {signal}{name}");
    }
    format!("ended with {status}")
}

/// Why `program` could not be started, and what to do about it.
pub fn spawn_error(program: &std::path::Path, named_with_path: bool, e: &io::Error) -> String {
    let shown = program.display();
    let hint = match e.kind() {
        io::ErrorKind::NotFound if !named_with_path => {
            "no program of that name was found on PATH: install it, or give its full path as the first \
             element of `command`"
                .to_string()
        }
        io::ErrorKind::NotFound if program.is_file() => format!(
            "the file exists, but the interpreter on its `#!` line (or a library it needs) was not found: \
             fix that line, or name the interpreter first, e.g. command = [\"python3\", \"{shown}\"]"
        ),
        io::ErrorKind::NotFound => {
            "the program was not found: check `command` (a relative path is taken from the config file's \
             folder)"
                .to_string()
        }
        io::ErrorKind::PermissionDenied if program.is_dir() => "it is a folder, not a program: check `command`".into(),
        io::ErrorKind::PermissionDenied => {
            format!("make it executable (chmod +x {shown}) and readable by the user mailflow runs as")
        }
        _ => return format!("cannot run {shown}: {e}"),
    };
    format!("cannot run {shown}: {e}; {hint}")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::process::{Pid, WaitOptions, waitpid};

    #[test]
    fn dropping_a_running_program_kills_and_reaps_it() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let process = spawn(&mut command).unwrap();
        let pid = Pid::from_child(&process.child);
        let began = std::time::Instant::now();
        drop(process);
        assert!(began.elapsed() < Duration::from_secs(10), "{:?}", began.elapsed());
        // Reaped: no zombie is left for this process to collect (ECHILD), nor a running child.
        assert_eq!(
            waitpid(Some(pid), WaitOptions::NOHANG).map(|status| status.is_some()),
            Err(rustix::io::Errno::CHILD)
        );
    }
}
