//! The service supervisor: a single-threaded event loop over a signalfd, the services' output
//! pipes, the notify socket and the control socket, with timers through the poll timeout.
//!
//! It starts units in dependency order, forwards their output, tracks readiness, reaps every
//! zombie, restarts services per policy with backoff, logs `boot completed in …` once, and on
//! shutdown stops services in reverse dependency order. It runs as PID 1 (second stage) and
//! unprivileged (`--user`); what happens after the services are stopped is the caller's business
//! (`shutdown.rs` for PID 1).

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use cirrus_init_config::properties::{BUILD_PROPERTIES, PERSIST_PROPERTIES};
use cirrus_init_config::property_access::PROPERTY_ACCESS;
use cirrus_init_config::unit::{CriticalAction, TriggerAction};
use cirrus_init_config::{ConfigError, Readiness, load_unit_dirs};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cgroup::CgroupTree;
use crate::control::{Connection, ConnectionEvent, ControlSocket, Request, is_privileged_uid};
use crate::event_log::EventLog;
use crate::log_forward::LogForwarder;
use crate::notify::{NOTIFY_ACK_ENV, NOTIFY_SOCKET_ENV, NotifyMessage, NotifySocket};
use crate::output::{OutputPipe, ReadOutcome};
use crate::properties::PropertyStore;
use crate::property_access::AccessPolicy;
use crate::sandbox::Sandbox;
use crate::service::{self, ExitStatus, Service, SpawnContext, State};

/// Default `PATH` for services when init itself has none (the kernel passes PID 1 almost nothing).
pub const DEFAULT_PATH: &str =
    "/system/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Control-socket clients waiting for their request to be read, at most.
const MAX_PENDING_CONNECTIONS: usize = 64;
/// Property watchers, at most.
const MAX_WATCHERS: usize = 64;

/// logd's socket for service output, in the runtime directory.
pub const LOGD_SOCKET: &str = "logd.sock";

/// Whether the supervisor is the system's PID 1 or an unprivileged instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Pid1,
    User,
}

/// What to do once the services are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownKind {
    PowerOff,
    Reboot,
    /// Reboot into the recovery system.
    RebootRecovery,
    /// Reboot into the bootloader.
    RebootBootloader,
}

impl ShutdownKind {
    pub fn describe(self) -> &'static str {
        match self {
            ShutdownKind::PowerOff => "powering off",
            ShutdownKind::Reboot => "rebooting",
            ShutdownKind::RebootRecovery => "rebooting into recovery",
            ShutdownKind::RebootBootloader => "rebooting into the bootloader",
        }
    }

    fn for_critical(action: CriticalAction) -> ShutdownKind {
        match action {
            CriticalAction::RebootRecovery => ShutdownKind::RebootRecovery,
            CriticalAction::RebootBootloader => ShutdownKind::RebootBootloader,
            CriticalAction::Reboot => ShutdownKind::Reboot,
            CriticalAction::Poweroff => ShutdownKind::PowerOff,
        }
    }
}

/// Where the supervisor reads units and puts its sockets.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Unit directories, later ones overriding earlier ones.
    pub unit_dirs: Vec<PathBuf>,
    /// Runtime directory: `notify` and `init.sock` are created here.
    pub run_dir: PathBuf,
    pub mode: RunMode,
    pub event_log: Option<PathBuf>,
    /// Build property files, later ones overriding earlier ones.
    pub property_files: Vec<PathBuf>,
    /// Where `persist.*` properties are saved.
    pub persist_file: Option<PathBuf>,
    /// Property access files, later ones adding to and overriding earlier ones.
    pub access_files: Vec<PathBuf>,
}

impl SupervisorConfig {
    /// PID 1 on a device: `/system/etc/init`, `/vendor/etc/init`, `/run/cirrus`.
    pub fn device() -> SupervisorConfig {
        SupervisorConfig {
            unit_dirs: vec![
                PathBuf::from("/system/etc/init"),
                PathBuf::from("/vendor/etc/init"),
            ],
            run_dir: PathBuf::from("/run/cirrus"),
            mode: RunMode::Pid1,
            event_log: None,
            property_files: vec![
                PathBuf::from("/system").join(BUILD_PROPERTIES),
                PathBuf::from("/vendor").join(BUILD_PROPERTIES),
            ],
            persist_file: Some(PathBuf::from("/data").join(PERSIST_PROPERTIES)),
            access_files: vec![
                PathBuf::from("/system").join(PROPERTY_ACCESS),
                PathBuf::from("/vendor").join(PROPERTY_ACCESS),
            ],
        }
    }

    /// Unprivileged over a scratch root: `ROOT/system/etc/init`, `ROOT/vendor/etc/init`,
    /// `ROOT/run/cirrus`, properties in `ROOT/system/etc`, `ROOT/vendor/etc` and `ROOT/data`.
    pub fn user(root: &Path, event_log: Option<PathBuf>) -> SupervisorConfig {
        SupervisorConfig {
            unit_dirs: vec![root.join("system/etc/init"), root.join("vendor/etc/init")],
            run_dir: root.join("run/cirrus"),
            mode: RunMode::User,
            event_log,
            property_files: vec![
                root.join("system").join(BUILD_PROPERTIES),
                root.join("vendor").join(BUILD_PROPERTIES),
            ],
            persist_file: Some(root.join("data").join(PERSIST_PROPERTIES)),
            access_files: vec![
                root.join("system").join(PROPERTY_ACCESS),
                root.join("vendor").join(PROPERTY_ACCESS),
            ],
        }
    }
}

/// Runs the supervisor until every service is stopped after a shutdown request.
pub fn run(config: SupervisorConfig) -> anyhow::Result<ShutdownKind> {
    let mut supervisor = Supervisor::new(config)?;
    Ok(supervisor.run())
}

