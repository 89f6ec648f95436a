//! The system image: a staging root filled from Debian packages and Cirrus binaries, checked for
//! a complete library closure, then packed with `mkfs.erofs`.

use std::collections::BTreeSet;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use tracing::{info, warn};

use cirrus_init_config::UnitFile;

use crate::device::Device;
use crate::elf;

/// Directories of `/usr/share` nobody reads on a phone.
pub const PRUNED: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
];

/// Deletes the files listed in `[packages] remove` (paths inside the image) from the staging root.
/// A listed path that no package shipped is reported, so stale entries get noticed.
pub fn remove_files(root: &Path, paths: &[String]) -> anyhow::Result<()> {
    for path in paths {
        let target = root.join(path.trim_start_matches('/'));
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&target)
                .with_context(|| format!("removing {}", target.display()))?,
            Ok(_) => std::fs::remove_file(&target)
                .with_context(|| format!("removing {}", target.display()))?,
            Err(_) => warn!("[packages] remove lists {path}, which no package in the image ships"),
        }
    }
    Ok(())
}

/// Writes `/etc/passwd` and `/etc/group` from base-passwd's master files, as that package's
/// maintainer script does on Debian (the builder runs no maintainer scripts). Without them, user
/// and group names in udev rules and unit files cannot be resolved. Nothing happens if
/// base-passwd is not in the image or the files already exist.
pub fn install_user_database(root: &Path) -> anyhow::Result<()> {
    for name in ["passwd", "group"] {
        let master = root
            .join("usr/share/base-passwd")
            .join(format!("{name}.master"));
        let target = root.join("etc").join(name);
        if master.is_file() && !target.exists() {
            std::fs::create_dir_all(root.join("etc"))
                .with_context(|| format!("creating {}", root.join("etc").display()))?;
            std::fs::copy(&master, &target)
                .with_context(|| format!("copying {} to {}", master.display(), target.display()))?;
        }
    }
    Ok(())
}

/// Where the image's extra user database lives: `/var/lib/extrausers` (libnss-extrausers' fixed
/// path, on the read-only system image) points into the writable data partition, where the app
/// manager keeps a passwd/group entry per app uid (`--accounts-dir`).
pub const EXTRAUSERS_DATA_DIR: &str = "/data/system/extrausers";

/// When the image carries libnss-extrausers: writes `/etc/nsswitch.conf` (libc-bin's maintainer
/// script would have; glibc's built-in default never consults extrausers) so users and groups come
/// from `/etc` then from the extrausers files, and makes `/var/lib/extrausers` a link to
/// [`EXTRAUSERS_DATA_DIR`]. Nothing happens without the module or when nsswitch.conf exists.
pub fn install_extrausers(root: &Path) -> anyhow::Result<()> {
    let module = [
        "usr/lib/x86_64-linux-gnu",
        "usr/lib/aarch64-linux-gnu",
        "usr/lib",
    ]
    .iter()
    .any(|dir| root.join(dir).join("libnss_extrausers.so.2").exists());
    let conf = root.join("etc/nsswitch.conf");
    if !module || conf.exists() {
        return Ok(());
    }
    std::fs::write(
        &conf,
        "# Written by the Cirrus image builder: app users (one uid per app) come from the app\n\
         # manager's database under /data/system/extrausers.\n\
         passwd: files extrausers\ngroup: files extrausers\nshadow: files\nhosts: files\n",
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    let link = root.join("var/lib/extrausers");
    if link.is_dir() {
        std::fs::remove_dir_all(&link).with_context(|| format!("removing {}", link.display()))?;
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::os::unix::fs::symlink(EXTRAUSERS_DATA_DIR, &link)
        .with_context(|| format!("linking {} to {EXTRAUSERS_DATA_DIR}", link.display()))?;
    Ok(())
}

/// Top-level directories that are symlinks into `/usr` (Debian 12 merged-/usr).
pub const MERGED_USR: &[&str] = &["bin", "sbin", "lib", "lib64"];

/// Empty mount points every image has.
pub const MOUNT_POINTS: &[&str] = &["proc", "sys", "dev", "run", "tmp", "data", "vendor"];

/// What Debian's triggers would have built from the unpacked data (the builder runs no maintainer
/// scripts): the MIME database (`update-mime-database`: without `mime.cache` GIO cannot tell a PNG
/// from other data, and GTK aborts when its icons do not load) and the compiled GSettings schemas
/// (`glib-compile-schemas`). Each runs only when the image has what it reads.
pub fn run_data_triggers(root: &Path) -> anyhow::Result<()> {
    let mime = root.join("usr/share/mime");
    if mime.join("packages").is_dir() {
        run_tool(
            Command::new("update-mime-database").arg("-n").arg(&mime),
            "update-mime-database",
            "shared-mime-info",
        )?;
    }
    let schemas = root.join("usr/share/glib-2.0/schemas");
    let has_schemas = std::fs::read_dir(&schemas).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".gschema.xml"))
    });
    if has_schemas {
        run_tool(
            Command::new("glib-compile-schemas").arg(&schemas),
            "glib-compile-schemas",
            "libglib2.0-bin",
        )?;
    }
    Ok(())
}

