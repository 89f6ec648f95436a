//! cirrus-syncd: the sync daemon. Loads its TOML configuration, opens the device state, serves
//! `org.cirrus.Sync1` on the system bus (or `--bus-address`), then runs sync cycles when local files
//! change (inotify, debounced), on a periodic timer (remote changes, anything inotify missed) and on
//! request, while sync is not paused and the policy conditions allow (see `daemon.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cirrus_syncd::bus::{BUS_NAME, Control, OBJECT_PATH, Sync1};
use cirrus_syncd::config::SyncConfig;
use cirrus_syncd::daemon::{self, LoopConfig};
use cirrus_syncd::engine::Engine;
use clap::Parser;

/// The device's configuration file, when the image or the OEM ships one.
const DEFAULT_CONFIG: &str = "/system/etc/cirrus/sync.toml";

#[derive(Debug, Parser)]
#[command(
    name = "cirrus-syncd",
    about = "Mirror the user's files to OSS, S3 or a local directory"
)]
struct Args {
    /// Configuration file (TOML). Without it, /system/etc/cirrus/sync.toml if present, else the
    /// defaults: /data/user/0 mirrored to the embedded store under /data/system/sync.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `root` of the configuration.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Overrides `state_dir` of the configuration.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Run one cycle and exit (status 0 only if it completed; refused while sync is paused).
    #[arg(long)]
    once: bool,
    /// Propagate deletions held by the mass-delete guard in the next cycle.
    #[arg(long)]
    confirm_deletes: bool,
    /// D-Bus address to serve org.cirrus.Sync1 on (default: the system bus).
    #[arg(long, conflicts_with = "no_bus")]
    bus_address: Option<String>,
    /// Do not serve org.cirrus.Sync1.
    #[arg(long)]
    no_bus: bool,
}

/// Connects to the bus and serves the interface under its well-known name.
async fn serve_bus(address: Option<&str>, control: Arc<Control>) -> Result<zbus::Connection> {
    let builder = match address {
        Some(a) => zbus::connection::Builder::address(a),
        None => zbus::connection::Builder::system(),
    };
    let conn = builder
        .name(BUS_NAME)
        .serve_at(OBJECT_PATH, Sync1 { control })
        .build()
        .await
        .with_context(|| {
            format!(
                "connecting to {} as {BUS_NAME}",
                address.unwrap_or("the system bus")
            )
        })?;
    Ok(conn)
}

/// Keeps glibc's heap from holding on to memory the daemon no longer uses: two arenas instead of
/// up to eight per core (the transfer tasks hop between tokio's threads, and every arena keeps its
/// own free pages), and a fixed mmap threshold, so the transfer chunks (256 KiB) are mapped and
/// returned on free rather than fragmenting the heap (glibc raises the threshold dynamically).
fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> Result<()> {
    tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> Result<()> {
    cirrus_logging::init("cirrus-syncd");
    let args = Args::parse();
    let mut cfg = match &args.config {
        Some(path) => {
            SyncConfig::load(path).with_context(|| format!("loading {}", path.display()))?
        }
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => {
            SyncConfig::load(std::path::Path::new(DEFAULT_CONFIG))
                .with_context(|| format!("loading {DEFAULT_CONFIG}"))?
        }
        None => {
            tracing::info!("no {DEFAULT_CONFIG}: using the embedded store (no account needed)");
            SyncConfig::default()
        }
    };
    if let Some(r) = args.root {
        cfg.root = r;
    }
    if let Some(s) = args.state_dir {
        cfg.state_dir = s;
    }
    let store = cfg.store().context("configuring the sync backend")?;
    let mut engine_cfg = cfg.engine_config();
    if let Some((cipher, path, created)) = cfg.cipher().context("loading the account key")? {
        if created {
            tracing::warn!(key = %path.display(), key_id = cipher.key_id(), "created a new account key: copy this file to the account's other devices");
        }
        tracing::info!(key_id = cipher.key_id(), "end-to-end encryption on");
        engine_cfg.cipher = Some(cipher);
    }
    let engine = Arc::new(
        Engine::open(engine_cfg, store)
            .with_context(|| format!("opening sync state in {}", cfg.state_dir.display()))?,
    );
    if args.confirm_deletes {
        engine.confirm_deletes();
    }
    tracing::info!(device = engine.device_id(), root = %cfg.root.display(), paused = engine.is_paused(), "cirrus-syncd starting");
    if args.once {
        if engine.is_paused() {
            bail!(
                "sync is paused on this device: resume it (cirrus sync resume) before running a cycle"
            );
        }
        let report = engine.sync_once().await.context("sync cycle")?;
        tracing::info!(?report, "cycle done");
        return Ok(());
    }
    let control = Control::new(engine.clone());
    let bus = if args.no_bus {
        None
    } else {
        match serve_bus(args.bus_address.as_deref(), control.clone()).await {
            Ok(conn) => Some(conn),
            // An explicit address is a test or a developer: fail loudly. On a device without a
            // system bus yet, keep the user's data syncing and say why there is no interface.
            Err(e) if args.bus_address.is_some() => return Err(e),
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "org.cirrus.Sync1 not served; syncing without it"
                );
                None
            }
        }
    };
    let changes = cirrus_syncd::watch::watch(&cfg.root)
        .with_context(|| format!("watching {}", cfg.root.display()))?;
    notify_ready(bus.is_some());
    let loop_cfg = LoopConfig {
        interval: Duration::from_secs(cfg.interval_secs.max(1)),
        debounce: Duration::from_millis(cfg.debounce_ms),
        conditions: cfg.conditions.clone(),
    };
    daemon::run(control, loop_cfg, changes, bus).await;
    Ok(())
}

/// Tells init we are up (sd_notify `READY=1`) when started with `ready = "notify"`: the interface
/// is served (or known to be unavailable) and the tree is watched.
fn notify_ready(serving: bool) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message = if serving {
        "READY=1\nSTATUS=serving org.cirrus.Sync1"
    } else {
        "READY=1\nSTATUS=syncing without org.cirrus.Sync1"
    };
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|socket| socket.send_to(message.as_bytes(), &path));
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = ?path, "cannot tell init we are ready");
    }
}
