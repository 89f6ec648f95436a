//! `org.cirrus.AppManager1` at `/org/cirrus/AppManager1`: the app manager's D-Bus interface (used by
//! the launcher, settings, and the `cirrus app` SDK command) and its proxy.
//!
//! Methods: `Install(path) → id`, `Uninstall(id)`, `List() → a(ssssss)` (id, label, icon path, kind,
//! version, state), `Launch(id) → state`, `Stop(id)`, `Background(id)`, `Pause(id)`,
//! `SetPermission(id, permission, "granted"|"ask"|"denied")`, `Permissions(id) → a{ss}`,
//! `ReclaimMemory(count) → stopped ids`, `LogPath(id)`, `Inspect(id) → inspector URL` (developer
//! mode only: a web app (re)started with WebKit's remote inspector on loopback). Signal:
//! `StateChanged(id, state)`.
//!
//! `Launch` fails with `org.cirrus.AppManager1.Error.NotSupported` for an Android app (they install
//! but cannot run yet) and `…Error.NotInstalled` for an unknown id; other failures are
//! `org.freedesktop.DBus.Error.Failed` with a message saying what was wrong.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface};

use crate::android;
use crate::db::Grant;
use crate::running::{AppState, Lifecycle};
use crate::store::AppStore;

pub const BUS_NAME: &str = "org.cirrus.AppManager1";
pub const OBJECT_PATH: &str = "/org/cirrus/AppManager1";

/// The manager's shared state.
pub struct Manager {
    pub store: AppStore,
    pub lifecycle: Lifecycle,
    /// Developer mode: `Inspect` may start web apps with WebKit's remote inspector. Off unless
    /// the daemon was started with `--developer-mode`.
    pub developer_mode: bool,
}

impl Manager {
    /// Starts (or brings back) an installed, runnable app in the foreground; the others in the
    /// foreground go to the background (one foreground app, as on phones).
    fn start(
        &mut self,
        app: &crate::db::InstalledApp,
        inspector: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<AppState> {
        let id = &app.id;
        // Wasm apps run precompiled code; web apps their kept signed package.
        let precompiled = if app.kind == "wasm" {
            self.store.precompiled_path(id)?
        } else {
            self.store.layout.package_path(id)
        };
        let data = self.store.layout.data_dir(id);
        let log = self.store.layout.log_path(id);
        for (other, state) in self.lifecycle.running() {
            if other != *id && state == AppState::Foreground {
                self.lifecycle.background(&other)?;
            }
        }
        self.lifecycle
            .launch_with(app, precompiled, data, log, inspector)
    }
}

/// A free loopback TCP address (the port is released for the inspector to bind).
fn free_loopback_address() -> anyhow::Result<std::net::SocketAddr> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?)
}

/// The object served on the bus.
pub struct AppManager1 {
    pub inner: Arc<Mutex<Manager>>,
}

fn failed(e: impl std::fmt::Display) -> fdo::Error {
    fdo::Error::Failed(e.to_string())
}

/// Errors the interface reports under their own names, `org.cirrus.AppManager1.Error.*`.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.cirrus.AppManager1.Error")]
pub enum ManagerError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The app is installed, but its kind cannot do this yet (launching an Android app).
    NotSupported(String),
    /// No app with that id is installed.
    NotInstalled(String),
    /// Anything else; the message says what.
    Failed(String),
}

/// The refusals that become a [`ManagerError`] variant of their own (carried through `anyhow`).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    NotSupported(String),
    #[error("{0} is not installed")]
    NotInstalled(String),
}

impl ManagerError {
    fn from_anyhow(e: anyhow::Error) -> ManagerError {
        match e.downcast_ref::<Refusal>() {
            Some(Refusal::NotSupported(m)) => ManagerError::NotSupported(m.clone()),
            Some(r @ Refusal::NotInstalled(_)) => ManagerError::NotInstalled(r.to_string()),
            None => ManagerError::Failed(format!("{e:#}")),
        }
    }
}

impl AppManager1 {
    /// Runs `f` on a thread of its own (installs compile code; stops wait for processes) and
    /// awaits it: zbus dispatches on its own executor, which must not block.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Manager) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let inner = self.inner.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let result = match inner.lock() {
                Ok(mut m) => f(&mut m),
                Err(_) => Err(anyhow::anyhow!("manager state poisoned")),
            };
            let _ = tx.send(result);
        });
        rx.await?
    }

    /// [`Self::run`], failures as `org.freedesktop.DBus.Error.Failed`.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Manager) -> anyhow::Result<T> + Send + 'static,
    ) -> fdo::Result<T> {
        self.run(f).await.map_err(|e| failed(format!("{e:#}")))
    }
}

