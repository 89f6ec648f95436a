//! `/etc/cirrus/boot.toml`: what the first stage of cirrus-init does before switching root.
//!
//! Written by the image builder into the initramfs ([`BootConfig::to_toml`]), read by cirrus-init's
//! first stage ([`BootConfig::load`]). See `docs/boot.md`.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::ConfigError;

/// Default time the first stage waits for the root device node to appear.
pub const DEFAULT_DEVICE_TIMEOUT_MS: u64 = 10_000;

/// Where the boot config lives in the initramfs.
pub const BOOT_CONFIG_PATH: &str = "/etc/cirrus/boot.toml";

/// The first-stage configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootConfig {
    /// `uname -r` of the kernel; modules live in `/lib/modules/<kernel_version>/`.
    pub kernel_version: String,
    /// How long to wait for the root device node (and `[[mount]]` devices), in milliseconds.
    #[serde(default = "default_device_timeout_ms")]
    pub device_timeout_ms: u64,
    /// Module file names relative to `/lib/modules/<kernel_version>/`, in load order.
    #[serde(default)]
    pub modules: Vec<String>,
    /// The system image, mounted read-only as the new `/`.
    pub root: RootMount,
    /// Mounted below the new root after it, in order (TOML: `[[mount]]`).
    #[serde(rename = "mount", default)]
    pub mounts: Vec<Mount>,
}

/// The root file system (the system image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootMount {
    /// Device node, e.g. `/dev/vda`.
    pub device: PathBuf,
    /// File system type, e.g. `erofs`.
    pub fstype: String,
    /// Mount data (`-o`), e.g. `noatime`; the root is always mounted read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
}

/// A file system mounted inside the new root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Device node (`/dev/vdb`) or the source for virtual file systems (`tmpfs`).
    pub device: String,
    /// Absolute path inside the new root, e.g. `/data`.
    pub target: PathBuf,
    pub fstype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    /// File system type mounted instead (source `none`) if this mount fails, e.g. `tmpfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

fn default_device_timeout_ms() -> u64 {
    DEFAULT_DEVICE_TIMEOUT_MS
}

/// Same shape with positions, for the checks done after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBootConfig {
    kernel_version: Spanned<String>,
    #[serde(default = "default_device_timeout_ms")]
    device_timeout_ms: u64,
    #[serde(default)]
    modules: Vec<Spanned<String>>,
    root: RawRootMount,
    #[serde(rename = "mount", default)]
    mounts: Vec<RawMount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRootMount {
    device: Spanned<PathBuf>,
    fstype: String,
    options: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    device: String,
    target: Spanned<PathBuf>,
    fstype: String,
    options: Option<String>,
    fallback: Option<String>,
}

impl BootConfig {
    /// Parses `text`, the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<BootConfig, ConfigError> {
        let raw: RawBootConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        let err = |span: std::ops::Range<usize>, message: String| {
            ConfigError::at(path, text, Some(span), message)
        };

        let kernel_version = raw.kernel_version.get_ref();
        if kernel_version.is_empty() || kernel_version.contains('/') {
            return Err(err(
                raw.kernel_version.span(),
                format!(
                    "`kernel_version` must be a release like `6.1.0-18-amd64`, got `{kernel_version}`"
                ),
            ));
        }
        for module in &raw.modules {
            let p = Path::new(module.get_ref());
            if module.get_ref().is_empty()
                || !p.components().all(|c| matches!(c, Component::Normal(_)))
            {
                return Err(err(
                    module.span(),
                    format!(
                        "module `{}` must be a file name relative to /lib/modules/{kernel_version}/",
                        module.get_ref()
                    ),
                ));
            }
        }
        if !raw.root.device.get_ref().is_absolute() {
            return Err(err(
                raw.root.device.span(),
                format!(
                    "`root.device` must be an absolute path like `/dev/vda`, got `{}`",
                    raw.root.device.get_ref().display()
                ),
            ));
        }
        for mount in &raw.mounts {
            let target = mount.target.get_ref();
            if !target.is_absolute()
                || target
                    .components()
                    .any(|c| matches!(c, Component::ParentDir))
                || target == Path::new("/")
            {
                return Err(err(
                    mount.target.span(),
                    format!(
                        "mount `target` must be an absolute path below the new root like `/data`, got `{}`",
                        target.display()
                    ),
                ));
            }
        }

