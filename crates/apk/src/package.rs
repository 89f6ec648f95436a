//! [`ApkInfo`] (what `aapt dump badging` shows that matters, parsed without trusting the file) and
//! [`AndroidPackage`], the verified summary the app manager installs: identity, version, labels per
//! locale, the best icon (adaptive icons reduced to their layers), mapped permissions, signers,
//! native ABIs and launcher activities.

use crate::arsc::{
    ArscError, Config, DENSITY_ANY, DENSITY_MEDIUM, DeviceConfig, EntryValue, ResValue,
    ResourceTable,
};
use crate::axml::XmlDocument;
use crate::der::Certificate;
use crate::manifest::{Manifest, ManifestError, Text, attr};
use crate::permissions::{self, MappedPermission};
use crate::signing::{self, SignatureError, SigningIdentity, Verification};
use crate::zip::{ZipArchive, ZipError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApkError {
    #[error(transparent)]
    Zip(#[from] ZipError),
    #[error("the APK has no AndroidManifest.xml")]
    NoManifest,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("resources.arsc: {0}")]
    Resources(#[from] ArscError),
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
}

/// Image formats an icon layer can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Webp,
    Jpeg,
}

impl ImageFormat {
    fn of(path: &str) -> Option<ImageFormat> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".png") {
            Some(ImageFormat::Png)
        } else if lower.ends_with(".webp") {
            Some(ImageFormat::Webp)
        } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
            Some(ImageFormat::Jpeg)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IconImage {
    pub path: String,
    pub format: ImageFormat,
    /// Density of the configuration it came from (0 = unspecified).
    pub density: u16,
    pub bytes: Vec<u8>,
}

/// One layer of an adaptive icon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IconLayer {
    Image(IconImage),
    /// 0xAARRGGBB.
    Color(u32),
}