#[interface(name = "org.cirrus.AppManager1")]
impl AppManager1 {
    /// Verifies and installs a signed package file; returns the app id.
    async fn install(&self, path: String) -> fdo::Result<String> {
        self.with(move |m| Ok(m.store.install(std::path::Path::new(&path))?.id))
            .await
    }

    /// Stops the app if running and removes it with its data.
    async fn uninstall(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        id: String,
    ) -> fdo::Result<()> {
        let was_running = self
            .with({
                let id = id.clone();
                move |m| {
                    let running = m.lifecycle.state(&id) != AppState::Stopped;
                    if running {
                        m.lifecycle.stop(&id, Duration::from_secs(2))?;
                    }
                    m.store.uninstall(&id)?;
                    Ok(running)
                }
            })
            .await?;
        if was_running {
            let _ = Self::state_changed(&emitter, &id, AppState::Stopped.as_str()).await;
        }
        Ok(())
    }

    /// Installed apps: (id, label, icon path or "", kind, version, state).
    async fn list(&self) -> fdo::Result<Vec<(String, String, String, String, String, String)>> {
        self.with(|m| {
            Ok(m.store
                .db
                .apps()
                .map(|a| {
                    let icon = a
                        .icon
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    (
                        a.id.clone(),
                        a.label.clone(),
                        icon,
                        a.kind.clone(),
                        a.version.clone(),
                        m.lifecycle.state(&a.id).as_str().to_owned(),
                    )
                })
                .collect())
        })
        .await
    }

    /// Launches the app or brings it to the foreground; returns its state.
    async fn launch(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        id: String,
    ) -> Result<String, ManagerError> {
        let state = self
            .run({
                let id = id.clone();
                move |m| {
                    let app = m
                        .store
                        .db
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| Refusal::NotInstalled(id.clone()))?;
                    if app.kind == android::KIND {
                        return Err(Refusal::NotSupported(format!(
                            "{id} ({}) is an Android app: Android apps cannot be launched on Cirrus yet (they can be installed, listed and uninstalled)",
                            app.label
                        ))
                        .into());
                    }
                    m.start(&app, None)
                }
            })
            .await
            .map_err(ManagerError::from_anyhow)?;
        let _ = Self::state_changed(&emitter, &id, state.as_str()).await;
        Ok(state.as_str().to_owned())
    }

    /// Developer mode only: makes a web app debuggable and returns the URL of WebKit's remote
    /// inspector for it (`http://127.0.0.1:PORT/`, loopback). A running app started without the
    /// inspector is restarted with it; a stopped one is launched; either way it is in the
    /// foreground afterwards.
    async fn inspect(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        id: String,
    ) -> Result<String, ManagerError> {
        let (url, restarted, state) = self
            .run({
                let id = id.clone();
                move |m| {
                    if !m.developer_mode {
                        return Err(Refusal::NotSupported(
                            "developer mode is off: the app manager opens inspectors only when started with --developer-mode".into(),
                        )
                        .into());
                    }
                    let app = m
                        .store
                        .db
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| Refusal::NotInstalled(id.clone()))?;
                    if app.kind != "web" {
                        return Err(Refusal::NotSupported(format!(
                            "{id} is a {} app: only web apps have WebKit's inspector",
                            app.kind
                        ))
                        .into());
                    }
                    if let Some(addr) = m.lifecycle.inspector(&id) {
                        let state = m.start(&app, None)?;
                        return Ok((format!("http://{addr}/"), false, state));
                    }
                    let restarted = m.lifecycle.state(&id) != AppState::Stopped;
                    if restarted {
                        m.lifecycle.stop(&id, Duration::from_secs(2))?;
                    }
                    let addr = free_loopback_address()?;
                    let state = m.start(&app, Some(addr))?;
                    tracing::info!(app = %id, %addr, "launched with the remote inspector");
                    Ok((format!("http://{addr}/"), restarted, state))
                }
            })
            .await
            .map_err(ManagerError::from_anyhow)?;
        if restarted {
            let _ = Self::state_changed(&emitter, &id, AppState::Stopped.as_str()).await;
        }
        let _ = Self::state_changed(&emitter, &id, state.as_str()).await;
        Ok(url)
    }

    /// Stops a running app (destroy, then killed after 2 s).
    async fn stop(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        id: String,
    ) -> fdo::Result<()> {
        self.with({
            let id = id.clone();
            move |m| m.lifecycle.stop(&id, Duration::from_secs(2))
        })
        .await?;
        let _ = Self::state_changed(&emitter, &id, AppState::Stopped.as_str()).await;
        Ok(())
    }

    async fn background(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        id: String,
    ) -> fdo::Result<String> {
        let state = self
            .with({
                let id = id.clone();
                move |m| m.lifecycle.background(&id)
            })
            .await?;
        let _ = Self::state_changed(&emitter, &id, state.as_str()).await;
        Ok(state.as_str().to_owned())
    }

    async fn pause(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        id: String,
    ) -> fdo::Result<String> {
        let state = self
            .with({
                let id = id.clone();
                move |m| m.lifecycle.pause(&id)
            })
            .await?;
        let _ = Self::state_changed(&emitter, &id, state.as_str()).await;
        Ok(state.as_str().to_owned())
    }

    /// Stops up to `count` background/paused apps, least recently used first; returns their ids.
    async fn reclaim_memory(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        count: u32,
    ) -> fdo::Result<Vec<String>> {
        let stopped = self
            .with(move |m| {
                let victims: Vec<String> = m
                    .lifecycle
                    .reclaim_order()
                    .into_iter()
                    .take(count as usize)
                    .collect();
                for id in &victims {
                    m.lifecycle.stop(id, Duration::from_secs(1))?;
                }
                Ok(victims)
            })
            .await?;
        for id in &stopped {
            let _ = Self::state_changed(&emitter, id, AppState::Stopped.as_str()).await;
        }
        Ok(stopped)
    }

    /// Grants, revokes (`denied`) or resets (`ask`) a requested permission; applies at next launch.
    async fn set_permission(
        &self,
        id: String,
        permission: String,
        state: String,
    ) -> fdo::Result<()> {
        let grant = match state.as_str() {
            "granted" => Grant::Granted,
            "ask" => Grant::Ask,
            "denied" => Grant::Denied,
            other => {
                return Err(fdo::Error::InvalidArgs(format!(
                    "`{other}`: use granted, ask or denied"
                )));
            }
        };
        self.with(move |m| m.store.set_permission(&id, &permission, grant))
            .await
    }

    /// The app's requested permissions and their states.
    async fn permissions(
        &self,
        id: String,
    ) -> fdo::Result<std::collections::HashMap<String, String>> {
        self.with(move |m| {
            let app = m
                .store
                .db
                .get(&id)
                .ok_or_else(|| anyhow::anyhow!("{id} is not installed"))?;
            Ok(app
                .permissions
                .iter()
                .map(|(p, g)| {
                    (
                        p.clone(),
                        match g {
                            Grant::Granted => "granted",
                            Grant::Ask => "ask",
                            Grant::Denied => "denied",
                        }
                        .to_owned(),
                    )
                })
                .collect())
        })
        .await
    }

    /// The file the app's output is logged to.
    async fn log_path(&self, id: String) -> fdo::Result<String> {
        self.with(move |m| Ok(m.store.layout.log_path(&id).display().to_string()))
            .await
    }

    #[zbus(signal)]
    pub async fn state_changed(
        emitter: &SignalEmitter<'_>,
        id: &str,
        state: &str,
    ) -> zbus::Result<()>;
}