/// What poll found ready.
#[derive(Debug, Clone, Copy)]
enum Token {
    Signal,
    Notify,
    Control,
    Connection(usize),
    Output(usize),
    Ready(usize),
    Watcher(usize),
}

/// The read end of a service's readiness pipe (`ready = "fd"`).
struct ReadyPipe {
    service: usize,
    pid: Pid,
    file: std::fs::File,
}

/// A control-socket client that asked to `watch` properties.
struct Watcher {
    stream: UnixStream,
    prefix: String,
    /// Whose request it was: only properties this uid may read are sent.
    uid: u32,
}

struct Supervisor {
    mode: RunMode,
    services: Vec<Service>,
    by_name: BTreeMap<String, usize>,
    events: EventLog,
    signals: SignalFd,
    notify: Option<NotifySocket>,
    control: Option<ControlSocket>,
    connections: Vec<Connection>,
    outputs: Vec<OutputPipe>,
    logd: LogForwarder,
    ready_pipes: Vec<ReadyPipe>,
    watchers: Vec<Watcher>,
    properties: PropertyStore,
    access: AccessPolicy,
    cgroups: Option<CgroupTree>,
    extra_env: Vec<(String, String)>,
    started: Instant,
    boot_completed: bool,
    shutdown: Option<ShutdownKind>,
}

