//! cirrus-syncd: the sync daemon. Loads its TOML configuration, opens the device state, then runs
//! sync cycles when local files change (inotify, debounced), on a periodic timer (remote changes,
//! anything inotify missed) and on request, while the policy conditions allow.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use cirrus_syncd::config::SyncConfig;
use cirrus_syncd::engine::Engine;

#[derive(Debug, Parser)]
#[command(name = "cirrus-syncd", about = "Mirror the user's files to OSS, S3 or a local directory")]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, default_value = "/system/etc/cirrus/sync.toml")]
    config: PathBuf,
    /// Overrides `root` of the configuration.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Overrides `state_dir` of the configuration.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Run one cycle and exit (status 0 only if it completed).
    #[arg(long)]
    once: bool,
    /// Propagate deletions held by the mass-delete guard in the next cycle.
    #[arg(long)]
    confirm_deletes: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    cirrus_logging::init("cirrus-syncd");
    let args = Args::parse();
    let mut cfg = SyncConfig::load(&args.config).with_context(|| format!("loading {}", args.config.display()))?;
    if let Some(r) = args.root {
        cfg.root = r;
    }
    if let Some(s) = args.state_dir {
        cfg.state_dir = s;
    }
    let store = cfg.store().context("configuring the sync backend")?;
    let engine = Arc::new(
        Engine::open(cfg.engine_config(), store)
            .with_context(|| format!("opening sync state in {}", cfg.state_dir.display()))?,
    );
    if args.confirm_deletes {
        engine.confirm_deletes();
    }
    tracing::info!(device = engine.device_id(), root = %cfg.root.display(), "cirrus-syncd starting");
    if args.once {
        let report = engine.sync_once().await.context("sync cycle")?;
        tracing::info!(?report, "cycle done");
        return Ok(());
    }
    let mut changes = cirrus_syncd::watch::watch(&cfg.root).with_context(|| format!("watching {}", cfg.root.display()))?;
    let interval = Duration::from_secs(cfg.interval_secs.max(1));
    let debounce = Duration::from_millis(cfg.debounce_ms);
    loop {
        match cfg.conditions.check() {
            Err(blocked) => {
                engine.set_state(&blocked.to_string());
                tracing::info!(%blocked, "not syncing now");
            }
            Ok(()) => match engine.sync_once().await {
                Ok(report) => tracing::info!(?report, "cycle done"),
                Err(e) => tracing::warn!(error = %e, "cycle failed; retrying later"),
            },
        }
        // Wait for a change (then for quiet) or for the periodic rescan.
        tokio::select! {
            got = changes.recv() => {
                if got.is_none() {
                    tracing::warn!("change watcher stopped; periodic rescans only");
                    tokio::time::sleep(interval).await;
                    continue;
                }
                while let Ok(Some(())) = tokio::time::timeout(debounce, changes.recv()).await {}
            }
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