fn run_tool(cmd: &mut Command, name: &str, package: &str) -> anyhow::Result<()> {
    let output = cmd.output().with_context(|| {
        format!("cannot run {name}; install it with `cargo xtask deps` (package {package})")
    })?;
    if !output.status.success() {
        bail!(
            "{name} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `dpkg-deb -x DEB DEST`.
pub fn dpkg_extract(deb: &Path, dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let output = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dest)
        .output()
        .context("cannot run dpkg-deb; install it with `cargo xtask deps` (package dpkg)")?;
    if !output.status.success() {
        bail!(
            "dpkg-deb -x {} failed: {} (delete the file to download it again)",
            deb.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Removes documentation, manuals and translations.
pub fn prune(root: &Path) -> anyhow::Result<()> {
    for dir in PRUNED {
        let path = root.join(dir);
        if path.symlink_metadata().is_ok() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Moves `/bin`, `/sbin`, `/lib*` into `/usr` and replaces them with symlinks, as Debian 12's
/// merged-/usr does (packages still ship files under `/lib`).
pub fn merge_usr(root: &Path) -> anyhow::Result<()> {
    for dir in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
        let top = root.join(dir);
        let usr = root.join("usr").join(dir);
        let meta = top.symlink_metadata();
        if meta.as_ref().is_ok_and(|m| m.is_dir()) {
            std::fs::create_dir_all(&usr).with_context(|| format!("creating {}", usr.display()))?;
            merge_into(&top, &usr)?;
            std::fs::remove_dir(&top).with_context(|| format!("removing {}", top.display()))?;
        } else if meta.is_ok() {
            continue; // already a symlink
        }
        if MERGED_USR.contains(&dir) || usr.is_dir() {
            std::fs::create_dir_all(&usr).with_context(|| format!("creating {}", usr.display()))?;
            symlink(Path::new("usr").join(dir), &top)
                .with_context(|| format!("creating symlink {}", top.display()))?;
        }
    }
    Ok(())
}

fn merge_into(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let from_meta = from.symlink_metadata()?;
        match to.symlink_metadata() {
            Err(_) => std::fs::rename(&from, &to)
                .with_context(|| format!("moving {} to {}", from.display(), to.display()))?,
            Ok(to_meta) if to_meta.is_dir() && from_meta.is_dir() => {
                merge_into(&from, &to)?;
                std::fs::remove_dir(&from)?;
            }
            Ok(_) => {
                if !same_entry(&from, &to) {
                    warn!(
                        "merged /usr: {} and {} differ; keeping the /usr one",
                        from.display(),
                        to.display()
                    );
                }
                if from_meta.is_dir() {
                    std::fs::remove_dir_all(&from)?;
                } else {
                    std::fs::remove_file(&from)?;
                }
            }
        }
    }
    Ok(())
}

fn same_entry(a: &Path, b: &Path) -> bool {
    match (std::fs::read_link(a), std::fs::read_link(b)) {
        (Ok(x), Ok(y)) => x == y,
        (Err(_), Err(_)) => {
            matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

/// Installs a program: a stripped copy of an ELF file (a plain copy of anything else), mode 0755.
pub fn install_program(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let data = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(dst);
    if elf::is_elf(&data) {
        let output = Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(dst)
            .arg(src)
            .output()
            .context("cannot run strip; install it with `cargo xtask deps` (package binutils)")?;
        if !output.status.success() {
            bail!(
                "strip {} failed: {}",
                src.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    } else {
        std::fs::write(dst, &data).with_context(|| format!("writing {}", dst.display()))?;
    }
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Installs the device's unit files to `/system/etc/init`, each validated and checked to run a
/// program that is in the image (install the binaries first). Returns their contents.
pub fn install_units(
    repo_root: &Path,
    device: &Device,
    root: &Path,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let definition = device.definition_path();
    let shown_definition = definition.strip_prefix(repo_root).unwrap_or(&definition);
    let init_dir = root.join("system/etc/init");
    std::fs::create_dir_all(&init_dir)
        .with_context(|| format!("creating {}", init_dir.display()))?;
    let mut texts = Vec::new();
    for service in &device.services {
        let src = crate::device::unit_source(repo_root, &device.dir, service).with_context(|| {
            format!("service `{service}` has no unit file (images/units/{service}.toml or the device's units/{service}.toml)")
        })?;
        let unit = UnitFile::load(&src).map_err(|e| {
            anyhow::anyhow!("{e}\n(fix the unit file; its format is in docs/unit-files.md)")
        })?;
        let exec_in_image = elf::resolve_in_root(root, &unit.exec).is_some_and(|r| {
            root.join(&r.real)
                .symlink_metadata()
                .is_ok_and(|m| m.is_file())
        });
        if !exec_in_image {
            bail!(
                "{}: exec {} is not in the image; add the program to [system] binaries in {} (or fix exec)",
                src.display(),
                unit.exec.display(),
                shown_definition.display()
            );
        }
        let text = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        std::fs::write(init_dir.join(format!("{service}.toml")), &text)?;
        texts.push(text);
    }
    Ok(texts)
}

/// Creates the empty mount points (and the device's partition mount points).
pub fn create_mount_points(root: &Path, device: &Device) -> anyhow::Result<()> {
    let mut dirs: BTreeSet<PathBuf> = MOUNT_POINTS.iter().map(PathBuf::from).collect();
    for p in device.writable_partitions() {
        dirs.insert(p.mount.strip_prefix("/").unwrap_or(&p.mount).to_path_buf());
    }
    for dir in dirs {
        let path = root.join(&dir);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        let mode = if dir == Path::new("tmp") {
            0o1777
        } else {
            0o755
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Checks that every program in `/system/bin` finds its interpreter and libraries in `root`.
pub fn check_library_closure(
    root: &Path,
    device: &Device,
    repo_root: &Path,
) -> anyhow::Result<usize> {
    let bin = root.join("system/bin");
    let mut programs: Vec<PathBuf> = std::fs::read_dir(&bin)
        .with_context(|| format!("reading {}", bin.display()))?
        .flatten()
        .map(|e| Path::new("/system/bin").join(e.file_name()))
        .collect();
    programs.sort();
    let mut libraries = BTreeSet::new();
    for program in &programs {
        match elf::library_closure(root, program, object::elf::EM_X86_64)? {
            Ok(libs) => libraries.extend(libs.into_iter().map(|l| l.resolved.real)),
            Err(missing) => {
                let definition = device.definition_path();
                let shown = definition.strip_prefix(repo_root).unwrap_or(&definition);
                if let elf::MissingLibrary::Version { .. } = missing {
                    bail!("{missing}");
                }
                let soname = Path::new(missing.library())
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let host_hint = host_package_of(&soname)
                    .map(|p| format!(" On this machine it comes from `{p}`."))
                    .unwrap_or_default();
                bail!(
                    "{missing}, which no package in {} provides; add the Debian package that ships it \
                     (`dpkg -S {soname}` on a Debian machine tells which) to [packages] include.{host_hint}",
                    shown.display()
                );
            }
        }
    }
    Ok(libraries.len())
}

/// Which host package ships `soname` (`dpkg -S`), if the host knows.
fn host_package_of(soname: &str) -> Option<String> {
    if soname.is_empty() {
        return None;
    }
    let output = Command::new("dpkg")
        .args(["-S", &format!("/{soname}")])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?;
    let (pkgs, _) = line.split_once(": ")?;
    Some(
        pkgs.split(", ")
            .map(|p| p.split(':').next().unwrap_or(p))
            .collect::<Vec<_>>()
            .join(" or "),
    )
}

/// `mkfs.erofs` with lz4hc, all files owned by root, timestamp 0 and a fixed UUID.
pub fn make_erofs(root: &Path, out: &Path, uuid: &str) -> anyhow::Result<()> {
    let tmp = out.with_extension("erofs.tmp");
    let _ = std::fs::remove_file(&tmp);
    let output = Command::new("mkfs.erofs")
        .arg("-zlz4hc")
        .arg("--all-root")
        .arg("-T0")
        .arg(format!("-U{uuid}"))
        .arg("--quiet")
        .arg(&tmp)
        .arg(root)
        .output()
        .context(
            "cannot run mkfs.erofs; install it with `cargo xtask deps` (package erofs-utils)",
        )?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "mkfs.erofs failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    std::fs::rename(&tmp, out)
        .with_context(|| format!("moving {} to {}", tmp.display(), out.display()))?;
    Ok(())
}

/// Creates an empty ext4 image `out` of `size_mib` MiB, unless it exists (user data is kept).
pub fn make_ext4_once(out: &Path, label: &str, size_mib: u64) -> anyhow::Result<bool> {
    if out.exists() {
        let size = std::fs::metadata(out)?.len();
        if size != size_mib * 1024 * 1024 {
            info!(
                "keeping {} ({} MiB; the device asks for {size_mib} MiB: delete it to recreate, losing its data)",
                out.display(),
                size / (1024 * 1024)
            );
        }
        return Ok(false);
    }
    let tmp = out.with_extension("img.tmp");
    let _ = std::fs::remove_file(&tmp);
    let output = Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-L",
            label,
            "-E",
            "root_owner=0:0",
        ])
        .arg(&tmp)
        .arg(format!("{size_mib}M"))
        .output()
        .context("cannot run mke2fs; install it with `cargo xtask deps` (package e2fsprogs)")?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "mke2fs failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    std::fs::rename(&tmp, out)?;
    Ok(true)
}

/// Total size in bytes of the regular files below `dir`.
pub fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn device_with_service(repo: &Path, unit: &str) -> Device {
        std::fs::create_dir_all(repo.join("images/units")).unwrap();
        std::fs::write(repo.join("images/units/shell.toml"), unit).unwrap();
        let text = r#"
[device]
name = "t"
arch = "x86_64"
[kernel]
package = "linux-image-amd64"
[display]
width = 1
height = 1
[[partition]]
name = "system"
fstype = "erofs"
device = "/dev/vda"
mount = "/"
[system]
binaries = ["cirrus-init"]
services = ["shell"]
[qemu]
memory_mib = 256
"#;
        let dir = repo.join("images/devices/t");
        Device::parse(repo, &dir, Path::new("images/devices/t/device.toml"), text).unwrap()
    }

    #[test]
    fn units_are_validated_and_must_run_a_program_of_the_image() {
        let repo = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("system/bin")).unwrap();
        std::fs::write(root.path().join("system/bin/shell"), b"#!").unwrap();

        // A bad unit: the error names the unit file, line and column.
        let device = device_with_service(
            repo.path(),
            "exec = \"/system/bin/shell\"\nrestart = \"sometimes\"\n",
        );
        let err = install_units(repo.path(), &device, root.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("images/units/shell.toml:2:11:"), "{err}");
        assert!(err.contains("docs/unit-files.md"), "{err}");

        // A good unit whose program is missing.
        let device = device_with_service(repo.path(), "exec = \"/system/bin/nothing\"\n");
        let err = install_units(repo.path(), &device, root.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exec /system/bin/nothing is not in the image"),
            "{err}"
        );
        assert!(
            err.contains("[system] binaries in images/devices/t/device.toml"),
            "{err}"
        );

        // A good one is installed; a device's own unit wins over the shared one.
        let device = device_with_service(repo.path(), "exec = \"/system/bin/shell\"\n");
        install_units(repo.path(), &device, root.path()).unwrap();
        let installed = root.path().join("system/etc/init/shell.toml");
        assert_eq!(
            std::fs::read_to_string(&installed).unwrap(),
            "exec = \"/system/bin/shell\"\n"
        );
        std::fs::create_dir_all(repo.path().join("images/devices/t/units")).unwrap();
        std::fs::write(
            repo.path().join("images/devices/t/units/shell.toml"),
            "exec = \"/system/bin/shell\"\nargs = [\"-v\"]\n",
        )
        .unwrap();
        install_units(repo.path(), &device, root.path()).unwrap();
        assert!(std::fs::read_to_string(&installed).unwrap().contains("-v"));
    }

    #[test]
    fn extrausers_get_an_nsswitch_and_a_link_into_data() {
        let root = tempfile::tempdir().unwrap();
        // Without the module: nothing is written.
        install_extrausers(root.path()).unwrap();
        assert!(!root.path().join("etc/nsswitch.conf").exists());

        let lib = root.path().join("usr/lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libnss_extrausers.so.2"), b"").unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/extrausers")).unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        install_extrausers(root.path()).unwrap();
        let conf = std::fs::read_to_string(root.path().join("etc/nsswitch.conf")).unwrap();
        assert!(
            conf.lines().any(|l| l == "passwd: files extrausers"),
            "{conf}"
        );
        assert!(
            conf.lines().any(|l| l == "group: files extrausers"),
            "{conf}"
        );
        assert_eq!(
            std::fs::read_link(root.path().join("var/lib/extrausers")).unwrap(),
            Path::new(EXTRAUSERS_DATA_DIR)
        );
    }

    #[test]
    fn merges_usr_and_creates_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(root.join("lib/x86_64-linux-gnu/liba.so.1"), b"a").unwrap();
        std::fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(root.join("usr/lib/x86_64-linux-gnu/libb.so.1"), b"b").unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        symlink("/lib/x86_64-linux-gnu/liba.so.1", root.join("lib64/ld.so")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/doc/x")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/fonts")).unwrap();

        merge_usr(root).unwrap();
        prune(root).unwrap();
        for d in MERGED_USR {
            assert_eq!(
                std::fs::read_link(root.join(d)).unwrap(),
                Path::new("usr").join(d)
            );
        }
        assert_eq!(
            std::fs::read(root.join("usr/lib/x86_64-linux-gnu/liba.so.1")).unwrap(),
            b"a"
        );
        assert_eq!(
            std::fs::read(root.join("lib/x86_64-linux-gnu/libb.so.1")).unwrap(),
            b"b"
        );
        let ld = crate::elf::resolve_in_root(root, Path::new("/lib64/ld.so")).unwrap();
        assert_eq!(ld.real, Path::new("usr/lib/x86_64-linux-gnu/liba.so.1"));
        assert!(!root.join("usr/share/doc").exists());
        assert!(root.join("usr/share/fonts").is_dir());
        // Idempotent.
        merge_usr(root).unwrap();
    }
}
