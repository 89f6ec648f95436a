//! Installing and uninstalling apps under a data root (`/data` on the device, a temp dir in tests):
//! verify the signed package, refuse downgrades and foreign signers, unpack it, precompile a wasm
//! component into the engine-keyed cache, create the per-app data directory, record it in the
//! package database, and publish a launcher entry for the compositor. APKs (told apart by content)
//! are verified by `cirrus-apk` and kept whole as `base.apk` (see `android.rs`).
//!
//! Layout under the data root:
//! `app/<id>/` the app's own data (owned by its uid) · `system/packages.json` the database ·
//! `system/app-code/<id>/` the unpacked package (an APK: `base.apk`) ·
//! `system/app-packages/<id>.cpkg` web apps' signed packages (the web host verifies and serves them) ·
//! `system/wasm-cache/<engine hash>/<id>.cwasm` precompiled code · `system/app-icons/<id>.png`
//! rendered APK icons · `system/applications/cirrus-app-<id>.desktop` launcher entries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use cirrus_apk::arsc::DeviceConfig;
use cirrus_package::{
    AppKind, Permission, PublisherKey, Version, check_update, valid_app_id, verify,
};

use crate::accounts::AppAccounts;
use crate::android;
use crate::db::{Grant, InstalledApp, PackageDb};
use crate::icon;

/// Permissions granted at install (low risk); the others are asked for on first use.
fn granted_at_install(p: Permission) -> bool {
    matches!(
        p,
        Permission::Notifications | Permission::Background | Permission::LaunchIntents
    )
}

/// Paths of everything the manager keeps under the data root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.root.join("app").join(id)
    }
    pub fn code_dir(&self, id: &str) -> PathBuf {
        self.root.join("system/app-code").join(id)
    }
    /// A web app's signed package, kept whole: its host verifies it again and serves from it.
    pub fn package_path(&self, id: &str) -> PathBuf {
        self.root
            .join("system/app-packages")
            .join(format!("{id}.cpkg"))
    }
    pub fn db_path(&self) -> PathBuf {
        self.root.join("system/packages.json")
    }
    pub fn cache_dir(&self, engine_hash: &str) -> PathBuf {
        self.root.join("system/wasm-cache").join(engine_hash)
    }
    /// The data dir the compositor's launcher reads (`applications/*.desktop`).
    pub fn launcher_dir(&self) -> PathBuf {
        self.root.join("system")
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.root.join("log/apps").join(format!("{id}.log"))
    }
    /// Icons the manager renders (APKs' launcher icons), one PNG per app.
    pub fn icon_path(&self, id: &str) -> PathBuf {
        self.root.join("system/app-icons").join(format!("{id}.png"))
    }
}

