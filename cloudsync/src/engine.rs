//! The sync engine: one cycle = scan the local tree, read the other devices' new journal segments,
//! reconcile every path three ways (local now / last agreed version / remote), then transfer and
//! commit in batches (each batch: one state-DB transaction + one journal segment).
//!
//! Reconciliation rules (see docs/sync.md): a change on one side is applied to the other; a change
//! on both sides with different content keeps both (the local version becomes a conflict copy named
//! with device and time); an edit beats a concurrent delete; deletes travel as tombstones and are
//! held back by the mass-delete guard; a delete + a new path with the same content is a rename,
//! done with a server-side copy; every download is checked against the journal's SHA-256 before it
//! replaces anything.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use rand::Rng;
use tokio::sync::Semaphore;

use crate::crypto::{CIPHER_NAME, ContentCipher, EncryptionMarker};
use crate::journal::{self, META_PREFIX, Record, RemoteEntry, Segment, VersionVector};
use crate::policy::RateLimiter;
use crate::retry::{RetryPolicy, retry};
use crate::state::{self, ConflictCopy, LocalFile, StateDb, UploadInFlight};
use crate::store::{
    ConditionalCaps, FilePart, ObjectStore, StoreError, UploadedPart, WriteCondition,
};

/// Prefix of temporary files the engine writes inside the synced tree (never synced).
pub const TMP_PREFIX: &str = ".cirrus-tmp-";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("local file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("journal segment {key} is unreadable: {reason}")]
    Journal { key: String, reason: String },
    #[error("{0} transfer(s) failed in this cycle; first: {1}")]
    Partial(usize, String),
    #[error("sync is paused (resume it with `cirrus sync resume`)")]
    Paused,
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// This device's encryption setting or key does not match the bucket's: nothing is synced.
    #[error("{0}")]
    EncryptionMismatch(String),
    /// A name only this device may write (its journal segment or registry object) already holds
    /// other content in the bucket: another device uses this device's id (a cloned or restored
    /// state directory) or this is a bug. Nothing was overwritten; this device stops syncing.
    #[error(
        "{key} already holds different content in the bucket ({detail}); nothing was overwritten. Another device seems to use this device's id {device} (a copied or restored state directory?): sync on this device stops until that is resolved"
    )]
    NameTaken {
        key: String,
        device: String,
        detail: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The synced tree (e.g. /data/user/0).
    pub root: PathBuf,
    /// Directory of the state database (outside `root`).
    pub state_dir: PathBuf,
    /// Files at least this big go up in multipart uploads.
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Files transferred at once.
    pub parallelism: usize,
    /// Deleting more than this share of the synced files in one cycle needs confirmation…
    pub mass_delete_share: f64,
    /// …unless it is at most this many files.
    pub mass_delete_min: usize,
    pub retry: RetryPolicy,
    /// Actions per commit (state transaction + journal segment).
    pub batch_size: usize,
    /// Upper bound of file data held in memory by transfers at once.
    pub memory_budget: u64,
    pub bandwidth_limit: Option<u64>,
    /// End-to-end encryption of contents and journals with the account key (see [`crate::crypto`]).
    pub cipher: Option<Arc<ContentCipher>>,
    /// Use conditional writes where a probe finds the store honours them (an extra guard; see
    /// docs/sync.md "Conditional writes").
    pub conditional_writes: bool,
}

impl EngineConfig {
    pub fn new(root: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            state_dir: state_dir.into(),
            multipart_threshold: 8 << 20,
            part_size: 5 << 20,
            parallelism: 8,
            mass_delete_share: 0.3,
            mass_delete_min: 50,
            retry: RetryPolicy::default(),
            batch_size: 2000,
            memory_budget: 24 << 20,
            bandwidth_limit: None,
            cipher: None,
            conditional_writes: true,
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CycleReport {
    pub uploaded: usize,
    pub copied: usize,
    pub downloaded: usize,
    pub deleted_remote: usize,
    pub deleted_local: usize,
    pub conflicts: usize,
    /// Deletions held back by the mass-delete guard (waiting for confirmation).
    pub held_deletes: usize,
    pub failed: usize,
    /// Actions left for a later cycle: not started because sync was paused during the cycle,
    /// or a repair superseded by another device's write (its conditional re-upload refused).
    pub skipped: usize,
}

/// What the engine is doing, as shown by `org.cirrus.Sync1` (see [`crate::bus`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    /// Nothing to do until the next change, timer or request.
    #[default]
    Idle,
    /// A cycle is running.
    Syncing,
    /// Paused by the user; persisted, so it survives restarts.
    Paused,
    /// Held back by a policy condition (charging-only, unmetered-only); `Status::detail` says which.
    Waiting,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Idle => "idle",
            SyncState::Syncing => "syncing",
            SyncState::Paused => "paused",
            SyncState::Waiting => "waiting",
        }
    }
}

/// Live status for the D-Bus interface.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Status {
    pub state: SyncState,
    /// Why the engine waits (a policy condition), or empty.
    pub detail: String,
    pub last_sync_ms: i64,
    pub files_total: u64,
    pub files_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub held_deletes: usize,
    /// Errors of the last cycle (empty after a cycle that completed).
    pub errors: Vec<String>,
    pub last_report: CycleReport,
    /// Cycles finished (completed or failed) since the engine was opened.
    pub cycles_finished: u64,
}

#[derive(Debug, Clone)]
enum Action {
    Upload {
        path: String,
        sha: String,
        size: u64,
        vv: VersionVector,
        conflict: Option<ConflictCopy>,
    },
    Copy {
        from: String,
        path: String,
        sha: String,
        size: u64,
        vv: VersionVector,
    },
    Download {
        rec: Record,
        expect_local: Option<LocalFile>,
    },
    DeleteLocal {
        rec: Record,
        expect_local: LocalFile,
    },
    DeleteRemote {
        path: String,
        vv: VersionVector,
        /// Part of a mass deletion the user confirmed (travels with the tombstone).
        confirmed: bool,
    },
    Adopt {
        rec: Record,
    },
    /// This device's version won a concurrent edit: make sure the bucket holds it at the path,
    /// first keeping the loser's bytes (if they are what the bucket holds) as the conflict copy
    /// `copy` — the name the loser's device gives the same version.
    Repair {
        ours: Record,
        loser: Record,
        copy: Option<String>,
    },
}

impl Action {
    fn bytes(&self) -> u64 {
        match self {
            Action::Upload { size, .. } => *size,
            Action::Download { rec, .. } => rec.size,
            _ => 0,
        }
    }
}

#[derive(Debug, Default)]
struct Outcome {
    records: Vec<Record>,
    synced: Vec<Record>,
    local_set: Vec<(String, LocalFile)>,
    local_remove: Vec<String>,
    conflicts: Vec<ConflictCopy>,
    clear_loser: Option<String>,
    /// Another writer changed the object after it was read (a conditional write was refused, or
    /// the bucket holds a version no journal names yet): left for a later cycle to re-plan.
    superseded: bool,
}

/// Result of a local scan.
struct Scan {
    files: HashMap<String, LocalFile>,
    /// Files that changed while being hashed: left alone this cycle.
    unstable: HashSet<String>,
}