/// Degrades gracefully as PID 1 (log and go on), fails loudly in user mode.
fn tolerate<T>(mode: RunMode, result: anyhow::Result<T>) -> anyhow::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if mode == RunMode::Pid1 => {
            tracing::error!("{e:#}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

impl Supervisor {
    fn new(config: SupervisorConfig) -> anyhow::Result<Supervisor> {
        let mode = config.mode;
        let started = Instant::now();

        // Signals are read through a signalfd, so they must be blocked; children get the mask
        // cleared before exec (service.rs).
        let mut mask = SigSet::empty();
        for sig in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ] {
            mask.add(sig);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).context("cannot block signals")?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .context("cannot create the signalfd")?;

        match mode {
            RunMode::Pid1 => {
                // Ctrl-Alt-Del sends SIGINT to PID 1 instead of rebooting at once.
                if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
                    tracing::error!(
                        "cannot hand Ctrl-Alt-Del to init (reboot(RB_DISABLE_CAD)): {e}"
                    );
                }
            }
            RunMode::User => {
                nix::sys::prctl::set_child_subreaper(true)
                    .context("cannot become a child subreaper")?;
            }
        }

        let events = match &config.event_log {
            Some(path) => tolerate(
                mode,
                EventLog::open(path)
                    .with_context(|| format!("cannot open event log {}", path.display())),
            )?
            .unwrap_or_default(),
            None => EventLog::disabled(),
        };

        tolerate(
            mode,
            std::fs::create_dir_all(&config.run_dir).with_context(|| {
                format!(
                    "cannot create runtime directory {}",
                    config.run_dir.display()
                )
            }),
        )?;
        let notify = tolerate(mode, NotifySocket::bind(&config.run_dir.join("notify")))?;
        let control = tolerate(mode, ControlSocket::bind(&config.run_dir.join("init.sock")))?;

        let mut extra_env = Vec::new();
        if let Some(notify) = &notify {
            extra_env.push((
                NOTIFY_SOCKET_ENV.to_string(),
                notify.path().display().to_string(),
            ));
            extra_env.push((NOTIFY_ACK_ENV.to_string(), "1".to_string()));
        }
        if mode == RunMode::User {
            extra_env.push((
                crate::control::SOCKET_ENV.to_string(),
                config.run_dir.join("init.sock").display().to_string(),
            ));
        }
        if std::env::var_os("PATH").is_none() {
            extra_env.push(("PATH".to_string(), DEFAULT_PATH.to_string()));
        }

        let (properties, mut property_errors) =
            PropertyStore::load(&config.property_files, config.persist_file.clone());
        let (access, access_errors) = AccessPolicy::load(&config.access_files);
        property_errors.extend(access_errors);
        let cgroups = match mode {
            RunMode::Pid1 => CgroupTree::for_pid1(),
            RunMode::User => CgroupTree::for_user(),
        };
        let cgroups = match cgroups {
            Ok(tree) => {
                tracing::info!("service cgroups under {}", tree.base().display());
                Some(tree)
            }
            Err(reason) => {
                tracing::warn!("services run without cgroups: {reason}");
                None
            }
        };

        let mut supervisor = Supervisor {
            mode,
            services: Vec::new(),
            by_name: BTreeMap::new(),
            events,
            signals,
            notify,
            control,
            connections: Vec::new(),
            outputs: Vec::new(),
            logd: LogForwarder::new(&config.run_dir.join(LOGD_SOCKET)),
            ready_pipes: Vec::new(),
            watchers: Vec::new(),
            properties,
            access,
            cgroups,
            extra_env,
            started,
            boot_completed: false,
            shutdown: None,
        };
        for error in &property_errors {
            supervisor.config_error(error);
        }
        supervisor.load_units(&config.unit_dirs);
        // Triggers also fire for the values properties have at boot (restored or built in).
        let current: Vec<(String, String)> = supervisor
            .properties
            .list("")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (name, value) in current {
            supervisor.run_triggers(&name, &value);
        }
        Ok(supervisor)
    }

    fn load_units(&mut self, dirs: &[PathBuf]) {
        let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        let (units, errors) = load_unit_dirs(&dir_refs);
        for error in &errors {
            self.config_error(error);
        }
        let cycles = crate::deps::find_cycles(&units);
        self.services = units.into_iter().map(Service::new).collect();
        self.by_name = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name().to_string(), i))
            .collect();
        for cycle in cycles {
            let list = cycle.join(", ");
            tracing::error!(
                "dependency cycle between units {list}: none of them can start; fix their `requires`/`after`"
            );
            for name in &cycle {
                if let Some(&i) = self.by_name.get(name) {
                    self.services[i].state =
                        State::Failed(format!("in a dependency cycle ({list})"));
                }
            }
        }
        // A disabled unit that an enabled one requires or wants is started with it.
        let wanted: Vec<usize> = (0..self.services.len())
            .filter(|&i| self.services[i].state == State::Waiting)
            .collect();
        for i in wanted {
            self.pull_in_dependencies(i);
        }
        if self.services.is_empty() {
            tracing::warn!("no units found: nothing to supervise");
        }
        tracing::info!(
            "loaded {} unit(s) from {}",
            self.services.len(),
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    fn config_error(&mut self, error: &ConfigError) {
        tracing::error!("{error}");
        let location = match error.line {
            Some(line) => format!("{}:{line}", error.path.display()),
            None => error.path.display().to_string(),
        };
        self.events.record(&format!("config-error {location}"));
    }

    fn run(&mut self) -> ShutdownKind {
        loop {
            self.reap();
            let now = Instant::now();
            self.fire_timers(now);
            match self.shutdown {
                None => {
                    self.start_eligible();
                    self.check_boot_completed();
                    self.publish_service_states();
                }
                Some(kind) => {
                    self.advance_shutdown(now);
                    if self.services.iter().all(|s| s.pid.is_none()) {
                        self.finish_outputs();
                        if let Some(cgroups) = &self.cgroups {
                            cgroups.remove_all();
                        }
                        match self.mode {
                            RunMode::Pid1 => {
                                tracing::info!("all services stopped; {}", kind.describe())
                            }
                            RunMode::User => {
                                tracing::info!("all services stopped; exiting (user mode)")
                            }
                        }
                        return kind;
                    }
                }
            }
            self.wait_and_dispatch();
        }
    }

    // ---- starting ----------------------------------------------------------------------------

    /// Starts every waiting unit whose dependencies are ready; fails those whose requirements failed.
    fn start_eligible(&mut self) {
        loop {
            let mut changed = false;
            for i in 0..self.services.len() {
                if self.services[i].state != State::Waiting {
                    continue;
                }
                match self.eligibility(i) {
                    Eligibility::Wait => {}
                    Eligibility::Start => {
                        self.start_service(i);
                        changed = true;
                    }
                    Eligibility::Fail(reason) => {
                        tracing::error!("{}: not started: {reason}", self.services[i].name());
                        self.services[i].state = State::Failed(reason);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn eligibility(&self, i: usize) -> Eligibility {
        let unit = &self.services[i].unit;
        let mut wait = false;
        for dep in &unit.requires {
            match self.by_name.get(dep).map(|&j| &self.services[j]) {
                None => {
                    return Eligibility::Fail(format!("it requires `{dep}`, which does not exist"));
                }
                Some(d) if d.is_failed() => {
                    return Eligibility::Fail(format!("it requires `{dep}`, which failed"));
                }
                Some(d) if !d.ever_ready => wait = true,
                Some(_) => {}
            }
        }
        for dep in unit.wants.iter().chain(&unit.after) {
            // `wants` and `after` only order: a missing, failed or inactive unit does not hold this one back.
            if let Some(d) = self.by_name.get(dep).map(|&j| &self.services[j])
                && !d.ever_ready
                && d.is_being_started()
            {
                wait = true;
            }
        }
        if wait {
            Eligibility::Wait
        } else {
            Eligibility::Start
        }
    }

    fn start_service(&mut self, i: usize) {
        let now = Instant::now();
        let name = self.services[i].unit.name.clone();
        let sandbox = match Sandbox::prepare(&self.services[i].unit) {
            Ok(sandbox) => sandbox,
            Err(e) => {
                tracing::error!("{name}: cannot start: {e}");
                self.services[i].state = State::Failed(e);
                return;
            }
        };
        let cgroup = self.cgroups.as_ref().and_then(|tree| {
            tree.create(&name, &self.services[i].unit.cgroup)
                .map_err(|e| tracing::warn!("{name}: runs without a cgroup: {e}"))
                .ok()
        });
        let spawned = service::spawn(
            &self.services[i].unit,
            &SpawnContext {
                extra_env: &self.extra_env,
                cgroup: cgroup.as_ref(),
                sandbox: &sandbox,
            },
        );
        let service = &mut self.services[i];
        service.cgroup = cgroup;
        match spawned {
            Ok(spawned) => {
                service.pid = Some(spawned.pid);
                service.started_at = Some(now);
                self.outputs.push(OutputPipe::new(
                    name.clone(),
                    spawned.pid.as_raw(),
                    spawned.output,
                ));
                if let Some(file) = spawned.ready {
                    self.ready_pipes.push(ReadyPipe {
                        service: i,
                        pid: spawned.pid,
                        file,
                    });
                }
                tracing::info!(
                    "{name}: started {} (pid {})",
                    service.unit.exec.display(),
                    spawned.pid
                );
                self.events
                    .record(&format!("start {name} pid={}", spawned.pid));
                if !service.unit.oneshot && service.unit.ready == Readiness::Started {
                    service.state = State::Running;
                    self.mark_ready(i);
                } else {
                    service.state = State::Starting;
                }
            }
            Err(e) => {
                tracing::error!("{name}: cannot start {}: {e}", service.unit.exec.display());
                service.started_at = Some(now);
                self.after_end(i, ExitStatus::Code(127), now);
            }
        }
    }

    fn mark_ready(&mut self, i: usize) {
        let service = &mut self.services[i];
        service.ever_ready = true;
        let name = service.unit.name.clone();
        tracing::info!("{name}: ready");
        self.events.record(&format!("ready {name}"));
    }

    fn check_boot_completed(&mut self) {
        if self.boot_completed
            || !self
                .services
                .iter()
                .all(|s| s.ever_ready || s.is_failed() || !s.is_being_started())
        {
            return;
        }
        self.boot_completed = true;
        let secs = match self.mode {
            // Since the kernel started, like the console stamps.
            RunMode::Pid1 => cirrus_logging::boot_time_secs()
                .unwrap_or_else(|| self.started.elapsed().as_secs_f64()),
            RunMode::User => self.started.elapsed().as_secs_f64(),
        };
        let failed: Vec<&str> = self
            .services
            .iter()
            .filter(|s| s.is_failed())
            .map(Service::name)
            .collect();
        if failed.is_empty() {
            tracing::info!("boot completed in {secs:.3}s");
        } else {
            tracing::info!(
                "boot completed in {secs:.3}s ({} unit(s) failed: {})",
                failed.len(),
                failed.join(", ")
            );
        }
        self.events.record("boot-completed");
        self.set_property_internal("sys.boot_completed", "1");
    }

    // ---- exits, restarts ---------------------------------------------------------------------

    /// Reaps every exited child: services and adopted orphans alike.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.child_exited(pid, ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _core)) => {
                    self.child_exited(pid, ExitStatus::Signal(sig))
                }
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => break,
                Err(e) => {
                    tracing::error!("waitpid failed: {e}");
                    break;
                }
            }
        }
    }

    fn child_exited(&mut self, pid: Pid, status: ExitStatus) {
        let Some(i) = self.services.iter().position(|s| s.pid == Some(pid)) else {
            tracing::debug!("reaped pid {pid} ({status})");
            return;
        };
        let now = Instant::now();
        let service = &mut self.services[i];
        service.pid = None;
        let name = service.unit.name.clone();
        let stopping = self.shutdown.is_some() || matches!(service.state, State::Stopping { .. });
        if status.success() || stopping {
            tracing::info!("{name}: {status}");
        } else {
            tracing::warn!("{name}: {status}");
        }
        self.events
            .record(&format!("exit {name} {}", status.event_field()));
        // What the main process left behind in its process group goes with it, so a restart starts
        // clean; the cgroup catches what left the group (daemons that double-fork and setsid).
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        if let Some(cgroup) = self.services[i].cgroup.take() {
            // Only those that had left the process group count: the group was just SIGKILLed.
            let left = crate::cgroup::kill_cgroup(&cgroup.dir)
                .into_iter()
                .filter(|&p| nix::unistd::getpgid(Some(Pid::from_raw(p))).is_ok_and(|g| g != pid))
                .count();
            if left > 0 {
                tracing::info!("{name}: killed {left} leftover process(es) in its cgroup");
                self.events.record(&format!("cgroup-kill {name}"));
            }
            // Fails while the killed processes are still exiting; the next start reuses the cgroup.
            let _ = std::fs::remove_dir(&cgroup.dir);
        }
        self.ready_pipes.retain(|p| p.pid != pid);

        if stopping {
            let service = &mut self.services[i];
            if service.restart_after_stop && self.shutdown.is_none() {
                service.restart_after_stop = false;
                service.state = State::Waiting;
                service.ever_ready = false;
            } else {
                service.state = State::Stopped;
            }
            return;
        }
        if self.services[i].unit.oneshot && status.success() {
            self.services[i].state = State::Done;
            self.mark_ready(i);
            return;
        }
        self.after_end(i, status, now);
    }

    /// Restarts per policy, or settles the service as exited / failed.
    fn after_end(&mut self, i: usize, status: ExitStatus, now: Instant) {
        let service = &mut self.services[i];
        let name = service.unit.name.clone();
        if service.record_crash(now, self.boot_completed)
            && let Some(policy) = service.unit.critical
        {
            let count = service.crashes.len();
            service.state = State::Failed("critical service in a crash loop".to_string());
            tracing::error!(
                "{name}: critical service exited {count} times in {} s: {}",
                policy.window.as_secs(),
                policy.action.word()
            );
            self.events
                .record(&format!("critical {name} action={}", policy.action.word()));
            match self.mode {
                RunMode::Pid1 => self.request_shutdown(
                    ShutdownKind::for_critical(policy.action),
                    &format!("critical service {name} in a crash loop"),
                ),
                RunMode::User => tracing::warn!(
                    "user mode: not acting on it ({} is recorded in the event log)",
                    policy.action.word()
                ),
            }
            return;
        }
        if service::should_restart(service.unit.restart, status) {
            let uptime = service
                .started_at
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let delay = service.backoff.next_delay(uptime);
            service.state = State::Backoff { until: now + delay };
            tracing::info!("{name}: restarting in {} ms", delay.as_millis());
            self.events
                .record(&format!("restart {name} in={}ms", delay.as_millis()));
        } else if service.ever_ready && !service.unit.oneshot {
            service.state = State::Exited(status);
        } else {
            let reason = if service.unit.oneshot {
                format!("oneshot {status}")
            } else {
                format!("{status} before it was ready")
            };
            tracing::error!("{name}: failed: {reason}");
            service.state = State::Failed(reason);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        for i in 0..self.services.len() {
            match self.services[i].state {
                State::Backoff { until } if until <= now && self.shutdown.is_none() => {
                    self.start_service(i);
                }
                State::Stopping {
                    kill_at: Some(kill_at),
                } if kill_at <= now => {
                    let service = &mut self.services[i];
                    service.state = State::Stopping { kill_at: None };
                    if let Some(pid) = service.pid {
                        tracing::warn!(
                            "{}: still running {} ms after SIGTERM; sending SIGKILL",
                            service.unit.name,
                            service.unit.stop_timeout.as_millis()
                        );
                        signal_group(pid, Signal::SIGKILL);
                        if let Some(cgroup) = &service.cgroup {
                            crate::cgroup::kill_cgroup(&cgroup.dir);
                        }
                    }
                }
                _ => {}
            }
        }
        self.connections.retain(|c| c.deadline() > now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timers = self.services.iter().filter_map(|s| match s.state {
            State::Backoff { until } if self.shutdown.is_none() => Some(until),
            State::Stopping { kill_at } => kill_at,
            _ => None,
        });
        timers
            .chain(self.connections.iter().map(Connection::deadline))
            .min()
    }

    // ---- shutdown ----------------------------------------------------------------------------

    fn request_shutdown(&mut self, kind: ShutdownKind, why: &str) {
        if let Some(current) = self.shutdown {
            tracing::info!("{why}: already {}", current.describe());
            return;
        }
        tracing::info!("{why}: stopping services, then {}", kind.describe());
        self.shutdown = Some(kind);
        self.events.record("shutdown");
        for service in &mut self.services {
            service.restart_after_stop = false;
            if service.pid.is_none()
                && matches!(service.state, State::Waiting | State::Backoff { .. })
            {
                service.state = State::Stopped;
            }
        }
    }

    /// Sends SIGTERM to every running service that no running service depends on.
    fn advance_shutdown(&mut self, now: Instant) {
        for i in 0..self.services.len() {
            let service = &self.services[i];
            let Some(pid) = service.pid else { continue };
            if matches!(service.state, State::Stopping { .. }) {
                continue;
            }
            let name = service.name();
            let needed = self.services.iter().any(|other| {
                other.pid.is_some()
                    && (other.unit.requires.iter().any(|d| d == name)
                        || other.unit.wants.iter().any(|d| d == name)
                        || other.unit.after.iter().any(|d| d == name))
            });
            if needed {
                continue;
            }
            let service = &mut self.services[i];
            tracing::info!("{}: stopping (SIGTERM)", service.unit.name);
            self.events.record(&format!("stop {}", service.unit.name));
            signal_group(pid, Signal::SIGTERM);
            service.state = State::Stopping {
                kill_at: Some(deadline_after(now, service.unit.stop_timeout)),
            };
        }
    }

    fn finish_outputs(&mut self) {
        for output in self.outputs.drain(..) {
            output.drain(&mut self.logd);
        }
    }

    // ---- the event loop ----------------------------------------------------------------------

    fn wait_and_dispatch(&mut self) {
        self.logd.flush();
        // Lines waiting for logd are retried every half second.
        let logd_retry = self
            .logd
            .has_queued()
            .then(|| Instant::now() + Duration::from_millis(500));
        let timeout = match self.next_deadline().into_iter().chain(logd_retry).min() {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                // Round up so a timer is not polled for again a millisecond early.
                PollTimeout::try_from(wait + Duration::from_micros(999)).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };

        let mut tokens = Vec::new();
        let mut fds = Vec::new();
        let input = PollFlags::POLLIN;
        tokens.push(Token::Signal);
        fds.push(PollFd::new(self.signals.as_fd(), input));
        if let Some(notify) = &self.notify {
            tokens.push(Token::Notify);
            fds.push(PollFd::new(notify.fd(), input));
        }
        if let Some(control) = &self.control {
            tokens.push(Token::Control);
            fds.push(PollFd::new(control.fd(), input));
        }
        for (i, conn) in self.connections.iter().enumerate() {
            tokens.push(Token::Connection(i));
            fds.push(PollFd::new(conn.fd(), input));
        }
        for (i, output) in self.outputs.iter().enumerate() {
            tokens.push(Token::Output(i));
            fds.push(PollFd::new(output.fd(), input));
        }
        for (i, pipe) in self.ready_pipes.iter().enumerate() {
            tokens.push(Token::Ready(i));
            fds.push(PollFd::new(pipe.file.as_fd(), input));
        }
        for (i, watcher) in self.watchers.iter().enumerate() {
            // Only hang-ups and errors: a watcher has nothing to say after its request.
            tokens.push(Token::Watcher(i));
            fds.push(PollFd::new(watcher.stream.as_fd(), PollFlags::empty()));
        }

        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return,
            Err(e) => {
                tracing::error!("poll failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        }
        let ready: Vec<Token> = fds
            .iter()
            .zip(tokens)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, token)| token)
            .collect();
        drop(fds);

        let mut finished_connections = Vec::new();
        let mut closed_outputs = Vec::new();
        let mut closed_ready = Vec::new();
        let mut closed_watchers = Vec::new();
        for token in ready {
            match token {
                Token::Signal => self.read_signals(),
                Token::Notify => self.read_notifications(),
                Token::Control => {
                    if let Some(control) = &self.control {
                        let new = control.accept_all();
                        // PID 1's memory is bounded whatever clients do: excess clients are
                        // closed at once (they see the connection end without a reply).
                        let room = MAX_PENDING_CONNECTIONS.saturating_sub(self.connections.len());
                        if new.len() > room {
                            tracing::warn!(
                                "control socket: {} client(s) turned away (too many pending)",
                                new.len() - room
                            );
                        }
                        self.connections.extend(new.into_iter().take(room));
                    }
                }
                Token::Connection(i) => {
                    if let Some(conn) = self.connections.get_mut(i) {
                        match conn.read() {
                            ConnectionEvent::Pending => {}
                            ConnectionEvent::Closed => finished_connections.push((i, None)),
                            ConnectionEvent::Request(request) => {
                                finished_connections.push((i, Some(request)))
                            }
                        }
                    }
                }
                Token::Output(i) => {
                    if let Some(output) = self.outputs.get_mut(i)
                        && output.read_available(&mut self.logd) == ReadOutcome::Closed
                    {
                        closed_outputs.push(i);
                    }
                }
                Token::Ready(i) => {
                    if self.read_ready_pipe(i) {
                        closed_ready.push(i);
                    }
                }
                Token::Watcher(i) => closed_watchers.push(i),
            }
        }
        for i in closed_ready.into_iter().rev() {
            if i < self.ready_pipes.len() {
                self.ready_pipes.remove(i);
            }
        }
        for i in closed_watchers.into_iter().rev() {
            if i < self.watchers.len() {
                self.watchers.remove(i);
            }
        }
        // Highest index first, so the lower ones stay valid.
        finished_connections.sort_unstable_by_key(|(i, _)| *i);
        for (i, request) in finished_connections.into_iter().rev() {
            if i < self.connections.len() {
                let conn = self.connections.remove(i);
                if let Some(request) = request {
                    self.answer(conn, request);
                }
            }
        }
        closed_outputs.sort_unstable();
        for i in closed_outputs.into_iter().rev() {
            if i < self.outputs.len() {
                self.outputs.remove(i);
            }
        }
    }

    fn read_signals(&mut self) {
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => {
                    match Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) {
                        Ok(Signal::SIGCHLD) => self.reap(),
                        Ok(Signal::SIGTERM) => {
                            self.request_shutdown(ShutdownKind::PowerOff, "SIGTERM")
                        }
                        Ok(Signal::SIGINT) => {
                            self.request_shutdown(ShutdownKind::Reboot, "SIGINT (Ctrl-Alt-Del)")
                        }
                        Ok(Signal::SIGHUP) => {
                            tracing::info!("SIGHUP ignored: reloading unit files is not supported")
                        }
                        Ok(other) => tracing::debug!("ignoring {}", other.as_str()),
                        Err(_) => tracing::debug!("ignoring signal {}", info.ssi_signo),
                    }
                }
                Ok(None) => break,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    tracing::error!("cannot read the signalfd: {e}");
                    break;
                }
            }
        }
    }

    fn read_notifications(&mut self) {
        // Bounded per wakeup so a flood cannot starve the rest of the loop.
        for _ in 0..64 {
            let Some(notify) = &self.notify else { return };
            let msg = match notify.recv() {
                Ok(Some(msg)) => msg,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("{e:#}");
                    return;
                }
            };
            self.handle_notification(&msg);
            if let Some(notify) = &self.notify {
                notify.acknowledge(&msg);
            }
        }
    }

    fn handle_notification(&mut self, msg: &NotifyMessage) {
        let Some(pid) = msg.pid else {
            tracing::debug!("notify message without credentials ignored");
            return;
        };
        let Some(i) = self.service_for_pid(pid) else {
            tracing::debug!(
                "notify message from pid {pid}, which belongs to no running service, ignored"
            );
            return;
        };
        let name = self.services[i].unit.name.clone();
        for (key, value) in &msg.fields {
            match (key.as_str(), value.as_str()) {
                ("READY", "1") => {
                    let service = &self.services[i];
                    if service.state == State::Starting && !service.unit.oneshot {
                        self.services[i].state = State::Running;
                        self.mark_ready(i);
                    }
                }
                ("STATUS", status) => {
                    tracing::info!("{name}: status: {status}");
                    self.services[i].status_text = Some(status.to_string());
                }
                ("STOPPING", "1") => tracing::info!("{name}: stopping on its own"),
                _ => tracing::debug!("{name}: notify field {key}={value} ignored"),
            }
        }
    }

    /// The running service `pid` belongs to: its main process, or a process in its process group
    /// or session, or a descendant of its main process.
    fn service_for_pid(&self, pid: i32) -> Option<usize> {
        let mut candidates = vec![pid];
        let p = Pid::from_raw(pid);
        if let Ok(pgid) = nix::unistd::getpgid(Some(p)) {
            candidates.push(pgid.as_raw());
        }
        if let Ok(sid) = nix::unistd::getsid(Some(p)) {
            candidates.push(sid.as_raw());
        }
        let mut current = pid;
        for _ in 0..32 {
            match parent_pid(current) {
                Some(parent) if parent > 1 => {
                    candidates.push(parent);
                    current = parent;
                }
                _ => break,
            }
        }
        candidates.into_iter().find_map(|c| {
            self.services
                .iter()
                .position(|s| s.pid.is_some_and(|p| p.as_raw() == c))
        })
    }

    /// Answers a complete request from `conn`, judged by the peer's uid (or the uid a privileged
    /// relay acts for).
    fn answer(&mut self, conn: Connection, request: Result<Request, String>) {
        let peer = conn.peer_uid();
        let (uid, request) = match request {
            Err(e) => return conn.reply(&format!("error: {e}")),
            Ok(Request::As { uid, request }) => {
                if !peer.is_some_and(is_privileged_uid) {
                    return conn.reply(
                        "error: permission denied: only root or the user running init may act for another uid",
                    );
                }
                (uid, *request)
            }
            Ok(request) => (peer.unwrap_or(u32::MAX), request),
        };
        if request.is_privileged() && !is_privileged_uid(uid) {
            tracing::info!("control: `{}` from uid {uid} refused", request.to_line());
            return conn
                .reply("error: permission denied: only root or the user running init may do that");
        }
        let reply = match request {
            Request::Status => self.status_text(),
            Request::ServiceStatus(name) => match self.by_name.get(&name) {
                Some(&i) => self.service_status_text(i),
                None => format!("error: no unit `{name}`"),
            },
            Request::Start(name) => {
                self.with_unit(&name, |s, i| s.request_start(i, "control request"))
            }
            Request::Stop(name) => {
                self.with_unit(&name, |s, i| s.request_stop(i, "control request"))
            }
            Request::Restart(name) => {
                self.with_unit(&name, |s, i| s.request_restart(i, "control request"))
            }
            Request::PowerOff => self.shutdown_reply(ShutdownKind::PowerOff),
            Request::Reboot => self.shutdown_reply(ShutdownKind::Reboot),
            Request::GetProperty(name) if !self.access.may_read(uid, &name) => {
                tracing::info!("control: uid {uid} may not read `{name}`");
                format!("error: permission denied: uid {uid} may not read `{name}`")
            }
            Request::GetProperty(name) => match self.properties.get(&name) {
                Some(value) => format!("{name}={value}"),
                None => format!("error: property `{name}` is not set"),
            },
            Request::SetProperty(name, _) if !self.access.may_set(uid, &name) => {
                tracing::info!("control: uid {uid} may not set `{name}`");
                format!(
                    "error: permission denied: uid {uid} may not set `{name}` (see {PROPERTY_ACCESS} in /system and /vendor)"
                )
            }
            Request::SetProperty(name, value) => match self.set_property(&name, &value) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("error: {e}"),
            },
            Request::ListProperties(prefix) => self
                .properties
                .list(&prefix)
                .filter(|(k, _)| self.access.may_read(uid, k))
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect(),
            Request::Watch(_) if self.watchers.len() >= MAX_WATCHERS => {
                format!("error: too many watchers ({MAX_WATCHERS}); try again later")
            }
            Request::Watch(prefix) => {
                let mut stream = conn.into_stream();
                let mut text = String::from("ok: watching\n");
                for (k, v) in self.properties.list(&prefix) {
                    if self.access.may_read(uid, k) {
                        text.push_str(&format!("{k}={v}\n"));
                    }
                }
                // The current values go out blocking (bounded); changes later never block init.
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                if stream.write_all(text.as_bytes()).is_ok() && stream.set_nonblocking(true).is_ok()
                {
                    self.watchers.push(Watcher {
                        stream,
                        prefix,
                        uid,
                    });
                }
                return;
            }
            Request::As { .. } => "error: `as` cannot be nested".to_string(),
        };
        conn.reply(&reply);
    }

    fn with_unit(&mut self, name: &str, f: impl FnOnce(&mut Self, usize) -> String) -> String {
        if self.shutdown.is_some() {
            return "error: the system is shutting down".to_string();
        }
        match self.by_name.get(name) {
            Some(&i) => f(self, i),
            None => format!("error: no unit `{name}`"),
        }
    }

    fn shutdown_reply(&mut self, kind: ShutdownKind) -> String {
        if let Some(current) = self.shutdown {
            return format!("ok: already {}", current.describe());
        }
        self.request_shutdown(kind, "control socket request");
        format!("ok: {}", kind.describe())
    }

    fn status_text(&self) -> String {
        if self.services.is_empty() {
            return "(no units)".to_string();
        }
        self.services
            .iter()
            .map(|s| {
                let pid = s.pid.map_or_else(|| "-".to_string(), |p| p.to_string());
                format!("{} {} {pid}", s.name(), s.state.word())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn service_status_text(&self, i: usize) -> String {
        let s = &self.services[i];
        let mut text = format!(
            "name: {}\nstate: {}\npid: {}\n",
            s.name(),
            s.state.word(),
            s.pid.map_or_else(|| "-".to_string(), |p| p.to_string())
        );
        if let Some(description) = &s.unit.description {
            text.push_str(&format!("description: {description}\n"));
        }
        if let Some(status) = &s.status_text {
            text.push_str(&format!("status: {status}\n"));
        }
        if let State::Failed(reason) = &s.state {
            text.push_str(&format!("failed: {reason}\n"));
        }
        if let Some(cgroup) = &s.cgroup {
            text.push_str(&format!("cgroup: {}\n", cgroup.dir.display()));
        }
        text.push_str(&format!("unit: {}\n", s.unit.path.display()));
        text
    }

    // ---- start / stop requests and triggers --------------------------------------------------

    /// Marks the units `i` requires or wants (recursively) to be started, if they are inactive.
    fn pull_in_dependencies(&mut self, i: usize) {
        let mut stack = vec![i];
        let mut seen = vec![false; self.services.len()];
        while let Some(j) = stack.pop() {
            if std::mem::replace(&mut seen[j], true) {
                continue;
            }
            let unit = &self.services[j].unit;
            let deps: Vec<usize> = unit
                .requires
                .iter()
                .chain(&unit.wants)
                .filter_map(|dep| self.by_name.get(dep).copied())
                .collect();
            for k in deps {
                {
                    let d = &mut self.services[k];
                    if matches!(d.state, State::Inactive | State::Stopped) {
                        d.state = State::Waiting;
                        d.ever_ready = false;
                    }
                    stack.push(k);
                }
            }
        }
    }

    fn request_start(&mut self, i: usize, why: &str) -> String {
        let service = &mut self.services[i];
        let name = service.unit.name.clone();
        match service.state {
            State::Inactive
            | State::Stopped
            | State::Exited(_)
            | State::Failed(_)
            | State::Done => {
                tracing::info!("{name}: start ({why})");
                service.state = State::Waiting;
                service.ever_ready = false;
                service.backoff = service::Backoff::default();
                service.crashes.clear();
                self.pull_in_dependencies(i);
                format!("ok: starting {name}")
            }
            State::Stopping { .. } => {
                service.restart_after_stop = true;
                format!("ok: {name} will start again once stopped")
            }
            ref other => format!("ok: {name} is already {}", other.word()),
        }
    }

    /// Stops `i` and, first, the running units that require it.
    fn request_stop(&mut self, i: usize, why: &str) -> String {
        let name = self.services[i].unit.name.clone();
        let dependents: Vec<usize> = (0..self.services.len())
            .filter(|&j| {
                self.services[j].unit.requires.contains(&name)
                    && !matches!(
                        self.services[j].state,
                        State::Stopped | State::Inactive | State::Stopping { .. }
                    )
            })
            .collect();
        for j in dependents {
            self.request_stop(j, &format!("it requires {name}"));
        }
        let now = Instant::now();
        let service = &mut self.services[i];
        service.restart_after_stop = false;
        match (service.pid, &service.state) {
            (_, State::Stopping { .. }) => format!("ok: {name} is already stopping"),
            (Some(pid), _) => {
                tracing::info!("{name}: stopping (SIGTERM; {why})");
                self.events.record(&format!("stop {name}"));
                signal_group(pid, Signal::SIGTERM);
                service.state = State::Stopping {
                    kill_at: Some(deadline_after(now, service.unit.stop_timeout)),
                };
                format!("ok: stopping {name}")
            }
            (None, State::Inactive | State::Stopped) => format!("ok: {name} is not running"),
            (None, _) => {
                service.state = State::Stopped;
                format!("ok: {name} stopped")
            }
        }
    }

    fn request_restart(&mut self, i: usize, why: &str) -> String {
        if self.services[i].pid.is_some() {
            let reply = self.request_stop(i, why);
            self.services[i].restart_after_stop = true;
            format!("{reply}; it starts again once stopped")
        } else {
            self.request_start(i, why)
        }
    }

    /// A property request from a client (already access-checked).
    fn set_property(
        &mut self,
        name: &str,
        value: &str,
    ) -> Result<(), crate::properties::PropertyError> {
        let result = self.properties.set(name, value);
        let changed = match &result {
            Ok(changed) => *changed,
            // Set in memory, only the saving failed: the change still happened.
            Err(crate::properties::PropertyError::NotSaved { .. }) => true,
            Err(_) => false,
        };
        if changed {
            self.property_changed(name, value);
        }
        result.map(|_| ())
    }

    /// A property init sets itself (`init.svc.*`, `sys.boot_completed`).
    fn set_property_internal(&mut self, name: &str, value: &str) {
        if let Err(e) = self.set_property(name, value) {
            tracing::warn!("cannot set property {name}: {e}");
        }
    }

    fn property_changed(&mut self, name: &str, value: &str) {
        tracing::debug!("property {name}={value}");
        let line = format!("{name}={value}\n");
        let access = &self.access;
        self.watchers.retain_mut(|w| {
            if !name.starts_with(&w.prefix) || !access.may_read(w.uid, name) {
                return true;
            }
            // A watcher that cannot take a whole line now is too slow and is dropped.
            match w.stream.write(line.as_bytes()) {
                Ok(n) if n == line.len() => true,
                Ok(_) | Err(_) => false,
            }
        });
        self.run_triggers(name, value);
    }

    fn run_triggers(&mut self, name: &str, value: &str) {
        if self.shutdown.is_some() {
            return;
        }
        for i in 0..self.services.len() {
            let actions: Vec<TriggerAction> = self.services[i]
                .unit
                .triggers
                .iter()
                .filter(|t| t.property == name && t.value.as_deref().is_none_or(|v| v == value))
                .map(|t| t.action)
                .collect();
            for action in actions {
                let unit = self.services[i].unit.name.clone();
                let why = format!("trigger {name}={value}");
                let word = match action {
                    TriggerAction::Start => "start",
                    TriggerAction::Stop => "stop",
                    TriggerAction::Restart => "restart",
                };
                self.events
                    .record(&format!("trigger {unit} {word} on {name}={value}"));
                let reply = match action {
                    TriggerAction::Start => self.request_start(i, &why),
                    TriggerAction::Stop => self.request_stop(i, &why),
                    TriggerAction::Restart => self.request_restart(i, &why),
                };
                tracing::info!("{unit}: {why}: {reply}");
            }
        }
    }

    /// Publishes each unit's state as `init.svc.NAME` when it changed.
    fn publish_service_states(&mut self) {
        for i in 0..self.services.len() {
            let word = self.services[i].state.word();
            if self.services[i].published_state != word {
                self.services[i].published_state = word;
                let name = format!("init.svc.{}", self.services[i].unit.name);
                self.set_property_internal(&name, word);
            }
        }
    }

    /// Reads a readiness pipe; true when it is done with (ready signalled, or closed).
    fn read_ready_pipe(&mut self, index: usize) -> bool {
        let Some(pipe) = self.ready_pipes.get_mut(index) else {
            return false;
        };
        let mut buf = [0u8; 512];
        let (i, pid) = (pipe.service, pipe.pid);
        match pipe.file.read(&mut buf) {
            Ok(0) => {
                let service = &self.services[i];
                if service.pid == Some(pid) && service.state == State::Starting {
                    tracing::warn!(
                        "{}: closed its readiness fd without reporting ready",
                        service.unit.name
                    );
                }
                true
            }
            Ok(n) => {
                if buf[..n].contains(&b'\n') {
                    let service = &self.services[i];
                    if service.pid == Some(pid) && service.state == State::Starting {
                        self.services[i].state = State::Running;
                        self.mark_ready(i);
                    }
                    true
                } else {
                    false
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => false,
            Err(_) => true,
        }
    }
}

enum Eligibility {
    Wait,
    Start,
    Fail(String),
}

/// `now + duration`, saturating far in the future instead of overflowing (`stop_timeout_ms` is
/// any u64 in a unit file).
fn deadline_after(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// SIGTERM/SIGKILL to the service's process group, or to the process if it left its group.
fn signal_group(pid: Pid, signal: Signal) {
    if kill(Pid::from_raw(-pid.as_raw()), signal).is_err() {
        let _ = kill(pid, signal);
    }
}

/// The parent of `pid`, from `/proc/PID/stat`.
fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

/// The 4th field of `/proc/PID/stat`; the command name (2nd) may contain spaces and parentheses.
fn parse_stat_ppid(stat: &str) -> Option<i32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ppid_from_stat() {
        assert_eq!(parse_stat_ppid("1234 (sh) S 42 1234 1234 0 -1"), Some(42));
        assert_eq!(parse_stat_ppid("1234 (a) b) (c) R 7 1 1"), Some(7));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert!(deadline_after(now, Duration::from_millis(u64::MAX)) > now);
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn parent_of_self_is_known() {
        let ppid = parent_pid(std::process::id() as i32);
        assert_eq!(ppid, Some(nix::unistd::getppid().as_raw()));
    }
}
