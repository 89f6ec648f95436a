//! System apps in the image: each app project of `[system] apps` (a directory with
//! `manifest.webmanifest`, `icons/`, `assets/` and, for a web app, `www/`) is packed and signed at
//! build time with the build's platform key into `/system/app/<id>.cpkg`, and the platform key's
//! public half goes to `/system/etc/cirrus/platform-key.pub`, so the app manager installs and
//! trusts them (and grants their permissions) at boot.
//!
//! The platform key is generated once into the build cache (`<cache>/keys/platform.key`, mode
//! 0600) and never committed: every image built on one machine signs with the same key, so a
//! rebuilt image updates the installed system apps in place instead of being refused as another
//! signer's.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use cirrus_package::{AppKind, DeveloperKey, MANIFEST_ENTRY, Manifest, PackageContents};

/// Where the system apps' packages go in the system image.
pub const SYSTEM_APP_DIR: &str = "system/app";
/// Where the platform key's public half goes in the system image.
pub const PLATFORM_KEY_PUB: &str = "system/etc/cirrus/platform-key.pub";

/// The build's platform key: read from `<cache_dir>/keys/platform.key`, generated there (0600) if
/// absent.
pub fn platform_key(cache_dir: &Path) -> anyhow::Result<DeveloperKey> {
    let path = cache_dir.join("keys/platform.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return DeveloperKey::parse(&text).with_context(|| {
            format!(
                "{} is not a signing key (delete it to make a new one)",
                path.display()
            )
        });
    }
    let dir = path.parent().ok_or_else(|| anyhow!("bad key path"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod {}", dir.display()))?;
    let key = DeveloperKey::generate();
    let tmp = path.with_extension("key.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(key.to_text().as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!("generated the platform key {}", path.display());
    Ok(key)
}

/// The package contents of an app project directory (what `cirrus app pack` packs).
pub fn collect(dir: &Path) -> anyhow::Result<(Manifest, PackageContents)> {
    let mut contents = PackageContents::new();
    let manifest_path = dir.join(MANIFEST_ENTRY);
    let manifest_bytes = std::fs::read(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest =
        Manifest::parse(&manifest_bytes).with_context(|| format!("{}", manifest_path.display()))?;
    contents.insert(MANIFEST_ENTRY, manifest_bytes)?;
    for sub in ["icons", "assets"] {
        add_tree(&mut contents, dir, &dir.join(sub))?;
    }
    match manifest.cirrus.kind {
        AppKind::Web => {
            let www = dir.join("www");
            if !www.is_dir() {
                bail!("{} has no www/ (the web app's pages)", dir.display());
            }
            add_tree(&mut contents, &www, &www)?;
        }
        AppKind::Wasm => {
            let built = dir.join("build/app.wasm");
            let component = std::fs::read(&built).with_context(|| {
                format!(
                    "reading {} (build the app first: cirrus app build)",
                    built.display()
                )
            })?;
            contents.insert(manifest.component_path(), component)?;
        }
    }
    Ok((manifest, contents))
}

fn add_tree(contents: &mut PackageContents, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            add_tree(contents, root, &path)?;
        } else if ty.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(|_| anyhow!("{} is outside {}", path.display(), root.display()))?;
            let name = rel
                .to_str()
                .ok_or_else(|| anyhow!("{} is not UTF-8", rel.display()))?;
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            contents
                .insert(name, bytes)
                .with_context(|| format!("{}", path.display()))?;
        }
    }
    Ok(())
}

/// A system app put into the image.
#[derive(Debug, Clone)]
pub struct SystemApp {
    pub id: String,
    pub version: String,
    /// In the staging root.
    pub package: PathBuf,
    pub bytes: u64,
}

/// Packs and signs every app of `apps` (project dirs relative to `repo_root`) into
/// `<root>/system/app/<id>.cpkg`, and writes the platform key's public half. `root` is the system
/// image's staging root.
pub fn install_system_apps(
    repo_root: &Path,
    apps: &[String],
    cache_dir: &Path,
    root: &Path,
) -> anyhow::Result<Vec<SystemApp>> {
    if apps.is_empty() {
        return Ok(Vec::new());
    }
    let key = platform_key(cache_dir)?;
    let pub_path = root.join(PLATFORM_KEY_PUB);
    if let Some(p) = pub_path.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    }
    std::fs::write(&pub_path, key.public().to_text())
        .with_context(|| format!("writing {}", pub_path.display()))?;
    let out_dir = root.join(SYSTEM_APP_DIR);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut installed = Vec::new();
    for rel in apps {
        let dir = repo_root.join(rel);
        let (manifest, contents) = collect(&dir).with_context(|| format!("system app {rel}"))?;
        let id = manifest.cirrus.id.clone();
        if installed.iter().any(|a: &SystemApp| a.id == id) {
            bail!("system app {rel}: another system app already has the id {id}");
        }
        let signed = contents
            .sign(&key)
            .with_context(|| format!("signing system app {rel}"))?;
        // What the manager will check at boot, checked now.
        cirrus_package::verify(&signed)
            .with_context(|| format!("system app {rel} does not verify"))?;
        let out = out_dir.join(format!("{id}.cpkg"));
        std::fs::write(&out, &signed).with_context(|| format!("writing {}", out.display()))?;
        installed.push(SystemApp {
            id,
            version: manifest.cirrus.version.to_string(),
            package: out,
            bytes: signed.len() as u64,
        });
    }
    Ok(installed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write_app(dir: &Path, id: &str) {
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(
            dir.join("manifest.webmanifest"),
            format!(
                r#"{{"name":"T","start_url":"index.html","cirrus":{{"id":"{id}","version":"1.2.0","kind":"web"}}}}"#
            ),
        )
        .unwrap();
        std::fs::write(dir.join("www/index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.join("secret.key"), "never packed").unwrap();
    }

    #[test]
    fn packs_signs_and_keeps_one_platform_key() {
        let repo = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        write_app(&repo.path().join("apps/t"), "org.test.t");
        let apps = install_system_apps(repo.path(), &["apps/t".into()], cache.path(), root.path())
            .unwrap();
        assert_eq!(apps.len(), 1);
        let bytes = std::fs::read(root.path().join("system/app/org.test.t.cpkg")).unwrap();
        let pkg = cirrus_package::verify(&bytes).unwrap();
        assert!(pkg.contents.get("index.html").is_some());
        assert!(pkg.contents.get("secret.key").is_none());
        let shipped = std::fs::read_to_string(root.path().join(PLATFORM_KEY_PUB)).unwrap();
        assert_eq!(
            cirrus_package::PublisherKey::parse(&shipped).unwrap(),
            pkg.signer
        );
        let key_file = cache.path().join("keys/platform.key");
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A second build signs with the same key.
        let again = tempfile::tempdir().unwrap();
        install_system_apps(repo.path(), &["apps/t".into()], cache.path(), again.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(again.path().join(PLATFORM_KEY_PUB)).unwrap(),
            shipped
        );
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let repo = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        write_app(&repo.path().join("a"), "org.test.same");
        write_app(&repo.path().join("b"), "org.test.same");
        let err = install_system_apps(
            repo.path(),
            &["a".into(), "b".into()],
            cache.path(),
            root.path(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("already has the id"), "{err:#}");
    }
}
