//! cirrus-appmanager: installs, verifies, launches and stops apps, and serves
//! `org.cirrus.AppManager1` on the system bus. Sits between the compositor's launcher (which shows
//! the launcher entries it writes) and the per-app hosts it starts (`appruntime/wasm-host`).
//!
//! `store.rs` installs/uninstalls under a data root, `db.rs` is the crash-safe package database,
//! `running.rs` the lifecycle of running hosts, `bus.rs` the D-Bus interface and its proxy.
//! `android.rs` installs APKs (kind `android`, verified by `cirrus-apk`), `icon.rs` renders their
//! launcher icons.

pub mod android;
pub mod bus;
pub mod db;
pub mod icon;
pub mod running;
pub mod store;

pub use cirrus_apk::arsc::DeviceConfig;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::bus::{AppManager1, BUS_NAME, Manager, OBJECT_PATH};
use crate::running::{HostCommand, Lifecycle};
use crate::store::AppStore;

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

/// [`serve`], with APK labels and icons resolved for `device` (locale, density).
pub async fn serve_on_device(
    opts: ServeOptions,
    device: DeviceConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut store = AppStore::open(
        &opts.data_root,
        opts.wasm_host.clone(),
        opts.launch_command.clone(),
    )
    .with_context(|| format!("opening the app store under {}", opts.data_root.display()))?;
    store.device = device;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let lifecycle = Lifecycle::new(
        HostCommand {
            wasm_host: opts.wasm_host.clone(),
            memory_mb: opts.memory_mb,
            headless: opts.headless_apps,
        },
        tx,
    );
    let inner = Arc::new(Mutex::new(Manager { store, lifecycle }));
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
