//! `org.cirrus.Sync1` at `/org/cirrus/Sync1`: cirrus-syncd's D-Bus interface — the one contract the
//! daemon serves and `cirrus sync`, the settings app and tests call (through [`Sync1ClientProxy`]).
//! Documented in docs/sync.md.
//!
//! Methods:
//! - `Status() → (ssxttttuasb(uuuuuuuuu)t)`: [`SyncStatus`] (state, detail, progress, held deletes,
//!   errors of the last cycle, paused, last cycle's counts, cycles finished).
//! - `Pause()`, `Resume()`: the persisted pause switch.
//! - `SyncNow() → t`: asks for a cycle now (policy conditions are bypassed: the user asked);
//!   returns the number the requested cycle will have in `CycleFinished`. Fails while paused.
//! - `Conflicts() → a(ssst)`: conflict copies made on this device ([`ConflictEntry`]).
//! - `ConfirmDeletes() → u`: lets the next cycle (started at once) propagate the deletions held by
//!   the mass-delete guard; returns how many were held.
//!
//! Signals: `StateChanged(s state, s detail)`, `Progress(t files_done, t files_total, t bytes_done,
//! t bytes_total)` (at most ~4 per second during a cycle), `CycleFinished(t cycle, b ok,
//! (uuuuuuuuu) report, s error)`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface};

use crate::engine::{CycleReport, Engine, Status};

pub const BUS_NAME: &str = "org.cirrus.Sync1";
pub const OBJECT_PATH: &str = "/org/cirrus/Sync1";
pub const INTERFACE: &str = "org.cirrus.Sync1";

/// Counts of one cycle (`(uuuuuuuuu)`), in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct ReportCounts {
    pub uploaded: u32,
    pub copied: u32,
    pub downloaded: u32,
    pub deleted_remote: u32,
    pub deleted_local: u32,
    pub conflicts: u32,
    pub held_deletes: u32,
    pub failed: u32,
    pub skipped: u32,
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<&CycleReport> for ReportCounts {
    fn from(r: &CycleReport) -> Self {
        Self {
            uploaded: clamp(r.uploaded),
            copied: clamp(r.copied),
            downloaded: clamp(r.downloaded),
            deleted_remote: clamp(r.deleted_remote),
            deleted_local: clamp(r.deleted_local),
            conflicts: clamp(r.conflicts),
            held_deletes: clamp(r.held_deletes),
            failed: clamp(r.failed),
            skipped: clamp(r.skipped),
        }
    }
}

/// The answer of `Status()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct SyncStatus {
    /// `idle`, `syncing`, `paused` or `waiting`.
    pub state: String,
    /// Why it waits (the policy condition), or "".
    pub detail: String,
    /// Unix milliseconds of the last completed cycle, 0 if none yet.
    pub last_sync_ms: i64,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Deletions held back by the mass-delete guard until `ConfirmDeletes()`.
    pub held_deletes: u32,
    /// Errors of the last cycle (empty once a cycle completes).
    pub errors: Vec<String>,
    pub paused: bool,
    pub last_report: ReportCounts,
    pub cycles_finished: u64,
}

impl From<&Status> for SyncStatus {
    fn from(s: &Status) -> Self {
        Self {
            state: s.state.as_str().to_owned(),
            detail: s.detail.clone(),
            last_sync_ms: s.last_sync_ms,
            files_done: s.files_done,
            files_total: s.files_total,
            bytes_done: s.bytes_done,
            bytes_total: s.bytes_total,
            held_deletes: clamp(s.held_deletes),
            errors: s.errors.clone(),
            paused: s.state == crate::engine::SyncState::Paused,
            last_report: ReportCounts::from(&s.last_report),
            cycles_finished: s.cycles_finished,
        }
    }
}

/// One conflict copy (`(ssst)`): the path both devices changed, the copy that keeps this device's
/// version, the device that made it, when (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct ConflictEntry {
    pub path: String,
    pub copy: String,
    pub device: String,
    pub time_ms: u64,
}

/// What the daemon's main loop and the bus object share.
pub struct Control {
    pub engine: Arc<Engine>,
    /// Wakes the main loop (sync now, resume, confirm).
    pub wake: tokio::sync::Notify,
    /// A cycle was asked for: run one even if a policy condition holds it back.
    pub requested: AtomicBool,
    /// Cycles started by the main loop (the next one gets `started + 1`).
    pub started: AtomicU64,
}

