//! The daemon's configuration file (TOML; on the device /system/etc/cirrus/sync.toml or
//! /data/system/sync/sync.toml). Credentials may instead come from the environment
//! (`CIRRUS_SYNC_ACCESS_KEY`, `CIRRUS_SYNC_SECRET_KEY`, `CIRRUS_SYNC_SESSION_TOKEN`) so they need
//! not be written into a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::engine::EngineConfig;
use crate::policy::Conditions;
use crate::sign::Dialect;
use crate::store::{
    HttpStore, HttpStoreConfig, LocalStore, ObjectStore, StoreError, http::Addressing,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("backend: {0}")]
    Backend(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The synced tree.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Where the state database lives (must be outside `root`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Periodic rescan + remote poll interval, seconds.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Quiet time after the last local change before a cycle starts, milliseconds.
    #[serde(default = "default_debounce")]
    pub debounce_ms: u64,
    #[serde(default)]
    pub parallelism: Option<usize>,
    /// Bytes per second over all transfers.
    #[serde(default)]
    pub bandwidth_limit: Option<u64>,
    #[serde(default)]
    pub mass_delete_share: Option<f64>,
    #[serde(default)]
    pub mass_delete_min: Option<usize>,
    #[serde(default)]
    pub multipart_threshold: Option<u64>,
    #[serde(default)]
    pub part_size: Option<u64>,
    #[serde(default)]
    pub backend: Backend,
    #[serde(default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub encryption: Encryption,
}

/// End-to-end encryption (`[encryption]`): contents and journals sealed with the account key,
/// which stays on the devices (see docs/sync.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    #[serde(default)]
    pub enabled: bool,
    /// The account key (64 hex digits); created with a fresh key if missing. Default:
    /// `<state_dir>/account.key`. Copy it to the account's other devices.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_root() -> PathBuf {
    PathBuf::from("/data/user/0")
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/data/system/sync")
}
fn default_interval() -> u64 {
    300
}
fn default_debounce() -> u64 {
    200
}

/// Where the files go.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Backend {
    /// A local directory acting as the cloud (first run, emulator).
    Embedded { path: Option<PathBuf> },
    /// Any S3-compatible store.
    S3(Remote),
    /// Alibaba Cloud OSS, V4 signatures.
    Oss(Remote),
}

impl Default for Backend {
    fn default() -> Self {
        Backend::Embedded { path: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub addressing: Option<Addressing>,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub session_token: Option<String>,
    /// Send conditional writes (`If-None-Match: *` / `If-Match` on S3, `x-oss-forbid-overwrite`
    /// on OSS) where a probe finds the store honours them; `false` never sends them (for a
    /// server that mishandles them). Correctness never depends on them (docs/sync.md).
    #[serde(default = "default_true")]
    pub conditional_writes: bool,
}

fn default_true() -> bool {
    true
}

fn default_region() -> String {
    "us-east-1".into()
}

impl Default for SyncConfig {
    /// The first-run defaults: the user's files mirrored to the embedded store.
    fn default() -> Self {
        // An empty document takes every field's default.
        toml::from_str("").unwrap_or_else(|_| unreachable!("every SyncConfig field has a default"))
    }
}

impl SyncConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut e = EngineConfig::new(&self.root, &self.state_dir);
        if let Some(p) = self.parallelism {
            e.parallelism = p;
        }
        e.bandwidth_limit = self.bandwidth_limit;
        if let Some(s) = self.mass_delete_share {
            e.mass_delete_share = s;
        }
        if let Some(m) = self.mass_delete_min {
            e.mass_delete_min = m;
        }
        if let Some(t) = self.multipart_threshold {
            e.multipart_threshold = t;
        }
        if let Some(p) = self.part_size {
            e.part_size = p;
        }
        if let Backend::S3(r) | Backend::Oss(r) = &self.backend {
            e.conditional_writes = r.conditional_writes;
        }
        e
    }

    /// The account key when encryption is on (created if missing: the bool says so).
    pub fn cipher(
        &self,
    ) -> Result<Option<(Arc<crate::crypto::ContentCipher>, PathBuf, bool)>, ConfigError> {
        if !self.encryption.enabled {
            return Ok(None);
        }
        let path = self
            .encryption
            .key_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join("account.key"));
        let (cipher, created) = crate::crypto::ContentCipher::load_or_create(&path)?;
        Ok(Some((Arc::new(cipher), path, created)))
    }

    pub fn store(&self) -> Result<ObjectStore, ConfigError> {
        let remote = |dialect: Dialect, r: &Remote| -> Result<ObjectStore, ConfigError> {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let access_key = r
                .access_key
                .clone()
                .or_else(|| env("CIRRUS_SYNC_ACCESS_KEY"))
                .ok_or_else(|| {
                    ConfigError::Backend(
                        "no access key: set backend.access_key or CIRRUS_SYNC_ACCESS_KEY".into(),
                    )
                })?;
            let secret_key = r
                .secret_key
                .clone()
                .or_else(|| env("CIRRUS_SYNC_SECRET_KEY"))
                .ok_or_else(|| {
                    ConfigError::Backend(
                        "no secret key: set backend.secret_key or CIRRUS_SYNC_SECRET_KEY".into(),
                    )
                })?;
            let addressing = r.addressing.unwrap_or(match dialect {
                Dialect::S3 => Addressing::Path,
                Dialect::Oss => Addressing::VirtualHost,
            });
            Ok(ObjectStore::Http(Arc::new(HttpStore::new(
                HttpStoreConfig {
                    dialect,
                    endpoint: r.endpoint.clone(),
                    bucket: r.bucket.clone(),
                    region: r.region.clone(),
                    addressing,
                    access_key,
                    secret_key,
                    session_token: r
                        .session_token
                        .clone()
                        .or_else(|| env("CIRRUS_SYNC_SESSION_TOKEN")),
                },
            )?)))
        };
        match &self.backend {
            Backend::Embedded { path } => {
                let dir = path.clone().unwrap_or_else(|| self.state_dir.join("cloud"));
                Ok(ObjectStore::Local(Arc::new(LocalStore::new(dir)?)))
            }
            Backend::S3(r) => remote(Dialect::S3, r),
            Backend::Oss(r) => remote(Dialect::Oss, r),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_oss_config_with_custom_domain() {
        let c: SyncConfig = toml::from_str(
            r#"
            root = "/data/user/0"
            bandwidth_limit = 1000000
            [backend]
            kind = "oss"
            endpoint = "https://files.example.cn"
            bucket = "photos"
            region = "cn-hangzhou"
            addressing = "custom-domain"
            access_key = "ak"
            secret_key = "sk"
            session_token = "sts"
            [conditions]
            charging_only = true
            "#,
        )
        .unwrap();
        assert!(
            matches!(&c.backend, Backend::Oss(r) if r.addressing == Some(Addressing::CustomDomain) && r.region == "cn-hangzhou")
        );
        assert!(c.conditions.charging_only);
        assert_eq!(c.engine_config().bandwidth_limit, Some(1_000_000));
        assert!(toml::from_str::<SyncConfig>("bogus = 1").is_err());
        let d = SyncConfig::default();
        assert_eq!(
            (d.root.as_path(), d.state_dir.as_path()),
            (Path::new("/data/user/0"), Path::new("/data/system/sync"))
        );
        assert!(matches!(d.backend, Backend::Embedded { path: None }) && !d.encryption.enabled);
    }
}
