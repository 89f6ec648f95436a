//! `cargo xtask image`: build the device's programs, then its boot image with `cirrus-images`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cirrus_images::{BuildRequest, Device, Image};

use crate::binaries;
use crate::workspace::{self, Workspace};

/// A built image and where it is.
pub struct BuiltImage {
    pub device: Device,
    pub image: Image,
    /// `<target>/cirrus/<device>`.
    pub out_dir: PathBuf,
}

/// `cargo xtask image --device NAME`.
pub fn run(device: &str) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    build(&ws, device)?;
    Ok(ExitCode::SUCCESS)
}

/// Loads a device definition (its error names the devices that exist).
pub fn load_device(ws: &Workspace, name: &str) -> Result<Device> {
    Device::load(&ws.root, name).with_context(|| format!("cannot load device `{name}`"))
}

/// Builds the programs and the image of `device`, and prints what was written.
pub fn build(ws: &Workspace, name: &str) -> Result<BuiltImage> {
    let device = load_device(ws, name)?;
    let binaries = binaries::build(ws, &device.binaries)?;
    let out_dir = ws.image_dir(name);
    let cache_dir = workspace::cache_dir()?;
    println!(
        "image: building into {} (downloads cached in {})",
        out_dir.display(),
        cache_dir.display()
    );
    let request = BuildRequest {
        device: &device,
        repo_root: &ws.root,
        binaries,
        out_dir: out_dir.clone(),
        cache_dir,
    };
    let image = cirrus_images::build(&request)
        .with_context(|| format!("building the image into {}", out_dir.display()))?;
    print_outputs(&out_dir)?;
    println!(
        "image: kernel {} (QEMU boots {}), {} early module(s), {} Debian package(s) in the system image",
        image.kernel_version,
        image.kernel.display(),
        image.modules.len(),
        image.packages.len()
    );
    Ok(BuiltImage {
        device,
        image,
        out_dir,
    })
}

/// Prints every file of the image directory with its size (and the disk space a sparse one uses).
pub fn print_outputs(out_dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(out_dir)
        .with_context(|| format!("listing {}", out_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .filter(|(_, m)| m.is_file())
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    println!("image: {}", out_dir.display());
    for (path, meta) in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let allocated = meta.blocks() * 512;
        if allocated + 64 * 1024 < meta.len() {
            println!(
                "  {name:<16} {:>10} ({} on disk, sparse)",
                human_size(meta.len()),
                human_size(allocated)
            );
        } else {
            println!("  {name:<16} {:>10}", human_size(meta.len()));
        }
    }
    Ok(())
}

/// `1.5 MiB`-style sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