pub struct Engine {
    cfg: EngineConfig,
    store: ObjectStore,
    db: Arc<StateDb>,
    device: String,
    limiter: Option<RateLimiter>,
    memory: Semaphore,
    status: std::sync::Mutex<Status>,
    confirm_deletes: AtomicBool,
    /// The bucket's encryption marker was checked against this device's setting.
    encryption_checked: AtomicBool,
    /// Mirrors the `paused` entry of the state DB.
    paused: AtomicBool,
    /// Conditional writes the store honours (probed once per store, remembered in the state DB).
    caps: std::sync::Mutex<Option<ConditionalCaps>>,
    cycle: tokio::sync::Mutex<()>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn stat_of(md: &std::fs::Metadata, sha256: String) -> LocalFile {
    LocalFile {
        size: md.len(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        ino: md.ino(),
        sha256,
    }
}

fn same_stat(a: &LocalFile, b: &LocalFile) -> bool {
    a.size == b.size && a.mtime_ns == b.mtime_ns && a.ino == b.ino
}

impl Engine {
    /// Opens (or creates) the device state and binds it to a store.
    pub fn open(mut cfg: EngineConfig, store: ObjectStore) -> Result<Self, SyncError> {
        if cfg.cipher.is_some() {
            // Sealed parts must start on chunk boundaries.
            cfg.part_size =
                cfg.part_size.div_ceil(crate::crypto::CHUNK).max(1) * crate::crypto::CHUNK;
        }
        if !cfg.state_dir.exists() {
            // The state (and the embedded store, the account key) is the device's alone.
            if let Some(parent) = cfg.state_dir.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&cfg.state_dir)
                .map_err(io(&cfg.state_dir))?;
        }
        std::fs::create_dir_all(&cfg.root).map_err(io(&cfg.root))?;
        let db = StateDb::open(&cfg.state_dir.join("state.sqlite"))?;
        let device = match db.get_meta("device_id")? {
            Some(d) => d,
            None => {
                let d = format!("{:08x}", rand::rng().random::<u32>());
                db.set_meta("device_id", &d)?;
                d
            }
        };
        let paused = db.get_meta("paused")?.as_deref() == Some("1");
        let budget_kib = (cfg.memory_budget / 1024).clamp(1024, u32::MAX as u64 / 2) as usize;
        Ok(Self {
            limiter: cfg.bandwidth_limit.map(RateLimiter::new),
            memory: Semaphore::new(budget_kib),
            cfg,
            store,
            db: Arc::new(db),
            device,
            status: std::sync::Mutex::new(Status {
                state: if paused {
                    SyncState::Paused
                } else {
                    SyncState::Idle
                },
                ..Default::default()
            }),
            confirm_deletes: AtomicBool::new(false),
            encryption_checked: AtomicBool::new(false),
            paused: AtomicBool::new(paused),
            caps: std::sync::Mutex::new(None),
            cycle: tokio::sync::Mutex::new(()),
        })
    }

    pub fn device_id(&self) -> &str {
        &self.device
    }

    /// What object metadata records for content `sha` (the plaintext SHA-256, or its keyed hash
    /// when contents are encrypted).
    fn object_tag(&self, sha: &str) -> String {
        match &self.cfg.cipher {
            Some(c) => c.tag(sha),
            None => sha.to_owned(),
        }
    }

    /// Seals a journal segment (or any small metadata) when encrypting.
    fn seal_meta(&self, body: Bytes) -> Bytes {
        match &self.cfg.cipher {
            Some(c) => Bytes::from(c.seal(&body)),
            None => body,
        }
    }

    /// The conditional writes the store honours: what its dialect defines, confirmed by a probe
    /// (once per store: the answer is kept in the state DB under the store's identity), or none
    /// when `conditional_writes` is off. S3-compatible servers differ (some ignore the headers,
    /// some refuse them) and a versioned OSS bucket ignores `x-oss-forbid-overwrite`, so the
    /// daemon never assumes: it writes an object, then checks that a create-only write of it is
    /// refused, that an overwrite naming a wrong ETag is refused and one naming the right ETag is
    /// not.
    pub async fn conditional_caps(&self) -> Result<ConditionalCaps, SyncError> {
        if !self.cfg.conditional_writes {
            return Ok(ConditionalCaps::default());
        }
        if let Some(c) = *self.caps.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(c);
        }
        let identity = self.store.identity();
        let remembered = self
            .db
            .get_meta("conditional_caps")?
            .and_then(|v| serde_json::from_str::<(String, ConditionalCaps)>(&v).ok())
            .filter(|(id, _)| *id == identity)
            .map(|(_, c)| c);
        let caps = match remembered {
            Some(c) => c,
            None => {
                let c = self.probe_conditional_writes().await?;
                let v = serde_json::to_string(&(&identity, c)).map_err(|e| SyncError::Io {
                    path: "conditional_caps".into(),
                    source: std::io::Error::other(e),
                })?;
                self.db.set_meta("conditional_caps", &v)?;
                tracing::info!(
                    store = %identity,
                    if_absent = c.if_absent,
                    if_match = c.if_match,
                    "conditional writes probed"
                );
                c
            }
        };
        *self.caps.lock().unwrap_or_else(|p| p.into_inner()) = Some(caps);
        Ok(caps)
    }

    async fn probe_conditional_writes(&self) -> Result<ConditionalCaps, SyncError> {
        let dialect = self.store.conditional_dialect();
        if let ObjectStore::Local(_) = self.store {
            return Ok(dialect);
        }
        let key = format!("{META_PREFIX}probe/{}.txt", self.device);
        let body = Bytes::from_static(b"cirrus-syncd conditional-write probe\n");
        let sha = crate::integrity::sha256_hex(&body);
        let put = async |cond: WriteCondition| {
            retry(&self.cfg.retry, &key, async || {
                self.store.put_if(&key, body.clone(), &sha, &cond).await
            })
            .await
        };
        // A refusal is what a store honouring the header answers; success means it ignored the
        // header; an error other than a transient one (400 NotImplemented, 501) means it does
        // not take the header at all.
        let etag = put(WriteCondition::None).await?;
        let mut caps = ConditionalCaps::default();
        if dialect.if_match
            && let Some(etag) = etag
        {
            let wrong = "\"00000000000000000000000000000000\"".to_owned();
            match put(WriteCondition::IfMatch(wrong)).await {
                Err(StoreError::PreconditionFailed(_)) => {
                    caps.if_match = put(WriteCondition::IfMatch(etag)).await.is_ok();
                }
                Err(e) if e.is_transient() => return Err(e.into()),
                _ => {}
            }
        }
        if dialect.if_absent {
            match put(WriteCondition::IfAbsent).await {
                Err(StoreError::PreconditionFailed(_)) => caps.if_absent = true,
                Err(e) if e.is_transient() => return Err(e.into()),
                _ => {}
            }
        }
        retry(&self.cfg.retry, &key, async || {
            self.store.delete(&key).await
        })
        .await?;
        Ok(caps)
    }

