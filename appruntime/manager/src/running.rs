//! Running apps and their lifecycle: foreground → background → paused → stopped.
//!
//! Each app runs in its own host process (`cirrus-wasm-host run …` for wasm apps,
//! `cirrus-web-host run …` for web apps: the same lifecycle signals and status lines), under the
//! app's uid when the manager is root. Web hosts get the signed package the manager kept (they
//! verify it again), the app's data dir, and a bus address only with the `notifications`
//! permission; the manager's own D-Bus environment is not passed on. The host reports on its stdout, one word a line: `running`, `first-frame`,
//! `not-responding`, `responding`; the app's own output (stderr) goes to its log file. Background =
//! the host was told to pause the app (SIGUSR1: the app's `pause` export runs, no more frames);
//! paused = additionally frozen (SIGSTOP); resume = SIGCONT + SIGUSR2 (`resume`). Stop = SIGTERM
//! (the app's `destroy` runs), then SIGKILL after a grace period — also how an app that is not
//! responding is killed.
//!
//! Hosts show their app on the compositor named by the manager's `WAYLAND_DISPLAY` (resolved to
//! an absolute socket path, so it does not depend on the app uid's runtime directory; that socket
//! and its directory must be reachable by app uids).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::db::InstalledApp;

/// An app's lifecycle state as the bus reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    Foreground,
    Background,
    Paused,
    NotResponding,
    Stopped,
}

impl AppState {
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Foreground => "foreground",
            AppState::Background => "background",
            AppState::Paused => "paused",
            AppState::NotResponding => "not-responding",
            AppState::Stopped => "stopped",
        }
    }
}

/// What a host said or did, sent to the manager's event loop.
#[derive(Debug, Clone)]
pub enum HostEvent {
    Line {
        id: String,
        pid: u32,
        line: String,
    },
    Exited {
        id: String,
        pid: u32,
        code: Option<i32>,
    },
}

struct RunningApp {
    child: Child,
    state: AppState,
    /// Last time the app came to the foreground (memory pressure stops the oldest first).
    last_foreground: Instant,
    /// Where WebKit's remote inspector of a debuggable web app listens.
    inspector: Option<SocketAddr>,
}

/// How to start hosts.
#[derive(Debug, Clone)]
pub struct HostCommand {
    pub wasm_host: PathBuf,
    /// The web apps' host (`cirrus-web-host`).
    pub web_host: PathBuf,
    /// The bus web apps with the `notifications` permission post notifications on.
    pub notification_bus: String,
    /// Memory cap per app (MiB).
    pub memory_mb: u32,
    /// Run hosts without a display (tests, benchmarks).
    pub headless: bool,
    /// The user's files, given to web apps holding `user-files` (None: to no app).
    pub user_files: Option<PathBuf>,
    /// The platform key (base64): web apps signed with it get the system bus (the
    /// `notification_bus`) for `navigator.cirrus.system`.
    pub platform_signer: Option<String>,
}

/// The compositor's socket from the manager's environment: `$WAYLAND_DISPLAY`, relative to
/// `$XDG_RUNTIME_DIR` unless absolute.
fn wayland_display() -> Result<PathBuf> {
    let Some(name) = std::env::var_os("WAYLAND_DISPLAY").filter(|v| !v.is_empty()) else {
        bail!(
            "no display for apps: start the app manager with WAYLAND_DISPLAY naming the compositor's socket"
        )
    };
    let path = PathBuf::from(name);
    if path.is_absolute() {
        return Ok(path);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir).join(path)),
        None => bail!(
            "WAYLAND_DISPLAY `{}` is relative and XDG_RUNTIME_DIR is not set",
            path.display()
        ),
    }
}

/// The running apps.
pub struct Lifecycle {
    apps: BTreeMap<String, RunningApp>,
    host: HostCommand,
    events: tokio::sync::mpsc::UnboundedSender<HostEvent>,
}

impl Lifecycle {
    pub fn new(
        host: HostCommand,
        events: tokio::sync::mpsc::UnboundedSender<HostEvent>,
    ) -> Lifecycle {
        Lifecycle {
            apps: BTreeMap::new(),
            host,
            events,
        }
    }

    pub fn state(&self, id: &str) -> AppState {
        self.apps
            .get(id)
            .map(|a| a.state)
            .unwrap_or(AppState::Stopped)
    }

    pub fn pid(&self, id: &str) -> Option<u32> {
        self.apps.get(id).map(|a| a.child.id())
    }

    fn signal(&self, id: &str, sig: Signal) -> Result<()> {
        let Some(app) = self.apps.get(id) else {
            bail!("{id} is not running")
        };
        kill(Pid::from_raw(app.child.id() as i32), sig)
            .with_context(|| format!("signalling {id}"))?;
        Ok(())
    }