/// The installed apps and how to change them.
pub struct AppStore {
    pub layout: Layout,
    pub db: PackageDb,
    /// The wasm host binary (precompiles at install, runs apps).
    pub wasm_host: PathBuf,
    /// Command line the launcher entries run to launch an app (the app id is appended).
    pub launch_command: Vec<String>,
    /// The device APK resources are resolved for (label locale, icon density).
    pub device: DeviceConfig,
    /// Where app users get their passwd/group entries (None: nowhere, e.g. unprivileged tests).
    pub accounts: Option<AppAccounts>,
    engine_hash: Option<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AppStore {
    pub fn open(root: &Path, wasm_host: PathBuf, launch_command: Vec<String>) -> Result<AppStore> {
        let layout = Layout {
            root: root.to_owned(),
        };
        let db = PackageDb::open(&layout.db_path())?;
        // Leftovers of an install interrupted by a crash: the database never points at them.
        if let Ok(entries) = std::fs::read_dir(root.join("system/app-code")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(".new-") || name.contains(".old-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(AppStore {
            layout,
            db,
            wasm_host,
            launch_command,
            device: android::device_from_env(),
            accounts: None,
            engine_hash: None,
        })
    }

    /// The wasm host's engine compatibility hash (asked once): keys the precompiled cache.
    pub fn engine_hash(&mut self) -> Result<String> {
        if let Some(h) = &self.engine_hash {
            return Ok(h.clone());
        }
        let out = Command::new(&self.wasm_host)
            .arg("engine-hash")
            .output()
            .with_context(|| format!("running {} engine-hash", self.wasm_host.display()))?;
        if !out.status.success() {
            bail!(
                "{} engine-hash failed: {}",
                self.wasm_host.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "{} engine-hash printed `{hash}`, not a hex hash",
                self.wasm_host.display()
            );
        }
        self.engine_hash = Some(hash.clone());
        Ok(hash)
    }

    pub fn precompiled_path(&mut self, id: &str) -> Result<PathBuf> {
        let hash = self.engine_hash()?;
        Ok(self.layout.cache_dir(&hash).join(format!("{id}.cwasm")))
    }

    /// Installs (or updates) the package at `package_path`: a signed Cirrus package or an APK
    /// (told apart by content). Returns the app.
    pub fn install(&mut self, package_path: &Path) -> Result<InstalledApp> {
        // Read once: what is verified is exactly what is installed, whatever happens to the file.
        let bytes = std::fs::read(package_path)
            .with_context(|| format!("reading {}", package_path.display()))?;
        if android::is_apk(&bytes, package_path) {
            return self.install_apk(package_path, &bytes);
        }
        let pkg = verify(&bytes).with_context(|| format!("{} refused", package_path.display()))?;
        let m = &pkg.manifest;
        let id = m.cirrus.id.clone();
        if !valid_app_id(&id) {
            bail!("app id `{id}` is not valid");
        }
        let previous = self.db.get(&id).cloned();
        if let Some(prev) = &previous {
            if prev.kind != m.cirrus.kind.as_str() {
                bail!(
                    "{id} is installed as an app of kind `{}`; the package is of kind `{}`: uninstall it first",
                    prev.kind,
                    m.cirrus.kind.as_str()
                );
            }
            let signer = PublisherKey::parse(&prev.signer)
                .map_err(|e| anyhow!("the database's key for {id} is unreadable: {e}"))?;
            let version = Version::parse(&prev.version)
                .map_err(|e| anyhow!("the database's version for {id}: {e}"))?;
            check_update(&version, &signer, &pkg)?;
        }
        let _span =
            tracing::info_span!("install", app = %id, version = %m.cirrus.version).entered();

        // Unpack beside the live copy, then swap: a crash leaves the old version intact.
        let code_dir = self.layout.code_dir(&id);
        let staging = self.staging_dir(&id)?;
        for name in pkg.contents.names() {
            let dest = staging.join(name);
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
            }
            std::fs::write(&dest, pkg.contents.get(name).unwrap_or_default())
                .with_context(|| format!("writing {}", dest.display()))?;
        }
        let entry = match m.cirrus.kind {
            AppKind::Wasm => m.component_path().to_owned(),
            AppKind::Web => m.start_url.clone().unwrap_or_else(|| "index.html".into()),
        };
        // Precompile now (cold launches then only deserialize).
        let mut precompiled = None;
        if m.cirrus.kind == AppKind::Wasm {
            let out = self.precompiled_path(&id)?;
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
            }
            let tmp = out.with_extension("cwasm.tmp");
            let status = Command::new(&self.wasm_host)
                .arg("precompile")
                .arg(staging.join(&entry))
                .arg(&tmp)
                .output()
                .with_context(|| format!("running {} precompile", self.wasm_host.display()))?;
            if !status.status.success() {
                let _ = std::fs::remove_dir_all(&staging);
                bail!(
                    "{id}: the component does not compile: {}",
                    String::from_utf8_lossy(&status.stderr).trim()
                );
            }
            precompiled = Some((tmp, out));
        }
        // Web apps: the signed package itself, beside (written before the swap, renamed after).
        let mut kept_package = None;
        if m.cirrus.kind == AppKind::Web {
            let out = self.layout.package_path(&id);
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
            }
            let tmp = out.with_extension("cpkg.tmp");
            std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
            kept_package = Some((tmp, out));
        }
        self.swap_in(&id, &staging)?;
        if let Some((tmp, out)) = kept_package {
            std::fs::rename(&tmp, &out)
                .with_context(|| format!("moving {} into place", out.display()))?;
        }
        if let Some((tmp, out)) = precompiled {
            std::fs::rename(&tmp, &out)
                .with_context(|| format!("moving {} into place", out.display()))?;
        }

        let uid = match &previous {
            Some(p) => p.uid,
            None => self.db.allocate_uid(),
        };
        let data_dir = self.layout.data_dir(&id);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        set_owner(&data_dir, uid)?;

        // Keep the user's decisions across updates; new permissions start by policy.
        let mut permissions = BTreeMap::new();
        for p in &m.cirrus.permissions {
            let kept = previous
                .as_ref()
                .and_then(|prev| prev.permissions.get(p.as_str()).copied());
            let state = kept.unwrap_or(if granted_at_install(*p) {
                Grant::Granted
            } else {
                Grant::Ask
            });
            permissions.insert(p.as_str().to_owned(), state);
        }
        let app = InstalledApp {
            id: id.clone(),
            kind: m.cirrus.kind.as_str().into(),
            version: m.cirrus.version.to_string(),
            name: m.name.clone(),
            label: m.label().to_owned(),
            signer: pkg.signer.to_base64(),
            signer_fingerprint: pkg.signer.fingerprint(),
            uid,
            code_dir: code_dir.clone(),
            entry,
            icon: m.best_icon().map(|i| code_dir.join(&i.src)),
            permissions,
            installed_at_unix: previous
                .as_ref()
                .map(|p| p.installed_at_unix)
                .unwrap_or_else(now),
            updated_at_unix: now(),
            android: None,
        };
        self.db.put(app.clone())?;
        self.sync_accounts()?;
        self.write_launcher_entry(&app)?;
        tracing::info!(uid, "installed");
        Ok(app)
    }

    /// A fresh, empty directory beside the app's code dir to unpack a new version into.
    fn staging_dir(&self, id: &str) -> Result<PathBuf> {
        let code_dir = self.layout.code_dir(id);
        let parent = code_dir.parent().ok_or_else(|| anyhow!("bad code dir"))?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let staging = parent.join(format!("{id}.new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("creating {}", staging.display()))?;
        Ok(staging)
    }

    /// Replaces the app's code dir with `staging` (the old one moved aside first, then removed).
    fn swap_in(&self, id: &str, staging: &Path) -> Result<()> {
        let code_dir = self.layout.code_dir(id);
        let parent = code_dir.parent().ok_or_else(|| anyhow!("bad code dir"))?;
        let old = parent.join(format!("{id}.old-{}", std::process::id()));
        if code_dir.exists() {
            std::fs::rename(&code_dir, &old)
                .with_context(|| format!("moving {} aside", code_dir.display()))?;
        }
        std::fs::rename(staging, &code_dir)
            .with_context(|| format!("moving {} into place", code_dir.display()))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// Installs (or updates) an APK: verified by `cirrus-apk`, kept whole as `base.apk`, its icon
    /// rendered to the icon store, recorded as kind `android`.
    fn install_apk(&mut self, path: &Path, bytes: &[u8]) -> Result<InstalledApp> {
        let apk = android::verify(bytes, &self.device)
            .with_context(|| format!("{} refused", path.display()))?;
        let id = apk.package.package.clone();
        let previous = self.db.get(&id).cloned();
        if let Some(prev) = &previous {
            let allowed = android::check_replaces(prev, &apk)
                .with_context(|| format!("{} refused", path.display()))?;
            tracing::info!(app = %id, ?allowed, "update allowed");
        }
        let version = android::display_version(&apk);
        let _span = tracing::info_span!("install", app = %id, version = %version).entered();

        let staging = self.staging_dir(&id)?;
        let apk_path = staging.join("base.apk");
        std::fs::write(&apk_path, bytes)
            .with_context(|| format!("writing {}", apk_path.display()))?;
        // The icon: rendered now (the launcher reads a PNG); none is not an error.
        let icon_png = match &apk.package.icon {
            Some(i) => match icon::launcher_png(i, self.device.density) {
                Ok(png) => Some(png),
                Err(e) => {
                    tracing::warn!(error = %e, "no launcher icon");
                    None
                }
            },
            None => None,
        };
        self.swap_in(&id, &staging)?;
        let icon_path = self.layout.icon_path(&id);
        match &icon_png {
            Some(png) => {
                if let Some(p) = icon_path.parent() {
                    std::fs::create_dir_all(p)
                        .with_context(|| format!("creating {}", p.display()))?;
                }
                let tmp = icon_path.with_extension("png.tmp");
                std::fs::write(&tmp, png).with_context(|| format!("writing {}", tmp.display()))?;
                std::fs::rename(&tmp, &icon_path)
                    .with_context(|| format!("writing {}", icon_path.display()))?;
            }
            None => {
                let _ = std::fs::remove_file(&icon_path);
            }
        }

        let uid = match &previous {
            Some(p) => p.uid,
            None => self.db.allocate_uid(),
        };
        let data_dir = self.layout.data_dir(&id);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        set_owner(&data_dir, uid)?;

        let identity = &apk.record.signers;
        let app = InstalledApp {
            id: id.clone(),
            kind: android::KIND.into(),
            version,
            name: apk.package.label.clone(),
            label: apk.package.label.clone(),
            signer: identity.join(","),
            signer_fingerprint: identity.join(","),
            uid,
            code_dir: self.layout.code_dir(&id),
            entry: "base.apk".into(),
            icon: icon_png.map(|_| icon_path),
            permissions: android::permission_states(&apk, previous.as_ref()),
            installed_at_unix: previous
                .as_ref()
                .map(|p| p.installed_at_unix)
                .unwrap_or_else(now),
            updated_at_unix: now(),
            android: Some(apk.record),
        };
        self.db.put(app.clone())?;
        self.sync_accounts()?;
        self.write_launcher_entry(&app)?;
        tracing::info!(uid, "installed");
        Ok(app)
    }

    /// Gives every installed app's uid its passwd/group entry (and only them), when the store
    /// keeps app users ([`AppAccounts`]).
    pub fn sync_accounts(&self) -> Result<()> {
        if let Some(accounts) = &self.accounts {
            accounts
                .sync(self.db.apps(), |id| self.layout.data_dir(id))
                .with_context(|| format!("writing app users to {}", accounts.dir().display()))?;
        }
        Ok(())
    }

    /// Removes the app, its code, cache, launcher entry and data.
    pub fn uninstall(&mut self, id: &str) -> Result<InstalledApp> {
        let app = self
            .db
            .remove(id)?
            .ok_or_else(|| anyhow!("{id} is not installed"))?;
        if let Err(e) = self.sync_accounts() {
            tracing::warn!(app = %id, "removing the app's user: {e:#}");
        }
        let _ = std::fs::remove_file(self.launcher_entry_path(id));
        let _ = std::fs::remove_dir_all(self.layout.code_dir(id));
        let _ = std::fs::remove_file(self.layout.icon_path(id));
        let _ = std::fs::remove_file(self.layout.package_path(id));
        if app.kind == "wasm"
            && let Ok(p) = self.precompiled_path(id)
        {
            let _ = std::fs::remove_file(p);
        }
        let data = self.layout.data_dir(id);
        std::fs::remove_dir_all(&data)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .with_context(|| format!("removing {}", data.display()))?;
        tracing::info!(app = %id, "uninstalled");
        Ok(app)
    }

    /// Sets a permission's state (grant, revoke, or back to ask). Only requested permissions can
    /// be granted.
    pub fn set_permission(&mut self, id: &str, permission: &str, state: Grant) -> Result<()> {
        let mut app = self
            .db
            .get(id)
            .cloned()
            .ok_or_else(|| anyhow!("{id} is not installed"))?;
        let slot = app
            .permissions
            .get_mut(permission)
            .ok_or_else(|| anyhow!("{id} does not request the `{permission}` permission"))?;
        *slot = state;
        self.db.put(app)?;
        Ok(())
    }

    fn launcher_entry_path(&self, id: &str) -> PathBuf {
        self.layout
            .launcher_dir()
            .join("applications")
            .join(format!("cirrus-app-{id}.desktop"))
    }

    /// Writes the `.desktop` entry the compositor's launcher shows (Exec launches through the
    /// manager, Icon is the unpacked PNG's absolute path).
    fn write_launcher_entry(&self, app: &InstalledApp) -> Result<()> {
        let path = self.launcher_entry_path(&app.id);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        let quote = |s: &str| {
            format!(
                "\"{}\"",
                s.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('`', "\\`")
                    .replace('$', "\\$")
            )
        };
        let mut exec: Vec<String> = self.launch_command.iter().map(|a| quote(a)).collect();
        exec.push(quote(&app.id));
        let one_line = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
        let label = one_line(&app.label);
        let mut text = format!(
            "[Desktop Entry]\nType=Application\nName={label}\nExec={}\nX-Cirrus-App-Id={}\nX-Cirrus-App-Kind={}\n",
            exec.join(" ").replace('%', "%%"),
            app.id,
            app.kind
        );
        if let Some(android) = &app.android {
            // Every localisation, for launchers that follow the locale (`fr-CA` → `Name[fr_CA]`).
            for (locale, label) in &android.labels {
                let key = locale.replace('-', "_");
                if !locale.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    text.push_str(&format!("Name[{key}]={}\n", one_line(label)));
                }
            }
            // Launch answers NotSupported (what the Exec line shows when tapped) until the
            // Android runtime exists.
            text.push_str("Comment=Android app (Android apps cannot run on Cirrus yet)\n");
        }
        if let Some(icon) = &app.icon {
            text.push_str(&format!("Icon={}\n", icon.display()));
        }
        let tmp = path.with_extension("desktop.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// Gives the data dir to the app's uid when running as root; unprivileged (tests) the uid is only
/// recorded.
fn set_owner(dir: &Path, uid: u32) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(dir, Some(uid), Some(uid))
            .with_context(|| format!("chown {} to {uid}", dir.display()))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("chmod {}", dir.display()))?;
    }
    Ok(())
}