impl Control {
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            wake: tokio::sync::Notify::new(),
            requested: AtomicBool::new(false),
            started: AtomicU64::new(0),
        })
    }

    /// Asks the main loop for a cycle; returns the number it will have.
    pub fn request_cycle(&self) -> u64 {
        self.requested.store(true, Ordering::SeqCst);
        let next = self.started.load(Ordering::SeqCst) + 1;
        self.wake.notify_one();
        next
    }
}

/// The object served at [`OBJECT_PATH`].
pub struct Sync1 {
    pub control: Arc<Control>,
}

fn failed(e: impl std::fmt::Display) -> fdo::Error {
    fdo::Error::Failed(e.to_string())
}

#[interface(name = "org.cirrus.Sync1")]
impl Sync1 {
    async fn status(&self) -> SyncStatus {
        SyncStatus::from(&self.control.engine.status())
    }

    async fn pause(&self, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> fdo::Result<()> {
        // One small SQLite write: done in place (zbus's executor is not tokio's).
        self.control.engine.set_paused(true).map_err(failed)?;
        let s = self.control.engine.status();
        let _ = Self::state_changed(&emitter, s.state.as_str(), &s.detail).await;
        Ok(())
    }

    async fn resume(&self, #[zbus(signal_emitter)] emitter: SignalEmitter<'_>) -> fdo::Result<()> {
        self.control.engine.set_paused(false).map_err(failed)?;
        // Whatever changed meanwhile is picked up at once.
        self.control.request_cycle();
        let s = self.control.engine.status();
        let _ = Self::state_changed(&emitter, s.state.as_str(), &s.detail).await;
        Ok(())
    }

    async fn sync_now(&self) -> fdo::Result<u64> {
        if self.control.engine.is_paused() {
            return Err(failed(
                "sync is paused: resume it first (cirrus sync resume)",
            ));
        }
        Ok(self.control.request_cycle())
    }

    async fn conflicts(&self) -> fdo::Result<Vec<ConflictEntry>> {
        let list = self.control.engine.conflicts().map_err(failed)?;
        Ok(list
            .into_iter()
            .map(|c| ConflictEntry {
                path: c.path,
                copy: c.copy,
                device: c.device,
                time_ms: u64::try_from(c.time).unwrap_or(0),
            })
            .collect())
    }

    async fn confirm_deletes(&self) -> fdo::Result<u32> {
        let held = clamp(self.control.engine.status().held_deletes);
        self.control.engine.confirm_deletes();
        if !self.control.engine.is_paused() {
            self.control.request_cycle();
        }
        Ok(held)
    }

    #[zbus(signal)]
    pub async fn state_changed(
        emitter: &SignalEmitter<'_>,
        state: &str,
        detail: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub async fn progress(
        emitter: &SignalEmitter<'_>,
        files_done: u64,
        files_total: u64,
        bytes_done: u64,
        bytes_total: u64,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub async fn cycle_finished(
        emitter: &SignalEmitter<'_>,
        cycle: u64,
        ok: bool,
        report: ReportCounts,
        error: &str,
    ) -> zbus::Result<()>;
}

/// Client side of the interface (`cirrus sync`, settings, tests).
#[zbus::proxy(
    interface = "org.cirrus.Sync1",
    default_service = "org.cirrus.Sync1",
    default_path = "/org/cirrus/Sync1"
)]
pub trait Sync1Client {
    fn status(&self) -> zbus::Result<SyncStatus>;
    fn pause(&self) -> zbus::Result<()>;
    fn resume(&self) -> zbus::Result<()>;
    fn sync_now(&self) -> zbus::Result<u64>;
    fn conflicts(&self) -> zbus::Result<Vec<ConflictEntry>>;
    fn confirm_deletes(&self) -> zbus::Result<u32>;
    #[zbus(signal)]
    fn state_changed(&self, state: String, detail: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn progress(
        &self,
        files_done: u64,
        files_total: u64,
        bytes_done: u64,
        bytes_total: u64,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    fn cycle_finished(
        &self,
        cycle: u64,
        ok: bool,
        report: ReportCounts,
        error: String,
    ) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::Type;

    /// The wire types documented in docs/sync.md and at the top of this file.
    #[test]
    fn wire_signatures_are_the_documented_ones() {
        assert_eq!(
            SyncStatus::SIGNATURE.to_string(),
            "(ssxttttuasb(uuuuuuuuu)t)"
        );
        assert_eq!(ConflictEntry::SIGNATURE.to_string(), "(ssst)");
        assert_eq!(ReportCounts::SIGNATURE.to_string(), "(uuuuuuuuu)");
    }
}
