//! Device definitions: `images/devices/<name>/device.toml`, parsed strictly and validated.
//!
//! The format is documented for OEMs in `docs/devices.md`. Every error names the file, the line
//! and column, and says what to do.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Where device definitions live, relative to the repository root.
pub const DEVICES_DIR: &str = "images/devices";
/// Unit files shared by every device, relative to the repository root.
pub const UNITS_DIR: &str = "images/units";
/// The binary the initramfs runs as `/init`; every device must list it.
pub const INIT_BINARY: &str = "cirrus-init";

/// A device the image builder can build for (one `device.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Directory name under `images/devices/`, also `[device] name`.
    pub name: String,
    pub description: String,
    /// `images/devices/<name>/` (absolute when `repo_root` was).
    pub dir: PathBuf,
    /// CPU architecture (`x86_64`: the only one the builder supports today).
    pub arch: String,
    pub kernel: KernelSpec,
    pub display: Display,
    /// In the order the device attaches its block devices (system first).
    pub partitions: Vec<Partition>,
    pub packages: PackageSpec,
    /// Cirrus programs installed to `/system/bin` (must include `cirrus-init`).
    pub binaries: Vec<String>,
    /// Unit files installed to `/system/etc/init` (`images/units/<name>.toml`, or the device's own
    /// `units/<name>.toml`, which wins).
    pub services: Vec<String>,
    /// System apps: web/wasm app project directories (relative to the repository root), packed and
    /// signed with the build's platform key into `/system/app/<id>.cpkg`; the app manager installs
    /// them at boot.
    pub apps: Vec<String>,
    pub qemu: QemuSpec,
}

/// `[kernel]`: which Debian kernel package, its command line and early modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    /// A Debian package: a metapackage such as `linux-image-amd64` (resolved to the current ABI
    /// package at build time) or a versioned one such as `linux-image-6.1.0-56-amd64`.
    pub package: String,
    pub cmdline: String,
    /// The wanted modules, by module name (`-` and `_` are the same). The builder adds their
    /// dependencies and orders them.
    pub modules: Vec<String>,
    /// How long the first stage waits for the root device node.
    pub device_timeout_ms: u64,
}

/// `[display]`: the panel size in pixels (portrait).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Display {
    pub width: u32,
    pub height: u32,
}

/// One `[[partition]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// `erofs` for the system partition (built from the packages), `ext4` for writable ones.
    pub fstype: String,
    /// The block device node the kernel gives it, e.g. `/dev/vda`.
    pub device: PathBuf,
    /// Where it is mounted on the device (`/` for the system partition).
    pub mount: PathBuf,
    /// Size of a writable partition's image, created once and kept across builds.
    pub size_mib: Option<u64>,
    pub options: Option<String>,
    /// File system mounted instead if this one fails (e.g. `tmpfs`).
    pub fallback: Option<String>,
}

impl Partition {
    /// Whether this is the read-only system partition, mounted as `/`.
    pub fn is_root(&self) -> bool {
        self.mount == Path::new("/")
    }
}

/// `[packages]`: Debian packages unpacked into the system image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    /// Installed with their dependency closure (Depends and Pre-Depends, not Recommends).
    pub include: Vec<String>,
    /// Never installed, even when something depends on them.
    pub exclude: Vec<String>,
    /// Files the packages ship that the image leaves out (paths inside the image, e.g. the
    /// `.desktop` entry of a helper program that should not be on the launcher).
    pub remove: Vec<String>,
}

/// Which kernel file QEMU boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QemuKernel {
    /// The uncompressed ELF (PVH entry): about twice as fast to boot under TCG.
    Vmlinux,
    /// Debian's compressed bzImage.
    Vmlinuz,
}

/// `[qemu]`: how the emulator runs this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuSpec {
    /// The emulator binary (default `qemu-system-<arch>`).
    pub binary: String,
    pub memory_mib: u32,
    pub smp: u32,
    pub kernel: QemuKernel,
    /// Accelerator (default `tcg`).
    pub accel: String,
    /// CPU model (default `max`).
    pub cpu: String,
    /// Extra `-device` arguments, in order. A `virtio-gpu*` device without `xres=`/`yres=` gets
    /// the `[display]` size appended.
    pub devices: Vec<String>,
}

