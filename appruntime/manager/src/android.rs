//! Android packages (APKs) as installed apps of kind `android`: telling an APK from a Cirrus package
//! by its content, verifying it with `cirrus-apk` (signatures under the minSdk-aware rules, manifest,
//! resources), the update rule (no lower versionCode; same signer or a v3 rotation lineage that
//! links them), and what the package database and launcher get from it: the label for the device
//! locale, the Android → Cirrus permission states, the launcher icon as a PNG.
//!
//! The store (`store.rs`) does the file work; running an APK's code is not possible yet, so
//! `Launch` refuses android apps with `org.cirrus.AppManager1.Error.NotSupported`.

use std::collections::BTreeMap;
use std::path::Path;

use cirrus_apk::arsc::DeviceConfig;
use cirrus_apk::permissions::{Protection, cirrus_requests};
use cirrus_apk::signing::{SigningIdentity, UpdateAllowed, check_update};
use cirrus_apk::zip::ZipArchive;
use cirrus_apk::{AndroidPackage, ApkError, open_apk};

use crate::db::{AndroidRecord, Grant, InstalledApp, LineageEntry};

/// The app kind APKs are installed as.
pub const KIND: &str = "android";

/// The Android API level Cirrus resolves resources for and accepts APKs up to (Android 14).
pub const PLATFORM_SDK: u16 = 34;

/// Longest package name accepted (it names directories and the launcher entry's file).
const MAX_PACKAGE_LEN: usize = 200;

/// Why an APK is not installed (or not updated).
#[derive(Debug, thiserror::Error)]
pub enum AndroidInstallError {
    // The causes are part of the message, not `source`s: `{:#}` chains would repeat them.
    #[error("not a valid APK: {0}")]
    Invalid(ApkError),
    #[error("the package name `{0}` is longer than {MAX_PACKAGE_LEN} characters")]
    PackageTooLong(String),
    #[error(
        "{package} needs Android API level {min_sdk} (minSdkVersion); Cirrus provides API level {PLATFORM_SDK}"
    )]
    SdkTooNew { package: String, min_sdk: u32 },
    #[error("{id} is installed as a {kind} app, not an Android app; uninstall it first")]
    KindMismatch { id: String, kind: String },
    #[error(
        "downgrade refused: {id} versionCode {installed} is installed, the APK has versionCode {update}"
    )]
    Downgrade {
        id: String,
        installed: u64,
        update: u64,
    },
    #[error("{id}: {reason}")]
    Signer {
        id: String,
        reason: cirrus_apk::signing::UpdateError,
    },
    #[error("the package database's record of {0} is damaged (no signing identity)")]
    DamagedRecord(String),
}

impl From<ApkError> for AndroidInstallError {
    fn from(e: ApkError) -> Self {
        AndroidInstallError::Invalid(e)
    }
}

/// Does this file hold an APK? Decided by content: a zip with an `AndroidManifest.xml` entry.
/// A file that is not a readable zip counts as an APK only if its name says so (so the error
/// talks about APKs rather than Cirrus packages).
pub fn is_apk(bytes: &[u8], path: &Path) -> bool {
    match ZipArchive::parse(bytes) {
        Ok(zip) => zip.entry("AndroidManifest.xml").is_some(),
        Err(_) => path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("apk")),
    }
}

/// The device configuration resources are resolved for, from the environment: the locale from
/// `LC_ALL`, `LC_MESSAGES` or `LANG` (`de_DE.UTF-8` → `de-DE`), the density from
/// `CIRRUS_DISPLAY_DPI` (default 320, xhdpi).
pub fn device_from_env() -> DeviceConfig {
    let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .map(|v| locale_tag(&v))
        .unwrap_or_default();
    let density = std::env::var("CIRRUS_DISPLAY_DPI")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(320);
    DeviceConfig {
        locale,
        density,
        sdk_version: PLATFORM_SDK,
    }
}

/// A POSIX locale name (`de_DE.UTF-8@euro`) as a BCP-47-like tag (`de-DE`); `C`/`POSIX` → "".
pub fn locale_tag(posix: &str) -> String {
    let base = posix.split(['.', '@']).next().unwrap_or("");
    if base == "C" || base == "POSIX" {
        return String::new();
    }
    base.replace('_', "-")
}

/// A verified APK, ready to be recorded.
#[derive(Debug)]
pub struct VerifiedApk {
    pub package: AndroidPackage,
    pub record: AndroidRecord,
}

