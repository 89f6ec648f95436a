//! Where the workspace and its target directory are, as cargo sees them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The Cirrus workspace, as cargo sees it.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
}

impl Workspace {
    /// Asks `cargo metadata` (run from this crate's workspace) where things are.
    pub fn locate() -> Result<Workspace> {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let output = cargo()
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(manifest_dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("could not run cargo metadata")?;
        if !output.status.success() {
            bail!("cargo metadata failed ({})", output.status);
        }
        Workspace::from_metadata(&output.stdout)
    }

    fn from_metadata(json: &[u8]) -> Result<Workspace> {
        let meta: serde_json::Value = serde_json::from_slice(json)
            .context("cargo metadata printed something that is not JSON")?;
        let path = |key: &str| -> Result<PathBuf> {
            meta.get(key)
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
                .with_context(|| format!("cargo metadata has no `{key}`"))
        };
        Ok(Workspace {
            root: path("workspace_root")?,
        })
    }

    /// `<workspace>/target/cirrus/<device>`: where the image of `device` is built, its boot-test
    /// screenshot and serial log kept. Always inside the checkout (as the README says), even when
    /// cargo's own artefacts live in a shared `CARGO_TARGET_DIR`: an image is small next to them
    /// and belongs to this checkout's sources.
    pub fn image_dir(&self, device: &str) -> PathBuf {
        self.root.join("target").join("cirrus").join(device)
    }
}

/// The cargo that runs us (`$CARGO`, set by `cargo run`), or the one on `PATH`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `$CIRRUS_CACHE_DIR`, else `~/.cache/cirrus`: downloaded Debian packages and such.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CIRRUS_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).context(
        "neither CIRRUS_CACHE_DIR nor HOME is set: set CIRRUS_CACHE_DIR to a cache directory",
    )?;
    Ok(PathBuf::from(home).join(".cache").join("cirrus"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_metadata() {
        let json = br#"{"packages":[],"workspace_root":"/src/cirrus","target_directory":"/cache/target","version":1}"#;
        let ws = Workspace::from_metadata(json).unwrap();
        assert_eq!(ws.root, Path::new("/src/cirrus"));
        assert_eq!(
            ws.image_dir("qemu-x86_64"),
            Path::new("/src/cirrus/target/cirrus/qemu-x86_64")
        );
        assert!(Workspace::from_metadata(br#"{"target_directory":"/x"}"#).is_err());
    }
}