/// The launcher icon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Icon {
    Bitmap(IconImage),
    /// An adaptive icon (API 26+), reduced to its two layers; `fallback` is the best bitmap icon
    /// the APK also ships for older platforms, if any.
    Adaptive {
        foreground: Option<IconLayer>,
        background: Option<IconLayer>,
        fallback: Option<IconImage>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LauncherActivity {
    pub name: String,
    pub label: Option<String>,
}

/// The parse of an APK without its signatures.
#[derive(Debug, Clone)]
pub struct ApkInfo {
    pub manifest: Manifest,
    pub version_name: Option<String>,
    /// (locale, label) for the default ("") and every locale the resource table has, as aapt lists.
    pub labels: Vec<(String, String)>,
    /// (density, path) of the icon for every density the table has, as aapt lists.
    pub icons: Vec<(u16, String)>,
    pub locales: Vec<String>,
    pub densities: Vec<u16>,
    pub native_abis: Vec<String>,
    pub launcher_activities: Vec<LauncherActivity>,
}

/// The verified package summary for the app manager.
#[derive(Debug, Clone)]
pub struct AndroidPackage {
    pub package: String,
    pub version_code: u64,
    pub version_name: Option<String>,
    pub min_sdk: u32,
    pub target_sdk: u32,
    /// Label for the device locale (with fallback), and every localisation.
    pub label: String,
    pub labels: Vec<(String, String)>,
    pub icon: Option<Icon>,
    pub permissions: Vec<MappedPermission>,
    pub signers: Vec<Certificate>,
    pub signing: SigningIdentity,
    pub verification: Verification,
    pub native_abis: Vec<String>,
    pub launcher_activities: Vec<LauncherActivity>,
    pub services: Vec<String>,
}

/// Parses an APK's manifest and resources (no signature check; see [`open_apk`]).
pub fn inspect(
    zip: &ZipArchive<'_>,
    device: &DeviceConfig,
) -> Result<(ApkInfo, Option<Icon>), ApkError> {
    let manifest_bytes = match zip.read_by_name("AndroidManifest.xml") {
        Ok(b) => b,
        Err(ZipError::NotFound(_)) => return Err(ApkError::NoManifest),
        Err(e) => return Err(e.into()),
    };
    let manifest = Manifest::parse(&manifest_bytes)?;
    let arsc_bytes = match zip.read_by_name("resources.arsc") {
        Ok(b) => Some(b),
        Err(ZipError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let table = match &arsc_bytes {
        Some(b) => Some(ResourceTable::parse(b)?),
        None => None,
    };
    let text = |t: &Option<Text>, dev: &DeviceConfig| -> Option<String> {
        match t.as_ref()? {
            Text::Literal(s) => Some(s.clone()),
            Text::Resource(id) => table.as_ref()?.resolve_string(*id, dev),
        }
    };
    let aapt_dev = |locale: &str, density: u16| DeviceConfig {
        locale: locale.to_owned(),
        density,
        sdk_version: 0,
    };
    let locales = table
        .as_ref()
        .map(ResourceTable::locales)
        .unwrap_or_default();
    let densities: Vec<u16> = table
        .as_ref()
        .map(|t| {
            let mut d: Vec<u16> = t
                .densities()
                .into_iter()
                .map(|d| if d == 0 { DENSITY_MEDIUM } else { d })
                .collect();
            d.sort();
            d.dedup();
            d
        })
        .unwrap_or_default();
    let mut labels = Vec::new();
    if manifest.label.is_some() {
        for locale in
            std::iter::once(String::new()).chain(locales.iter().filter(|l| !l.is_empty()).cloned())
        {
            if let Some(l) = text(&manifest.label, &aapt_dev(&locale, 0)) {
                labels.push((locale, l));
            }
        }
    }
    let mut icons = Vec::new();
    if let (Some(icon), Some(t)) = (manifest.icon, &table) {
        for &d in &densities {
            if let Some((_, EntryValue::Simple(v))) = t.resolve(icon, &aapt_dev("", d))
                && v.data_type == ResValue::TYPE_STRING
                && let Some(p) = t.strings.get(v.data)
            {
                icons.push((d, p.to_owned()));
            }
        }
    }
    let version_name = text(&manifest.version_name, &aapt_dev("", 0));
    let launcher_activities = manifest
        .launcher_activities()
        .map(|a| LauncherActivity {
            name: a.name.clone(),
            label: text(&a.label, device).or_else(|| text(&manifest.label, device)),
        })
        .collect();
    let mut native_abis: Vec<String> = zip
        .entries()
        .iter()
        .filter_map(|e| {
            let rest = e.name.strip_prefix("lib/")?;
            let (abi, file) = rest.split_once('/')?;
            (!abi.is_empty() && !file.is_empty() && !file.contains('/')).then(|| abi.to_owned())
        })
        .collect();
    native_abis.sort();
    native_abis.dedup();
    let best_icon = match (manifest.icon, &table) {
        (Some(id), Some(t)) => best_icon(zip, t, id, device),
        _ => None,
    };
    let info = ApkInfo {
        version_name,
        labels,
        icons,
        locales,
        densities,
        native_abis,
        launcher_activities,
        manifest,
    };
    Ok((info, best_icon))
}

/// Parses and verifies an APK for installation on `device`.
pub fn open_apk(zip: &ZipArchive<'_>, device: &DeviceConfig) -> Result<AndroidPackage, ApkError> {
    let (info, icon) = inspect(zip, device)?;
    let m = &info.manifest;
    let verification = signing::verify(
        zip,
        signing::SdkLevels {
            min: m.min_sdk,
            target: m.target_sdk,
            max: m.max_sdk.unwrap_or(u32::MAX),
        },
    )?;
    let label = info
        .labels
        .iter()
        .find(|(l, _)| l.eq_ignore_ascii_case(&device.locale.replace('_', "-")))
        .or_else(|| {
            info.labels.iter().find(|(l, _)| {
                !l.is_empty() && device.locale.split(['-', '_']).next() == Some(l.as_str())
            })
        })
        .or_else(|| info.labels.iter().find(|(l, _)| l.is_empty()))
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| m.package.clone());
    Ok(AndroidPackage {
        package: m.package.clone(),
        version_code: m.version_code,
        version_name: info.version_name.clone(),
        min_sdk: m.min_sdk,
        target_sdk: m.target_sdk,
        label,
        labels: info.labels.clone(),
        icon,
        permissions: permissions::map_all(&m.uses_permissions),
        signers: verification.signers.clone(),
        signing: verification.identity(),
        native_abis: info.native_abis.clone(),
        launcher_activities: info.launcher_activities.clone(),
        services: m.services.iter().map(|s| s.name.clone()).collect(),
        verification,
    })
}

fn image(zip: &ZipArchive<'_>, path: &str, density: u16) -> Option<IconImage> {
    let format = ImageFormat::of(path)?;
    let bytes = zip.read_by_name(path).ok()?;
    Some(IconImage {
        path: path.to_owned(),
        format,
        density,
        bytes,
    })
}

/// The icon the device would show: a bitmap, or an adaptive icon's layers.
fn best_icon(
    zip: &ZipArchive<'_>,
    table: &ResourceTable<'_>,
    id: u32,
    device: &DeviceConfig,
) -> Option<Icon> {
    let (config, value) = table.resolve(id, device)?;
    let EntryValue::Simple(v) = value else {
        return None;
    };
    let path = table
        .strings
        .get(v.data)
        .filter(|_| v.data_type == ResValue::TYPE_STRING)?;
    if let Some(img) = image(zip, path, config.density) {
        return Some(Icon::Bitmap(img));
    }
    if !path.ends_with(".xml") {
        return None;
    }
    let doc = XmlDocument::parse(&zip.read_by_name(path).ok()?).ok()?;
    if doc.name(doc.root()) != "adaptive-icon" {
        return None;
    }
    let layer = |tag: &str| -> Option<IconLayer> {
        let e = doc.children(doc.root(), tag).next()?;
        let a = doc.attr(e, Some(attr::DRAWABLE), "drawable")?;
        layer_of(zip, table, a.value, device)
    };
    // A bitmap for platforms without adaptive icons: the best non-anydpi configuration.
    let fallback = table
        .entries(id)
        .into_iter()
        .filter(|(c, _)| {
            c.density != DENSITY_ANY && !c.has_other_qualifiers && c.language.is_empty()
        })
        .filter_map(|(c, v)| match v {
            EntryValue::Simple(v) if v.data_type == ResValue::TYPE_STRING => {
                Some((c, table.strings.get(v.data)?.to_owned()))
            }
            _ => None,
        })
        .max_by_key(|(c, _): &(Config, String)| density_rank(c.density, device.density))
        .and_then(|(c, p)| image(zip, &p, c.density));
    Some(Icon::Adaptive {
        foreground: layer("foreground"),
        background: layer("background"),
        fallback,
    })
}

/// Higher is better: exact, then scaling down from the closest higher density, then the highest lower.
fn density_rank(d: u16, wanted: u16) -> i64 {
    let (d, w) = (if d == 0 { 160 } else { d } as i64, wanted as i64);
    if d >= w { 100_000 - (d - w) } else { d }
}

fn layer_of(
    zip: &ZipArchive<'_>,
    table: &ResourceTable<'_>,
    value: ResValue,
    device: &DeviceConfig,
) -> Option<IconLayer> {
    if value.is_color() {
        return Some(IconLayer::Color(value.data));
    }
    if !value.is_reference() {
        return None;
    }
    let (config, resolved) = table.resolve(value.data, device)?;
    let EntryValue::Simple(v) = resolved else {
        return None;
    };
    if v.is_color() {
        return Some(IconLayer::Color(v.data));
    }
    let path = table
        .strings
        .get(v.data)
        .filter(|_| v.data_type == ResValue::TYPE_STRING)?;
    image(zip, path, config.density).map(IconLayer::Image)
}