/// A device definition that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "unknown device `{name}`; available devices: {}. A device is a directory `images/devices/<name>/` \
         with a `device.toml` (see docs/devices.md)",
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    Unknown {
        name: String,
        available: Vec<String>,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A syntax, schema or consistency error at a position in the file.
    #[error("{}:{line}:{column}: {message}\n  ({hint})", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        hint: String,
    },
}

const HINT: &str = "docs/devices.md lists every key of device.toml";

// ----- the file as written -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    device: RawDeviceSection,
    kernel: RawKernel,
    display: Spanned<Display>,
    #[serde(default)]
    partition: Vec<Spanned<RawPartition>>,
    #[serde(default)]
    packages: Option<RawPackages>,
    system: Spanned<RawSystem>,
    qemu: Spanned<RawQemu>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeviceSection {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    arch: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    package: Spanned<String>,
    #[serde(default)]
    cmdline: String,
    #[serde(default)]
    modules: Vec<Spanned<String>>,
    device_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    name: Spanned<String>,
    fstype: Spanned<String>,
    device: Spanned<PathBuf>,
    mount: Spanned<PathBuf>,
    size_mib: Option<Spanned<u64>>,
    options: Option<String>,
    fallback: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackages {
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default)]
    remove: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    #[serde(default)]
    binaries: Vec<Spanned<String>>,
    #[serde(default)]
    services: Vec<Spanned<String>>,
    #[serde(default)]
    apps: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQemu {
    binary: Option<String>,
    memory_mib: Spanned<u32>,
    #[serde(default = "one")]
    smp: Spanned<u32>,
    #[serde(default = "default_qemu_kernel")]
    kernel: QemuKernel,
    #[serde(default = "default_accel")]
    accel: String,
    #[serde(default = "default_cpu")]
    cpu: String,
    #[serde(default)]
    devices: Vec<String>,
}

fn one() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}
fn default_qemu_kernel() -> QemuKernel {
    QemuKernel::Vmlinux
}
fn default_accel() -> String {
    "tcg".to_string()
}
fn default_cpu() -> String {
    "max".to_string()
}

/// Default for `[kernel] device_timeout_ms`: module loading under TCG is slow.
pub const DEFAULT_DEVICE_TIMEOUT_MS: u64 = 10_000;

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Makes serde's wording fit a file people edit by hand.
fn reword(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("missing required key {rest}");
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    message.to_string()
}

struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, message: impl fmt::Display) -> DeviceError {
        self.error_with_hint(span, message, HINT)
    }

    fn error_with_hint(
        &self,
        span: Range<usize>,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> DeviceError {
        let (line, column) = line_column(self.text, span.start);
        DeviceError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.to_string(),
            hint: hint.into(),
        }
    }
}

