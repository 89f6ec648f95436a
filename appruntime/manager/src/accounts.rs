//! App users the rest of the system can resolve: every installed app's uid gets a passwd and a
//! group entry in a writable NSS database, the way Android's bionic answers `getpwuid` for app uids.
//! Without one, programs that look a peer's uid up refuse it (Debian's dbus-daemon drops the
//! connection of a uid without a passwd entry, so apps could not post notifications).
//!
//! The files are in the format of `/etc/passwd` and `/etc/group`, in a directory that
//! `libnss-extrausers` reads (`/var/lib/extrausers` on the device, where `/etc/nsswitch.conf` says
//! `passwd: files extrausers` and `group: files extrausers`). The manager owns the entries of app
//! uids (`FIRST_APP_UID..LAST_APP_UID`), rewrites them whenever the package database changes and
//! keeps every other line as it was. Each write goes to a temporary file, is fsynced and renamed
//! over the old one, so a reader sees the old or the new database, never a torn one.
//!
//! Names follow Android's: `u0_a<uid - 10000>` (user 0, app n); the GECOS field is the app id, the
//! home its data dir, the shell `/usr/sbin/nologin`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::db::{FIRST_APP_UID, InstalledApp};

/// One past the last uid handed to apps (Android's AID_APP_END + 1).
pub const LAST_APP_UID: u32 = 20_000;

/// Why the account files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The login name of an app uid (`u0_a12` for uid 10012).
pub fn user_name(uid: u32) -> String {
    format!("u0_a{}", uid.saturating_sub(FIRST_APP_UID))
}

fn is_app_uid(uid: u32) -> bool {
    (FIRST_APP_UID..LAST_APP_UID).contains(&uid)
}

/// A field of a passwd line: no separators, no line breaks.
fn field(text: &str) -> String {
    text.chars()
        .map(|c| if c == ':' || c.is_control() { '_' } else { c })
        .collect()
}

/// The passwd/group files for app users in one directory.
#[derive(Debug, Clone)]
pub struct AppAccounts {
    dir: PathBuf,
}

impl AppAccounts {
    /// Entries go to `<dir>/passwd` and `<dir>/group`.
    pub fn new(dir: impl Into<PathBuf>) -> AppAccounts {
        AppAccounts { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rewrites the app entries so they are exactly `apps` (whose data dirs are under
    /// `data_dir_of`), keeping lines that are not app users.
    pub fn sync<'a>(
        &self,
        apps: impl IntoIterator<Item = &'a InstalledApp>,
        data_dir_of: impl Fn(&str) -> PathBuf,
    ) -> Result<(), AccountsError> {
        let mut apps: Vec<&InstalledApp> = apps.into_iter().filter(|a| is_app_uid(a.uid)).collect();
        apps.sort_by_key(|a| a.uid);
        let passwd: Vec<String> = apps
            .iter()
            .map(|a| {
                format!(
                    "{}:x:{uid}:{uid}:{}:{}:/usr/sbin/nologin",
                    user_name(a.uid),
                    field(&a.id),
                    field(&data_dir_of(&a.id).display().to_string()),
                    uid = a.uid
                )
            })
            .collect();
        // The user-files group (system_apps.rs) first, so `ls -l` names the user's files' group.
        let group: Vec<String> = std::iter::once(format!(
            "{}:x:{}:",
            crate::system_apps::USER_FILES_GROUP,
            crate::system_apps::USER_FILES_GID
        ))
        .chain(
            apps.iter()
                .map(|a| format!("{}:x:{}:", user_name(a.uid), a.uid)),
        )
        .collect();
        std::fs::create_dir_all(&self.dir).map_err(|source| AccountsError::Io {
            path: self.dir.clone(),
            source,
        })?;
        self.replace("passwd", &passwd)?;
        self.replace("group", &group)?;
        Ok(())
    }

    /// Writes `name` as its foreign lines followed by `ours`.
    fn replace(&self, name: &str, ours: &[String]) -> Result<(), AccountsError> {
        let path = self.dir.join(name);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| AccountsError::Io { path, source }
        };
        let old = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut text = String::new();
        let our_names: Vec<&str> = ours.iter().filter_map(|l| l.split(':').next()).collect();
        for line in old.lines() {
            let uid = line.split(':').nth(2).and_then(|f| f.parse::<u32>().ok());
            let name = line.split(':').next().unwrap_or("");
            if uid.is_some_and(is_app_uid) || our_names.contains(&name) {
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
        for line in ours {
            text.push_str(line);
            text.push('\n');
        }
        if text == old {
            return Ok(());
        }
        let tmp = self.dir.join(format!(".{name}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(text.as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn app(id: &str, uid: u32) -> InstalledApp {
        serde_json::from_value(serde_json::json!({
            "id": id, "kind": "web", "version": "1.0.0", "name": id, "label": id,
            "signer": "", "signer_fingerprint": "", "uid": uid, "code_dir": "/c", "entry": "index.html",
            "icon": null, "permissions": {}, "installed_at_unix": 1, "updated_at_unix": 1
        }))
        .unwrap()
    }

    #[test]
    fn writes_app_users_and_keeps_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = AppAccounts::new(dir.path().join("extrausers"));
        std::fs::create_dir_all(accounts.dir()).unwrap();
        std::fs::write(
            accounts.dir().join("passwd"),
            "radio:x:1001:1001::/:/usr/sbin/nologin\nu0_a9:x:10009:10009:gone:/x:/usr/sbin/nologin\n",
        )
        .unwrap();
        let apps = [app("org.b.notes", 10003), app("org.a:evil\nroot", 10001)];
        accounts
            .sync(&apps, |id| PathBuf::from("/data/app").join(id))
            .unwrap();
        let passwd = std::fs::read_to_string(accounts.dir().join("passwd")).unwrap();
        assert_eq!(
            passwd,
            "radio:x:1001:1001::/:/usr/sbin/nologin\n\
             u0_a1:x:10001:10001:org.a_evil_root:/data/app/org.a_evil_root:/usr/sbin/nologin\n\
             u0_a3:x:10003:10003:org.b.notes:/data/app/org.b.notes:/usr/sbin/nologin\n"
        );
        let group = std::fs::read_to_string(accounts.dir().join("group")).unwrap();
        assert_eq!(
            group,
            "user-files:x:1015:\nu0_a1:x:10001:\nu0_a3:x:10003:\n"
        );
        accounts
            .sync(&apps[..1], |id| PathBuf::from("/d").join(id))
            .unwrap();
        let passwd = std::fs::read_to_string(accounts.dir().join("passwd")).unwrap();
        assert!(!passwd.contains("10001"), "{passwd}");
        assert!(passwd.starts_with("radio:"), "{passwd}");
    }
}