    /// Writes an object whose name must be unique (a journal segment, a registry object, a
    /// conflict copy, the encryption marker) create-only where the store honours it. `Ok(false)`:
    /// the name is taken (the caller compares what is there); without conditional writes the
    /// put is plain and always `Ok(true)`.
    async fn put_unique(&self, key: &str, body: Bytes, tag: &str) -> Result<bool, SyncError> {
        let cond = if self.conditional_caps().await?.if_absent {
            WriteCondition::IfAbsent
        } else {
            WriteCondition::None
        };
        match retry(&self.cfg.retry, key, async || {
            self.store.put_if(key, body.clone(), tag, &cond).await
        })
        .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::PreconditionFailed(e)) => {
                tracing::debug!(%key, error = %e, "create-only write refused: the name is taken");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The plaintext of a small metadata object in the bucket (opened when encrypting), `None`
    /// if it cannot be opened.
    async fn read_meta_plain(&self, key: &str) -> Result<Option<Bytes>, SyncError> {
        let body = retry(&self.cfg.retry, key, async || {
            self.store.get_bytes(key).await
        })
        .await?;
        Ok(match &self.cfg.cipher {
            Some(c) => c.open(key, &body).ok().map(Bytes::from),
            None => Some(body),
        })
    }

    /// Checks once per engine that this device's encryption setting and key match the bucket's
    /// marker (`.cirrus-sync/encryption.json`), writing the marker into a bucket that has no data
    /// yet. A mismatch stops every cycle before anything is read or written.
    async fn check_encryption(&self) -> Result<(), SyncError> {
        if self.encryption_checked.load(Ordering::SeqCst) {
            return Ok(());
        }
        let key = format!("{META_PREFIX}encryption.json");
        let marker =
            match retry(&self.cfg.retry, &key, async || {
                self.store.get_bytes(&key).await
            })
            .await
            {
                Ok(body) => Some(serde_json::from_slice::<EncryptionMarker>(&body).map_err(
                    |e| SyncError::Journal {
                        key: key.clone(),
                        reason: e.to_string(),
                    },
                )?),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            };
        match (&self.cfg.cipher, marker) {
            (None, None) => {}
            (Some(c), Some(m)) if m.key_id == c.key_id() && m.cipher == CIPHER_NAME => {}
            (Some(c), Some(m)) => {
                return Err(SyncError::EncryptionMismatch(format!(
                    "the bucket is encrypted with key {} ({}), but this device's key is {}: copy the account key file from a device that syncs this bucket; nothing was synced",
                    m.key_id,
                    m.cipher,
                    c.key_id()
                )));
            }
            (None, Some(m)) => {
                return Err(SyncError::EncryptionMismatch(format!(
                    "the bucket is end-to-end encrypted (key {}): enable [encryption] with the account key file from a device that syncs it; nothing was synced",
                    m.key_id
                )));
            }
            (Some(c), None) => {
                let journals = format!("{META_PREFIX}journal/");
                let existing = retry(&self.cfg.retry, &journals, async || {
                    self.store.list(&journals, None).await
                })
                .await?;
                if !existing.is_empty() {
                    return Err(SyncError::EncryptionMismatch(
                        "the bucket already holds unencrypted synced data: encryption can only be turned on for a new bucket; nothing was synced".into(),
                    ));
                }
                let body = Bytes::from(
                    serde_json::to_vec(&EncryptionMarker {
                        format: 1,
                        cipher: CIPHER_NAME.into(),
                        key_id: c.key_id().into(),
                    })
                    .map_err(|e| SyncError::Journal {
                        key: key.clone(),
                        reason: e.to_string(),
                    })?,
                );
                let sha = crate::integrity::sha256_hex(&body);
                if !self.put_unique(&key, body, &sha).await? {
                    // Another device marked the bucket first (create-only write refused): judge
                    // its marker instead of replacing it.
                    return Box::pin(self.check_encryption()).await;
                }
                tracing::info!(key_id = c.key_id(), "bucket marked as end-to-end encrypted");
            }
        }
        self.encryption_checked.store(true, Ordering::SeqCst);
        Ok(())
    }
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// Shows that the engine waits for a policy condition (`Some(reason)`), or no longer does.
    pub fn set_waiting(&self, reason: Option<&str>) {
        let paused = self.is_paused();
        self.update_status(|s| {
            if s.state == SyncState::Syncing {
                return;
            }
            s.state = match (paused, reason) {
                (true, _) => SyncState::Paused,
                (false, Some(_)) => SyncState::Waiting,
                (false, None) => SyncState::Idle,
            };
            s.detail = reason.unwrap_or_default().to_owned();
        });
    }
    /// Whether sync is paused (a persisted switch: it survives restarts).
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
    /// Pauses or resumes sync. The switch is written to the state DB first, so a pause survives a
    /// crash or reboot. A cycle running when sync is paused starts no further transfer (those
    /// already under way finish and are committed); the rest is left for the cycle after resume.
    pub fn set_paused(&self, paused: bool) -> Result<(), SyncError> {
        self.db.set_meta("paused", if paused { "1" } else { "0" })?;
        self.paused.store(paused, Ordering::SeqCst);
        self.update_status(|s| {
            if s.state != SyncState::Syncing {
                s.state = if paused {
                    SyncState::Paused
                } else {
                    SyncState::Idle
                };
                s.detail.clear();
            }
        });
        tracing::info!(paused, "sync {}", if paused { "paused" } else { "resumed" });
        Ok(())
    }
    fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
    /// Conflict copies this device made.
    pub fn conflicts(&self) -> Result<Vec<ConflictCopy>, SyncError> {
        Ok(self.db.conflicts()?)
    }
    /// Lets the next cycle propagate the deletions the mass-delete guard held back.
    pub fn confirm_deletes(&self) {
        self.confirm_deletes.store(true, Ordering::SeqCst);
    }

    async fn acquire_memory(&self, bytes: u64) -> tokio::sync::SemaphorePermit<'_> {
        let kib = (bytes / 1024 + 1).min(self.cfg.memory_budget / 1024) as u32;
        // The semaphore is never closed.
        match self.memory.acquire_many(kib.max(1)).await {
            Ok(p) => p,
            Err(_) => unreachable!("memory semaphore is never closed"),
        }
    }

    /// One full cycle. Transfers that fail are reported in [`CycleReport::failed`] and retried by the
    /// next cycle; the state stays consistent whatever fails or crashes.
    /// Refused with [`SyncError::Paused`] while sync is paused.
    pub async fn sync_once(&self) -> Result<CycleReport, SyncError> {
        let _guard = self.cycle.lock().await;
        if self.is_paused() {
            return Err(SyncError::Paused);
        }
        self.update_status(|s| {
            s.state = SyncState::Syncing;
            s.detail.clear();
        });
        let result = self.cycle_inner().await;
        let paused = self.is_paused();
        self.update_status(|s| {
            s.state = if paused {
                SyncState::Paused
            } else {
                SyncState::Idle
            };
            s.cycles_finished += 1;
            match &result {
                Ok(r) => {
                    s.last_sync_ms = now_ms();
                    s.held_deletes = r.held_deletes;
                    s.last_report = r.clone();
                    s.errors.clear();
                }
                Err(e) => {
                    s.errors.push(e.to_string());
                    if s.errors.len() > 20 {
                        s.errors.remove(0);
                    }
                }
            }
        });
        result
    }

    async fn cycle_inner(&self) -> Result<CycleReport, SyncError> {
        self.conditional_caps().await?;
        self.check_encryption().await?;
        self.flush_pending_segments().await?;
        self.register_device().await?;
        self.pull_remote().await?;
        let scan = {
            let db = self.db.clone();
            let root = self.cfg.root.clone();
            tokio::task::spawn_blocking(move || scan_local(&root, &db))
                .await
                .map_err(|e| SyncError::Io {
                    path: "scan".into(),
                    source: std::io::Error::other(e),
                })??
        };
        let synced = self.db.synced()?;
        let remote = self.db.remote()?;
        let confirmed = self.confirm_deletes.swap(false, Ordering::SeqCst);
        let (main, deletes, mut report) = self.plan(&scan, &synced, &remote, confirmed)?;
        if !main.is_empty() || !deletes.is_empty() {
            self.check_next_segment_free().await?;
        }
        self.update_status(|s| {
            s.files_total = (main.len() + deletes.len()) as u64;
            s.files_done = 0;
            s.bytes_total = main.iter().map(Action::bytes).sum();
            s.bytes_done = 0;
        });
        let mut failures: Vec<String> = Vec::new();
        let mut skipped = 0;
        // Content first (uploads, copies, downloads), deletions after: a rename's copy is
        // committed before its source is deleted.
        for phase in [main, deletes] {
            for batch in phase.chunks(self.cfg.batch_size.max(1)) {
                let scan = &scan;
                let results: Vec<(Action, Result<Outcome, SyncError>)> =
                    stream::iter(batch.iter().cloned())
                        .map(|a| async move {
                            if self.is_paused() {
                                return (a, Err(SyncError::Paused));
                            }
                            let r = self.execute(&a, scan).await;
                            self.update_status(|s| {
                                s.files_done += 1;
                                s.bytes_done += a.bytes();
                            });
                            (a, r)
                        })
                        .buffer_unordered(self.cfg.parallelism.max(1))
                        .collect()
                        .await;
                let mut outcomes = Vec::new();
                for (action, r) in results {
                    match r {
                        Ok(o) => {
                            count(&mut report, &action, &o);
                            outcomes.push(o);
                        }
                        Err(SyncError::Paused) => skipped += 1,
                        Err(e) => {
                            tracing::warn!(error = %e, "transfer failed; the next cycle retries it");
                            failures.push(e.to_string());
                        }
                    }
                }
                self.commit(outcomes).await?;
            }
        }
        report.failed = failures.len();
        report.skipped += skipped;
        if skipped > 0 {
            tracing::info!(
                skipped,
                "paused during the cycle; the rest waits for resume"
            );
        }
        if let Some(first) = failures.first() {
            return Err(SyncError::Partial(failures.len(), first.clone()));
        }
        Ok(report)
    }

    /// Puts this device's registry object once.
    async fn register_device(&self) -> Result<(), SyncError> {
        if self.db.get_meta("registered")?.is_some() {
            return Ok(());
        }
        // A random token of this installation: a registry object that carries another one was
        // written by another device using the same id.
        let instance = match self.db.get_meta("instance")? {
            Some(i) => i,
            None => {
                let i = format!("{:016x}", rand::rng().random::<u64>());
                self.db.set_meta("instance", &i)?;
                i
            }
        };
        let body = serde_json::json!({
            "device": self.device,
            "instance": instance,
            "registered_ms": now_ms()
        })
        .to_string();
        let body = Bytes::from(body);
        let sha = crate::integrity::sha256_hex(&body);
        let key = journal::device_key(&self.device);
        if !self.put_unique(&key, body, &sha).await? {
            let existing = retry(&self.cfg.retry, &key, async || {
                self.store.get_bytes(&key).await
            })
            .await?;
            let theirs = serde_json::from_slice::<serde_json::Value>(&existing)
                .ok()
                .and_then(|v| {
                    v.get("instance")
                        .and_then(|i| i.as_str())
                        .map(str::to_owned)
                });
            if theirs.as_deref() != Some(instance.as_str()) {
                let e = SyncError::NameTaken {
                    key,
                    device: self.device.clone(),
                    detail: "the device registry object names another installation".into(),
                };
                tracing::error!(error = %e, "device id collision");
                return Err(e);
            }
        }
        self.db.set_meta("registered", "1")?;
        Ok(())
    }

