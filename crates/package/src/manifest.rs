//! The app manifest: a W3C Web App Manifest (`manifest.webmanifest` at the package root) extended by
//! a `cirrus` member that says who the app is (id, version, kind), what it may do (permissions,
//! background work) and which intents it answers. Format documented in `docs/app-packages.md`.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest manifest accepted (real ones are a few KiB).
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Most icons, permissions or intents one manifest may list.
const MAX_LIST: usize = 64;

/// Why a manifest is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest.webmanifest is not valid JSON for a Cirrus manifest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest.webmanifest is {0} bytes; the limit is {MAX_MANIFEST_BYTES}")]
    TooLarge(usize),
    #[error("manifest field `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field,
        message: message.into(),
    }
}

/// The whole manifest: W3C members plus `cirrus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Web apps: the page opened first (a path inside the package). Ignored for wasm apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_url: Option<String>,
    #[serde(default)]
    pub display: Display,
    #[serde(default)]
    pub orientation: Orientation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    #[serde(default)]
    pub icons: Vec<Icon>,
    pub cirrus: CirrusMember,
}

/// W3C `display`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Display {
    Fullscreen,
    #[default]
    Standalone,
    MinimalUi,
    Browser,
}

/// W3C `orientation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Orientation {
    #[default]
    Any,
    Natural,
    Portrait,
    PortraitPrimary,
    PortraitSecondary,
    Landscape,
    LandscapePrimary,
    LandscapeSecondary,
}

/// W3C `icons[]` entry; `src` is a path inside the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Icon {
    pub src: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

impl Icon {
    /// Largest square size this icon declares (`"48x48 96x96"` → 96); `any` counts as 1024.
    pub fn largest_size(&self) -> u32 {
        let Some(sizes) = &self.sizes else { return 0 };
        sizes
            .split_whitespace()
            .filter_map(|s| {
                if s.eq_ignore_ascii_case("any") {
                    Some(1024)
                } else {
                    s.split_once(['x', 'X']).and_then(|(w, _)| w.parse().ok())
                }
            })
            .max()
            .unwrap_or(0)
    }
}

/// The `cirrus` member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirrusMember {
    /// Reverse-domain id, e.g. `org.example.counter`: names the data directory and the uid.
    pub id: String,
    pub version: Version,
    pub kind: AppKind,
    /// Wasm apps: the component's path inside the package (default `app.wasm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundWork>,
    #[serde(default)]
    pub intents: Vec<IntentFilter>,
}

/// What runs the app. (Android packages are not in this format: the app manager installs APKs
/// through their own reader and records their kind as `android`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    Web,
    Wasm,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Web => "web",
            AppKind::Wasm => "wasm",
        }
    }
}

/// A capability an app asks for. Unknown names are refused (a typo must not silently drop a grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// TCP/UDP sockets (WASI sockets are linked only with this).
    Network,
    /// Post notifications.
    Notifications,
    /// Keep running or be woken while not in the foreground.
    Background,
    /// Read and write the user's files (`/data/user/0`).
    UserFiles,
    /// Start other apps through intents.
    LaunchIntents,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Network,
        Permission::Notifications,
        Permission::Background,
        Permission::UserFiles,
        Permission::LaunchIntents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Network => "network",
            Permission::Notifications => "notifications",
            Permission::Background => "background",
            Permission::UserFiles => "user-files",
            Permission::LaunchIntents => "launch-intents",
        }
    }

    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// Background work the app asks for (needs the `background` permission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackgroundWork {
    /// Wake the app this often (minutes, at least 15) while it is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_minutes: Option<u32>,
    /// Start the app in the background after boot.
    #[serde(default)]
    pub on_boot: bool,
}

/// An intent the app answers (Web Activities / Android intent filters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentFilter {
    /// `view`, `share`, `pick`, `edit` or a reverse-domain custom action.
    pub action: String,
    #[serde(default)]
    pub mime_types: Vec<String>,
    #[serde(default)]
    pub schemes: Vec<String>,
}

/// An app version: 1 to 4 dot-separated decimal numbers, compared numerically (`1.10` > `1.9`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(Vec<u32>);

