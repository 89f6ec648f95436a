//! The Android → Cirrus permission table (documented in docs/android.md). An Android permission
//! with no Cirrus counterpart maps to `None`: the app manager never grants it, and the app sees it
//! denied, as on a phone where the user refused it.

/// (Android permission, Cirrus permission).
pub const TABLE: &[(&str, &str)] = &[
    ("android.permission.INTERNET", "network"),
    ("android.permission.ACCESS_NETWORK_STATE", "network"),
    ("android.permission.ACCESS_WIFI_STATE", "network"),
    ("android.permission.CHANGE_NETWORK_STATE", "network"),
    ("android.permission.CAMERA", "camera"),
    ("android.permission.RECORD_AUDIO", "microphone"),
    ("android.permission.ACCESS_FINE_LOCATION", "location"),
    ("android.permission.ACCESS_COARSE_LOCATION", "location"),
    (
        "android.permission.ACCESS_BACKGROUND_LOCATION",
        "location-background",
    ),
    ("android.permission.READ_CONTACTS", "contacts"),
    ("android.permission.WRITE_CONTACTS", "contacts"),
    ("android.permission.READ_CALENDAR", "calendar"),
    ("android.permission.WRITE_CALENDAR", "calendar"),
    ("android.permission.POST_NOTIFICATIONS", "notifications"),
    ("android.permission.READ_EXTERNAL_STORAGE", "files"),
    ("android.permission.WRITE_EXTERNAL_STORAGE", "files"),
    ("android.permission.READ_MEDIA_IMAGES", "files"),
    ("android.permission.READ_MEDIA_VIDEO", "files"),
    ("android.permission.READ_MEDIA_AUDIO", "files"),
    ("android.permission.MANAGE_EXTERNAL_STORAGE", "files"),
    ("android.permission.RECEIVE_BOOT_COMPLETED", "background"),
    ("android.permission.FOREGROUND_SERVICE", "background"),
    ("android.permission.WAKE_LOCK", "background"),
    (
        "android.permission.REQUEST_IGNORE_BATTERY_OPTIMIZATIONS",
        "background",
    ),
    ("android.permission.VIBRATE", "vibrate"),
    ("android.permission.BLUETOOTH", "bluetooth"),
    ("android.permission.BLUETOOTH_ADMIN", "bluetooth"),
    ("android.permission.BLUETOOTH_CONNECT", "bluetooth"),
    ("android.permission.BLUETOOTH_SCAN", "bluetooth"),
    ("android.permission.BODY_SENSORS", "sensors"),
    ("android.permission.ACTIVITY_RECOGNITION", "sensors"),
    ("android.permission.USE_BIOMETRIC", "biometrics"),
    ("android.permission.USE_FINGERPRINT", "biometrics"),
    ("android.permission.NFC", "nfc"),
];

/// The Cirrus permission an Android permission maps to.
pub fn cirrus_permission(android: &str) -> Option<&'static str> {
    TABLE.iter().find(|(a, _)| *a == android).map(|(_, c)| *c)
}

/// An Android permission the APK requests and what Cirrus makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedPermission {
    pub android: String,
    /// `None`: Cirrus has no such capability; never granted.
    pub cirrus: Option<&'static str>,
}

pub fn map_all(android: &[String]) -> Vec<MappedPermission> {
    android
        .iter()
        .map(|a| MappedPermission {
            android: a.clone(),
            cirrus: cirrus_permission(a),
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
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut names: Vec<&str> = TABLE.iter().map(|(a, _)| *a).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