    /// Uploads journal segments committed locally but not yet stored (e.g. after a crash).
    async fn flush_pending_segments(&self) -> Result<(), SyncError> {
        for (seq, plain) in self.db.pending_segments()? {
            let key = journal::segment_key(&self.device, seq);
            let plain = Bytes::from(plain);
            let body = self.seal_meta(plain.clone());
            let sha = crate::integrity::sha256_hex(&body);
            if !self.put_unique(&key, body, &sha).await? {
                // The segment name is taken. The same segment (sent before a crash or a lost
                // answer, re-sealed with another nonce when encrypting) is fine; anything else
                // is another device writing under this device's id: never overwrite it.
                if self.read_meta_plain(&key).await?.as_ref() != Some(&plain) {
                    let e = SyncError::NameTaken {
                        key,
                        device: self.device.clone(),
                        detail: format!("journal segment {seq} differs from this device's"),
                    };
                    tracing::error!(error = %e, "journal segment collision");
                    return Err(e);
                }
                tracing::info!(%key, "journal segment already stored (re-sent after a crash or a lost answer)");
            }
            self.db.remove_pending_segment(seq)?;
        }
        Ok(())
    }

    /// Before this cycle writes anything: the journal segment it will commit must not exist yet
    /// (every earlier one was flushed at the start of the cycle). If it does, another
    /// installation uses this device's id (a copied or restored state directory) and has moved
    /// the journal on: writing objects now would replace that one's versions without a record.
    /// One HEAD per cycle that has work; the create-only segment write catches the simultaneous
    /// case where the store honours it.
    async fn check_next_segment_free(&self) -> Result<(), SyncError> {
        let next: u64 = self
            .db
            .get_meta("next_seq")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let key = journal::segment_key(&self.device, next);
        if retry(&self.cfg.retry, &key, async || self.store.head(&key).await)
            .await?
            .is_some()
        {
            let e = SyncError::NameTaken {
                key,
                device: self.device.clone(),
                detail: format!("journal segment {next} was written by another installation"),
            };
            tracing::error!(error = %e, "device id collision");
            return Err(e);
        }
        Ok(())
    }

