//! The package database: every installed app (kind, version, signer, uid, granted permissions),
//! kept as one JSON file under `<data root>/system/packages.json`. Crash-safe: every change is
//! written to a temporary file, fsynced, renamed over the old one and the directory fsynced, so a
//! power cut leaves either the old or the new database, never a torn one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the database could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// First uid handed to apps (Android's AID_APP_START).
pub const FIRST_APP_UID: u32 = 10_000;

/// A permission's state for one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    Granted,
    /// Asked for in the manifest, to be granted on first use.
    Ask,
    /// Refused or revoked by the user.
    Denied,
}

/// One installed app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledApp {
    pub id: String,
    /// `wasm`, `web`, or `android` (APKs, installed through their own reader): open on purpose.
    pub kind: String,
    pub version: String,
    pub name: String,
    pub label: String,
    /// The publisher key (base64) every update must be signed with.
    pub signer: String,
    pub signer_fingerprint: String,
    pub uid: u32,
    /// Where the verified package's files were unpacked (read-only for the app).
    pub code_dir: PathBuf,
    /// The app's entry point inside `code_dir` (component for wasm, start page for web).
    pub entry: String,
    pub icon: Option<PathBuf>,
    /// Requested permissions and their state.
    pub permissions: BTreeMap<String, Grant>,
    pub installed_at_unix: u64,
    pub updated_at_unix: u64,
    /// What only APKs have (kind `android`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<AndroidRecord>,
}

/// An installed APK's facts the manager needs later: the version code updates are compared by,
/// the signing identity updates must match (signer certificate digests, v3 rotation lineage), and
/// what its Android permissions became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AndroidRecord {
    pub version_code: u64,
    #[serde(default)]
    pub version_name: Option<String>,
    pub min_sdk: u32,
    pub target_sdk: u32,
    /// SHA-256 of each signer certificate (hex), sorted.
    pub signers: Vec<String>,
    /// The v3 proof-of-rotation lineage, oldest first, if the APK carries one.
    #[serde(default)]
    pub lineage: Option<Vec<LineageEntry>>,
    /// Every requested Android permission and the Cirrus permission it maps to (None: never granted).
    pub permissions: Vec<(String, Option<String>)>,
    /// The main launcher activity.
    #[serde(default)]
    pub launcher_activity: Option<String>,
    #[serde(default)]
    pub native_abis: Vec<String>,
    /// Label per locale ("" = default), as the APK's resources give them.
    #[serde(default)]
    pub labels: Vec<(String, String)>,
}

/// One certificate of a rotation lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageEntry {
    /// SHA-256 of the certificate (hex).
    pub certificate: String,
    /// Capability flags (installed data, shared uid, permission, rollback, auth).
    pub flags: u32,
}

impl InstalledApp {
    pub fn granted(&self) -> Vec<String> {
        self.permissions
            .iter()
            .filter(|(_, g)| **g == Grant::Granted)
            .map(|(p, _)| p.clone())
            .collect()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct DbFile {
    format: u32,
    next_uid: u32,
    apps: BTreeMap<String, InstalledApp>,
}

/// The database, loaded in memory; every mutation is persisted before it returns.
#[derive(Debug)]
pub struct PackageDb {
    path: PathBuf,
    file: DbFile,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DbError + '_ {
    move |source| DbError::Io {
        path: path.to_owned(),
        source,
    }
}

impl PackageDb {
    /// Opens (or creates, empty) the database at `path`.
    pub fn open(path: &Path) -> Result<PackageDb, DbError> {
        let file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| DbError::Corrupt {
                path: path.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DbFile {
                format: 1,
                next_uid: FIRST_APP_UID,
                apps: BTreeMap::new(),
            },
            Err(e) => return Err(io(path)(e)),
        };
        Ok(PackageDb {
            path: path.to_owned(),
            file,
        })
    }

    pub fn get(&self, id: &str) -> Option<&InstalledApp> {
        self.file.apps.get(id)
    }

    pub fn apps(&self) -> impl Iterator<Item = &InstalledApp> {
        self.file.apps.values()
    }

    /// A uid for a new app (never reused: a reinstalled app must not read files a previous owner of
    /// the uid left behind).
    pub fn allocate_uid(&mut self) -> u32 {
        let uid = self.file.next_uid.max(FIRST_APP_UID);
        self.file.next_uid = uid + 1;
        uid
    }

    /// Inserts or replaces an app and persists.
    pub fn put(&mut self, app: InstalledApp) -> Result<(), DbError> {
        let old = self.file.apps.insert(app.id.clone(), app.clone());
        self.save().inspect_err(|_| {
            match old {
                Some(o) => self.file.apps.insert(app.id.clone(), o),
                None => self.file.apps.remove(&app.id),
            };
        })
    }

    /// Removes an app and persists; returns it.
    pub fn remove(&mut self, id: &str) -> Result<Option<InstalledApp>, DbError> {
        let Some(old) = self.file.apps.remove(id) else {
            return Ok(None);
        };
        self.save().inspect_err(|_| {
            self.file.apps.insert(id.to_owned(), old.clone());
        })?;
        Ok(Some(old))
    }

    fn save(&self) -> Result<(), DbError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(|e| DbError::Io {
            path: tmp.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, uid: u32) -> InstalledApp {
        InstalledApp {
            id: id.into(),
            kind: "android".into(),
            version: "1".into(),
            name: "X".into(),
            label: "X".into(),
            signer: "k".into(),
            signer_fingerprint: "f".into(),
            uid,
            code_dir: "/c".into(),
            entry: "e".into(),
            icon: None,
            permissions: BTreeMap::from([("network".into(), Grant::Ask)]),
            installed_at_unix: 1,
            updated_at_unix: 1,
            android: None,
        }
    }

    #[test]
    fn survives_reopen_and_never_reuses_uids() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("system/packages.json");
        let mut db = PackageDb::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let a = db.allocate_uid();
        db.put(app("org.a.a", a)).unwrap_or_else(|e| panic!("{e}"));
        db.remove("org.a.a").unwrap_or_else(|e| panic!("{e}"));
        let b = db.allocate_uid();
        db.put(app("org.b.b", b)).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a, b);
        let db = PackageDb::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.get("org.b.b").map(|x| x.uid), Some(b));
        assert!(db.get("org.a.a").is_none());
        assert_eq!(db.get("org.b.b").map(|x| x.kind.as_str()), Some("android"));
        assert!(!dir.path().join("system/packages.json.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_db() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("packages.json");
        std::fs::write(&path, b"{ torn").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            PackageDb::open(&path),
            Err(DbError::Corrupt { .. })
        ));
    }
}
