//! The initramfs (docs/boot.md): `/init` (cirrus-init), its libraries taken from the staging root,
//! the early modules, `/etc/cirrus/boot.toml`, merged-/usr symlinks and `/dev/console`, written
//! as an uncompressed newc cpio.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::cpio::CpioWriter;
use crate::elf;

/// One entry of the initramfs, before writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir(u32),
    /// Contents copied from a file, with a mode.
    File(PathBuf, u32),
    Data(Vec<u8>, u32),
    Symlink(PathBuf),
    CharDevice {
        mode: u32,
        major: u32,
        minor: u32,
    },
}

/// The initramfs tree, keyed by path relative to `/` (parents sort before children).
#[derive(Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    /// Adds `node` at `path`, creating missing parent directories (0755).
    pub fn add(&mut self, path: impl AsRef<Path>, node: Node) -> anyhow::Result<()> {
        let path = path
            .as_ref()
            .strip_prefix("/")
            .unwrap_or(path.as_ref())
            .to_path_buf();
        if path.as_os_str().is_empty() {
            bail!("empty initramfs path");
        }
        let mut ancestors: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            match self.nodes.get(dir) {
                None => {
                    self.nodes.insert(dir.to_path_buf(), Node::Dir(0o755));
                }
                Some(Node::Dir(_)) => {}
                Some(other) => bail!(
                    "initramfs: {} is {other:?}, but {} is meant to be inside it",
                    dir.display(),
                    path.display()
                ),
            }
        }
        match self.nodes.get(&path) {
            Some(existing)
                if *existing != node
                    && !matches!((existing, &node), (Node::Dir(_), Node::Dir(_))) =>
            {
                bail!(
                    "initramfs: {} added twice ({existing:?} and {node:?})",
                    path.display()
                )
            }
            Some(_) => Ok(()),
            None => {
                self.nodes.insert(path, node);
                Ok(())
            }
        }
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.nodes.keys().map(PathBuf::as_path)
    }

    /// Writes the tree as a newc archive to `out` (through a temporary file). Returns its size.
    pub fn write(&self, out: &Path) -> anyhow::Result<u64> {
        let tmp = out.with_extension("tmp");
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut cpio = CpioWriter::new(BufWriter::new(file));
        for (path, node) in &self.nodes {
            let name = path
                .to_str()
                .with_context(|| format!("non-UTF-8 path {}", path.display()))?;
            match node {
                Node::Dir(mode) => cpio.dir(name, *mode)?,
                Node::File(src, mode) => {
                    let data =
                        std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
                    cpio.file(name, *mode, &data)?
                }
                Node::Data(data, mode) => cpio.file(name, *mode, data)?,
                Node::Symlink(target) => {
                    let target = target
                        .to_str()
                        .with_context(|| format!("non-UTF-8 link {}", target.display()))?;
                    cpio.symlink(name, target)?
                }
                Node::CharDevice { mode, major, minor } => {
                    cpio.char_device(name, *mode, *major, *minor)?
                }
            }
        }
        let size = cpio.len();
        cpio.finish()?;
        std::fs::rename(&tmp, out)
            .with_context(|| format!("moving {} to {}", tmp.display(), out.display()))?;
        Ok(size)
    }
}

/// What goes into the initramfs.
pub struct InitramfsSpec<'a> {
    /// The staging root of the system image (has `/system/bin/cirrus-init` and its libraries).
    pub staging: &'a Path,
    pub kernel_version: &'a str,
    /// Module files in load order (`.ko` paths on the host).
    pub modules: &'a [PathBuf],
    /// `/etc/cirrus/boot.toml`.
    pub boot_toml: &'a str,
}

/// Builds the initramfs tree.
pub fn tree(spec: &InitramfsSpec<'_>) -> anyhow::Result<Tree> {
    let mut t = Tree::default();
    for dir in [
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "newroot",
        "etc/cirrus",
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/lib64",
    ] {
        t.add(dir, Node::Dir(0o755))?;
    }
    for dir in crate::system::MERGED_USR {
        t.add(dir, Node::Symlink(Path::new("usr").join(dir)))?;
    }
    t.add(
        "dev/console",
        Node::CharDevice {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    )?;

    let init = Path::new("/system/bin").join(crate::device::INIT_BINARY);
    t.add(
        "init",
        Node::File(
            spec.staging.join(init.strip_prefix("/").unwrap_or(&init)),
            0o755,
        ),
    )?;
    let libs = match elf::library_closure(spec.staging, &init, object::elf::EM_X86_64)? {
        Ok(libs) => libs,
        Err(missing) => bail!("/init: {missing}"),
    };
    for lib in libs {
        for (link, target) in &lib.resolved.links {
            if crate::system::MERGED_USR
                .iter()
                .any(|d| link == Path::new(d))
            {
                continue;
            }
            t.add(link, Node::Symlink(target.clone()))?;
        }
        let src = spec.staging.join(&lib.resolved.real);
        let mode = std::fs::metadata(&src)?.permissions().mode() & 0o7777;
        t.add(&lib.resolved.real, Node::File(src, mode))?;
    }

    let modules_dir = Path::new("usr/lib/modules").join(spec.kernel_version);
    t.add(&modules_dir, Node::Dir(0o755))?;
    for module in spec.modules {
        let name = module
            .file_name()
            .with_context(|| format!("bad module path {}", module.display()))?;
        t.add(modules_dir.join(name), Node::File(module.clone(), 0o644))?;
    }
    t.add(
        "etc/cirrus/boot.toml",
        Node::Data(spec.boot_toml.as_bytes().to_vec(), 0o644),
    )?;
    Ok(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tree_creates_parents_and_refuses_conflicts() {
        let mut t = Tree::default();
        t.add("/usr/lib/x/liba.so", Node::Data(b"a".to_vec(), 0o644))
            .unwrap();
        t.add("lib", Node::Symlink("usr/lib".into())).unwrap();
        let paths: Vec<&Path> = t.paths().collect();
        assert_eq!(
            paths,
            [
                Path::new("lib"),
                Path::new("usr"),
                Path::new("usr/lib"),
                Path::new("usr/lib/x"),
                Path::new("usr/lib/x/liba.so")
            ]
        );
        // Same node twice is fine, a different one is not; nothing may go below a file or link.
        t.add("usr/lib/x/liba.so", Node::Data(b"a".to_vec(), 0o644))
            .unwrap();
        assert!(
            t.add("usr/lib/x/liba.so", Node::Data(b"b".to_vec(), 0o644))
                .is_err()
        );
        assert!(t.add("lib/y", Node::Dir(0o755)).is_err());

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("initrd.img");
        let size = t.write(&out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert!(size > 0 && bytes.len() as u64 > size);
        let names: Vec<String> = crate::cpio::read_newc(&bytes)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(
            names,
            ["lib", "usr", "usr/lib", "usr/lib/x", "usr/lib/x/liba.so"]
        );
    }
}