        Ok(BootConfig {
            kernel_version: raw.kernel_version.into_inner(),
            device_timeout_ms: raw.device_timeout_ms,
            modules: raw.modules.into_iter().map(Spanned::into_inner).collect(),
            root: RootMount {
                device: raw.root.device.into_inner(),
                fstype: raw.root.fstype,
                options: raw.root.options,
            },
            mounts: raw
                .mounts
                .into_iter()
                .map(|m| Mount {
                    device: m.device,
                    target: m.target.into_inner(),
                    fstype: m.fstype,
                    options: m.options,
                    fallback: m.fallback,
                })
                .collect(),
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<BootConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read boot config: {e}")))?;
        BootConfig::parse(path, &text)
    }

    /// The TOML text [`BootConfig::parse`] reads back to `self`.
    pub fn to_toml(&self) -> String {
        match toml::to_string(self) {
            Ok(text) => text,
            // Not reachable for this type (no maps with non-string keys, no bare values after tables);
            // kept as a comment rather than a panic so the image builder never crashes on it.
            Err(e) => format!("# cirrus-init-config: cannot serialise boot config: {e}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
kernel_version = "6.1.0-18-amd64"
modules = ["virtio.ko", "virtio_ring.ko", "virtio_blk.ko", "erofs.ko"]

[root]
device = "/dev/vda"
fstype = "erofs"

[[mount]]
device = "/dev/vdb"
target = "/data"
fstype = "ext4"
options = "noatime"
fallback = "tmpfs"
"#;

    fn path() -> &'static Path {
        Path::new("/etc/cirrus/boot.toml")
    }

    #[test]
    fn parses_example_with_defaults() {
        let config = BootConfig::parse(path(), EXAMPLE).unwrap();
        assert_eq!(config.kernel_version, "6.1.0-18-amd64");
        assert_eq!(config.modules.len(), 4);
        assert_eq!(config.root.device, Path::new("/dev/vda"));
        assert_eq!(config.root.options, None);
        assert_eq!(config.device_timeout_ms, 10_000);
        assert_eq!(
            config.mounts,
            [Mount {
                device: "/dev/vdb".into(),
                target: "/data".into(),
                fstype: "ext4".into(),
                options: Some("noatime".into()),
                fallback: Some("tmpfs".into()),
            }]
        );
    }

    #[test]
    fn to_toml_round_trips() {
        let mut config = BootConfig::parse(path(), EXAMPLE).unwrap();
        config.device_timeout_ms = 3000;
        config.root.options = Some("noatime".into());
        config.mounts.push(Mount {
            device: "tmpfs".into(),
            target: "/var".into(),
            fstype: "tmpfs".into(),
            options: None,
            fallback: None,
        });
        let text = config.to_toml();
        assert_eq!(BootConfig::parse(path(), &text).unwrap(), config, "{text}");
        let empty = BootConfig {
            modules: vec![],
            mounts: vec![],
            ..config
        };
        assert_eq!(BootConfig::parse(path(), &empty.to_toml()).unwrap(), empty);
    }

    #[test]
    fn unknown_key_is_located() {
        let text = EXAMPLE.replace("fallback", "fallbak");
        let e = BootConfig::parse(path(), &text).unwrap_err();
        assert_eq!(e.line, Some(14));
        assert!(
            e.message.starts_with("unknown key `fallbak`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_root() {
        let e = BootConfig::parse(path(), "kernel_version = \"6.1\"\n").unwrap_err();
        assert!(e.message.contains("`root`"), "{}", e.message);
    }

    #[test]
    fn rejects_bad_paths() {
        let e = BootConfig::parse(path(), &EXAMPLE.replace("\"/dev/vda\"", "\"vda\"")).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("root.device"), "{}", e.message);
        let e = BootConfig::parse(path(), &EXAMPLE.replace("\"/data\"", "\"data\"")).unwrap_err();
        assert_eq!(e.line, Some(11));
        let e = BootConfig::parse(path(), &EXAMPLE.replace("\"erofs.ko\"", "\"../erofs.ko\""))
            .unwrap_err();
        assert_eq!(e.line, Some(3));
        let e = BootConfig::parse(path(), &EXAMPLE.replace("6.1.0-18-amd64", "")).unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