/// Parses and verifies an APK for `device`.
pub fn verify(bytes: &[u8], device: &DeviceConfig) -> Result<VerifiedApk, AndroidInstallError> {
    let zip = ZipArchive::parse(bytes).map_err(ApkError::from)?;
    let package = open_apk(&zip, device)?;
    if package.package.len() > MAX_PACKAGE_LEN {
        return Err(AndroidInstallError::PackageTooLong(package.package));
    }
    if package.min_sdk > u32::from(PLATFORM_SDK) {
        return Err(AndroidInstallError::SdkTooNew {
            package: package.package,
            min_sdk: package.min_sdk,
        });
    }
    let identity = &package.signing;
    let record = AndroidRecord {
        version_code: package.version_code,
        version_name: package.version_name.clone(),
        min_sdk: package.min_sdk,
        target_sdk: package.target_sdk,
        signers: identity.signers.iter().map(hex::encode).collect(),
        lineage: identity.lineage.as_ref().map(|l| {
            l.iter()
                .map(|(cert, flags)| LineageEntry {
                    certificate: hex::encode(cert),
                    flags: *flags,
                })
                .collect()
        }),
        permissions: package
            .permissions
            .iter()
            .map(|p| (p.android.clone(), p.cirrus.map(str::to_owned)))
            .collect(),
        launcher_activity: package.launcher_activities.first().map(|a| a.name.clone()),
        native_abis: package.native_abis.clone(),
        labels: package.labels.clone(),
    };
    Ok(VerifiedApk { package, record })
}

fn digest(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest).ok()?.try_into().ok()
}

/// The signing identity the database remembers for an installed APK.
fn installed_identity(record: &AndroidRecord) -> Option<SigningIdentity> {
    let signers = record
        .signers
        .iter()
        .map(|s| digest(s))
        .collect::<Option<Vec<_>>>()?;
    let lineage = match &record.lineage {
        Some(l) => Some(
            l.iter()
                .map(|e| Some((digest(&e.certificate)?, e.flags)))
                .collect::<Option<Vec<_>>>()?,
        ),
        None => None,
    };
    (!signers.is_empty()).then_some(SigningIdentity { signers, lineage })
}

/// May `update` replace the installed `previous`? Same kind, versionCode not lower, and the
/// signer rule of [`check_update`] (same signer, or a rotation lineage linking them).
pub fn check_replaces(
    previous: &InstalledApp,
    update: &VerifiedApk,
) -> Result<UpdateAllowed, AndroidInstallError> {
    let id = &previous.id;
    let record = match (&previous.android, previous.kind.as_str()) {
        (Some(r), KIND) => r,
        (None, KIND) => return Err(AndroidInstallError::DamagedRecord(id.clone())),
        _ => {
            return Err(AndroidInstallError::KindMismatch {
                id: id.clone(),
                kind: previous.kind.clone(),
            });
        }
    };
    if update.package.version_code < record.version_code {
        return Err(AndroidInstallError::Downgrade {
            id: id.clone(),
            installed: record.version_code,
            update: update.package.version_code,
        });
    }
    let installed =
        installed_identity(record).ok_or_else(|| AndroidInstallError::DamagedRecord(id.clone()))?;
    check_update(&installed, &update.package.signing).map_err(|reason| {
        AndroidInstallError::Signer {
            id: id.clone(),
            reason,
        }
    })
}

/// The Cirrus permissions an APK asks for and their states: a permission every requesting Android
/// permission of which is `normal` is granted (Android grants those at install and apps cannot ask
/// for them); one any `dangerous` permission maps to starts as "ask". The user's decisions on an
/// installed version are kept. Android permissions without a Cirrus counterpart are not listed:
/// they are never granted.
pub fn permission_states(
    apk: &VerifiedApk,
    previous: Option<&InstalledApp>,
) -> BTreeMap<String, Grant> {
    cirrus_requests(&apk.package.permissions)
        .into_iter()
        .map(|(name, protection)| {
            let kept = previous.and_then(|p| p.permissions.get(name).copied());
            let state = kept.unwrap_or(match protection {
                Protection::Normal => Grant::Granted,
                Protection::Dangerous => Grant::Ask,
            });
            (name.to_owned(), state)
        })
        .collect()
}

/// A user-facing version string: versionName, else the versionCode.
pub fn display_version(apk: &VerifiedApk) -> String {
    apk.package
        .version_name
        .clone()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| apk.package.version_code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_locales_become_tags() {
        assert_eq!(locale_tag("de_DE.UTF-8"), "de-DE");
        assert_eq!(locale_tag("fr_CA@euro"), "fr-CA");
        assert_eq!(locale_tag("ja"), "ja");
        assert_eq!(locale_tag("C.UTF-8"), "");
        assert_eq!(locale_tag("POSIX"), "");
    }

    #[test]
    fn a_cirrus_package_or_garbage_is_not_an_apk() {
        assert!(!is_apk(b"not a zip", Path::new("x.cpkg")));
        assert!(is_apk(b"not a zip", Path::new("x.APK")));
    }

    #[test]
    fn damaged_signer_records_are_refused() {
        let record = AndroidRecord {
            version_code: 1,
            version_name: None,
            min_sdk: 21,
            target_sdk: 30,
            signers: vec!["zz".into()],
            lineage: None,
            permissions: vec![],
            launcher_activity: None,
            native_abis: vec![],
            labels: vec![],
        };
        assert!(installed_identity(&record).is_none());
        let ok = AndroidRecord {
            signers: vec![hex::encode([7u8; 32])],
            ..record
        };
        assert_eq!(
            installed_identity(&ok).map(|i| i.signers),
            Some(vec![[7u8; 32]])
        );
    }
}