    /// Launches `app` (or brings it back to the foreground). Returns the new state. `precompiled`
    /// is a wasm app's precompiled code, a web app's signed package.
    pub fn launch(
        &mut self,
        app: &InstalledApp,
        precompiled: PathBuf,
        data_dir: PathBuf,
        log: PathBuf,
    ) -> Result<AppState> {
        self.launch_with(app, precompiled, data_dir, log, None)
    }

    /// Where the remote inspector of the running `id` listens (None: not running debuggable).
    pub fn inspector(&self, id: &str) -> Option<SocketAddr> {
        self.apps.get(id).and_then(|a| a.inspector)
    }

    /// [`Self::launch`]; a web app started now gets WebKit's remote inspector on `inspector`
    /// (a loopback address: the developer's `cirrus app inspect`).
    pub fn launch_with(
        &mut self,
        app: &InstalledApp,
        precompiled: PathBuf,
        data_dir: PathBuf,
        log: PathBuf,
        inspector: Option<SocketAddr>,
    ) -> Result<AppState> {
        if let Some(state) = self.apps.get(&app.id).map(|a| a.state) {
            match state {
                AppState::Paused => {
                    self.signal(&app.id, Signal::SIGCONT)?;
                    self.signal(&app.id, Signal::SIGUSR2)?;
                }
                AppState::Background => self.signal(&app.id, Signal::SIGUSR2)?,
                _ => {}
            }
            if let Some(a) = self.apps.get_mut(&app.id) {
                if a.state != AppState::NotResponding {
                    a.state = AppState::Foreground;
                }
                a.last_foreground = Instant::now();
                return Ok(a.state);
            }
        }
        if app.kind != "wasm" && app.kind != "web" {
            bail!("{}: apps of kind `{}` have no host yet", app.id, app.kind);
        }
        if app.kind == "web" && self.host.headless {
            bail!(
                "{}: web apps need a display; this manager runs apps headless",
                app.id
            );
        }
        if let Some(p) = log.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = if app.kind == "web" {
            self.web_command(app, &precompiled, &data_dir, inspector)?
        } else {
            self.wasm_command(app, &precompiled, &data_dir)?
        };
        let program = PathBuf::from(cmd.get_program());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        if nix::unistd::geteuid().is_root() {
            let uid = app.uid;
            // Web apps holding `user-files` get the user-files group (system_apps.rs), nothing else.
            let groups: Vec<libc::gid_t> = if self.user_files_for(app).is_some() {
                vec![crate::system_apps::USER_FILES_GID]
            } else {
                Vec::new()
            };
            // SAFETY: only async-signal-safe calls (setgroups/setgid/setuid) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} for {}", program.display(), app.id))?;
        let pid = child.id();
        if let Some(stdout) = child.stdout.take() {
            let events = self.events.clone();
            let id = app.id.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = events.send(HostEvent::Line {
                        id: id.clone(),
                        pid,
                        line,
                    });
                }
                let _ = events.send(HostEvent::Exited {
                    id,
                    pid,
                    code: None,
                });
            });
        }
        tracing::info!(app = %app.id, pid, uid = app.uid, "launched");
        self.apps.insert(
            app.id.clone(),
            RunningApp {
                child,
                state: AppState::Foreground,
                last_foreground: Instant::now(),
                inspector: inspector.filter(|_| app.kind == "web"),
            },
        );
        Ok(AppState::Foreground)
    }

    /// The user's files, for a web app holding `user-files` when the manager has them.
    fn user_files_for(&self, app: &InstalledApp) -> Option<&std::path::Path> {
        let holds = app
            .granted()
            .iter()
            .any(|p| p == crate::system_apps::USER_FILES_PERMISSION);
        self.host
            .user_files
            .as_deref()
            .filter(|_| holds && app.kind == "web")
    }

    /// `cirrus-wasm-host run …` for a wasm app.
    fn wasm_command(
        &self,
        app: &InstalledApp,
        precompiled: &std::path::Path,
        data_dir: &std::path::Path,
    ) -> Result<Command> {
        let mut cmd = Command::new(&self.host.wasm_host);
        cmd.arg("run")
            .arg("--app-id")
            .arg(&app.id)
            .arg("--component")
            .arg(app.code_dir.join(&app.entry))
            .arg("--precompiled")
            .arg(precompiled)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--package-dir")
            .arg(&app.code_dir)
            .arg("--title")
            .arg(&app.label)
            .arg("--memory-mb")
            .arg(self.host.memory_mb.to_string());
        if self.host.headless {
            cmd.arg("--headless");
        } else {
            let display = wayland_display().with_context(|| format!("launching {}", app.id))?;
            cmd.arg("--wayland-display").arg(display);
        }
        for p in app.granted() {
            cmd.arg("--permission").arg(p);
        }
        Ok(cmd)
    }

    /// `cirrus-web-host run …` for a web app: its kept package, signer, data dir, display; the bus
    /// only with the `notifications` permission.
    fn web_command(
        &self,
        app: &InstalledApp,
        package: &std::path::Path,
        data_dir: &std::path::Path,
        inspector: Option<SocketAddr>,
    ) -> Result<Command> {
        let display = wayland_display().with_context(|| format!("launching {}", app.id))?;
        let mut cmd = Command::new(&self.host.web_host);
        cmd.arg("run")
            .arg("--app-id")
            .arg(&app.id)
            .arg("--package")
            .arg(package)
            .arg("--signer")
            .arg(&app.signer)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--wayland-display")
            .arg(display);
        let granted = app.granted();
        if granted.iter().any(|p| p == "notifications") {
            cmd.arg("--bus-address").arg(&self.host.notification_bus);
        }
        for p in granted {
            cmd.arg("--permission").arg(p);
        }
        if let Some(dir) = self.user_files_for(app) {
            cmd.arg("--user-files").arg(dir);
        }
        if self.host.platform_signer.as_deref() == Some(app.signer.as_str()) {
            cmd.arg("--system-bus").arg(&self.host.notification_bus);
        }
        for var in [
            "DBUS_SESSION_BUS_ADDRESS",
            "DBUS_SYSTEM_BUS_ADDRESS",
            "XDG_RUNTIME_DIR",
            "HOME",
            // The remote inspector only when asked for (developer mode, `cirrus app inspect`).
            "WEBKIT_INSPECTOR_SERVER",
            "WEBKIT_INSPECTOR_HTTP_SERVER",
        ] {
            cmd.env_remove(var);
        }
        if let Some(addr) = inspector {
            cmd.env("WEBKIT_INSPECTOR_HTTP_SERVER", addr.to_string());
        }
        Ok(cmd)
    }

    /// Sends the app to the background (its `pause` export runs; no frames).
    pub fn background(&mut self, id: &str) -> Result<AppState> {
        if self.state(id) == AppState::Foreground {
            self.signal(id, Signal::SIGUSR1)?;
            self.set(id, AppState::Background);
        }
        Ok(self.state(id))
    }

    /// Freezes a background app.
    pub fn pause(&mut self, id: &str) -> Result<AppState> {
        self.background(id)?;
        if self.state(id) == AppState::Background {
            // Let the app's pause() run before freezing it.
            std::thread::sleep(Duration::from_millis(50));
            self.signal(id, Signal::SIGSTOP)?;
            self.set(id, AppState::Paused);
        }
        Ok(self.state(id))
    }

    fn set(&mut self, id: &str, state: AppState) {
        if let Some(a) = self.apps.get_mut(id) {
            a.state = state;
        }
    }

    /// Records what a host reported; returns the state to announce, if it changed.
    pub fn host_event(&mut self, event: &HostEvent) -> Option<(String, AppState)> {
        match event {
            HostEvent::Line { id, pid, line } => {
                let app = self.apps.get_mut(id).filter(|a| a.child.id() == *pid)?;
                let new = match line.trim() {
                    "not-responding" => AppState::NotResponding,
                    "responding" if app.state == AppState::NotResponding => AppState::Foreground,
                    _ => return None,
                };
                (app.state != new).then(|| {
                    app.state = new;
                    (id.clone(), new)
                })
            }
            HostEvent::Exited { id, pid, .. } => {
                let app = self.apps.get_mut(id).filter(|a| a.child.id() == *pid)?;
                let status = app.child.wait().ok();
                tracing::info!(app = %id, ?status, "host exited");
                self.apps.remove(id);
                Some((id.clone(), AppState::Stopped))
            }
        }
    }

    /// Stops the app: SIGTERM (destroy runs), SIGKILL after `grace`.
    pub fn stop(&mut self, id: &str, grace: Duration) -> Result<()> {
        let Some(mut app) = self.apps.remove(id) else {
            bail!("{id} is not running")
        };
        let pid = Pid::from_raw(app.child.id() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = app.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!(app = %id, "did not stop in time; killed");
        let _ = app.child.kill();
        let _ = app.child.wait();
        Ok(())
    }

    /// Under memory pressure: the apps to stop first — background and paused ones, least recently
    /// in the foreground first. The foreground app is never chosen.
    pub fn reclaim_order(&self) -> Vec<String> {
        let mut v: Vec<(&String, &RunningApp)> = self
            .apps
            .iter()
            .filter(|(_, a)| matches!(a.state, AppState::Background | AppState::Paused))
            .collect();
        v.sort_by_key(|(_, a)| a.last_foreground);
        v.into_iter().map(|(id, _)| id.clone()).collect()
    }

    pub fn running(&self) -> Vec<(String, AppState)> {
        self.apps
            .iter()
            .map(|(id, a)| (id.clone(), a.state))
            .collect()
    }

    pub fn stop_all(&mut self) {
        let ids: Vec<String> = self.apps.keys().cloned().collect();
        for id in ids {
            let _ = self.stop(&id, Duration::from_secs(2));
        }
    }
}
