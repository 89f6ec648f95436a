//! System apps and the user's files.
//!
//! **System apps** ship in the read-only system image (`/system/app/<id>.cpkg`), signed with the
//! build's platform key, whose public half is in the image too
//! (`/system/etc/cirrus/platform-key.pub`). At every start the manager installs each one that is
//! not installed, and updates each one whose installed version is older than the image's — never
//! a downgrade, never over an app of another signer, and the app's data dir is kept (an update is
//! an ordinary update). A package in that directory not signed by the platform key is refused.
//! Platform-signed apps get every permission they ask for (the way Android grants system apps
//! their privileged permissions), except one the user denied, and their web host gets the system
//! bus (`navigator.cirrus.system`, e.g. Settings' sync status; `running.rs`).
//!
//! **The user's files** (`/data/user/0`, which cloud sync mirrors) are what the `user-files`
//! permission opens. App processes run under their own uids, so the manager makes the tree's root
//! belong to the `user-files` group ([`USER_FILES_GID`]) with mode 02770 — setgid, so everything
//! created below stays in the group — and starts the hosts of apps holding the permission with
//! that group as their one supplementary group. A group (rather than ACLs or a broker process)
//! needs nothing from the file system and no extra process, and revoking the permission takes the
//! group away at the next launch.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cirrus_package::{PublisherKey, Version, verify};

use crate::db::Grant;
use crate::store::AppStore;

/// The group of the user's files: the supplementary group of apps holding `user-files`
/// (Android's AID_SDCARD_RW has the same number).
pub const USER_FILES_GID: u32 = 1015;
/// Its name in the app user database.
pub const USER_FILES_GROUP: &str = "user-files";
/// The permission that opens the user's files.
pub const USER_FILES_PERMISSION: &str = "user-files";

/// Where system apps come from.
#[derive(Debug, Clone, Default)]
pub struct SystemOptions {
    /// The user's files (`/data/user/0`): given to web apps holding `user-files`.
    pub user_files: Option<PathBuf>,
    /// The system image's app directory (`/system/app`).
    pub system_apps: Option<PathBuf>,
    /// The platform key's public half (`/system/etc/cirrus/platform-key.pub`).
    pub platform_key: Option<PathBuf>,
}

/// Creates the user's files directory if needed and, as root, gives it to the user-files group
/// (root:user-files, 02770).
pub fn prepare_user_files(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(dir, Some(0), Some(USER_FILES_GID))
            .with_context(|| format!("chown {} to the user-files group", dir.display()))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o2770))
            .with_context(|| format!("chmod {}", dir.display()))?;
    }
    Ok(())
}

/// Reads the platform key's public half.
pub fn read_platform_key(path: &Path) -> Result<PublisherKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PublisherKey::parse(&text).with_context(|| format!("{} is not a public key", path.display()))
}

/// What happened to one system app package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Installed {
        id: String,
        version: String,
    },
    Updated {
        id: String,
        from: String,
        to: String,
    },
    /// The installed version is the same or newer.
    Current {
        id: String,
        version: String,
    },
    Refused {
        package: PathBuf,
        reason: String,
    },
}

/// Installs or updates every system app in `dir` (`*.cpkg`, in name order). Problems with one
/// package are reported as [`Outcome::Refused`] and do not stop the others.
pub fn preinstall(store: &mut AppStore, dir: &Path, platform: &PublisherKey) -> Vec<Outcome> {
    let mut packages: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "cpkg"))
            .collect(),
        Err(e) => {
            return vec![Outcome::Refused {
                package: dir.to_owned(),
                reason: format!("cannot list the system apps: {e}"),
            }];
        }
    };
    packages.sort();
    packages
        .into_iter()
        .map(|path| match preinstall_one(store, &path, platform) {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Refused {
                package: path,
                reason: format!("{e:#}"),
            },
        })
        .collect()
}

