//! `navigator.cirrus.device`: what the system image says about itself (`/system/etc/build.toml`,
//! written by the image builder: device, description, build id, kernel version), for every app —
//! like Android's `Build` fields it names the build, nothing about the user. Absent when the file
//! is missing or unreadable (a development machine).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where the image builder puts it.
pub const BUILD_TOML: &str = "/system/etc/build.toml";
/// Larger files are not read.
const MAX_BYTES: u64 = 16 * 1024;

/// The build's description, as the page sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device: String,
    #[serde(default)]
    pub description: String,
    pub build_id: String,
    #[serde(default)]
    pub kernel_version: String,
}

/// Reads and parses `path` (None if it is missing, too large or not a build description).
pub fn read(path: &Path) -> Option<DeviceInfo> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    match toml::from_str::<DeviceInfo>(&text) {
        Ok(info) => Some(info),
        Err(e) => {
            tracing::warn!("{}: {e}", path.display());
            None
        }
    }
}

/// The page script defining `navigator.cirrus.device` (injected after the Cirrus API).
pub fn user_script(info: &DeviceInfo) -> String {
    let json = serde_json::to_string(info).unwrap_or_else(|_| "null".into());
    format!(
        "(() => {{ 'use strict'; if (!navigator.cirrus) return; \
         Object.defineProperty(navigator.cirrus, 'device', {{ configurable: false, enumerable: true, \
         writable: false, value: Object.freeze({json}) }}); }})();"
    )
}

/// Gives the pages of `origin` `navigator.cirrus.device` from `path`, when it reads.
pub fn attach(content: &webkit2gtk::UserContentManager, path: &Path, origin: &str) {
    use webkit2gtk::{
        UserContentInjectedFrames, UserContentManagerExt, UserScript, UserScriptInjectionTime,
    };
    let Some(info) = read(path) else { return };
    let own_pages = format!("{origin}/*");
    content.add_script(&UserScript::new(
        &user_script(&info),
        UserContentInjectedFrames::TopFrame,
        UserScriptInjectionTime::Start,
        &[own_pages.as_str()],
        &[],
    ));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_builders_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.toml");
        std::fs::write(
            &path,
            "device = \"qemu-x86_64\"\ndescription = \"QEMU </script>\"\nbuild_id = \"qemu-x86_64-00ff\"\nkernel_version = \"6.1.0-56-amd64\"\n",
        )
        .unwrap();
        let info = read(&path).unwrap();
        assert_eq!(info.device, "qemu-x86_64");
        assert_eq!(info.build_id, "qemu-x86_64-00ff");
        let script = user_script(&info);
        assert!(
            script.contains(r#""kernel_version":"6.1.0-56-amd64""#),
            "{script}"
        );
        assert!(read(&dir.path().join("missing")).is_none());
        std::fs::write(&path, "not = [toml").unwrap();
        assert!(read(&path).is_none());
    }
}
