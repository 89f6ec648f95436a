//! The daemon's main loop: runs sync cycles when local files change (inotify, debounced), on the
//! periodic timer (remote changes, anything inotify missed) and on request (`SyncNow`, resume,
//! confirm), while sync is not paused and the policy conditions allow; publishes state, progress
//! and finished cycles on `org.cirrus.Sync1` when a bus connection is given.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use zbus::object_server::SignalEmitter;

use crate::bus::{Control, ReportCounts, Sync1};
use crate::engine::Status;
use crate::policy::Conditions;

/// How often a held-back daemon re-checks the policy conditions (charger plugged in, Wi-Fi back).
const CONDITION_POLL: Duration = Duration::from_secs(30);
/// Progress signals are sent at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub struct LoopConfig {
    pub interval: Duration,
    pub debounce: Duration,
    pub conditions: Conditions,
}

/// Signals to the bus, if there is one.
#[derive(Clone)]
struct Signals(Option<zbus::Connection>);

impl Signals {
    fn emitter(&self) -> Option<SignalEmitter<'static>> {
        let conn = self.0.as_ref()?;
        SignalEmitter::new(conn, crate::bus::OBJECT_PATH).ok()
    }
    async fn state(&self, state: &str, detail: &str) {
        if let Some(e) = self.emitter() {
            let _ = Sync1::state_changed(&e, state, detail).await;
        }
    }
    async fn progress(&self, s: &Status) {
        if let Some(e) = self.emitter() {
            let _ =
                Sync1::progress(&e, s.files_done, s.files_total, s.bytes_done, s.bytes_total).await;
        }
    }
}

/// Runs until the change watcher and the process end. `bus` is the connection serving
/// [`Sync1`] (signals are sent on it), or `None` to run without the interface.
pub async fn run(
    control: Arc<Control>,
    cfg: LoopConfig,
    mut changes: UnboundedReceiver<()>,
    bus: Option<zbus::Connection>,
) {
    let engine = control.engine.clone();
    let signals = Signals(bus);
    let mut last_state = None;
    let mut watcher_alive = true;
    loop {
        let forced = control.requested.swap(false, Ordering::SeqCst);
        let mut wait = cfg.interval;
        if engine.is_paused() {
            engine.set_waiting(None);
        } else {
            let blocked = if forced {
                Ok(())
            } else {
                cfg.conditions.check()
            };
            match blocked {
                Err(reason) => {
                    engine.set_waiting(Some(&reason.to_string()));
                    if last_state.as_deref() != Some(format!("waiting{reason}").as_str()) {
                        tracing::info!(%reason, "not syncing now");
                    }
                    wait = wait.min(CONDITION_POLL);
                }
                Ok(()) => {
                    engine.set_waiting(None);
                    signals.state("syncing", "").await;
                    cycle(&control, &signals).await;
                    last_state = Some("syncing".into());
                    // A cycle the user forced leaves the daemon waiting again if a condition holds.
                    if forced && let Err(reason) = cfg.conditions.check() {
                        engine.set_waiting(Some(&reason.to_string()));
                        wait = wait.min(CONDITION_POLL);
                    }
                }
            }
        }
        let status = engine.status();
        let shown = format!("{}{}", status.state.as_str(), status.detail);
        if last_state.as_deref() != Some(shown.as_str()) {
            signals.state(status.state.as_str(), &status.detail).await;
            last_state = Some(shown);
        }
        if control.requested.load(Ordering::SeqCst) && !engine.is_paused() {
            continue;
        }
        // Wait for a change (then for quiet), a request, or the timer.
        tokio::select! {
            got = changes.recv(), if watcher_alive => {
                match got {
                    None => {
                        tracing::warn!("change watcher stopped; periodic rescans only");
                        watcher_alive = false;
                    }
                    Some(()) => while let Ok(Some(())) = tokio::time::timeout(cfg.debounce, changes.recv()).await {},
                }
            }
            _ = control.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One cycle, with progress signals while it runs and `CycleFinished` at the end.
async fn cycle(control: &Control, signals: &Signals) {
    let engine = &control.engine;
    let number = control.started.fetch_add(1, Ordering::SeqCst) + 1;
    let watcher = {
        let engine = engine.clone();
        let signals = signals.clone();
        tokio::spawn(async move {
            let mut shown = None;
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let s = engine.status();
                let now = (s.files_done, s.files_total, s.bytes_done, s.bytes_total);
                if shown != Some(now) {
                    signals.progress(&s).await;
                    shown = Some(now);
                }
            }
        })
    };
    let result = engine.sync_once().await;
    watcher.abort();
    let status = engine.status();
    signals.progress(&status).await;
    let (ok, report, error) = match &result {
        Ok(r) => {
            tracing::info!(cycle = number, ?r, "cycle done");
            (true, ReportCounts::from(r), String::new())
        }
        Err(e) => {
            tracing::warn!(cycle = number, error = %e, "cycle failed; retrying later");
            (false, ReportCounts::default(), e.to_string())
        }
    };
    if let Some(e) = signals.emitter() {
        let _ = Sync1::cycle_finished(&e, number, ok, report, &error).await;
    }
}
