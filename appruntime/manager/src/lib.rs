//! cirrus-appmanager: installs, verifies, launches and stops apps, and serves
//! `org.cirrus.AppManager1` on the system bus. Sits between the compositor's launcher (which shows
//! the launcher entries it writes) and the per-app hosts it starts (`appruntime/wasm-host` for
//! wasm apps, `appruntime/web-host` for web apps).
//!
//! `store.rs` installs/uninstalls under a data root, `db.rs` is the crash-safe package database,
//! `running.rs` the lifecycle of running hosts, `bus.rs` the D-Bus interface and its proxy.
//! `system_apps.rs` installs the system image's platform-signed apps at start and opens the
//! user's files to apps holding `user-files`. `accounts.rs` gives app uids passwd/group entries (libnss-extrausers), `android.rs` installs APKs (kind `android`, verified by `cirrus-apk`), `icon.rs` renders their
//! launcher icons.

pub mod accounts;
pub mod android;
pub mod bus;
pub mod db;
pub mod icon;
pub mod running;
pub mod store;
pub mod system_apps;

pub use cirrus_apk::arsc::DeviceConfig;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::accounts::AppAccounts;
use crate::bus::{AppManager1, BUS_NAME, Manager, OBJECT_PATH};
use crate::running::{HostCommand, Lifecycle};
use crate::store::AppStore;
pub use crate::system_apps::SystemOptions;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// D-Bus address (None: the system bus).
    pub bus_address: Option<String>,
    pub data_root: PathBuf,
    pub wasm_host: PathBuf,
    pub memory_mb: u32,
    /// Run apps without a display (tests, benchmarks).
    pub headless_apps: bool,
    /// What launcher entries run to launch an app (the id is appended).
    pub launch_command: Vec<String>,
}

/// Serves `org.cirrus.AppManager1` until `shutdown` completes, then stops every running app. APK
/// resources are resolved for the device the environment describes
/// ([`android::device_from_env`]).
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    serve_on_device(opts, android::device_from_env(), shutdown).await
}

/// The web host the manager runs when told nothing else: `cirrus-web-host` beside the wasm host.
pub fn default_web_host(wasm_host: &std::path::Path) -> PathBuf {
    wasm_host.with_file_name("cirrus-web-host")
}

/// The bus web apps post notifications on: the manager's own bus (the system bus on the device).
fn notification_bus(opts: &ServeOptions) -> String {
    opts.bus_address.clone().unwrap_or_else(|| {
        std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".into())
    })
}

/// What the manager runs apps with, beyond [`ServeOptions`] (the daemon's own flags).
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The web apps' host (`cirrus-web-host`).
    pub web_host: PathBuf,
    /// Where app uids get passwd/group entries (`/var/lib/extrausers` on the device, read by
    /// libnss-extrausers). None: app uids stay nameless (unprivileged tests).
    pub accounts_dir: Option<PathBuf>,
    /// Developer mode: `Inspect` may start web apps with WebKit's remote inspector on loopback.
    /// Never on by default.
    pub developer_mode: bool,
}

impl RuntimeOptions {
    /// The defaults for `opts`: the web host beside the wasm host, no app users.
    pub fn for_serve(opts: &ServeOptions) -> RuntimeOptions {
        RuntimeOptions {
            web_host: default_web_host(&opts.wasm_host),
            accounts_dir: None,
            developer_mode: false,
        }
    }
}

/// [`serve`], with APK labels and icons resolved for `device` (locale, density).
pub async fn serve_on_device(
    opts: ServeOptions,
    device: DeviceConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let runtime = RuntimeOptions::for_serve(&opts);
    serve_with(opts, device, runtime, shutdown).await
}

/// [`serve_on_device`], running apps as `runtime` says.
pub async fn serve_with(
    opts: ServeOptions,
    device: DeviceConfig,
    runtime: RuntimeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    serve_system(opts, device, runtime, SystemOptions::default(), shutdown).await
}

/// [`serve_with`], first installing or updating the system image's apps and preparing the
/// user's files as `system` says (`system_apps.rs`).
pub async fn serve_system(
    opts: ServeOptions,
    device: DeviceConfig,
    runtime: RuntimeOptions,
    system: SystemOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut store = AppStore::open(
        &opts.data_root,
        opts.wasm_host.clone(),
        opts.launch_command.clone(),
    )
    .with_context(|| format!("opening the app store under {}", opts.data_root.display()))?;
    store.device = device;
    if let Some(dir) = &runtime.accounts_dir {
        store.accounts = Some(AppAccounts::new(dir));
        // Apps installed before (or by an older manager) get their users now.
        store.sync_accounts()?;
    }
    if let Some(dir) = &system.user_files {
        system_apps::prepare_user_files(dir)
            .with_context(|| format!("preparing the user's files {}", dir.display()))?;
    }
    let mut platform_signer = None;
    if let (Some(dir), Some(key)) = (&system.system_apps, &system.platform_key) {
        // A missing key or directory only means no system apps: the manager serves anyway.
        match system_apps::read_platform_key(key) {
            Ok(platform) => {
                platform_signer = Some(platform.to_base64());
                for outcome in system_apps::preinstall(&mut store, dir, &platform) {
                    match outcome {
                        system_apps::Outcome::Refused { package, reason } => {
                            tracing::warn!(package = %package.display(), "system app refused: {reason}")
                        }
                        other => tracing::info!("system app: {other:?}"),
                    }
                }
            }
            Err(e) => tracing::warn!("no system apps: {e:#}"),
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let lifecycle = Lifecycle::new(
        HostCommand {
            wasm_host: opts.wasm_host.clone(),
            web_host: runtime.web_host,
            notification_bus: notification_bus(&opts),
            memory_mb: opts.memory_mb,
            headless: opts.headless_apps,
            user_files: system.user_files.clone(),
            platform_signer,
        },
        tx,
    );
    let inner = Arc::new(Mutex::new(Manager {
        store,
        lifecycle,
        developer_mode: runtime.developer_mode,
    }));
    let conn = match &opts.bus_address {
        Some(a) => zbus::connection::Builder::address(a.as_str()),
        None => zbus::connection::Builder::system(),
    }
    .name(BUS_NAME)
    .serve_at(
        OBJECT_PATH,
        AppManager1 {
            inner: inner.clone(),
        },
    )
    .build()
    .await
    .context("claiming org.cirrus.AppManager1 on the bus")?;
    tracing::info!(root = %opts.data_root.display(), "serving org.cirrus.AppManager1");
    cirrus_logging::readiness::notify("READY=1\nSTATUS=serving org.cirrus.AppManager1");
    let iface = conn
        .object_server()
        .interface::<_, AppManager1>(OBJECT_PATH)
        .await?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(event) = rx.recv() => {
                let change = inner.lock().ok().and_then(|mut m| m.lifecycle.host_event(&event));
                if let Some((id, state)) = change {
                    tracing::info!(app = %id, state = state.as_str(), "state changed");
                    let _ = AppManager1::state_changed(iface.signal_emitter(), &id, state.as_str()).await;
                }
            }
            _ = &mut shutdown => break,
        }
    }
    if let Ok(mut m) = inner.lock() {
        m.lifecycle.stop_all();
    }
    Ok(())
}
