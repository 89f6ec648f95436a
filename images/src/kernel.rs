//! The kernel: Debian's `linux-image-<abi>` package unpacked once into the cache, with the
//! uncompressed `vmlinux` and an index of its modules beside it.
//!
//! Cache layout: `<cache>/kernel/<package>_<version>/{root/, vmlinux, modules.json}`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use tracing::{info, warn};

use crate::apt::DebFile;
use crate::kmod::ModuleIndex;

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub package: String,
    pub package_version: String,
    /// `uname -r`: `6.1.0-56-amd64`.
    pub version: String,
    pub vmlinuz: PathBuf,
    /// `None` when no ELF could be decompressed from `vmlinuz`.
    pub vmlinux: Option<PathBuf>,
    /// `root/lib/modules/<version>/`.
    pub modules_dir: PathBuf,
    pub index: ModuleIndex,
}

const XZ_MAGIC: &[u8] = b"\xfd7zXZ\0";

/// Unpacks the kernel `.deb` into the cache (once) and loads its module index.
pub fn unpack(cache_dir: &Path, deb: &DebFile) -> anyhow::Result<Kernel> {
    let kernels = cache_dir.join("kernel");
    let dir = kernels.join(format!("{}_{}", deb.name, deb.version.replace(':', "%3a")));
    if !dir.join(".complete").is_file() {
        let tmp = kernels.join(format!(".unpack-{}-{}", deb.name, crate::unique_suffix()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        info!(
            "unpacking {} {} into {}",
            deb.name,
            deb.version,
            dir.display()
        );
        let result = prepare(&tmp, deb);
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(err);
        }
        if dir.join(".complete").is_file() {
            // Another build finished the same kernel meanwhile: keep its copy.
            let _ = std::fs::remove_dir_all(&tmp);
            return load(&dir, deb);
        }
        let _ = std::fs::remove_dir_all(&dir); // an interrupted unpack
        if let Err(err) = std::fs::rename(&tmp, &dir) {
            // Another build may have finished the same kernel first.
            let _ = std::fs::remove_dir_all(&tmp);
            if !dir.join(".complete").is_file() {
                return Err(err)
                    .with_context(|| format!("moving the unpacked kernel to {}", dir.display()));
            }
        }
    }
    load(&dir, deb)
}

fn prepare(tmp: &Path, deb: &DebFile) -> anyhow::Result<()> {
    let root = tmp.join("root");
    crate::system::dpkg_extract(&deb.path, &root)?;
    let _ = std::fs::remove_dir_all(root.join("usr/share"));
    let version = kernel_version(&root)?;
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{version}"));
    let image =
        std::fs::read(&vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    match extract_vmlinux(&image) {
        Ok(elf) => {
            std::fs::write(tmp.join("vmlinux"), &elf).context("writing vmlinux")?;
            info!(
                "vmlinux: {:.1} MB decompressed from vmlinuz ({:.1} MB)",
                elf.len() as f64 / 1e6,
                image.len() as f64 / 1e6
            );
        }
        Err(err) => warn!("no vmlinux: {err:#}; QEMU will boot vmlinuz instead (slower under TCG)"),
    }
    let modules_dir = root.join("lib/modules").join(&version);
    let index = ModuleIndex::scan(&modules_dir)?;
    info!(
        "{} modules indexed ({} built in)",
        index.modules.len(),
        index.builtin.len()
    );
    std::fs::write(tmp.join("modules.json"), serde_json::to_vec(&index)?)
        .context("writing modules.json")?;
    std::fs::write(tmp.join(".complete"), b"").context("writing .complete")?;
    Ok(())
}

fn load(dir: &Path, deb: &DebFile) -> anyhow::Result<Kernel> {
    let root = dir.join("root");
    let version = kernel_version(&root)?;
    let index_path = dir.join("modules.json");
    let index: ModuleIndex = serde_json::from_slice(
        &std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
    )
    .with_context(|| {
        format!(
            "parsing {} (delete {} to rebuild it)",
            index_path.display(),
            dir.display()
        )
    })?;
    let vmlinux = dir.join("vmlinux");
    Ok(Kernel {
        package: deb.name.clone(),
        package_version: deb.version.clone(),
        vmlinuz: root.join("boot").join(format!("vmlinuz-{version}")),
        vmlinux: vmlinux.is_file().then_some(vmlinux),
        modules_dir: root.join("lib/modules").join(&version),
        version,
        index,
    })
}

/// The one `lib/modules/<version>` directory of an unpacked kernel package.
fn kernel_version(root: &Path) -> anyhow::Result<String> {
    let mut versions: Vec<String> = std::fs::read_dir(root.join("lib/modules"))
        .with_context(|| format!("the kernel package has no lib/modules ({})", root.display()))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|v| root.join("boot").join(format!("vmlinuz-{v}")).is_file())
        .collect();
    versions.sort();
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            bail!("the kernel package has no boot/vmlinuz-<version> matching lib/modules/<version>")
        }
        many => bail!(
            "the kernel package has several kernels: {}",
            many.join(", ")
        ),
    }
}

/// Decompresses the xz payload of a bzImage with `xz -dc` (the first stream that yields an ELF).
pub fn extract_vmlinux(bzimage: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut tried = 0;
    let mut last_error =
        String::from("no xz stream found (is this kernel compressed with something else?)");
    let mut start = 0;
    while let Some(pos) = find(&bzimage[start..], XZ_MAGIC).map(|p| p + start) {
        start = pos + 1;
        tried += 1;
        if tried > 8 {
            break;
        }
        match xz_decompress(&bzimage[pos..]) {
            Ok(out) if out.starts_with(b"\x7fELF") => return Ok(out),
            Ok(_) => last_error = format!("the xz stream at offset {pos} is not an ELF file"),
            Err(err) => last_error = format!("{err:#}"),
        }
    }
    bail!(last_error)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn xz_decompress(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new("xz")
        .args(["-dc", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run xz; install it with `cargo xtask deps` (package xz-utils)")?;
    let mut stdin = child.stdin.take().context("xz stdin")?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || {
        // xz stops reading after the first stream: a broken pipe here is expected.
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .context("xz stdout")?
        .read_to_end(&mut out)?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait()?;
    let _ = writer.join();
    if !status.success() && !out.starts_with(b"\x7fELF") {
        bail!("xz -dc failed ({status}): {}", err.trim());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_xz_stream_after_a_header() {
        // A fake "bzImage": junk, then an xz stream of an ELF-looking payload, then trailing data.
        let payload = b"\x7fELF\x02\x01\x01 pretend kernel".repeat(100);
        let mut xz = Command::new("xz")
            .args(["-zc", "--check=crc32"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = xz.stdin.take().unwrap();
        let p = payload.clone();
        let t = std::thread::spawn(move || stdin.write_all(&p).unwrap());
        let mut compressed = Vec::new();
        xz.stdout
            .take()
            .unwrap()
            .read_to_end(&mut compressed)
            .unwrap();
        t.join().unwrap();
        assert!(xz.wait().unwrap().success());

        let mut image = b"MZ boot sector and setup code\xfd7zXZ-not-really".to_vec();
        image.extend_from_slice(&compressed);
        image.extend_from_slice(b"trailing data that is not xz");
        assert_eq!(extract_vmlinux(&image).unwrap(), payload);
        assert!(extract_vmlinux(b"no compressed kernel here").is_err());
    }
}