/// Client side of the interface (the SDK command, the launcher entries, tests).
#[zbus::proxy(
    interface = "org.cirrus.AppManager1",
    default_service = "org.cirrus.AppManager1",
    default_path = "/org/cirrus/AppManager1"
)]
pub trait AppManager1Client {
    fn install(&self, path: &str) -> zbus::Result<String>;
    fn uninstall(&self, id: &str) -> zbus::Result<()>;
    fn list(&self) -> zbus::Result<Vec<(String, String, String, String, String, String)>>;
    fn launch(&self, id: &str) -> zbus::Result<String>;
    fn stop(&self, id: &str) -> zbus::Result<()>;
    fn background(&self, id: &str) -> zbus::Result<String>;
    fn pause(&self, id: &str) -> zbus::Result<String>;
    fn reclaim_memory(&self, count: u32) -> zbus::Result<Vec<String>>;
    fn set_permission(&self, id: &str, permission: &str, state: &str) -> zbus::Result<()>;
    fn permissions(&self, id: &str) -> zbus::Result<std::collections::HashMap<String, String>>;
    fn log_path(&self, id: &str) -> zbus::Result<String>;
    fn inspect(&self, id: &str) -> zbus::Result<String>;
    #[zbus(signal)]
    fn state_changed(&self, id: String, state: String) -> zbus::Result<()>;
}

/// A proxy to the app manager on `conn` once it answers (`List` succeeds), polling every 10 ms
/// for at most `within` — for clients started together with the manager (tests, boot-time tools).
/// The last error when it never answers.
pub async fn manager_when_ready(
    conn: &zbus::Connection,
    within: Duration,
) -> zbus::Result<AppManager1ClientProxy<'static>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let attempt = async {
            let p = AppManager1ClientProxy::new(conn).await?;
            p.list().await?;
            Ok::<_, zbus::Error>(p)
        }
        .await;
        match attempt {
            Ok(p) => return Ok(p),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
