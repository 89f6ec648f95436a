//! Shared helpers of the integration tests: devices (an engine with its own tree and state
//! directory), stores pointing at the loopback servers, and the final sha256 comparison of every
//! file on every device and in the bucket.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cirrus_sync_fixtures::{ACCESS_KEY, SECRET_KEY};
use cirrus_syncd::engine::{CycleReport, Engine, EngineConfig};
use cirrus_syncd::retry::RetryPolicy;
use cirrus_syncd::sign::Dialect;
use cirrus_syncd::store::http::Addressing;
use cirrus_syncd::store::{HttpStore, HttpStoreConfig, ObjectStore};

pub struct Device {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
}

impl Device {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("user")
    }
    pub fn write(&self, rel: &str, data: &[u8]) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root().join(rel)).ok()
    }
    pub async fn sync(&self) -> CycleReport {
        self.engine
            .sync_once()
            .await
            .unwrap_or_else(|e| panic!("sync on device {}: {e}", self.engine.device_id()))
    }
}

pub fn test_config(dir: &Path) -> EngineConfig {
    let mut cfg = EngineConfig::new(dir.join("user"), dir.join("state"));
    cfg.retry = RetryPolicy {
        attempts: 10,
        initial: Duration::from_millis(50),
        max: Duration::from_millis(800),
    };
    cfg.multipart_threshold = 6 << 20;
    cfg.part_size = 5 << 20;
    cfg
}

pub fn device_with(store: ObjectStore, tweak: impl FnOnce(&mut EngineConfig)) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    tweak(&mut cfg);
    let engine = Engine::open(cfg, store).unwrap();
    Device { dir, engine }
}

pub fn s3_store(endpoint: &str, bucket: &str) -> ObjectStore {
    ObjectStore::Http(Arc::new(
        HttpStore::new(HttpStoreConfig {
            dialect: Dialect::S3,
            endpoint: endpoint.to_owned(),
            bucket: bucket.to_owned(),
            region: "us-east-1".into(),
            addressing: Addressing::Path,
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            session_token: None,
        })
        .unwrap(),
    ))
}

/// Runs rounds of cycles on every device until a whole round changes nothing.
pub async fn sync_all(devices: &[&Device]) {
    for _ in 0..8 {
        let mut quiet = true;
        for d in devices {
            let r = d.sync().await;
            if r != CycleReport::default() {
                quiet = false;
            }
        }
        if quiet {
            return;
        }
    }
    panic!("devices did not converge in 8 rounds");
}

/// Runs rounds of cycles on every device until a whole round completes without error and
/// changes nothing, tolerating failed cycles on the way (a device may wait for another device's
/// repair: "content does not match the journal yet"). Panics with the last errors if the devices
/// have not settled after `max_rounds` rounds.
pub async fn settle(devices: &[&Device], max_rounds: usize) {
    let mut last_errors = Vec::new();
    for _ in 0..max_rounds {
        let mut quiet = true;
        last_errors.clear();
        for d in devices {
            match d.engine.sync_once().await {
                Ok(r) if r == CycleReport::default() => {}
                Ok(_) => quiet = false,
                Err(e) => {
                    quiet = false;
                    last_errors.push(format!("{}: {e}", d.engine.device_id()));
                }
            }
        }
        if quiet {
            return;
        }
    }
    panic!("devices did not settle in {max_rounds} rounds; last errors: {last_errors:?}");
}

/// sha256 of every regular file under `dir`, by relative path, skipping `skip_prefix`.
pub fn tree_hashes(dir: &Path, skip_prefix: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
            if skip_prefix.iter().any(|s| rel.starts_with(s)) {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, cirrus_syncd::integrity::sha256_file(&p).unwrap().0);
            }
        }
    }
    out
}

/// Every device and the bucket hold exactly the same files with the same sha256.
pub fn assert_converged(devices: &[&Device], bucket_dir: &Path) -> BTreeMap<String, String> {
    let bucket = tree_hashes(bucket_dir, &[".cirrus-sync", ".cirrus-store"]);
    for d in devices {
        let local = tree_hashes(&d.root(), &[]);
        assert_eq!(
            local,
            bucket,
            "device {} differs from the bucket",
            d.engine.device_id()
        );
    }
    bucket
}

/// Deterministic pseudo-random content.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