impl Device {
    /// Loads `images/devices/<name>/device.toml` below `repo_root`.
    pub fn load(repo_root: &Path, name: &str) -> Result<Device, DeviceError> {
        let valid_name = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let dir = repo_root.join(DEVICES_DIR).join(name);
        let path = dir.join("device.toml");
        if !valid_name || !path.is_file() {
            return Err(DeviceError::Unknown {
                name: name.to_string(),
                available: Device::available(repo_root),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| DeviceError::Io {
            path: path.clone(),
            source,
        })?;
        // Errors name the file relative to the repository, as people type it.
        let shown = path.strip_prefix(repo_root).unwrap_or(&path);
        Device::parse(repo_root, &dir, shown, &text)
    }

    /// Names of every device under `images/devices/`, sorted.
    pub fn available(repo_root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(repo_root.join(DEVICES_DIR))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("device.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// `device.toml` of this device.
    pub fn definition_path(&self) -> PathBuf {
        self.dir.join("device.toml")
    }

    /// The system partition (validated to exist at load time).
    pub fn root_partition(&self) -> &Partition {
        // Device::parse guarantees exactly one root partition; fall back to the first one
        // rather than panic if someone builds a Device by hand.
        self.partitions
            .iter()
            .find(|p| p.is_root())
            .unwrap_or(&self.partitions[0])
    }

    /// The writable partitions, each backed by `<name>.img`, in attach order.
    pub fn writable_partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter().filter(|p| !p.is_root())
    }

    /// Parses the text of a device definition. `dir` is the device's directory, `shown` the path
    /// errors name.
    pub fn parse(
        repo_root: &Path,
        dir: &Path,
        shown: &Path,
        text: &str,
    ) -> Result<Device, DeviceError> {
        let src = Source { path: shown, text };
        let raw: RawDevice = toml::from_str(text).map_err(|e| {
            let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
            DeviceError::Invalid {
                path: shown.to_path_buf(),
                line,
                column,
                message: reword(e.message()),
                hint: HINT.to_string(),
            }
        })?;

        // [device]
        let section = raw.device;
        let dir_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if section.name.get_ref() != dir_name {
            return Err(src.error(
                section.name.span(),
                format_args!(
                    "[device] name is `{}` but the directory is `{dir_name}`; they must be the same",
                    section.name.get_ref()
                ),
            ));
        }
        if section.arch.get_ref() != "x86_64" {
            return Err(src.error_with_hint(
                section.arch.span(),
                format_args!("arch `{}` is not supported", section.arch.get_ref()),
                "the builder runs on x86_64 and cannot cross-build yet: use arch = \"x86_64\"",
            ));
        }

        // [kernel]
        let kernel = raw.kernel;
        if kernel.package.get_ref().trim().is_empty() {
            return Err(src.error(kernel.package.span(), "[kernel] package is empty; name a Debian kernel package such as \"linux-image-amd64\""));
        }
        let mut modules = Vec::new();
        for m in &kernel.modules {
            let name = m.get_ref().trim();
            if name.is_empty() || name.contains('/') || name.ends_with(".ko") {
                return Err(src.error(
                    m.span(),
                    format_args!("`{}` is not a module name; write it as the kernel does, e.g. \"virtio_blk\"", m.get_ref()),
                ));
            }
            modules.push(name.to_string());
        }

        // [display]
        let display_span = raw.display.span();
        let display = raw.display.into_inner();
        if display.width == 0 || display.height == 0 {
            return Err(src.error(
                display_span,
                "[display] width and height must be greater than 0",
            ));
        }

        // [[partition]]
        if raw.partition.is_empty() {
            return Err(src.error(
                0..0,
                "no [[partition]]: a device needs at least the system partition (fstype = \"erofs\", mount = \"/\")",
            ));
        }
        let mut partitions = Vec::new();
        for (index, p) in raw.partition.into_iter().enumerate() {
            let span = p.span();
            let p = p.into_inner();
            let name = p.name.get_ref();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            {
                return Err(src.error(
                    p.name.span(),
                    format_args!("partition name `{name}` must be [A-Za-z0-9_-]+"),
                ));
            }
            if partitions.iter().any(|q: &Partition| &q.name == name) {
                return Err(src.error(
                    p.name.span(),
                    format_args!("a partition named `{name}` is already defined"),
                ));
            }
            if !p.mount.get_ref().is_absolute() {
                return Err(src.error(
                    p.mount.span(),
                    "mount must be an absolute path such as \"/data\"",
                ));
            }
            if !p.device.get_ref().is_absolute() {
                return Err(src.error(
                    p.device.span(),
                    "device must be an absolute path such as \"/dev/vdb\"",
                ));
            }
            let is_root = p.mount.get_ref() == Path::new("/");
            let fstype = p.fstype.get_ref().as_str();
            if is_root {
                if fstype != "erofs" {
                    return Err(src.error(
                        p.fstype.span(),
                        format_args!("the system partition (mount = \"/\") must be fstype = \"erofs\", not `{fstype}`"),
                    ));
                }
                if let Some(size) = &p.size_mib {
                    return Err(src.error(
                        size.span(),
                        "the system partition is sized by its contents: remove size_mib",
                    ));
                }
            } else {
                if fstype != "ext4" {
                    return Err(src.error(
                        p.fstype.span(),
                        format_args!("writable partitions must be fstype = \"ext4\" (the builder formats them), not `{fstype}`"),
                    ));
                }
                match &p.size_mib {
                    None => {
                        return Err(src.error(span, format_args!("partition `{name}` needs size_mib (its image is created with that size)")));
                    }
                    Some(size) if *size.get_ref() == 0 => {
                        return Err(src.error(size.span(), "size_mib must be greater than 0"));
                    }
                    Some(_) => {}
                }
            }
            // QEMU attaches the disks in this order: /dev/vda, /dev/vdb, …
            let device = p.device.get_ref().to_string_lossy();
            if let Some(letter) = device.strip_prefix("/dev/vd") {
                let expected = format!("{}", (b'a' + index as u8) as char);
                if letter != expected {
                    return Err(src.error(
                        p.device.span(),
                        format_args!(
                            "partition #{} is attached as disk #{} so the kernel names it /dev/vd{expected}, not {device}; \
                             reorder the [[partition]] tables or fix device",
                            index + 1,
                            index + 1
                        ),
                    ));
                }
            }
            partitions.push(Partition {
                name: name.clone(),
                fstype: fstype.to_string(),
                device: p.device.into_inner(),
                mount: p.mount.into_inner(),
                size_mib: p.size_mib.map(Spanned::into_inner),
                options: p.options,
                fallback: p.fallback,
            });
        }
        let roots = partitions.iter().filter(|p| p.is_root()).count();
        if roots != 1 {
            return Err(src.error(
                0..0,
                format_args!("exactly one [[partition]] must have mount = \"/\" (the erofs system image); found {roots}"),
            ));
        }
        if !partitions[0].is_root() {
            return Err(src.error(
                0..0,
                "the system partition (mount = \"/\") must be the first [[partition]]",
            ));
        }

        // [packages]
        let (include, exclude, remove) = match raw.packages {
            Some(p) => (p.include, p.exclude, p.remove),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        for path in &remove {
            let p = path.get_ref();
            if !p.starts_with('/') || p.split('/').any(|c| c == ".." || c == ".") || p == "/" {
                return Err(src.error(
                    path.span(),
                    format_args!("`{p}` in [packages] remove must be an absolute path inside the image (no `..`)"),
                ));
            }
        }
        for pkg in include.iter().chain(&exclude) {
            if !is_debian_package_name(pkg.get_ref()) {
                return Err(src.error(
                    pkg.span(),
                    format_args!("`{}` is not a Debian package name", pkg.get_ref()),
                ));
            }
        }
        for pkg in &include {
            if exclude.iter().any(|e| e.get_ref() == pkg.get_ref()) {
                return Err(src.error(
                    pkg.span(),
                    format_args!("package `{}` is both included and excluded", pkg.get_ref()),
                ));
            }
        }

        // [system]
        let system_span = raw.system.span();
        let system = raw.system.into_inner();
        for b in &system.binaries {
            let name = b.get_ref();
            if name.is_empty() || name.contains('/') {
                return Err(src.error(
                    b.span(),
                    format_args!("`{name}` is not a program name (no slashes)"),
                ));
            }
        }
        if !system.binaries.iter().any(|b| b.get_ref() == INIT_BINARY) {
            return Err(src.error(
                system_span,
                format_args!("[system] binaries must include \"{INIT_BINARY}\": the initramfs runs it as /init"),
            ));
        }
        for s in &system.services {
            let name = s.get_ref();
            if unit_source(repo_root, dir, name).is_none() {
                return Err(src.error_with_hint(
                    s.span(),
                    format_args!("service `{name}` has no unit file"),
                    format!(
                        "write {UNITS_DIR}/{name}.toml (shared) or {}/units/{name}.toml (this device only); \
                         the format is in docs/unit-files.md",
                        dir.strip_prefix(repo_root).unwrap_or(dir).display()
                    ),
                ));
            }
        }

        for a in &system.apps {
            let rel = a.get_ref();
            let path = Path::new(rel);
            let inside = !rel.is_empty()
                && path.is_relative()
                && path
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(src.error(
                    a.span(),
                    format_args!(
                        "app `{rel}` is not a directory of the repository (relative, no `..`)"
                    ),
                ));
            }
            if !repo_root.join(path).join("manifest.webmanifest").is_file() {
                return Err(src.error(
                    a.span(),
                    format_args!("app `{rel}` has no manifest.webmanifest"),
                ));
            }
        }

        // [qemu]
        let qemu = raw.qemu.into_inner();
        if *qemu.memory_mib.get_ref() < 64 {
            return Err(src.error(qemu.memory_mib.span(), "memory_mib must be at least 64"));
        }
        if *qemu.smp.get_ref() == 0 {
            return Err(src.error(qemu.smp.span(), "smp must be at least 1"));
        }

        Ok(Device {
            name: section.name.into_inner(),
            description: section.description,
            dir: dir.to_path_buf(),
            arch: section.arch.get_ref().clone(),
            kernel: KernelSpec {
                package: kernel.package.into_inner(),
                cmdline: kernel.cmdline,
                modules,
                device_timeout_ms: kernel
                    .device_timeout_ms
                    .unwrap_or(DEFAULT_DEVICE_TIMEOUT_MS),
            },
            display,
            partitions,
            packages: PackageSpec {
                include: include.into_iter().map(Spanned::into_inner).collect(),
                exclude: exclude.into_iter().map(Spanned::into_inner).collect(),
                remove: remove.into_iter().map(Spanned::into_inner).collect(),
            },
            binaries: system
                .binaries
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            services: system
                .services
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            apps: system.apps.into_iter().map(Spanned::into_inner).collect(),
            qemu: QemuSpec {
                binary: qemu
                    .binary
                    .unwrap_or_else(|| format!("qemu-system-{}", section.arch.get_ref())),
                memory_mib: qemu.memory_mib.into_inner(),
                smp: qemu.smp.into_inner(),
                kernel: qemu.kernel,
                accel: qemu.accel,
                cpu: qemu.cpu,
                devices: qemu.devices,
            },
        })
    }
}

/// The unit file for service `name`: the device's own `units/<name>.toml`, else the shared one.
pub fn unit_source(repo_root: &Path, device_dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let own = device_dir.join("units").join(format!("{name}.toml"));
    if own.is_file() {
        return Some(own);
    }
    let shared = repo_root.join(UNITS_DIR).join(format!("{name}.toml"));
    shared.is_file().then_some(shared)
}

/// Debian policy: `[a-z0-9][a-z0-9+.-]+`.
pub(crate) fn is_debian_package_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() >= 2
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[device]
name = "testdev"
description = "test"
arch = "x86_64"

[kernel]
package = "linux-image-amd64"
cmdline = "console=ttyS0"
modules = ["virtio_blk"]

[display]
width = 720
height = 1440

[[partition]]
name = "system"
fstype = "erofs"
device = "/dev/vda"
mount = "/"

[[partition]]
name = "data"
fstype = "ext4"
device = "/dev/vdb"
mount = "/data"
size_mib = 64
fallback = "tmpfs"

[packages]
include = ["libc6"]
exclude = ["debconf"]

[system]
binaries = ["cirrus-init"]
services = []

[qemu]
memory_mib = 512
"#;

    fn parse(text: &str) -> Result<Device, DeviceError> {
        let root = Path::new("/nonexistent-repo");
        let dir = root.join("images/devices/testdev");
        Device::parse(
            root,
            &dir,
            Path::new("images/devices/testdev/device.toml"),
            text,
        )
    }

    /// 1-based line of the first occurrence of `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    fn error_of(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn good_definition_parses_with_defaults() {
        let d = parse(GOOD).unwrap();
        assert_eq!(d.name, "testdev");
        assert_eq!(d.kernel.modules, ["virtio_blk"]);
        assert_eq!(d.kernel.device_timeout_ms, DEFAULT_DEVICE_TIMEOUT_MS);
        assert_eq!(d.partitions.len(), 2);
        assert_eq!(d.root_partition().name, "system");
        assert_eq!(d.writable_partitions().next().unwrap().size_mib, Some(64));
        assert_eq!(d.qemu.binary, "qemu-system-x86_64");
        assert_eq!(d.qemu.smp, 1);
        assert_eq!(d.qemu.kernel, QemuKernel::Vmlinux);
        assert_eq!(d.qemu.accel, "tcg");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("arch = \"x86_64\"", "arch = \"x86_64\"\ncolour = \"blue\"");
        let e = error_of(&text);
        assert!(
            e.starts_with("images/devices/testdev/device.toml:6:1: unknown key `colour`"),
            "{e}"
        );
        assert!(e.contains("docs/devices.md"), "{e}");
    }

    #[test]
    fn wrong_type_names_line() {
        let text = GOOD.replace("width = 720", "width = \"wide\"");
        let e = error_of(&text);
        let line = line_of(&text, "width =");
        assert!(
            e.starts_with(&format!("images/devices/testdev/device.toml:{line}:9: ")),
            "{e}"
        );
        assert!(e.contains("invalid type: string \"wide\""), "{e}");
    }

    #[test]
    fn missing_kernel_section_is_reported() {
        let start = GOOD.find("[kernel]").unwrap();
        let end = GOOD.find("[display]").unwrap();
        let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
        let e = error_of(&text);
        assert!(
            e.starts_with("images/devices/testdev/device.toml:1:1: missing required key `kernel`"),
            "{e}"
        );
    }

    #[test]
    fn consistency_errors_point_at_the_value() {
        let e = error_of(&GOOD.replace("device = \"/dev/vdb\"", "device = \"/dev/vdc\""));
        let line = line_of(GOOD, "device = \"/dev/vdb\"");
        assert!(
            e.starts_with(&format!("images/devices/testdev/device.toml:{line}:10: ")),
            "{e}"
        );
        assert!(e.contains("/dev/vdb"), "{e}");

        let e = error_of(&GOOD.replace(
            "binaries = [\"cirrus-init\"]",
            "binaries = [\"cirrus-compositor\"]",
        ));
        let line = line_of(GOOD, "[system]");
        assert!(
            e.contains(&format!(
                ":{line}:1: [system] binaries must include \"cirrus-init\""
            )),
            "{e}"
        );

        let e = error_of(&GOOD.replace("size_mib = 64\n", ""));
        assert!(e.contains("needs size_mib"), "{e}");

        let e = error_of(&GOOD.replace("services = []", "services = [\"nosuch\"]"));
        let line = line_of(GOOD, "services = []");
        assert!(
            e.contains(&format!(":{line}:13: service `nosuch` has no unit file")),
            "{e}"
        );
        assert!(e.contains("images/units/nosuch.toml"), "{e}");

        let e = error_of(&GOOD.replace("include = [\"libc6\"]", "include = [\"debconf\"]"));
        assert!(e.contains("both included and excluded"), "{e}");

        let e =
            error_of(&GOOD.replace("memory_mib = 512", "memory_mib = 512\nkernel = \"bzimage\""));
        assert!(e.contains("unknown value `bzimage`"), "{e}");
    }

    #[test]
    fn unknown_device_lists_the_available_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("images/devices/alpha")).unwrap();
        std::fs::write(dir.path().join("images/devices/alpha/device.toml"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("images/devices/not-a-device")).unwrap();
        let e = Device::load(dir.path(), "beta").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown device `beta`; available devices: alpha."),
            "{e}"
        );
        assert_eq!(Device::available(dir.path()), ["alpha"]);
        let e = Device::load(dir.path(), "../alpha")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("unknown device"), "{e}");
    }
}
