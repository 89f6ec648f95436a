//! One supervised service: its state, its restart backoff, and how its process is spawned.
//!
//! A service runs in its own session and process group (setsid), with stdin on `/dev/null` and
//! stdout+stderr into a pipe the supervisor forwards to the console (see `output.rs`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cirrus_init_config::{RestartPolicy, UnitFile};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::Pid;

/// First restart delay.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest restart delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A service that stayed up this long starts again from [`BACKOFF_FIRST`].
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// Exponential restart backoff: 100 ms, 200 ms, 400 ms … capped at 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }
}

impl Backoff {
    /// The delay before restarting a process that ran for `uptime`.
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= BACKOFF_RESET_AFTER {
            self.next = BACKOFF_FIRST;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }
}

/// Where a service is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not started yet: waiting for its dependencies.
    Waiting,
    /// Running, not ready yet (notify readiness, or a oneshot still running).
    Starting,
    /// Running and ready.
    Running,
    /// A oneshot that exited with status 0.
    Done,
    /// Exited after having been ready, and not restarted (policy).
    Exited(ExitStatus),
    /// Waiting to be restarted.
    Backoff { until: Instant },
    /// Asked to stop (SIGTERM sent); SIGKILL at `kill_at` if still running.
    Stopping { kill_at: Option<Instant> },
    /// Stopped at shutdown.
    Stopped,
    /// Will not run: never became ready, or could not be started.
    Failed(String),
}

impl State {
    /// One word for `status` replies.
    pub fn word(&self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Running => "running",
            State::Done => "done",
            State::Exited(_) => "exited",
            State::Backoff { .. } => "restarting",
            State::Stopping { .. } => "stopping",
            State::Stopped => "stopped",
            State::Failed(_) => "failed",
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(Signal),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// `status=N` or `signal=SIGNAME`, as in the event log.
    pub fn event_field(self) -> String {
        match self {
            ExitStatus::Code(code) => format!("status={code}"),
            ExitStatus::Signal(sig) => format!("signal={}", sig.as_str()),
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exited with status {code}"),
            ExitStatus::Signal(sig) => write!(f, "killed by {}", sig.as_str()),
        }
    }
}

/// Whether `policy` restarts a process that ended with `status`.
pub fn should_restart(policy: RestartPolicy, status: ExitStatus) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => !status.success(),
        RestartPolicy::Never => false,
    }
}

/// A unit and its runtime state.
#[derive(Debug)]
pub struct Service {
    pub unit: UnitFile,
    pub state: State,
    /// The main process (also its process group and session id) while it runs.
    pub pid: Option<Pid>,
    /// Became ready at least once (dependents may start).
    pub ever_ready: bool,
    pub backoff: Backoff,
    pub started_at: Option<Instant>,
    /// Last `STATUS=` sent over the notify socket.
    pub status_text: Option<String>,
}

impl Service {
    pub fn new(unit: UnitFile) -> Service {
        Service {
            unit,
            state: State::Waiting,
            pid: None,
            ever_ready: false,
            backoff: Backoff::default(),
            started_at: None,
            status_text: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.unit.name
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }
}

/// A freshly spawned service process.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    /// Non-blocking read end of its stdout+stderr pipe.
    pub output: File,
}

/// Starts `unit`'s process with `extra_env` (set after the unit's own `env`, so it wins).
pub fn spawn(unit: &UnitFile, extra_env: &[(String, String)]) -> std::io::Result<Spawned> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let flags = OFlag::from_bits_retain(fcntl(&read_end, FcntlArg::F_GETFL)?);
    fcntl(&read_end, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;

    let mut cmd = Command::new(&unit.exec);
    cmd.args(&unit.args)
        .envs(&unit.env)
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end.try_clone()?))
        .stderr(Stdio::from(write_end));
    if let Some(dir) = &unit.working_dir {
        cmd.current_dir(dir);
    }
    let unblocked = SigSet::empty();
    // SAFETY: between fork and exec the closure only makes two async-signal-safe system calls
    // (setsid, sigprocmask) on data prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Own session and process group: stopping the service signals the whole group.
            nix::unistd::setsid()?;
            // The supervisor blocks the signals it reads through signalfd; the mask is inherited.
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&unblocked), None)?;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // `child` is dropped without waiting: the supervisor reaps every child with waitpid(-1).
    // Dropping `cmd` closes our copies of the pipe's write end.
    drop(cmd);
    Ok(Spawned {
        pid,
        output: File::from(read_end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        let delays: Vec<u128> = (0..12).map(|_| b.next_delay(short).as_millis()).collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        assert_eq!(
            b.next_delay(Duration::from_secs(60)),
            Duration::from_millis(100)
        );
        assert_eq!(b.next_delay(short), Duration::from_millis(200));
    }

    #[test]
    fn restart_policies() {
        let ok = ExitStatus::Code(0);
        let bad = ExitStatus::Code(1);
        let killed = ExitStatus::Signal(Signal::SIGKILL);
        assert!(should_restart(RestartPolicy::Always, ok));
        assert!(!should_restart(RestartPolicy::OnFailure, ok));
        assert!(should_restart(RestartPolicy::OnFailure, bad));
        assert!(should_restart(RestartPolicy::OnFailure, killed));
        assert!(!should_restart(RestartPolicy::Never, bad));
        assert_eq!(killed.event_field(), "signal=SIGKILL");
        assert_eq!(bad.event_field(), "status=1");
    }
}