fn preinstall_one(store: &mut AppStore, path: &Path, platform: &PublisherKey) -> Result<Outcome> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let pkg = verify(&bytes).context("the package does not verify")?;
    if pkg.signer != *platform {
        anyhow::bail!(
            "signed by {}, not by the platform key {}",
            pkg.signer.fingerprint(),
            platform.fingerprint()
        );
    }
    let id = pkg.manifest.cirrus.id.clone();
    let version = pkg.manifest.cirrus.version.clone();
    let installed = store.db.get(&id).cloned();
    let outcome = match &installed {
        Some(app) => {
            let current = Version::parse(&app.version)
                .map_err(|e| anyhow::anyhow!("the database's version of {id}: {e}"))?;
            if version <= current {
                Outcome::Current {
                    id: id.clone(),
                    version: app.version.clone(),
                }
            } else {
                // An ordinary update: same signer (checked by the store), data kept.
                store.install(path)?;
                Outcome::Updated {
                    id: id.clone(),
                    from: app.version.clone(),
                    to: version.to_string(),
                }
            }
        }
        None => {
            store.install(path)?;
            Outcome::Installed {
                id: id.clone(),
                version: version.to_string(),
            }
        }
    };
    // The platform's apps hold what they ask for, unless the user said no.
    if let Some(app) = store.db.get(&id).cloned()
        && app.signer == platform.to_base64()
    {
        for (permission, grant) in &app.permissions {
            if *grant == Grant::Ask {
                store.set_permission(&id, permission, Grant::Granted)?;
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cirrus_package::{DeveloperKey, PackageContents};

    fn package(id: &str, version: &str, key: &DeveloperKey, page: &str) -> Vec<u8> {
        let manifest = serde_json::json!({
            "name": id, "start_url": "index.html",
            "cirrus": {"id": id, "version": version, "kind": "web",
                       "permissions": ["user-files", "notifications"]}
        });
        let mut c = PackageContents::new();
        c.insert(
            "manifest.webmanifest",
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        c.insert("index.html", page.as_bytes().to_vec()).unwrap();
        c.sign(key).unwrap()
    }

    fn store(root: &Path) -> AppStore {
        AppStore::open(root, root.join("no-wasm-host"), vec!["/bin/true".into()]).unwrap()
    }

    #[test]
    fn installs_updates_never_downgrades_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let apps = dir.path().join("system-app");
        std::fs::create_dir_all(&apps).unwrap();
        let platform = DeveloperKey::generate();
        let stranger = DeveloperKey::generate();
        std::fs::write(
            apps.join("org.test.notes.cpkg"),
            package("org.test.notes", "1.0.0", &platform, "v1"),
        )
        .unwrap();
        std::fs::write(
            apps.join("org.test.evil.cpkg"),
            package("org.test.evil", "1.0.0", &stranger, "x"),
        )
        .unwrap();
        let mut s = store(&root);
        let out = preinstall(&mut s, &apps, &platform.public());
        assert!(
            matches!(&out[0], Outcome::Refused { reason, .. } if reason.contains("not by the platform key")),
            "{out:?}"
        );
        assert_eq!(
            out[1],
            Outcome::Installed {
                id: "org.test.notes".into(),
                version: "1.0.0".into()
            }
        );
        assert!(s.db.get("org.test.evil").is_none());
        let app = s.db.get("org.test.notes").unwrap().clone();
        assert_eq!(app.permissions.get("user-files"), Some(&Grant::Granted));
        assert!(
            root.join("system/applications/cirrus-app-org.test.notes.desktop")
                .is_file()
        );

        // The user's data and decisions survive; the same version is left alone.
        std::fs::write(root.join("app/org.test.notes/kept"), "user data").unwrap();
        s.set_permission("org.test.notes", "notifications", Grant::Denied)
            .unwrap();
        let out = preinstall(&mut s, &apps, &platform.public());
        assert!(out.contains(&Outcome::Current {
            id: "org.test.notes".into(),
            version: "1.0.0".into()
        }));

        // A newer image updates it.
        std::fs::write(
            apps.join("org.test.notes.cpkg"),
            package("org.test.notes", "1.1.0", &platform, "v2"),
        )
        .unwrap();
        let mut s = store(&root);
        let out = preinstall(&mut s, &apps, &platform.public());
        assert!(out.contains(&Outcome::Updated {
            id: "org.test.notes".into(),
            from: "1.0.0".into(),
            to: "1.1.0".into()
        }));
        let app = s.db.get("org.test.notes").unwrap().clone();
        assert_eq!(app.version, "1.1.0");
        assert_eq!(app.uid, s.db.get("org.test.notes").unwrap().uid);
        assert_eq!(app.permissions.get("notifications"), Some(&Grant::Denied));
        assert_eq!(
            std::fs::read_to_string(app.code_dir.join("index.html")).unwrap(),
            "v2"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("app/org.test.notes/kept")).unwrap(),
            "user data"
        );

        // An older image never downgrades.
        std::fs::write(
            apps.join("org.test.notes.cpkg"),
            package("org.test.notes", "1.0.5", &platform, "old"),
        )
        .unwrap();
        let out = preinstall(&mut s, &apps, &platform.public());
        assert!(out.contains(&Outcome::Current {
            id: "org.test.notes".into(),
            version: "1.1.0".into()
        }));
        assert_eq!(s.db.get("org.test.notes").unwrap().version, "1.1.0");
    }

    #[test]
    fn an_app_of_another_signer_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let apps = dir.path().join("system-app");
        std::fs::create_dir_all(&apps).unwrap();
        let platform = DeveloperKey::generate();
        let other = DeveloperKey::generate();
        let mut s = store(&root);
        let user_pkg = dir.path().join("user.cpkg");
        std::fs::write(
            &user_pkg,
            package("org.test.notes", "1.0.0", &other, "mine"),
        )
        .unwrap();
        s.install(&user_pkg).unwrap();
        std::fs::write(
            apps.join("org.test.notes.cpkg"),
            package("org.test.notes", "2.0.0", &platform, "system"),
        )
        .unwrap();
        let out = preinstall(&mut s, &apps, &platform.public());
        assert!(matches!(&out[0], Outcome::Refused { .. }), "{out:?}");
        assert_eq!(s.db.get("org.test.notes").unwrap().version, "1.0.0");
        // Not the platform's: its permissions are not granted by the platform.
        assert_eq!(
            s.db.get("org.test.notes")
                .unwrap()
                .permissions
                .get("user-files"),
            Some(&Grant::Ask)
        );
    }
}
