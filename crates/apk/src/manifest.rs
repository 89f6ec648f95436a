//! The facts of AndroidManifest.xml an installer needs, read from its binary XML: package name,
//! version, SDK levels, requested permissions, the application's label and icon, activities (with
//! their MAIN/LAUNCHER intent filters), activity aliases and services.

use crate::arsc::ResValue;
use crate::axml::{AxmlError, XmlDocument};

/// Android's attribute resource ids (android.R.attr).
pub mod attr {
    pub const LABEL: u32 = 0x0101_0001;
    pub const ICON: u32 = 0x0101_0002;
    pub const NAME: u32 = 0x0101_0003;
    pub const ENABLED: u32 = 0x0101_000e;
    pub const EXPORTED: u32 = 0x0101_0010;
    pub const DRAWABLE: u32 = 0x0101_0199;
    pub const TARGET_ACTIVITY: u32 = 0x0101_0202;
    pub const MIN_SDK_VERSION: u32 = 0x0101_020c;
    pub const VERSION_CODE: u32 = 0x0101_021b;
    pub const VERSION_NAME: u32 = 0x0101_021c;
    pub const TARGET_SDK_VERSION: u32 = 0x0101_0270;
    pub const MAX_SDK_VERSION: u32 = 0x0101_0271;
    pub const ROUND_ICON: u32 = 0x0101_052c;
    pub const VERSION_CODE_MAJOR: u32 = 0x0101_0576;
}

/// The SDK level Android gives an unreleased codename (`minSdkVersion="Q"`).
pub const SDK_CODENAME: u32 = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("AndroidManifest.xml: {0}")]
    Xml(#[from] AxmlError),
    #[error("AndroidManifest.xml: root element is <{0}>, not <manifest>")]
    NotAManifest(String),
    #[error("AndroidManifest.xml: <manifest> has no valid package name ({0:?})")]
    BadPackage(String),
    #[error("AndroidManifest.xml: {0}")]
    Invalid(String),
}

/// A text attribute: a literal, or a reference into the resource table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Literal(String),
    Resource(u32),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentFilter {
    pub actions: Vec<String>,
    pub categories: Vec<String>,
}

/// An activity, activity-alias or service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Fully qualified class name.
    pub name: String,
    pub label: Option<Text>,
    pub icon: Option<u32>,
    pub enabled: bool,
    pub exported: Option<bool>,
    pub intent_filters: Vec<IntentFilter>,
    /// For an `<activity-alias>`: the activity it launches.
    pub target_activity: Option<String>,
}

impl Component {
    pub fn is_launcher(&self) -> bool {
        self.enabled
            && self.intent_filters.iter().any(|f| {
                f.actions.iter().any(|a| a == "android.intent.action.MAIN")
                    && f.categories
                        .iter()
                        .any(|c| c == "android.intent.category.LAUNCHER")
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub package: String,
    /// `versionCodeMajor << 32 | versionCode`.
    pub version_code: u64,
    pub version_name: Option<Text>,
    pub min_sdk: u32,
    pub target_sdk: u32,
    pub max_sdk: Option<u32>,
    pub uses_permissions: Vec<String>,
    pub label: Option<Text>,
    pub icon: Option<u32>,
    pub round_icon: Option<u32>,
    pub activities: Vec<Component>,
    pub services: Vec<Component>,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        Self::from_document(&XmlDocument::parse(bytes)?)
    }

    pub fn from_document(doc: &XmlDocument) -> Result<Self, ManifestError> {
        let root = doc.root();
        if doc.name(root) != "manifest" {
            return Err(ManifestError::NotAManifest(doc.name(root).to_owned()));
        }
        let package = doc.attr_str(root, None, "package").unwrap_or("").to_owned();
        if !valid_package_name(&package) {
            return Err(ManifestError::BadPackage(package));
        }
        let minor = int_attr(doc, root, attr::VERSION_CODE, "versionCode").unwrap_or(0);
        let major = int_attr(doc, root, attr::VERSION_CODE_MAJOR, "versionCodeMajor").unwrap_or(0);
        let version_code = (u64::from(major) << 32) | u64::from(minor);
        let version_name = text_attr(doc, root, attr::VERSION_NAME, "versionName");

        let mut min_sdk = 1;
        let mut target_sdk = None;
        let mut max_sdk = None;
        if let Some(sdk) = doc.children(root, "uses-sdk").next() {
            min_sdk = sdk_attr(doc, sdk, attr::MIN_SDK_VERSION, "minSdkVersion").unwrap_or(1);
            target_sdk = sdk_attr(doc, sdk, attr::TARGET_SDK_VERSION, "targetSdkVersion");
            max_sdk = sdk_attr(doc, sdk, attr::MAX_SDK_VERSION, "maxSdkVersion");
        }
        let mut uses_permissions = Vec::new();
        for tag in [
            "uses-permission",
            "uses-permission-sdk-23",
            "uses-permission-sdk-m",
        ] {
            for p in doc.children(root, tag) {
                if let Some(name) = doc.attr_str(p, Some(attr::NAME), "name")
                    && !uses_permissions.iter().any(|n: &String| n == name)
                {
                    uses_permissions.push(name.to_owned());
                }
            }
        }
        let mut manifest = Manifest {
            package,
            version_code,
            version_name,
            min_sdk,
            target_sdk: target_sdk.unwrap_or(min_sdk),
            max_sdk,
            uses_permissions,
            label: None,
            icon: None,
            round_icon: None,
            activities: Vec::new(),
            services: Vec::new(),
        };
        if let Some(app) = doc.children(root, "application").next() {
            manifest.label = text_attr(doc, app, attr::LABEL, "label");
            manifest.icon = ref_attr(doc, app, attr::ICON, "icon");
            manifest.round_icon = ref_attr(doc, app, attr::ROUND_ICON, "roundIcon");
            for &child in doc.elements[app].children.iter() {
                match doc.name(child) {
                    "activity" | "activity-alias" => {
                        manifest
                            .activities
                            .push(component(doc, child, &manifest.package)?)
                    }
                    "service" => manifest
                        .services
                        .push(component(doc, child, &manifest.package)?),
                    _ => {}
                }
            }
        }
        Ok(manifest)
    }

    pub fn launcher_activities(&self) -> impl Iterator<Item = &Component> {
        self.activities.iter().filter(|a| a.is_launcher())
    }
}

fn valid_package_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `.Main` → `org.x.Main`, `Main` → `org.x.Main`, `a.b.C` unchanged.
pub fn qualify(package: &str, name: &str) -> String {
    if name.starts_with('.') {
        format!("{package}{name}")
    } else if !name.contains('.') {
        format!("{package}.{name}")
    } else {
        name.to_owned()
    }
}

fn component(doc: &XmlDocument, e: usize, package: &str) -> Result<Component, ManifestError> {
    let tag = doc.name(e).to_owned();
    let name = doc
        .attr_str(e, Some(attr::NAME), "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ManifestError::Invalid(format!(
                "<{tag}> at line {} has no android:name",
                doc.elements[e].line
            ))
        })?;
    let mut intent_filters = Vec::new();
    for f in doc.children(e, "intent-filter") {
        let strings = |child: &str| -> Vec<String> {
            doc.children(f, child)
                .filter_map(|c| doc.attr_str(c, Some(attr::NAME), "name"))
                .map(str::to_owned)
                .collect()
        };
        intent_filters.push(IntentFilter {
            actions: strings("action"),
            categories: strings("category"),
        });
    }
    Ok(Component {
        name: qualify(package, name),
        label: text_attr(doc, e, attr::LABEL, "label"),
        icon: ref_attr(doc, e, attr::ICON, "icon"),
        enabled: bool_attr(doc, e, attr::ENABLED, "enabled").unwrap_or(true),
        exported: bool_attr(doc, e, attr::EXPORTED, "exported"),
        intent_filters,
        target_activity: doc
            .attr_str(e, Some(attr::TARGET_ACTIVITY), "targetActivity")
            .map(|t| qualify(package, t)),
    })
}

