//! `cirrus-images`: device definitions (`images/devices/<name>/device.toml`) and the image builder
//! that `cargo xtask image` calls.
//!
//! [`build`] turns a [`Device`] and the Cirrus binaries into the files of `docs/boot.md`: the
//! Debian kernel (`vmlinuz`, and `vmlinux` decompressed from it), an uncompressed newc initramfs
//! (`initrd.img`) with cirrus-init as `/init` and the early modules in dependency order, the erofs
//! system image (`system.erofs`) of Debian packages + Cirrus binaries, a writable ext4 `data.img`
//! (created once), and `image.json` describing it all. [`qemu_command`] boots the result.
//!
//! Host tools: `apt-get`, `apt-cache`, `dpkg-deb`, `mkfs.erofs`, `mke2fs`, `xz`, `strip`.

pub mod apps;
pub mod apt;
pub mod cpio;
pub mod device;
pub mod elf;
pub mod initramfs;
pub mod kernel;
pub mod kmod;
pub mod qemu;
pub mod system;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use cirrus_init_config::{BootConfig, Mount, RootMount};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use device::{
    Device, DeviceError, Display, KernelSpec, PackageSpec, Partition, QemuKernel, QemuSpec,
};
pub use qemu::{QemuDisplay, QemuOptions, qemu_command};

/// Everything [`build`] needs.
pub struct BuildRequest<'a> {
    pub device: &'a Device,
    pub repo_root: &'a Path,
    /// Binary name (as in `[system] binaries`) → the built file.
    pub binaries: BTreeMap<String, PathBuf>,
    /// `target/cirrus/<device>`.
    pub out_dir: PathBuf,
    /// `~/.cache/cirrus`, or `$CIRRUS_CACHE_DIR`.
    pub cache_dir: PathBuf,
}

/// A built image: the files in `dir` and what they contain (`image.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub dir: PathBuf,
    /// The file `[qemu] kernel` boots (`vmlinux`, or `vmlinuz` if it could not be extracted).
    pub kernel: PathBuf,
    pub vmlinuz: PathBuf,
    /// The uncompressed kernel (the same file as `vmlinuz` if extraction failed).
    pub vmlinux: PathBuf,
    pub initrd: PathBuf,
    pub system: PathBuf,
    pub data: PathBuf,
    pub cmdline: String,
    pub kernel_version: String,
    pub display: Display,
    /// Module file names in load order.
    pub modules: Vec<String>,
    /// Debian packages in the system image: (name, version).
    pub packages: Vec<(String, String)>,
}

/// Name of the description file in the output directory.
pub const IMAGE_JSON: &str = "image.json";

#[derive(Serialize, Deserialize)]
struct ImageJson {
    device: String,
    build_id: String,
    kernel_package: String,
    kernel_version: String,
    cmdline: String,
    display: Display,
    /// File names, relative to the image directory.
    kernel: String,
    vmlinuz: String,
    vmlinux: String,
    initrd: String,
    system: String,
    data: String,
    modules: Vec<String>,
    packages: Vec<PackageJson>,
    /// Bytes, by file name.
    sizes: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
struct PackageJson {
    name: String,
    version: String,
}

impl Image {
    /// Reads `image.json` from a directory [`build`] wrote.
    pub fn load(out_dir: &Path) -> anyhow::Result<Image> {
        let path = out_dir.join(IMAGE_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (build the image first: cargo xtask image)",
                path.display()
            )
        })?;
        let json: ImageJson = serde_json::from_str(&text).with_context(|| {
            format!(
                "parsing {} (rebuild the image: cargo xtask image)",
                path.display()
            )
        })?;
        Ok(Image {
            dir: out_dir.to_path_buf(),
            kernel: out_dir.join(json.kernel),
            vmlinuz: out_dir.join(json.vmlinuz),
            vmlinux: out_dir.join(json.vmlinux),
            initrd: out_dir.join(json.initrd),
            system: out_dir.join(json.system),
            data: out_dir.join(json.data),
            cmdline: json.cmdline,
            kernel_version: json.kernel_version,
            display: json.display,
            modules: json.modules,
            packages: json
                .packages
                .into_iter()
                .map(|p| (p.name, p.version))
                .collect(),
        })
    }
}