    /// Reads the new journal segments of every other device into the remote view.
    async fn pull_remote(&self) -> Result<(), SyncError> {
        let devices_prefix = format!("{META_PREFIX}devices/");
        let devices = retry(&self.cfg.retry, "list devices", async || {
            self.store.list(&devices_prefix, None).await
        })
        .await?;
        for d in devices {
            let Some(device) = d
                .key
                .strip_prefix(&devices_prefix)
                .and_then(|k| k.strip_suffix(".json"))
            else {
                continue;
            };
            if device == self.device {
                continue;
            }
            let prefix = journal::journal_prefix(device);
            let cursor = self.db.cursor(device)?;
            let keys = retry(&self.cfg.retry, &prefix, async || {
                self.store.list(&prefix, cursor.as_deref()).await
            })
            .await?;
            if keys.is_empty() {
                continue;
            }
            let segments: Vec<Result<(String, Segment), SyncError>> = stream::iter(keys)
                .map(|k| async move {
                    let mut body = retry(&self.cfg.retry, &k.key, async || {
                        self.store.get_bytes(&k.key).await
                    })
                    .await?;
                    if let Some(c) = &self.cfg.cipher {
                        body = Bytes::from(c.open(&k.key, &body)?);
                    }
                    let seg: Segment =
                        serde_json::from_slice(&body).map_err(|e| SyncError::Journal {
                            key: k.key.clone(),
                            reason: e.to_string(),
                        })?;
                    if seg.format != journal::FORMAT {
                        return Err(SyncError::Journal {
                            key: k.key,
                            reason: format!("format {} unknown", seg.format),
                        });
                    }
                    Ok((k.key, seg))
                })
                .buffered(self.cfg.parallelism.max(1))
                .collect()
                .await;
            let mut ok = Vec::new();
            for s in segments {
                ok.push(s?);
            }
            self.db.transaction(|tx| {
                for (key, seg) in &ok {
                    for rec in &seg.records {
                        let merged =
                            RemoteEntry::merge(state::tx::get_remote(tx, &rec.path)?, rec.clone());
                        state::tx::set_remote(tx, &rec.path, &merged)?;
                    }
                    state::tx::set_cursor(tx, device, key)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Name of the conflict copy of `device`'s version `sha` of `path`, written at `time`: the
    /// plain [`journal::conflict_path`], or its first `<device>-<n>` variant, that holds nothing
    /// else — neither a different file on this device nor another version (or a tombstone) in the
    /// remote view. The loser's device and a winner keeping the loser's bytes compute the same
    /// name for the same version, so they write one copy with the same bytes; a name holding
    /// another version is never reused, so no conflict copy ever replaces another.
    fn conflict_name(
        &self,
        path: &str,
        device: &str,
        time: i64,
        sha: &str,
        scan: &Scan,
        remote: &HashMap<String, RemoteEntry>,
    ) -> String {
        let mut n = 0u32;
        loop {
            let name = if n == 0 {
                journal::conflict_path(path, device, time)
            } else {
                journal::conflict_path(path, &format!("{device}-{n}"), time)
            };
            let free_here = match scan.files.get(&name) {
                Some(f) => f.sha256 == sha,
                None => std::fs::symlink_metadata(self.cfg.root.join(&name)).is_err(),
            };
            let free_remote = match remote.get(&name) {
                None => true,
                Some(e) => e.current.sha256.as_deref() == Some(sha),
            };
            if free_here && free_remote {
                return name;
            }
            n += 1;
        }
    }

    /// Three-way reconciliation of every known path.
    #[allow(clippy::type_complexity)]
    fn plan(
        &self,
        scan: &Scan,
        synced: &HashMap<String, Record>,
        remote: &HashMap<String, RemoteEntry>,
        confirmed: bool,
    ) -> Result<(Vec<Action>, Vec<Action>, CycleReport), SyncError> {
        let me = self.device.as_str();
        let mut paths: Vec<&String> = scan
            .files
            .keys()
            .chain(synced.keys())
            .chain(remote.keys())
            .collect();
        paths.sort();
        paths.dedup();
        let mut main = Vec::new();
        let mut local_deletes = Vec::new(); // DeleteLocal
        let mut remote_deletes: Vec<(String, VersionVector, String)> = Vec::new(); // path, vv, old sha
        let mut report = CycleReport::default();
        // Conflict copies made by this plan: the local rename and the upload below own them this
        // cycle (a remote record of the same copy is adopted by the next cycle, not downloaded
        // onto the file just renamed there).
        let mut claimed: HashSet<String> = HashSet::new();
        for path in paths {
            if scan.unstable.contains(path) {
                continue;
            }
            let l = scan.files.get(path);
            let s = synced.get(path);
            let r = remote.get(path);
            let l_sha = l.map(|f| f.sha256.as_str());
            let s_sha = s.and_then(|s| s.sha256.as_deref());
            let lc = l_sha != s_sha;
            let rc = match (r, s) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(r), Some(s)) => r.current.vv != s.vv,
            };
            let base_vv = match (s, r) {
                (Some(s), Some(r)) => s.vv.join(&r.current.vv),
                (Some(s), None) => s.vv.clone(),
                (None, Some(r)) => r.current.vv.clone(),
                (None, None) => VersionVector::default(),
            };
            if !rc {
                if lc {
                    match l {
                        Some(f) => main.push(Action::Upload {
                            path: path.clone(),
                            sha: f.sha256.clone(),
                            size: f.size,
                            vv: base_vv.bumped(me),
                            conflict: None,
                        }),
                        None if s_sha.is_some() => remote_deletes.push((
                            path.clone(),
                            base_vv.bumped(me),
                            s_sha.unwrap_or_default().to_owned(),
                        )),
                        None => {}
                    }
                } else if let (Some(r), Some(s)) = (r, s)
                    && let Some(loser) = &r.loser
                    && r.current.device == me
                    && loser.device != me
                    && r.current.sha256.is_some()
                    && s.vv == r.current.vv
                {
                    // No copy to make if the loser's version already is in the remote view
                    // under its name (its device, or an earlier repair, stored it).
                    let copy = loser
                        .sha256
                        .as_deref()
                        .map(|sha| {
                            self.conflict_name(path, &loser.device, loser.time, sha, scan, remote)
                        })
                        .filter(|name| !remote.contains_key(name));
                    main.push(Action::Repair {
                        ours: r.current.clone(),
                        loser: loser.clone(),
                        copy,
                    });
                }
                continue;
            }
            let Some(r) = r else { continue };
            let rcur = &r.current;
            let synced_included = match s {
                None => true,
                Some(s) => {
                    matches!(
                        s.vv.compare(&rcur.vv),
                        journal::Causality::Before | journal::Causality::Equal
                    ) || s.sha256 == rcur.sha256
                }
            };
            if l_sha == rcur.sha256.as_deref() {
                main.push(Action::Adopt { rec: rcur.clone() });
            } else if !lc && synced_included {
                match (&rcur.sha256, l) {
                    (None, Some(f)) => local_deletes.push(Action::DeleteLocal {
                        rec: rcur.clone(),
                        expect_local: f.clone(),
                    }),
                    (None, None) => main.push(Action::Adopt { rec: rcur.clone() }),
                    (Some(_), _) => main.push(Action::Download {
                        rec: rcur.clone(),
                        expect_local: l.cloned(),
                    }),
                }
            } else {
                // Local content that the remote version does not include.
                match (l, &rcur.sha256) {
                    (None, Some(_)) => main.push(Action::Download {
                        rec: rcur.clone(),
                        expect_local: None,
                    }),
                    (None, None) => main.push(Action::Adopt { rec: rcur.clone() }),
                    (Some(f), None) => main.push(Action::Upload {
                        path: path.clone(),
                        sha: f.sha256.clone(),
                        size: f.size,
                        vv: base_vv.bumped(me),
                        conflict: None,
                    }),
                    (Some(f), Some(_)) => {
                        // Both sides changed: the remote version keeps the path, ours becomes a
                        // conflict copy. A concurrent version of ours that lost the tie-break
                        // keeps its own time in the name (the winner may make the same copy).
                        let time = match s {
                            Some(s) if !lc && s.device == me => s.time,
                            _ => now_ms(),
                        };
                        let copy = self.conflict_name(path, me, time, &f.sha256, scan, remote);
                        claimed.insert(copy.clone());
                        let from = self.cfg.root.join(path);
                        let to = self.cfg.root.join(&copy);
                        std::fs::rename(&from, &to).map_err(io(&from))?;
                        tracing::info!(%path, %copy, "conflict: both sides changed; local version kept as a conflict copy");
                        main.push(Action::Upload {
                            path: copy.clone(),
                            sha: f.sha256.clone(),
                            size: f.size,
                            vv: VersionVector::default().bumped(me),
                            conflict: Some(ConflictCopy {
                                path: path.clone(),
                                copy,
                                device: me.to_owned(),
                                time,
                            }),
                        });
                        main.push(Action::Download {
                            rec: rcur.clone(),
                            expect_local: None,
                        });
                    }
                }
            }
        }

        let unclaimed = |a: &Action| match a {
            Action::Download { rec, .. }
            | Action::Adopt { rec }
            | Action::DeleteLocal { rec, .. } => !claimed.contains(&rec.path),
            _ => true,
        };
        main.retain(unclaimed);
        local_deletes.retain(unclaimed);

        // Renames: a vanished path whose content reappears under a new path is copied server-side.
        let mut vanished: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, (_, _, sha)) in remote_deletes.iter().enumerate() {
            vanished.entry(sha.as_str()).or_default().push(i);
        }
        let mut renamed = vec![false; remote_deletes.len()];
        for a in main.iter_mut() {
            if let Action::Upload {
                path,
                sha,
                size,
                vv,
                conflict: None,
            } = a
                && !synced.contains_key(path.as_str())
                && let Some(cands) = vanished.get_mut(sha.as_str())
                && let Some(i) = cands.pop()
            {
                renamed[i] = true;
                *a = Action::Copy {
                    from: remote_deletes[i].0.clone(),
                    path: path.clone(),
                    sha: sha.clone(),
                    size: *size,
                    vv: vv.clone(),
                };
            }
        }

        // Mass-delete guard (renames are not deletions).
        let live = synced.values().filter(|r| !r.is_tombstone()).count();
        let limit =
            ((live as f64 * self.cfg.mass_delete_share) as usize).max(self.cfg.mass_delete_min);
        let outgoing = renamed.iter().filter(|r| !**r).count();
        let mut deletes: Vec<Action> = Vec::new();
        if outgoing > limit && !confirmed {
            tracing::warn!(
                count = outgoing,
                limit,
                "mass-delete guard: local deletions held until confirmed"
            );
            report.held_deletes += outgoing;
            deletes.extend(
                remote_deletes
                    .iter()
                    .zip(&renamed)
                    .filter(|(_, r)| **r)
                    .map(|((p, vv, _), _)| Action::DeleteRemote {
                        path: p.clone(),
                        vv: vv.clone(),
                        confirmed: false,
                    }),
            );
        } else {
            // Deletions the guard would have held travel as confirmed: the other devices' guards
            // do not ask the user again.
            let user_confirmed = outgoing > limit;
            deletes.extend(remote_deletes.into_iter().zip(renamed).map(
                |((path, vv, _), renamed)| Action::DeleteRemote {
                    path,
                    vv,
                    confirmed: user_confirmed && !renamed,
                },
            ));
        }
        // Remote deletions applied here: a local copy moved by a remote rename is not a deletion.
        let incoming: HashSet<&str> = main
            .iter()
            .filter_map(|a| match a {
                Action::Download { rec, .. } => rec.sha256.as_deref(),
                _ => None,
            })
            .collect();
        // Deletions the user confirmed on the device that made them are not asked for again.
        let needs_confirmation = |a: &Action| {
            matches!(a, Action::DeleteLocal { rec, expect_local }
                if !rec.confirmed && !incoming.contains(expect_local.sha256.as_str()))
        };
        let true_local_deletes = local_deletes
            .iter()
            .filter(|a| needs_confirmation(a))
            .count();
        if true_local_deletes > limit && !confirmed {
            tracing::warn!(
                count = true_local_deletes,
                limit,
                "mass-delete guard: remote deletions held until confirmed"
            );
            report.held_deletes += true_local_deletes;
            deletes.extend(local_deletes.into_iter().filter(|a| !needs_confirmation(a)));
        } else {
            deletes.extend(local_deletes);
        }
        Ok((main, deletes, report))
    }

    async fn execute(&self, action: &Action, scan: &Scan) -> Result<Outcome, SyncError> {
        let mut out = Outcome::default();
        match action {
            Action::Adopt { rec } => out.synced.push(rec.clone()),
            Action::Upload {
                path,
                sha,
                size,
                vv,
                conflict,
            } => {
                let path = match conflict {
                    None => {
                        self.upload(path, sha, *size).await?;
                        path.clone()
                    }
                    Some(c) => {
                        let copy = self.keep_conflict_copy(path, sha, *size, c, true).await?;
                        out.conflicts.push(ConflictCopy {
                            copy: copy.clone(),
                            ..c.clone()
                        });
                        copy
                    }
                };
                let rec = self.record(&path, Some(sha.clone()), *size, vv.clone());
                out.records.push(rec.clone());
                out.synced.push(rec);
            }
            Action::Copy {
                from,
                path,
                sha,
                size,
                vv,
            } => {
                let copied = retry(&self.cfg.retry, path, async || {
                    self.store.copy(from, path).await?;
                    Ok(self.store.head(path).await?.and_then(|m| m.sha256))
                })
                .await;
                match copied {
                    Ok(Some(got)) if got == self.object_tag(sha) => {}
                    // The source changed or vanished meanwhile: upload our content instead.
                    _ => self.upload(path, sha, *size).await?,
                }
                let rec = self.record(path, Some(sha.clone()), *size, vv.clone());
                out.records.push(rec.clone());
                out.synced.push(rec);
            }
            Action::DeleteRemote {
                path,
                vv,
                confirmed,
            } => {
                retry(&self.cfg.retry, path, async || {
                    self.store.delete(path).await
                })
                .await?;
                let mut rec = self.record(path, None, 0, vv.clone());
                rec.confirmed = *confirmed;
                out.records.push(rec.clone());
                out.synced.push(rec);
            }
            Action::Download { rec, expect_local } => {
                let stat = self.download(rec, expect_local.as_ref(), scan).await?;
                out.local_set.push((rec.path.clone(), stat));
                out.synced.push(rec.clone());
            }
            Action::DeleteLocal { rec, expect_local } => {
                let full = self.cfg.root.join(&rec.path);
                if let Ok(md) = std::fs::symlink_metadata(&full) {
                    if !same_stat(&stat_of(&md, String::new()), expect_local) {
                        return Err(SyncError::Io {
                            path: rec.path.clone(),
                            source: std::io::Error::other("changed during sync; not deleted"),
                        });
                    }
                    std::fs::remove_file(&full).map_err(io(&full))?;
                    prune_empty_dirs(&self.cfg.root, &full);
                }
                out.local_remove.push(rec.path.clone());
                out.synced.push(rec.clone());
            }
            Action::Repair { ours, loser, copy } => {
                // What the bucket holds at the path is judged by its bytes, never by its metadata:
                // two simultaneous writes may leave one's content under the other's metadata
                // (non-atomic stores), and another writer may replace it at any moment.
                let dest = self.cfg.root.join(&ours.path);
                let dir = dest.parent().unwrap_or(&self.cfg.root).to_path_buf();
                tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
                let tmp = dir.join(format!("{TMP_PREFIX}{:016x}", rand::rng().random::<u64>()));
                let fetched = retry(&self.cfg.retry, &ours.path, async || {
                    match self.fetch_plain(&ours.path, &tmp).await {
                        Err(StoreError::NotFound(_)) => Ok(None),
                        r => r.map(Some),
                    }
                })
                .await;
                let result = self
                    .repair(ours, loser, copy.as_deref(), fetched, &tmp, scan, &mut out)
                    .await;
                let _ = tokio::fs::remove_file(&tmp).await;
                if result? {
                    out.synced.push(ours.clone());
                    out.clear_loser = Some(ours.path.clone());
                } else {
                    out.superseded = true;
                }
            }
        }
        Ok(out)
    }

    fn record(&self, path: &str, sha256: Option<String>, size: u64, vv: VersionVector) -> Record {
        Record {
            path: path.to_owned(),
            sha256,
            size,
            vv,
            device: self.device.clone(),
            time: now_ms(),
            confirmed: false,
        }
    }

    /// The rest of [`Action::Repair`], once the bucket's object at the path was fetched into
    /// `tmp` (`None`: absent; else the SHA-256 of its plaintext, `None` if it does not open, and
    /// its ETag). Returns whether the path is repaired; `false` when another writer got in first
    /// (the bucket holds a version neither concurrent device wrote, or the conditional re-upload
    /// was refused): the next cycle re-plans with that writer's journal.
    #[allow(clippy::too_many_arguments)]
    async fn repair(
        &self,
        ours: &Record,
        loser: &Record,
        copy: Option<&str>,
        fetched: Result<Option<(Option<String>, Option<String>)>, StoreError>,
        tmp: &Path,
        scan: &Scan,
        out: &mut Outcome,
    ) -> Result<bool, SyncError> {
        let fetched = fetched?;
        let absent = fetched.is_none();
        let (in_bucket, etag) = fetched.unwrap_or_default();
        if let Some(sha) = in_bucket.as_deref()
            && Some(sha) != ours.sha256.as_deref()
            && Some(sha) != loser.sha256.as_deref()
        {
            // Bytes neither concurrent version has: a third device wrote the path and its
            // journal has not arrived yet. Never replaced: its record decides next cycle.
            tracing::info!(path = %ours.path, "the bucket holds a newer write of another device; repair re-planned next cycle");
            return Ok(false);
        }
        if in_bucket != ours.sha256 {
            if let (Some(copy), Some(sha)) = (copy, in_bucket.as_deref())
                && loser.sha256.as_deref() == Some(sha)
            {
                // The loser's bytes are in the bucket only here until its device makes its own
                // conflict copy (which may never happen: a lost phone). Keep them, verified, under
                // the name that device uses for them, before replacing them.
                let full = self.cfg.root.join(copy);
                if std::fs::symlink_metadata(&full).is_err() {
                    if let Some(parent) = full.parent() {
                        tokio::fs::create_dir_all(parent)
                            .await
                            .map_err(io(parent))?;
                    }
                    tokio::fs::rename(tmp, &full).await.map_err(io(&full))?;
                }
                let kept = ConflictCopy {
                    path: ours.path.clone(),
                    copy: copy.to_owned(),
                    device: loser.device.clone(),
                    time: loser.time,
                };
                // Judged by bytes: a torn object's metadata may name this content.
                let copy = self
                    .keep_conflict_copy(copy, sha, loser.size, &kept, false)
                    .await?;
                let full = self.cfg.root.join(&copy);
                let md = std::fs::metadata(&full).map_err(io(&full))?;
                let rec = self.record(
                    &copy,
                    Some(sha.to_owned()),
                    loser.size,
                    VersionVector::default().bumped(&self.device),
                );
                out.records.push(rec.clone());
                out.synced.push(rec);
                out.local_set
                    .push((copy.clone(), stat_of(&md, sha.to_owned())));
                tracing::info!(path = %ours.path, %copy, "concurrent edit: the other device's version kept as a conflict copy");
            }
            if let (Some(sha), Some(local)) = (&ours.sha256, scan.files.get(&ours.path))
                && &local.sha256 == sha
            {
                // Whatever the object's metadata says, its bytes are not ours: send them — only
                // over the version just read where the store can check that (If-Match on the
                // ETag read, create-only if it was absent), so a write that got in between is
                // never replaced.
                let caps = self.conditional_caps().await?;
                let cond = match (absent, etag) {
                    (true, _) if caps.if_absent => WriteCondition::IfAbsent,
                    (false, Some(e)) if caps.if_match => WriteCondition::IfMatch(e),
                    _ => WriteCondition::None,
                };
                match self
                    .upload_verified(&ours.path, sha, ours.size, false, cond)
                    .await
                {
                    Ok(()) => {}
                    Err(SyncError::Store(StoreError::PreconditionFailed(e))) => {
                        tracing::info!(path = %ours.path, error = %e, "another device wrote the path after it was read; repair re-planned next cycle");
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(true)
    }

    /// Uploads the conflict copy `c` (a local file at `c.copy` with content `sha`) under a name
    /// nobody else's version holds, and returns that name. Create-only where the store honours
    /// it: a refused name holding the same content (the other device of the conflict stored the
    /// same version, or an answer was lost) is kept; one holding anything else is never replaced
    /// — the local file moves to the next free `<device>-<n>` variant and is uploaded there.
    /// `trust_existing` as in [`Self::upload_verified`].
    async fn keep_conflict_copy(
        &self,
        path: &str,
        sha: &str,
        size: u64,
        c: &ConflictCopy,
        trust_existing: bool,
    ) -> Result<String, SyncError> {
        let mut name = path.to_owned();
        let mut n = 0u32;
        loop {
            let caps = self.conditional_caps().await?;
            let cond = if caps.if_absent {
                WriteCondition::IfAbsent
            } else {
                WriteCondition::None
            };
            match self
                .upload_verified(&name, sha, size, trust_existing, cond)
                .await
            {
                Ok(()) => return Ok(name),
                Err(SyncError::Store(StoreError::PreconditionFailed(_))) => {}
                Err(e) => return Err(e),
            }
            if self.bucket_holds(&name, sha).await? {
                return Ok(name);
            }
            let taken = name.clone();
            loop {
                n += 1;
                name = journal::conflict_path(&c.path, &format!("{}-{n}", c.device), c.time);
                if std::fs::symlink_metadata(self.cfg.root.join(&name)).is_err() {
                    break;
                }
            }
            let (from, to) = (self.cfg.root.join(&taken), self.cfg.root.join(&name));
            std::fs::rename(&from, &to).map_err(io(&from))?;
            tracing::warn!(%taken, copy = %name, "conflict copy name holds another version in the bucket; kept under the next free name");
        }
    }

    /// Whether the object `key` holds content `sha` (judged by its bytes).
    async fn bucket_holds(&self, key: &str, sha: &str) -> Result<bool, SyncError> {
        let dest = self.cfg.root.join(key);
        let dir = dest.parent().unwrap_or(&self.cfg.root).to_path_buf();
        let tmp = dir.join(format!("{TMP_PREFIX}{:016x}", rand::rng().random::<u64>()));
        let got = retry(&self.cfg.retry, key, async || {
            match self.fetch_plain(key, &tmp).await {
                Err(StoreError::NotFound(_)) => Ok(None),
                r => r.map(|(sha, _)| sha),
            }
        })
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        Ok(got?.as_deref() == Some(sha))
    }

    /// Uploads a local file, checking it still has the content the scan hashed.
    async fn upload(&self, path: &str, sha: &str, size: u64) -> Result<(), SyncError> {
        self.upload_verified(path, sha, size, true, WriteCondition::None)
            .await
    }

    /// [`Self::upload`]; `trust_existing`: a multipart upload is skipped when the object's
    /// metadata already names this content (e.g. completed just before a crash); `cond`: the
    /// write's precondition (a refusal is [`StoreError::PreconditionFailed`]).
    async fn upload_verified(
        &self,
        path: &str,
        sha: &str,
        size: u64,
        trust_existing: bool,
        cond: WriteCondition,
    ) -> Result<(), SyncError> {
        let full = self.cfg.root.join(path);
        if size >= self.cfg.multipart_threshold {
            return self
                .upload_multipart(path, &full, sha, size, trust_existing, &cond)
                .await;
        }
        let _mem = self.acquire_memory(size).await;
        let data = Bytes::from(tokio::fs::read(&full).await.map_err(io(&full))?);
        if crate::integrity::sha256_hex(&data) != sha {
            return Err(SyncError::Io {
                path: path.into(),
                source: std::io::Error::other("changed while uploading; retried next cycle"),
            });
        }
        let data = match &self.cfg.cipher {
            Some(c) => Bytes::from(c.seal(&data)),
            None => data,
        };
        if let Some(l) = &self.limiter {
            l.take(data.len() as u64).await;
        }
        let tag = self.object_tag(sha);
        retry(&self.cfg.retry, path, async || {
            self.store.put_if(path, data.clone(), &tag, &cond).await
        })
        .await?;
        Ok(())
    }

    /// Multipart upload that survives crashes: the upload id and every completed part are recorded
    /// in the state DB, so a restart sends only the missing parts.
    async fn upload_multipart(
        &self,
        path: &str,
        full: &Path,
        sha: &str,
        size: u64,
        trust_existing: bool,
        cond: &WriteCondition,
    ) -> Result<(), SyncError> {
        // Already there (e.g. crashed after completing, before the journal commit)?
        let stored_size = if self.cfg.cipher.is_some() {
            ContentCipher::sealed_len(size)
        } else {
            size
        };
        if trust_existing
            && let Ok(Some(m)) = self.store.head(path).await
            && m.sha256 == Some(self.object_tag(sha))
            && m.size == stored_size
        {
            self.db.finish_upload(path)?;
            return Ok(());
        }
        let before = std::fs::metadata(full).map_err(io(full))?;
        let existing = self
            .db
            .upload(path)?
            .filter(|u| u.sha256 == sha && u.size == size);
        let (upload, mut done) = match existing {
            Some(u) => {
                let server = retry(&self.cfg.retry, path, async || {
                    self.store.list_parts(path, &u.upload_id).await
                })
                .await?;
                match server {
                    Some(parts) => {
                        let recorded = self.db.upload_parts(path)?;
                        let on_server: HashMap<u32, u64> =
                            parts.iter().map(|p| (p.number, p.size)).collect();
                        let done: HashMap<u32, String> = recorded
                            .into_iter()
                            .filter(|(n, (_, sz))| on_server.get(n) == Some(sz))
                            .map(|(n, (etag, _))| (n, etag))
                            .collect();
                        tracing::info!(%path, parts_done = done.len(), "resuming multipart upload");
                        (u, done)
                    }
                    None => (
                        self.new_upload(path, sha, size, cond).await?,
                        HashMap::new(),
                    ),
                }
            }
            None => {
                if let Some(old) = self.db.upload(path)? {
                    let _ = self.store.abort_multipart(path, &old.upload_id).await;
                }
                (
                    self.new_upload(path, sha, size, cond).await?,
                    HashMap::new(),
                )
            }
        };
        let part_size = upload.part_size;
        let count = size.div_ceil(part_size).max(1) as u32;
        let todo: Vec<u32> = (1..=count).filter(|n| !done.contains_key(n)).collect();
        let results: Vec<Result<(u32, String), SyncError>> = stream::iter(todo)
            .map(|n| {
                let upload_id = upload.upload_id.clone();
                async move {
                    let offset = (n as u64 - 1) * part_size;
                    let len = part_size.min(size - offset);
                    let (etag, sent) = match &self.cfg.cipher {
                        // Sealed parts are made in memory (within the memory budget)…
                        Some(c) => {
                            let _mem = self.acquire_memory(len).await;
                            let data = read_range(full, offset, len).await?;
                            let data = Bytes::from(c.seal_part(&upload_id, offset, size, &data));
                            let sent = data.len() as u64;
                            if let Some(l) = &self.limiter {
                                l.take(sent).await;
                            }
                            let etag = retry(&self.cfg.retry, path, async || {
                                self.store
                                    .upload_part(path, &upload_id, n, data.clone())
                                    .await
                            })
                            .await?;
                            (etag, sent)
                        }
                        // …plain ones stream from the file: a few chunks in memory, not the part.
                        None => {
                            let _mem = self.acquire_memory(2 * FilePart::CHUNK as u64).await;
                            let etag = retry(&self.cfg.retry, path, async || {
                                let (file, upload_id) = (full.to_owned(), upload_id.clone());
                                let part = tokio::task::spawn_blocking(move || {
                                    FilePart::read(&file, offset, len)
                                })
                                .await
                                .map_err(|e| StoreError::Transient(e.to_string()))??;
                                if let Some(l) = &self.limiter {
                                    l.take(len).await;
                                }
                                self.store
                                    .upload_part_file(path, &upload_id, n, &part)
                                    .await
                            })
                            .await?;
                            (etag, len)
                        }
                    };
                    self.db.add_upload_part(path, n, &etag, sent)?;
                    Ok((n, etag))
                }
            })
            .buffer_unordered(4)
            .collect()
            .await;
        for r in results {
            let (n, etag) = r?;
            done.insert(n, etag);
        }
        // The file must not have changed while its parts went up (each part was checked by
        // Content-MD5 as sent, but parts read at different times could mix two versions).
        let md = std::fs::metadata(full).map_err(io(full))?;
        if md.len() != size
            || !same_stat(
                &stat_of(&md, String::new()),
                &stat_of(&before, String::new()),
            )
        {
            return Err(SyncError::Io {
                path: path.into(),
                source: std::io::Error::other("changed while uploading"),
            });
        }
        let mut parts: Vec<UploadedPart> = done
            .into_iter()
            .map(|(number, etag)| UploadedPart {
                number,
                size: 0,
                etag,
            })
            .collect();
        parts.sort_by_key(|p| p.number);
        let completed = retry(&self.cfg.retry, path, async || {
            self.store
                .complete_multipart(path, &upload.upload_id, &parts, cond)
                .await
        })
        .await;
        if let Err(StoreError::PreconditionFailed(_)) = &completed {
            // Refused: this upload can never complete under its precondition; drop it.
            let _ = self.store.abort_multipart(path, &upload.upload_id).await;
            self.db.finish_upload(path)?;
        }
        completed?;
        self.db.finish_upload(path)?;
        Ok(())
    }

    async fn new_upload(
        &self,
        path: &str,
        sha: &str,
        size: u64,
        cond: &WriteCondition,
    ) -> Result<UploadInFlight, SyncError> {
        let tag = self.object_tag(sha);
        let upload_id = retry(&self.cfg.retry, path, async || {
            self.store.create_multipart(path, &tag, cond).await
        })
        .await?;
        let u = UploadInFlight {
            upload_id,
            sha256: sha.to_owned(),
            size,
            part_size: self.cfg.part_size,
        };
        self.db.start_upload(path, &u)?;
        Ok(u)
    }

    /// Fetches object `key` into the file `tmp` (opening it when encrypted) and returns the SHA-256
    /// of the plaintext actually received — what the object holds, whatever its metadata claims —
    /// or `None` for an encrypted object that does not open (torn or tampered).
    async fn fetch_plain(
        &self,
        key: &str,
        tmp: &Path,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        let Some(c) = &self.cfg.cipher else {
            let f = self
                .store
                .get_to_file_tagged(key, tmp, self.limiter.as_ref())
                .await?;
            return Ok((Some(f.sha256), f.etag));
        };
        let dir = tmp.parent().unwrap_or(&self.cfg.root);
        let sealed = dir.join(format!("{TMP_PREFIX}{:016x}", rand::rng().random::<u64>()));
        let etag = match self
            .store
            .get_to_file_tagged(key, &sealed, self.limiter.as_ref())
            .await
        {
            Ok(f) => f.etag,
            Err(e) => {
                let _ = tokio::fs::remove_file(&sealed).await;
                return Err(e);
            }
        };
        let (c, name, src, dst) = (c.clone(), key.to_owned(), sealed.clone(), tmp.to_path_buf());
        let opened = tokio::task::spawn_blocking(move || c.open_file(&name, &src, &dst))
            .await
            .map_err(|e| StoreError::Transient(e.to_string()));
        let _ = tokio::fs::remove_file(&sealed).await;
        Ok((opened?.ok(), etag))
    }

    /// Downloads (or copies from an identical local file) `rec` into place, verified by SHA-256.
    async fn download(
        &self,
        rec: &Record,
        expect_local: Option<&LocalFile>,
        scan: &Scan,
    ) -> Result<LocalFile, SyncError> {
        let Some(sha) = rec.sha256.as_deref() else {
            return Err(SyncError::Io {
                path: rec.path.clone(),
                source: std::io::Error::other("tombstone is not downloadable"),
            });
        };
        let dest = self.cfg.root.join(&rec.path);
        let dir = dest.parent().unwrap_or(&self.cfg.root).to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
        let tmp = dir.join(format!("{TMP_PREFIX}{:016x}", rand::rng().random::<u64>()));
        // Content already on this device (a rename or copy elsewhere)?
        let local_source = scan
            .files
            .iter()
            .find(|(_, f)| f.sha256 == sha)
            .map(|(p, _)| self.cfg.root.join(p));
        let mut got = None;
        if let Some(src) = local_source
            && tokio::fs::copy(&src, &tmp).await.is_ok()
        {
            let t = tmp.clone();
            let h = tokio::task::spawn_blocking(move || crate::integrity::sha256_file(&t))
                .await
                .ok()
                .and_then(Result::ok);
            got = h.map(|(h, _)| h);
        }
        if got.as_deref() != Some(sha) {
            let r = retry(&self.cfg.retry, &rec.path, async || {
                match self.fetch_plain(&rec.path, &tmp).await?.0 {
                    Some(got) if got == sha => Ok(got),
                    // The object is being replaced by another device right now (or, encrypted,
                    // cannot be opened): never written into place; try again later.
                    _ => Err(StoreError::Transient(format!(
                        "{}: content does not match the journal yet",
                        rec.path
                    ))),
                }
            })
            .await;
            if let Err(e) = r {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e.into());
            }
        }
        // Replace only what the plan saw.
        let current = std::fs::symlink_metadata(&dest).ok();
        let unchanged = match (current, expect_local) {
            (None, None) => true,
            (Some(md), Some(exp)) => same_stat(&stat_of(&md, String::new()), exp),
            _ => false,
        };
        if !unchanged {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(SyncError::Io {
                path: rec.path.clone(),
                source: std::io::Error::other("changed locally during sync; retried next cycle"),
            });
        }
        tokio::fs::rename(&tmp, &dest).await.map_err(io(&dest))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        let md = std::fs::metadata(&dest).map_err(io(&dest))?;
        Ok(stat_of(&md, sha.to_owned()))
    }

    /// One batch's commit: state transaction (with the journal segment written ahead), then the
    /// segment upload.
    async fn commit(&self, outcomes: Vec<Outcome>) -> Result<(), SyncError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let records: Vec<Record> = outcomes
            .iter()
            .flat_map(|o| o.records.iter().cloned())
            .collect();
        let device = self.device.clone();
        let seq = self.db.transaction(|tx| {
            let mut seq = None;
            if !records.is_empty() {
                let next: u64 = tx
                    .query_row("SELECT value FROM meta WHERE key='next_seq'", [], |r| {
                        r.get::<_, String>(0)
                    })
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let segment = Segment {
                    format: journal::FORMAT,
                    device: device.clone(),
                    seq: next,
                    records: records.clone(),
                };
                state::tx::add_pending_segment(tx, next, &serde_json::to_string(&segment)?)?;
                state::tx::set_meta(tx, "next_seq", &(next + 1).to_string())?;
                for rec in &records {
                    let merged =
                        RemoteEntry::merge(state::tx::get_remote(tx, &rec.path)?, rec.clone());
                    state::tx::set_remote(tx, &rec.path, &merged)?;
                }
                seq = Some(next);
            }
            for o in &outcomes {
                for rec in &o.synced {
                    state::tx::set_synced(tx, rec)?;
                }
                for (p, f) in &o.local_set {
                    state::tx::set_local(tx, p, f)?;
                }
                for p in &o.local_remove {
                    state::tx::remove_local(tx, p)?;
                }
                for c in &o.conflicts {
                    state::tx::add_conflict(tx, c)?;
                }
                if let Some(p) = &o.clear_loser
                    && let Some(mut e) = state::tx::get_remote(tx, p)?
                {
                    e.loser = None;
                    state::tx::set_remote(tx, p, &e)?;
                }
            }
            Ok(seq)
        })?;
        if seq.is_some() {
            self.flush_pending_segments().await?;
        }
        Ok(())
    }
}

fn count(report: &mut CycleReport, action: &Action, o: &Outcome) {
    match action {
        Action::Upload { conflict, .. } => {
            report.uploaded += 1;
            if conflict.is_some() {
                report.conflicts += 1;
            }
        }
        Action::Copy { .. } => report.copied += 1,
        Action::Download { .. } => report.downloaded += 1,
        Action::DeleteLocal { .. } => report.deleted_local += 1,
        Action::DeleteRemote { .. } => report.deleted_remote += 1,
        Action::Repair { .. } => {
            report.conflicts += o.records.len();
            if o.superseded {
                report.skipped += 1;
            }
        }
        Action::Adopt { .. } => {}
    }
}

async fn read_range(path: &Path, offset: u64, len: u64) -> Result<Bytes, SyncError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(path).await.map_err(io(path))?;
    f.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(io(path))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).await.map_err(io(path))?;
    Ok(Bytes::from(buf))
}

/// Removes directories left empty by a deletion, up to (not including) the root.
fn prune_empty_dirs(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Walks the tree, hashing only files whose size/mtime/inode changed since the last scan.
fn scan_local(root: &Path, db: &StateDb) -> Result<Scan, SyncError> {
    let cached = db.local_files()?;
    let mut files = HashMap::new();
    let mut unstable = HashSet::new();
    let mut changed: Vec<(String, LocalFile)> = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if dir != root && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(SyncError::Io {
                    path: dir.display().to_string(),
                    source: e,
                });
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                tracing::warn!(path = %entry.path().display(), "skipping a file name that is not UTF-8");
                continue;
            };
            if name.starts_with(TMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel.to_str() else { continue };
            if md.is_dir() {
                if rel != META_PREFIX.trim_end_matches('/') {
                    stack.push(path);
                }
                continue;
            }
            if !md.is_file() {
                continue;
            }
            let probe = stat_of(&md, String::new());
            if let Some(c) = cached.get(rel)
                && same_stat(c, &probe)
            {
                files.insert(rel.to_owned(), c.clone());
                continue;
            }
            let Ok((sha, _)) = crate::integrity::sha256_file(&path) else {
                continue;
            };
            match std::fs::symlink_metadata(&path) {
                Ok(after) if same_stat(&stat_of(&after, String::new()), &probe) => {
                    let f = stat_of(&md, sha);
                    changed.push((rel.to_owned(), f.clone()));
                    files.insert(rel.to_owned(), f);
                }
                _ => {
                    unstable.insert(rel.to_owned());
                }
            }
        }
    }
    let gone: Vec<&String> = cached
        .keys()
        .filter(|p| !files.contains_key(*p) && !unstable.contains(*p))
        .collect();
    if !changed.is_empty() || !gone.is_empty() {
        db.transaction(|tx| {
            for (p, f) in &changed {
                state::tx::set_local(tx, p, f)?;
            }
            for p in &gone {
                state::tx::remove_local(tx, p)?;
            }
            Ok(())
        })?;
    }
    Ok(Scan { files, unstable })
}