fn int_attr(doc: &XmlDocument, e: usize, id: u32, name: &str) -> Option<u32> {
    let a = doc.attr(e, Some(id), name)?;
    if a.value.is_int() {
        return Some(a.value.data);
    }
    doc.attr_str(e, Some(id), name)?.trim().parse().ok()
}

fn sdk_attr(doc: &XmlDocument, e: usize, id: u32, name: &str) -> Option<u32> {
    let a = doc.attr(e, Some(id), name)?;
    if a.value.is_int() {
        return Some(a.value.data);
    }
    let s = doc.attr_str(e, Some(id), name)?.trim();
    Some(s.parse().unwrap_or(SDK_CODENAME))
}

fn bool_attr(doc: &XmlDocument, e: usize, id: u32, name: &str) -> Option<bool> {
    let a = doc.attr(e, Some(id), name)?;
    if a.value.data_type == ResValue::TYPE_BOOLEAN {
        return Some(a.value.data != 0);
    }
    doc.attr_str(e, Some(id), name).map(|s| s == "true")
}

fn text_attr(doc: &XmlDocument, e: usize, id: u32, name: &str) -> Option<Text> {
    let a = doc.attr(e, Some(id), name)?;
    if a.value.is_reference() {
        return Some(Text::Resource(a.value.data));
    }
    if a.value.data_type == ResValue::TYPE_STRING || a.value.data_type == ResValue::TYPE_NULL {
        return doc
            .attr_str(e, Some(id), name)
            .map(|s| Text::Literal(s.to_owned()));
    }
    if a.value.is_int() {
        return Some(Text::Literal(a.value.data.to_string()));
    }
    doc.attr_str(e, Some(id), name)
        .map(|s| Text::Literal(s.to_owned()))
}

fn ref_attr(doc: &XmlDocument, e: usize, id: u32, name: &str) -> Option<u32> {
    let a = doc.attr(e, Some(id), name)?;
    a.value.is_reference().then_some(a.value.data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn qualifies_names_like_android() {
        assert_eq!(qualify("org.x", ".Main"), "org.x.Main");
        assert_eq!(qualify("org.x", "Main"), "org.x.Main");
        assert_eq!(qualify("org.x", "com.y.Main"), "com.y.Main");
    }

    #[test]
    fn package_names() {
        assert!(valid_package_name("org.cirrus.hello"));
        assert!(valid_package_name("a.b_2"));
        assert!(!valid_package_name("hello"));
        assert!(!valid_package_name("org..x"));
        assert!(!valid_package_name("org.1x"));
        assert!(!valid_package_name("org.x/../y"));
    }
}
