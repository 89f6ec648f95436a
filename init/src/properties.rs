//! The property store kept by init: Android-style `name = value` strings.
//!
//! * `ro.*` come from the build (`/system/etc/properties.toml`, overridden by
//!   `/vendor/etc/properties.toml`) and can be set once, never changed.
//! * `persist.*` are saved to `/data/system/properties/persist.toml` on every change (written to a
//!   temporary file, fsynced, renamed over the old one, directory fsynced) and restored at boot.
//! * Everything else lives in memory until the next boot.
//!
//! The supervisor calls [`PropertyStore::set`] for control-socket requests and for the properties init
//! sets itself (`init.svc.NAME`, `sys.boot_completed`), then runs the units' triggers.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use cirrus_init_config::ConfigError;
use cirrus_init_config::properties::{
    check_name, check_value, is_persistent, is_read_only, parse_properties, properties_to_toml,
};

/// Why a property could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertyError {
    #[error("{0}")]
    Invalid(String),
    #[error("`{0}` is read-only and already set")]
    ReadOnly(String),
    #[error("`{name}` was set but could not be saved to {path}: {error}")]
    NotSaved {
        name: String,
        path: String,
        error: String,
    },
}

/// All properties and where the persistent ones go.
#[derive(Debug, Default)]
pub struct PropertyStore {
    values: BTreeMap<String, String>,
    persist_path: Option<PathBuf>,
}

impl PropertyStore {
    /// Loads the build property files (later ones override earlier ones) and the saved
    /// persistent properties. Errors are returned for logging; whatever was readable is kept.
    pub fn load(
        build_files: &[PathBuf],
        persist_path: Option<PathBuf>,
    ) -> (PropertyStore, Vec<ConfigError>) {
        let mut store = PropertyStore {
            values: BTreeMap::new(),
            persist_path,
        };
        let mut errors = Vec::new();
        for path in build_files {
            match read_file(path) {
                Ok(Some(values)) => store.values.extend(values),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if let Some(path) = store.persist_path.clone() {
            match read_file(&path) {
                Ok(Some(values)) => {
                    for (name, value) in values {
                        if is_persistent(&name) {
                            store.values.insert(name, value);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        (store, errors)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The properties whose names start with `prefix`, sorted.
    pub fn list<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.values
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets `name` to `value`. Returns whether the value changed. A `persist.*` change is saved
    /// before this returns; if saving fails the new value is kept in memory and the error says so.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, PropertyError> {
        check_name(name).map_err(PropertyError::Invalid)?;
        check_value(value).map_err(PropertyError::Invalid)?;
        let current = self.values.get(name);
        if current.is_some_and(|v| v == value) {
            return Ok(false);
        }
        if is_read_only(name) && current.is_some() {
            return Err(PropertyError::ReadOnly(name.to_string()));
        }
        self.values.insert(name.to_string(), value.to_string());
        if is_persistent(name)
            && let Some(path) = &self.persist_path
        {
            let persistent: BTreeMap<String, String> = self
                .values
                .iter()
                .filter(|(k, _)| is_persistent(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            write_atomically(path, properties_to_toml(&persistent).as_bytes()).map_err(|e| {
                PropertyError::NotSaved {
                    name: name.to_string(),
                    path: path.display().to_string(),
                    error: e.to_string(),
                }
            })?;
        }
        Ok(true)
    }
}

/// Reads a properties file; a missing file is `None`.
fn read_file(path: &Path) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_properties(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new(
            path,
            format!("cannot read properties: {e}"),
        )),
    }
}

/// Replaces `path` with `data` so that a crash at any point leaves either the old or the new file:
/// write a temporary file beside it, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_set_once_and_persist_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let vendor = dir.path().join("vendor.toml");
        std::fs::write(
            &system,
            "ro.product.model = \"generic\"\nro.build.id = \"b1\"\n",
        )
        .unwrap();
        std::fs::write(&vendor, "\"ro.product.model\" = \"phone\"\n").unwrap();
        let persist = dir.path().join("data/system/properties/persist.toml");
        let files = [
            system.clone(),
            vendor.clone(),
            dir.path().join("missing.toml"),
        ];
        let (mut store, errors) = PropertyStore::load(&files, Some(persist.clone()));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(store.get("ro.product.model"), Some("phone"));
        assert_eq!(
            store.set("ro.product.model", "other"),
            Err(PropertyError::ReadOnly("ro.product.model".into()))
        );
        assert_eq!(store.set("ro.new", "1"), Ok(true));
        assert!(store.set("ro.new", "2").is_err());
        assert_eq!(store.set("sys.x", "1"), Ok(true));
        assert_eq!(store.set("sys.x", "1"), Ok(false));
        assert_eq!(store.set("persist.a", "kept"), Ok(true));
        assert!(matches!(
            store.set("bad..name", "x"),
            Err(PropertyError::Invalid(_))
        ));
        let listed: Vec<_> = store.list("ro.").map(|(k, _)| k.to_string()).collect();
        assert_eq!(listed, ["ro.build.id", "ro.new", "ro.product.model"]);

        let (store, errors) = PropertyStore::load(&files, Some(persist.clone()));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(store.get("persist.a"), Some("kept"));
        assert_eq!(store.get("sys.x"), None);
        assert_eq!(store.get("ro.new"), None);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(persist.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["persist.toml"]);
    }

    #[test]
    fn unwritable_persist_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let (mut store, _) = PropertyStore::load(&[], Some(blocker.join("sub/persist.toml")));
        assert!(matches!(
            store.set("persist.x", "1"),
            Err(PropertyError::NotSaved { .. })
        ));
        assert_eq!(store.get("persist.x"), Some("1"));
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let persist = dir.path().join("persist.toml");
        std::fs::write(&persist, "this is = = not toml").unwrap();
        let (store, errors) = PropertyStore::load(&[], Some(persist));
        assert_eq!(errors.len(), 1);
        assert_eq!(store.list("").count(), 0);
    }
}