impl Version {
    pub fn parse(text: &str) -> Result<Version, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return Err(format!(
                "`{text}` is not a version: use 1 to 4 numbers separated by dots, e.g. 1.2.0"
            ));
        }
        let mut numbers = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{text}` is not a version: use 1 to 4 numbers separated by dots, e.g. 1.2.0"
                ));
            }
            numbers.push(part.parse::<u32>().map_err(|e| format!("`{text}`: {e}"))?);
        }
        Ok(Version(numbers))
    }

    fn component(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (0..4)
            .map(|i| self.component(i).cmp(&other.component(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|n| n.to_string()).collect();
        f.write_str(&parts.join("."))
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Is `id` a valid app id: 2+ dot-separated labels of `[a-z0-9_-]`, starting with a letter, ≤ 128
/// bytes. Ids name directories and Unix users, so nothing else is allowed.
pub fn valid_app_id(id: &str) -> bool {
    let labels: Vec<&str> = id.split('.').collect();
    id.len() <= 128
        && labels.len() >= 2
        && labels.iter().all(|l| {
            l.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

/// Is `path` a safe relative path inside a package (the rules zip entry names follow too).
pub fn valid_entry_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 255
        && !path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains('\\')
        && !path.contains("//")
        && !path.bytes().any(|b| b < 0x20 || b == 0x7f || b == b':')
        && path.split('/').all(|seg| seg != "." && seg != "..")
}

fn valid_color(c: &str) -> bool {
    let hex = c.strip_prefix('#').unwrap_or("");
    matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Manifest {
    /// Parses and validates `manifest.webmanifest`.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks what serde cannot: ids, paths, lengths, consistency between members.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let c = &self.cirrus;
        if self.name.trim().is_empty() || self.name.len() > 128 {
            return Err(invalid("name", "must be 1 to 128 bytes"));
        }
        if self
            .short_name
            .as_ref()
            .is_some_and(|s| s.trim().is_empty() || s.len() > 64)
        {
            return Err(invalid("short_name", "must be 1 to 64 bytes"));
        }
        if self.description.as_ref().is_some_and(|s| s.len() > 4096) {
            return Err(invalid("description", "must be at most 4096 bytes"));
        }
        for (field, color) in [
            ("theme_color", &self.theme_color),
            ("background_color", &self.background_color),
        ] {
            if let Some(color) = color
                && !valid_color(color)
            {
                return Err(invalid(
                    field,
                    format!("`{color}` is not a #rgb/#rrggbb colour"),
                ));
            }
        }
        if self.icons.len() > MAX_LIST
            || c.permissions.len() > MAX_LIST
            || c.intents.len() > MAX_LIST
        {
            return Err(invalid(
                "icons/permissions/intents",
                format!("at most {MAX_LIST} entries each"),
            ));
        }
        for icon in &self.icons {
            if !valid_entry_path(&icon.src) {
                return Err(invalid(
                    "icons",
                    format!("`{}` is not a relative path inside the package", icon.src),
                ));
            }
        }
        if !valid_app_id(&c.id) {
            return Err(invalid(
                "cirrus.id",
                format!(
                    "`{}` is not an app id: use reverse-domain lowercase labels, e.g. org.example.notes",
                    c.id
                ),
            ));
        }
        match c.kind {
            AppKind::Wasm => {
                if !valid_entry_path(self.component_path()) {
                    return Err(invalid(
                        "cirrus.component",
                        format!(
                            "`{}` is not a relative path inside the package",
                            self.component_path()
                        ),
                    ));
                }
            }
            AppKind::Web => {
                if c.component.is_some() {
                    return Err(invalid(
                        "cirrus.component",
                        "only wasm apps have a component",
                    ));
                }
                let start = self.start_url.as_deref().unwrap_or("index.html");
                if !valid_entry_path(start.split(['?', '#']).next().unwrap_or("")) {
                    return Err(invalid(
                        "start_url",
                        format!("`{start}` must be a relative path inside the package"),
                    ));
                }
            }
        }
        let mut seen = c.permissions.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != c.permissions.len() {
            return Err(invalid("cirrus.permissions", "lists a permission twice"));
        }
        if let Some(bg) = &c.background {
            if !c.permissions.contains(&Permission::Background) {
                return Err(invalid(
                    "cirrus.background",
                    "background work needs the `background` permission",
                ));
            }
            if bg.periodic_minutes.is_some_and(|m| m < 15) {
                return Err(invalid(
                    "cirrus.background.periodic_minutes",
                    "must be at least 15",
                ));
            }
        }
        for intent in &c.intents {
            if intent.action.is_empty()
                || intent.action.len() > 128
                || !intent
                    .action
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(invalid(
                    "cirrus.intents.action",
                    format!("`{}` is not an action name", intent.action),
                ));
            }
            if intent.mime_types.len() > MAX_LIST || intent.schemes.len() > MAX_LIST {
                return Err(invalid(
                    "cirrus.intents",
                    format!("at most {MAX_LIST} types and schemes"),
                ));
            }
        }
        Ok(())
    }

    /// The label the launcher shows (short_name, else name).
    pub fn label(&self) -> &str {
        self.short_name.as_deref().unwrap_or(&self.name)
    }

    /// Wasm apps: the component's path inside the package.
    pub fn component_path(&self) -> &str {
        self.cirrus.component.as_deref().unwrap_or("app.wasm")
    }

    /// The icon the launcher should use: the largest PNG declared.
    pub fn best_icon(&self) -> Option<&Icon> {
        self.icons
            .iter()
            .filter(|i| {
                i.mime_type.as_deref().is_none_or(|t| t == "image/png")
                    && i.src.to_ascii_lowercase().ends_with(".png")
            })
            .max_by_key(|i| i.largest_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "name": "Counter", "short_name": "Count", "display": "standalone", "orientation": "portrait",
            "theme_color": "#123456", "background_color": "#fff",
            "icons": [{"src": "icons/48.png", "sizes": "48x48", "type": "image/png"}, {"src": "icons/128.png", "sizes": "128x128"}],
            "cirrus": {"id": "org.example.counter", "version": "1.2.0", "kind": "wasm",
                       "permissions": ["notifications", "background"], "background": {"periodic_minutes": 30},
                       "intents": [{"action": "share", "mime_types": ["text/plain"]}]}
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Manifest, ManifestError> {
        Manifest::parse(serde_json::to_string(v).unwrap_or_default().as_bytes())
    }

    #[test]
    fn parses_a_full_manifest() {
        let m = parse(&sample()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.label(), "Count");
        assert_eq!(m.cirrus.kind, AppKind::Wasm);
        assert_eq!(m.component_path(), "app.wasm");
        assert_eq!(m.best_icon().map(|i| i.src.as_str()), Some("icons/128.png"));
        assert_eq!(m.orientation, Orientation::Portrait);
    }

    #[test]
    fn refuses_bad_fields_naming_them() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("/cirrus/id", "Bad Id".into(), "cirrus.id"),
            ("/cirrus/id", "../../etc".into(), "cirrus.id"),
            ("/cirrus/version", "1.x".into(), "not a version"),
            ("/cirrus/kind", "android".into(), "unknown variant"),
            (
                "/cirrus/permissions",
                serde_json::json!(["camera"]),
                "unknown variant",
            ),
            (
                "/cirrus/permissions",
                serde_json::json!(["network", "network"]),
                "twice",
            ),
            ("/cirrus/component", "../x.wasm".into(), "cirrus.component"),
            ("/icons/0/src", "/etc/passwd".into(), "icons"),
            ("/theme_color", "red".into(), "theme_color"),
            (
                "/cirrus/background/periodic_minutes",
                1.into(),
                "at least 15",
            ),
        ];
        for (pointer, value, expect) in cases {
            let mut v = sample();
            if let Some(slot) = v.pointer_mut(pointer) {
                *slot = value;
            } else if let Some(obj) = v.pointer_mut("/cirrus").and_then(|c| c.as_object_mut()) {
                obj.insert(pointer.trim_start_matches("/cirrus/").into(), value);
            }
            let err = parse(&v).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains(expect),
                "{pointer}: expected error containing `{expect}`, got `{err}`"
            );
        }
    }

    #[test]
    fn background_needs_its_permission() {
        let mut v = sample();
        v["cirrus"]["permissions"] = serde_json::json!([]);
        assert!(parse(&v).is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s: &str| Version::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(v("1.10") > v("1.9"));
        assert!(v("2") > v("1.99.99"));
        assert_eq!(v("1.0"), v("1.0"));
        assert_eq!(v("1.0").cmp(&v("1")), Ordering::Equal);
        assert!(Version::parse("1..2").is_err());
        assert!(Version::parse("1.2.3.4.5").is_err());
        assert!(Version::parse("-1").is_err());
    }

    #[test]
    fn entry_paths() {
        for ok in ["app.wasm", "icons/a.png", "a/b/c.txt"] {
            assert!(valid_entry_path(ok), "{ok}");
        }
        for bad in [
            "", "/abs", "a/../b", "..", "a\\b", "a//b", "dir/", "c:x", "a/./b",
        ] {
            assert!(!valid_entry_path(bad), "{bad}");
        }
    }
}
