//! One supervised service: its state, its restart backoff, and how its process is spawned.
//!
//! A service runs in its own session and process group (setsid), with stdin on `/dev/null` and
//! stdout+stderr into a pipe the supervisor forwards to the console (see `output.rs`).

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use cirrus_init_config::{Readiness, RestartPolicy, UnitFile};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::Pid;

use crate::cgroup::ServiceCgroup;
use crate::sandbox::Sandbox;

/// Delay of the second restart in a row (the first one is immediate).
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest restart delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A service that stayed up this long starts again from [`BACKOFF_FIRST`].
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);

/// Restart backoff: the first restart is immediate (a service that crashes once is back at once),
/// then 100 ms, 200 ms, 400 ms … capped at 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            next: Duration::ZERO,
        }
    }
}

impl Backoff {
    /// The delay before restarting a process that ran for `uptime`.
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= BACKOFF_RESET_AFTER {
            self.next = Duration::ZERO;
        }
        let delay = self.next;
        self.next = (self.next * 2).clamp(BACKOFF_FIRST, BACKOFF_MAX);
        delay
    }
}

/// Where a service is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not wanted: `disabled = true` and nothing asked for it yet.
    Inactive,
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
    /// Stopped at shutdown or on request.
    Stopped,
    /// Will not run: never became ready, or could not be started.
    Failed(String),
}

impl State {
    /// One word for `status` replies.
    pub fn word(&self) -> &'static str {
        match self {
            State::Inactive => "inactive",
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
    /// Its cgroup while it has one.
    pub cgroup: Option<ServiceCgroup>,
    /// Times of its recent unrequested exits (for `critical`).
    pub crashes: VecDeque<Instant>,
    /// Start again once the current stop completes (a `restart` request).
    pub restart_after_stop: bool,
    /// The state last published as the `init.svc.NAME` property.
    pub published_state: &'static str,
}

impl Service {
    pub fn new(unit: UnitFile) -> Service {
        let disabled = unit.disabled;
        Service {
            unit,
            state: if disabled {
                State::Inactive
            } else {
                State::Waiting
            },
            pid: None,
            ever_ready: false,
            backoff: Backoff::default(),
            started_at: None,
            status_text: None,
            cgroup: None,
            crashes: VecDeque::new(),
            restart_after_stop: false,
            published_state: "",
        }
    }

    pub fn name(&self) -> &str {
        &self.unit.name
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    /// Whether it is on its way to running (units ordered after it wait for it).
    pub fn is_being_started(&self) -> bool {
        matches!(
            self.state,
            State::Waiting | State::Starting | State::Running | State::Backoff { .. }
        )
    }

    /// Records an unrequested exit at `now`; true when a `critical` unit crossed its limit: more
    /// than `crashes` exits within `window`, or, as in Android, since boot while the boot has not
    /// completed yet (`boot_completed` false: the window does not apply).
    pub fn record_crash(&mut self, now: Instant, boot_completed: bool) -> bool {
        let Some(policy) = self.unit.critical else {
            return false;
        };
        self.crashes.push_back(now);
        while let Some(&first) = self.crashes.front() {
            if boot_completed && now.saturating_duration_since(first) > policy.window {
                self.crashes.pop_front();
            } else {
                break;
            }
        }
        self.crashes.len() > policy.crashes as usize
    }
}

/// A freshly spawned service process.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    /// Non-blocking read end of its stdout+stderr pipe.
    pub output: File,
    /// Non-blocking read end of its readiness pipe (`ready = "fd"`).
    pub ready: Option<File>,
}

/// What a service process is started with besides its unit.
#[derive(Debug)]
pub struct SpawnContext<'a> {
    /// Set after the unit's own `env`, so it wins.
    pub extra_env: &'a [(String, String)],
    /// The cgroup the child joins before exec.
    pub cgroup: Option<&'a ServiceCgroup>,
    pub sandbox: &'a Sandbox,
}

fn nonblocking_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let flags = OFlag::from_bits_retain(fcntl(&read_end, FcntlArg::F_GETFL)?);
    fcntl(&read_end, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok((read_end, write_end))
}

/// Starts `unit`'s process.
pub fn spawn(unit: &UnitFile, ctx: &SpawnContext<'_>) -> std::io::Result<Spawned> {
    let (read_end, write_end) = nonblocking_pipe()?;
    let ready_pipe = match unit.ready {
        Readiness::Fd(n) => Some((nonblocking_pipe()?, i32::try_from(n).unwrap_or(3))),
        _ => None,
    };

    let mut cmd = Command::new(&unit.exec);
    cmd.args(&unit.args)
        .envs(&unit.env)
        .envs(ctx.extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end.try_clone()?))
        .stderr(Stdio::from(write_end));
    if let Some(dir) = &unit.working_dir {
        cmd.current_dir(dir);
    }
    let unblocked = SigSet::empty();
    let procs_fd = ctx.cgroup.map(ServiceCgroup::procs_fd);
    let ready_fds = ready_pipe
        .as_ref()
        .map(|((_, write), target)| (write.as_raw_fd(), *target));
    let sandbox = ctx.sandbox.clone();
    // SAFETY: the supervisor is single-threaded, and between fork and exec the closure only makes
    // system calls on data prepared before the fork (see sandbox.rs); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Own session and process group: stopping the service signals the whole group.
            nix::unistd::setsid()?;
            if let Some(fd) = procs_fd {
                crate::cgroup::join_in_child(fd)?;
            }
            if let Some((write, target)) = ready_fds {
                if write == target {
                    fcntl(
                        BorrowedFd::borrow_raw(write),
                        FcntlArg::F_SETFD(FdFlag::empty()),
                    )?;
                } else if libc::dup2(write, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            sandbox.apply_in_child()?;
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
        // Our copy of the write end closes here: EOF once the service's copies are gone.
        ready: ready_pipe.map(|((read, _write), _)| File::from(read)),
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
                0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000
            ]
        );
        assert_eq!(b.next_delay(Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(b.next_delay(short), Duration::from_millis(100));
    }

    #[test]
    fn critical_counts_crashes_in_the_window() {
        let unit = UnitFile::parse(
            std::path::Path::new("/u/c.toml"),
            "exec = \"/bin/true\"\ncritical = true\ncritical_crashes = 2\ncritical_window_secs = 10\n",
        )
        .unwrap();
        let mut service = Service::new(unit);
        let t0 = Instant::now();
        assert!(!service.record_crash(t0, true));
        assert!(!service.record_crash(t0 + Duration::from_secs(1), true));
        // The third crash within 10 s is one too many.
        assert!(service.record_crash(t0 + Duration::from_secs(2), true));
        let mut service = Service::new(service.unit.clone());
        assert!(!service.record_crash(t0, true));
        assert!(!service.record_crash(t0 + Duration::from_secs(6), true));
        // The first crash has left the window.
        assert!(!service.record_crash(t0 + Duration::from_secs(12), true));
        // Before boot completes the window does not apply: three crashes are too many however slow.
        let mut service = Service::new(service.unit.clone());
        assert!(!service.record_crash(t0, false));
        assert!(!service.record_crash(t0 + Duration::from_secs(60), false));
        assert!(service.record_crash(t0 + Duration::from_secs(120), false));
        let plain =
            UnitFile::parse(std::path::Path::new("/u/p.toml"), "exec = \"/bin/true\"\n").unwrap();
        let mut service = Service::new(plain);
        assert!((0..100).all(|_| !service.record_crash(t0, false)));
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
