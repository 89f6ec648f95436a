//! The Android → Cirrus permission table (documented in docs/android.md), with Android's protection
//! level for each. An Android permission with no Cirrus counterpart maps to `None`: the app manager
//! never grants it, and the app sees it denied, as on a phone where the user refused it.

/// How Android treats a permission, which decides its state at install: `Normal` ones are granted
/// with the install (Android never asks for them, and apps have no way to ask), `Dangerous` ones
/// (runtime permissions, special app access) start as "ask".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protection {
    Normal,
    Dangerous,
}

use Protection::{Dangerous, Normal};

/// (Android permission, Cirrus permission, Android protection level).
pub const TABLE: &[(&str, &str, Protection)] = &[
    ("android.permission.INTERNET", "network", Normal),
    ("android.permission.ACCESS_NETWORK_STATE", "network", Normal),
    ("android.permission.ACCESS_WIFI_STATE", "network", Normal),
    ("android.permission.CHANGE_NETWORK_STATE", "network", Normal),
    ("android.permission.CAMERA", "camera", Dangerous),
    ("android.permission.RECORD_AUDIO", "microphone", Dangerous),
    (
        "android.permission.ACCESS_FINE_LOCATION",
        "location",
        Dangerous,
    ),
    (
        "android.permission.ACCESS_COARSE_LOCATION",
        "location",
        Dangerous,
    ),
    (
        "android.permission.ACCESS_BACKGROUND_LOCATION",
        "location-background",
        Dangerous,
    ),
    ("android.permission.READ_CONTACTS", "contacts", Dangerous),
    ("android.permission.WRITE_CONTACTS", "contacts", Dangerous),
    ("android.permission.READ_CALENDAR", "calendar", Dangerous),
    ("android.permission.WRITE_CALENDAR", "calendar", Dangerous),
    (
        "android.permission.POST_NOTIFICATIONS",
        "notifications",
        Dangerous,
    ),
    (
        "android.permission.READ_EXTERNAL_STORAGE",
        "user-files",
        Dangerous,
    ),
    (
        "android.permission.WRITE_EXTERNAL_STORAGE",
        "user-files",
        Dangerous,
    ),
    (
        "android.permission.READ_MEDIA_IMAGES",
        "user-files",
        Dangerous,
    ),
    (
        "android.permission.READ_MEDIA_VIDEO",
        "user-files",
        Dangerous,
    ),
    (
        "android.permission.READ_MEDIA_AUDIO",
        "user-files",
        Dangerous,
    ),
    (
        "android.permission.MANAGE_EXTERNAL_STORAGE",
        "user-files",
        Dangerous,
    ),
    (
        "android.permission.RECEIVE_BOOT_COMPLETED",
        "background",
        Normal,
    ),
    (
        "android.permission.FOREGROUND_SERVICE",
        "background",
        Normal,
    ),
    ("android.permission.WAKE_LOCK", "background", Normal),
    (
        "android.permission.REQUEST_IGNORE_BATTERY_OPTIMIZATIONS",
        "background",
        Normal,
    ),
    ("android.permission.VIBRATE", "vibrate", Normal),
    ("android.permission.BLUETOOTH", "bluetooth", Normal),
    ("android.permission.BLUETOOTH_ADMIN", "bluetooth", Normal),
    (
        "android.permission.BLUETOOTH_CONNECT",
        "bluetooth",
        Dangerous,
    ),
    ("android.permission.BLUETOOTH_SCAN", "bluetooth", Dangerous),
    ("android.permission.BODY_SENSORS", "sensors", Dangerous),
    (
        "android.permission.ACTIVITY_RECOGNITION",
        "sensors",
        Dangerous,
    ),
    ("android.permission.USE_BIOMETRIC", "biometrics", Normal),
    ("android.permission.USE_FINGERPRINT", "biometrics", Normal),
    ("android.permission.NFC", "nfc", Normal),
];

/// The Cirrus permission an Android permission maps to.
pub fn cirrus_permission(android: &str) -> Option<&'static str> {
    lookup(android).map(|(c, _)| c)
}

/// The Cirrus permission and Android protection level of an Android permission.
pub fn lookup(android: &str) -> Option<(&'static str, Protection)> {
    TABLE
        .iter()
        .find(|(a, _, _)| *a == android)
        .map(|(_, c, p)| (*c, *p))
}

/// An Android permission the APK requests and what Cirrus makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedPermission {
    pub android: String,
    /// `None`: Cirrus has no such capability; never granted.
    pub cirrus: Option<&'static str>,
    /// Android's protection level (meaningful when `cirrus` is set).
    pub protection: Protection,
}

pub fn map_all(android: &[String]) -> Vec<MappedPermission> {
    android
        .iter()
        .map(|a| {
            let found = lookup(a);
            MappedPermission {
                android: a.clone(),
                cirrus: found.map(|(c, _)| c),
                protection: found.map(|(_, p)| p).unwrap_or(Dangerous),
            }
        })
        .collect()
}

/// The distinct Cirrus permissions a set of Android permissions asks for, sorted.
pub fn cirrus_set(mapped: &[MappedPermission]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = mapped.iter().filter_map(|m| m.cirrus).collect();
    out.sort();
    out.dedup();
    out
}

/// Each distinct Cirrus permission with the strictest protection level among the Android
/// permissions that map to it (`BLUETOOTH` is normal, `BLUETOOTH_SCAN` dangerous: `bluetooth` asks).
pub fn cirrus_requests(mapped: &[MappedPermission]) -> Vec<(&'static str, Protection)> {
    let mut out: Vec<(&'static str, Protection)> = Vec::new();
    for m in mapped {
        let Some(c) = m.cirrus else { continue };
        match out.iter_mut().find(|(name, _)| *name == c) {
            Some(slot) => slot.1 = slot.1.max(m.protection),
            None => out.push((c, m.protection)),
        }
    }
    out.sort();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn maps_known_and_leaves_unknown_unmapped() {
        assert_eq!(
            cirrus_permission("android.permission.INTERNET"),
            Some("network")
        );
        assert_eq!(cirrus_permission("android.permission.SEND_SMS"), None);
        let mapped = map_all(&[
            "android.permission.CAMERA".into(),
            "android.permission.INTERNET".into(),
            "android.permission.ACCESS_NETWORK_STATE".into(),
        ]);
        assert_eq!(cirrus_set(&mapped), vec!["camera", "network"]);
        assert_eq!(
            cirrus_requests(&mapped),
            vec![("camera", Dangerous), ("network", Normal)]
        );
    }

    #[test]
    fn the_strictest_level_wins_per_cirrus_permission() {
        let mapped = map_all(&[
            "android.permission.BLUETOOTH".into(),
            "android.permission.BLUETOOTH_SCAN".into(),
            "android.permission.VIBRATE".into(),
            "com.example.permission.C2D_MESSAGE".into(),
        ]);
        assert_eq!(
            cirrus_requests(&mapped),
            vec![("bluetooth", Dangerous), ("vibrate", Normal)]
        );
        assert_eq!(mapped[3].cirrus, None);
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut names: Vec<&str> = TABLE.iter().map(|(a, _, _)| *a).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