/// A name for a private temporary directory: unique across processes and threads.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// FNV-1a: a stable hash for build ids and the file system UUID (std's hasher may change).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Length separator so ("ab","c") and ("a","bc") differ.
        self.0 ^= bytes.len() as u64;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// A UUID derived from the device name: the same on every build of that device.
fn fs_uuid(device: &str) -> String {
    let mut a = Fnv::new();
    a.update(b"cirrus-system-uuid");
    a.update(device.as_bytes());
    let mut b = a;
    b.update(b"2");
    let hex = format!("{:016x}{:016x}", a.0, b.0);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Hard-links (or copies) `src` to `dst`, replacing `dst`.
fn link_or_copy(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(dst);
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    }
    Ok(())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Builds the image of `req.device` into `req.out_dir`. See the crate documentation and
/// `docs/boot.md` for what is produced.
pub fn build(req: &BuildRequest<'_>) -> anyhow::Result<Image> {
    let started = Instant::now();
    let device = req.device;
    let definition = device.definition_path();
    let shown_definition = definition
        .strip_prefix(req.repo_root)
        .unwrap_or(&definition)
        .to_path_buf();
    info!(
        "building image for {} into {}",
        device.name,
        req.out_dir.display()
    );

    for name in &device.binaries {
        let Some(path) = req.binaries.get(name) else {
            bail!(
                "{} lists binary `{name}` in [system] binaries, but it was not built (no file given for it)",
                shown_definition.display()
            );
        };
        if !path.is_file() {
            bail!(
                "binary `{name}`: {} does not exist; build it first",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(&req.out_dir)
        .with_context(|| format!("creating {}", req.out_dir.display()))?;
    std::fs::create_dir_all(&req.cache_dir)
        .with_context(|| format!("creating {}", req.cache_dir.display()))?;

    // Packages: the kernel and the closure of [packages] include.
    let mut apt = apt::Apt::new(&req.cache_dir)?;
    let kernel_package = apt.resolve_kernel_package(&device.kernel.package)?;
    if kernel_package != device.kernel.package {
        info!(
            "kernel package {} is {kernel_package}",
            device.kernel.package
        );
    }
    let names = apt.closure(&device.packages.include, &device.packages.exclude)?;
    info!(
        "{} Debian packages in the system image (closure of {} included)",
        names.len(),
        device.packages.include.len()
    );
    let mut wanted = names.clone();
    wanted.push(kernel_package.clone());
    let mut debs = apt.fetch(&wanted)?;
    let kernel_deb = debs.pop().context("apt returned no kernel package")?;
    let kernel = kernel::unpack(&req.cache_dir, &kernel_deb)?;
    info!(
        "kernel {} ({} {})",
        kernel.version, kernel_deb.name, kernel_deb.version
    );

    // Early modules.
    let order = kmod::order_modules(&kernel.index, &device.kernel.modules)
        .map_err(|e| anyhow!("{} [kernel] modules: {e}", shown_definition.display()))?;
    for w in &order.warnings {
        warn!("{w}");
    }
    if !order.builtin.is_empty() {
        info!(
            "built into the kernel (nothing to load): {}",
            order.builtin.join(", ")
        );
    }
    let module_files: Vec<String> = order
        .modules
        .iter()
        .map(|m| m.file_name().to_string())
        .collect();
    info!(
        "{} early modules: {}",
        module_files.len(),
        module_files.join(" ")
    );

    // Staging root of the system image.
    let staging = req.out_dir.join(".staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", staging.display()))?;
    }
    let root = staging.join("system");
    std::fs::create_dir_all(&root)?;
    for deb in &debs {
        system::dpkg_extract(&deb.path, &root)?;
    }
    system::prune(&root)?;
    system::merge_usr(&root)?;
    system::install_user_database(&root)?;
    system::install_extrausers(&root)?;
    system::remove_files(&root, &device.packages.remove)?;
    system::run_data_triggers(&root)?;

    let mut id = Fnv::new();
    id.update(std::fs::read(&definition).unwrap_or_default().as_slice());
    for deb in &debs {
        id.update(format!("{}={}", deb.name, deb.version).as_bytes());
    }
    id.update(kernel_deb.version.as_bytes());

    let bin = root.join("system/bin");
    for name in &device.binaries {
        let src = &req.binaries[name];
        system::install_program(src, &bin.join(name))?;
        id.update(&std::fs::read(bin.join(name))?);
    }

    // System apps, packed and signed with the build's platform key.
    for app in apps::install_system_apps(req.repo_root, &device.apps, &req.cache_dir, &root)? {
        info!("system app {} {}: {}", app.id, app.version, mb(app.bytes));
        id.update(&std::fs::read(&app.package)?);
    }

    // Unit files, validated.
    for text in system::install_units(req.repo_root, device, &root)? {
        id.update(&text);
    }

    let build_id = format!("{}-{:016x}", device.name, id.0);
    let build_toml = BuildToml {
        device: device.name.clone(),
        description: device.description.clone(),
        build_id: build_id.clone(),
        kernel_version: kernel.version.clone(),
    };
    std::fs::write(
        root.join("system/etc/build.toml"),
        toml::to_string(&build_toml)?,
    )?;
    // Build properties (`ro.*`), loaded by init's property store (docs/properties.md).
    let build_properties: BTreeMap<String, String> = [
        ("ro.product.device", device.name.clone()),
        ("ro.build.id", build_id.clone()),
        ("ro.kernel.version", kernel.version.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    std::fs::write(
        root.join("system")
            .join(cirrus_init_config::properties::BUILD_PROPERTIES),
        cirrus_init_config::properties::properties_to_toml(&build_properties),
    )?;
    system::create_mount_points(&root, device)?;

    let libraries = system::check_library_closure(&root, device, req.repo_root)?;
    info!(
        "library closure complete: {} programs in /system/bin use {libraries} shared objects",
        device.binaries.len()
    );
    let staged_bytes = system::tree_size(&root);

    // system.erofs
    let system_image = req.out_dir.join("system.erofs");
    let t = Instant::now();
    system::make_erofs(&root, &system_image, &fs_uuid(&device.name))?;
    let system_size = std::fs::metadata(&system_image)?.len();
    info!(
        "system.erofs: {} ({} of files, {:.1} s)",
        mb(system_size),
        mb(staged_bytes),
        t.elapsed().as_secs_f64()
    );

    // initrd.img
    let root_part = device.root_partition();
    let boot = BootConfig {
        kernel_version: kernel.version.clone(),
        device_timeout_ms: device.kernel.device_timeout_ms,
        modules: module_files.clone(),
        root: RootMount {
            device: root_part.device.clone(),
            fstype: root_part.fstype.clone(),
            options: root_part.options.clone(),
        },
        mounts: device
            .writable_partitions()
            .map(|p| Mount {
                device: p.device.to_string_lossy().into_owned(),
                target: p.mount.clone(),
                fstype: p.fstype.clone(),
                options: p.options.clone(),
                fallback: p.fallback.clone(),
            })
            .collect(),
    };
    let module_paths: Vec<PathBuf> = order
        .modules
        .iter()
        .map(|m| kernel.modules_dir.join(&m.path))
        .collect();
    let boot_toml = boot.to_toml();
    let tree = initramfs::tree(&initramfs::InitramfsSpec {
        staging: &root,
        kernel_version: &kernel.version,
        modules: &module_paths,
        boot_toml: &boot_toml,
    })?;
    let initrd = req.out_dir.join("initrd.img");
    let initrd_size = tree.write(&initrd)?;
    info!(
        "initrd.img: {} ({} entries)",
        mb(initrd_size),
        tree.paths().count()
    );

    // Kernel files.
    let vmlinuz = req.out_dir.join("vmlinuz");
    link_or_copy(&kernel.vmlinuz, &vmlinuz)?;
    let vmlinux_out = req.out_dir.join("vmlinux");
    let vmlinux = match &kernel.vmlinux {
        Some(src) => {
            link_or_copy(src, &vmlinux_out)?;
            vmlinux_out
        }
        None => {
            warn!(
                "no vmlinux could be extracted from {}; using vmlinuz",
                kernel.vmlinuz.display()
            );
            let _ = std::fs::remove_file(&vmlinux_out);
            vmlinuz.clone()
        }
    };
    let boot_kernel = match device.qemu.kernel {
        QemuKernel::Vmlinux => vmlinux.clone(),
        QemuKernel::Vmlinuz => vmlinuz.clone(),
    };

    // Writable partitions: created once, kept across builds.
    let mut data = None;
    for part in device.writable_partitions() {
        let file = req.out_dir.join(format!("{}.img", part.name));
        let size_mib = part.size_mib.unwrap_or(64);
        if system::make_ext4_once(&file, &part.name, size_mib)? {
            info!("{}: new empty ext4 of {size_mib} MiB", file.display());
        }
        data.get_or_insert(file);
    }
    let data = data.unwrap_or_else(|| req.out_dir.join("data.img"));

    let image = Image {
        dir: req.out_dir.clone(),
        kernel: boot_kernel,
        vmlinuz,
        vmlinux,
        initrd,
        system: system_image,
        data,
        cmdline: device.kernel.cmdline.clone(),
        kernel_version: kernel.version.clone(),
        display: device.display,
        modules: module_files,
        packages: debs
            .iter()
            .map(|d| (d.name.clone(), d.version.clone()))
            .collect(),
    };
    write_image_json(&image, &device.name, &build_id, &kernel_deb.name)?;
    let _ = std::fs::remove_dir_all(&staging);
    info!(
        "image for {} built in {:.1} s: kernel {} ({}), initrd {}, system {}",
        device.name,
        started.elapsed().as_secs_f64(),
        image
            .kernel
            .file_name()
            .unwrap_or_default()
            .to_string_lossy(),
        mb(std::fs::metadata(&image.kernel)
            .map(|m| m.len())
            .unwrap_or(0)),
        mb(initrd_size),
        mb(system_size),
    );
    Ok(image)
}

#[derive(Serialize)]
struct BuildToml {
    device: String,
    description: String,
    build_id: String,
    kernel_version: String,
}

fn write_image_json(
    image: &Image,
    device: &str,
    build_id: &str,
    kernel_package: &str,
) -> anyhow::Result<()> {
    let name = |p: &Path| -> anyhow::Result<String> {
        let rel = p
            .strip_prefix(&image.dir)
            .with_context(|| format!("{} is outside {}", p.display(), image.dir.display()))?;
        Ok(rel.to_string_lossy().into_owned())
    };
    let mut sizes = BTreeMap::new();
    for p in [
        &image.vmlinuz,
        &image.vmlinux,
        &image.initrd,
        &image.system,
        &image.data,
    ] {
        if let Ok(meta) = std::fs::metadata(p) {
            sizes.insert(name(p)?, meta.len());
        }
    }
    let json = ImageJson {
        device: device.to_string(),
        build_id: build_id.to_string(),
        kernel_package: kernel_package.to_string(),
        kernel_version: image.kernel_version.clone(),
        cmdline: image.cmdline.clone(),
        display: image.display,
        kernel: name(&image.kernel)?,
        vmlinuz: name(&image.vmlinuz)?,
        vmlinux: name(&image.vmlinux)?,
        initrd: name(&image.initrd)?,
        system: name(&image.system)?,
        data: name(&image.data)?,
        modules: image.modules.clone(),
        packages: image
            .packages
            .iter()
            .map(|(n, v)| PackageJson {
                name: n.clone(),
                version: v.clone(),
            })
            .collect(),
        sizes,
    };
    let path = image.dir.join(IMAGE_JSON);
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_stable_and_well_formed() {
        let a = fs_uuid("qemu-x86_64");
        assert_eq!(a, fs_uuid("qemu-x86_64"));
        assert_ne!(a, fs_uuid("other"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn image_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let image = Image {
            dir: d.to_path_buf(),
            kernel: d.join("vmlinux"),
            vmlinuz: d.join("vmlinuz"),
            vmlinux: d.join("vmlinux"),
            initrd: d.join("initrd.img"),
            system: d.join("system.erofs"),
            data: d.join("data.img"),
            cmdline: "console=ttyS0".into(),
            kernel_version: "6.1.0-56-amd64".into(),
            display: Display {
                width: 720,
                height: 1440,
            },
            modules: vec!["virtio_ring.ko".into()],
            packages: vec![("libc6".into(), "2.36-9+deb12u10".into())],
        };
        std::fs::write(d.join("initrd.img"), b"1234").unwrap();
        write_image_json(&image, "dev", "dev-1", "linux-image-x").unwrap();
        assert_eq!(Image::load(d).unwrap(), image);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(IMAGE_JSON)).unwrap()).unwrap();
        assert_eq!(json["sizes"]["initrd.img"], 4);
        assert_eq!(json["kernel"], "vmlinux");
        assert!(
            Image::load(&d.join("nope"))
                .unwrap_err()
                .to_string()
                .contains("cargo xtask image")
        );
    }
}
