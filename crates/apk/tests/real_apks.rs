//! Real APKs built at test time by Debian's smali, aapt, zipalign, keytool and apksigner, with every
//! field compared with `aapt dump badging` and `apksigner verify -v --print-certs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::Path;

use cirrus_apk::arsc::DeviceConfig;
use cirrus_apk::der::hex;
use cirrus_apk::package::{ApkInfo, inspect, open_apk};
use cirrus_apk::signing::{UpdateAllowed, UpdateError, capability, check_update};
use cirrus_apk::zip::ZipArchive;
use cirrus_apk::{Icon, IconLayer};

fn quoted(s: &str) -> Vec<String> {
    s.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}='"))? + key.len() + 2;
    let end = line[start..].find('\'')? + start;
    Some(&line[start..end])
}

/// The lines of our parse, in aapt's words, for the fields Cirrus reports.
fn compare_with_badging(name: &str, info: &ApkInfo, badging: &str) {
    let mut checked = 0;
    for line in badging.lines() {
        let ctx = format!("{name}: aapt line {line:?}");
        if let Some(rest) = line.strip_prefix("package: ") {
            assert_eq!(
                field(rest, "name"),
                Some(info.manifest.package.as_str()),
                "{ctx}"
            );
            assert_eq!(
                field(rest, "versionCode"),
                Some(info.manifest.version_code.to_string().as_str()),
                "{ctx}"
            );
            assert_eq!(
                field(rest, "versionName"),
                info.version_name.as_deref(),
                "{ctx}"
            );
        } else if let Some(rest) = line.strip_prefix("sdkVersion:") {
            assert_eq!(quoted(rest), [info.manifest.min_sdk.to_string()], "{ctx}");
        } else if let Some(rest) = line.strip_prefix("targetSdkVersion:") {
            assert_eq!(
                quoted(rest),
                [info.manifest.target_sdk.to_string()],
                "{ctx}"
            );
        } else if line.starts_with("uses-permission: ") {
            let p = field(line, "name").unwrap();
            assert!(
                info.manifest.uses_permissions.iter().any(|x| x == p),
                "{ctx}"
            );
        } else if let Some(rest) = line.strip_prefix("application-label") {
            let (locale, value) = rest.split_once(':').unwrap();
            let locale = locale.strip_prefix('-').unwrap_or("");
            let ours = info
                .labels
                .iter()
                .find(|(l, _)| l == locale)
                .map(|(_, v)| v.as_str());
            assert_eq!(ours, Some(quoted(value)[0].as_str()), "{ctx}");
        } else if let Some(rest) = line.strip_prefix("application-icon-") {
            let (density, value) = rest.split_once(':').unwrap();
            let density: u16 = density.parse().unwrap();
            let ours = info
                .icons
                .iter()
                .find(|(d, _)| *d == density)
                .map(|(_, p)| p.as_str());
            assert_eq!(ours, Some(quoted(value)[0].as_str()), "{ctx}");
        } else if line.starts_with("launchable-activity: ") {
            let n = field(line, "name").unwrap();
            let ours = info.launcher_activities.iter().find(|a| a.name == n);
            assert!(ours.is_some(), "{ctx}");
            assert_eq!(
                ours.unwrap().label.as_deref(),
                field(line, "label").filter(|l| !l.is_empty()),
                "{ctx}"
            );
        } else if let Some(rest) = line.strip_prefix("locales: ") {
            let ours: Vec<String> = info
                .locales
                .iter()
                .map(|l| {
                    if l.is_empty() {
                        "--_--".to_owned()
                    } else {
                        l.clone()
                    }
                })
                .collect();
            assert_eq!(quoted(rest), ours, "{ctx}");
        } else if let Some(rest) = line.strip_prefix("densities: ") {
            let ours: Vec<String> = info.densities.iter().map(u16::to_string).collect();
            assert_eq!(quoted(rest), ours, "{ctx}");
        } else if let Some(rest) = line.strip_prefix("native-code: ") {
            let mut theirs = quoted(rest);
            theirs.sort();
            assert_eq!(theirs, info.native_abis, "{ctx}");
        } else {
            continue;
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "{name}: only {checked} badging lines compared:\n{badging}"
    );
    // And the other way round: everything we list, aapt lists.
    assert_eq!(
        badging
            .lines()
            .filter(|l| l.starts_with("uses-permission:"))
            .count(),
        info.manifest.uses_permissions.len(),
        "{name}"
    );
    assert_eq!(
        badging
            .lines()
            .filter(|l| l.starts_with("application-label"))
            .count(),
        info.labels.len(),
        "{name}"
    );
    assert_eq!(
        badging
            .lines()
            .filter(|l| l.starts_with("application-icon-"))
            .count(),
        info.icons.len(),
        "{name}"
    );
    assert_eq!(
        badging
            .lines()
            .filter(|l| l.starts_with("launchable-activity"))
            .count(),
        info.launcher_activities.len(),
        "{name}"
    );
}

fn load(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn badging_matches_aapt_for_every_apk() {
    let f = common::fixture();
    for (name, path) in &f.apks {
        let data = load(path);
        let zip = ZipArchive::parse(&data).unwrap();
        let (info, _) = inspect(&zip, &DeviceConfig::default()).unwrap();
        compare_with_badging(name, &info, &common::aapt_badging(path));
    }
}

#[test]
fn verification_matches_apksigner_for_every_apk() {
    let f = common::fixture();
    for (name, path) in &f.apks {
        let data = load(path);
        let zip = ZipArchive::parse(&data).unwrap();
        let ours = open_apk(&zip, &DeviceConfig::default());
        let (ok, lines) = common::apksigner_verify(path);
        assert_eq!(
            ours.is_ok(),
            ok,
            "{name}: apksigner says verified={ok}, we say {:?}",
            ours.as_ref().err()
        );
        let Ok(pkg) = ours else { continue };
        let get = |k: &str| {
            lines
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{name}: apksigner printed no {k:?}"))
        };
        let v = &pkg.verification;
        assert_eq!(
            get("Verified using v1 scheme (JAR signing)"),
            v.v1.to_string(),
            "{name}"
        );
        assert_eq!(
            get("Verified using v2 scheme (APK Signature Scheme v2)"),
            v.v2.to_string(),
            "{name}"
        );
        assert_eq!(
            get("Verified using v3 scheme (APK Signature Scheme v3)"),
            v.v3.to_string(),
            "{name}"
        );
        assert_eq!(
            get("Number of signers"),
            v.signers.len().to_string(),
            "{name}"
        );
        let c = &v.signers[0];
        assert_eq!(get("Signer #1 certificate DN"), c.subject, "{name}");
        assert_eq!(
            get("Signer #1 certificate SHA-256 digest"),
            hex(&c.sha256()),
            "{name}"
        );
        assert_eq!(
            get("Signer #1 certificate SHA-1 digest"),
            hex(&c.sha1()),
            "{name}"
        );
        assert_eq!(
            get("Signer #1 certificate MD5 digest"),
            hex(&c.md5()),
            "{name}"
        );
        assert_eq!(
            get("Signer #1 key algorithm"),
            c.key_algorithm.name(),
            "{name}"
        );
        assert_eq!(
            get("Signer #1 key size (bits)"),
            c.key_bits.to_string(),
            "{name}"
        );
        assert_eq!(
            get("Signer #1 public key SHA-256 digest"),
            hex(&c.public_key_sha256()),
            "{name}"
        );
        assert_eq!(
            get("Signer #1 public key SHA-1 digest"),
            hex(&c.public_key_sha1()),
            "{name}"
        );
        assert_eq!(
            get("Signer #1 public key MD5 digest"),
            hex(&c.public_key_md5()),
            "{name}"
        );
    }
}

#[test]
fn package_summary_for_the_app_manager() {
    let f = common::fixture();
    let data = load(&f.apks["rsa-v1v2v3"]);
    let zip = ZipArchive::parse(&data).unwrap();
    let de = DeviceConfig {
        locale: "de-AT".into(),
        density: 320,
        sdk_version: 34,
    };
    let pkg = open_apk(&zip, &de).unwrap();
    assert_eq!(pkg.package, "org.cirrus.hello");
    assert_eq!(
        (pkg.version_code, pkg.version_name.as_deref()),
        (42, Some("1.2.3"))
    );
    assert_eq!((pkg.min_sdk, pkg.target_sdk), (21, 29));
    assert_eq!(pkg.label, "Grüß dich", "de-AT falls back to de");
    let fr_fr = open_apk(
        &zip,
        &DeviceConfig {
            locale: "fr-FR".into(),
            ..de.clone()
        },
    )
    .unwrap();
    assert_eq!(
        fr_fr.label, "Hello",
        "fr-FR has no match (only fr-CA): default"
    );
    assert_eq!(
        open_apk(
            &zip,
            &DeviceConfig {
                locale: "fr-CA".into(),
                ..de.clone()
            }
        )
        .unwrap()
        .label,
        "Bonjour"
    );
    let mapped: Vec<(&str, Option<&str>)> = pkg
        .permissions
        .iter()
        .map(|p| (p.android.as_str(), p.cirrus))
        .collect();
    assert_eq!(
        mapped,
        [
            ("android.permission.INTERNET", Some("network")),
            ("android.permission.CAMERA", Some("camera")),
            ("android.permission.SEND_SMS", None)
        ]
    );
    assert_eq!(pkg.native_abis, ["arm64-v8a", "x86_64"]);
    assert_eq!(pkg.launcher_activities.len(), 1);
    assert_eq!(pkg.launcher_activities[0].name, "org.cirrus.hello.Main");
    assert_eq!(pkg.services, ["org.cirrus.hello.SyncService"]);
    // Best icon for xhdpi is the xhdpi PNG, bytes as in the APK.
    match &pkg.icon {
        Some(Icon::Bitmap(img)) => {
            assert_eq!(img.path, "res/drawable-xhdpi-v4/icon.png");
            assert_eq!(img.bytes, zip.read_by_name(&img.path).unwrap());
            assert_eq!(&img.bytes[..4], b"\x89PNG");
        }
        other => panic!("expected a bitmap icon, got {other:?}"),
    }
    // 400 dpi: scaling xxhdpi (480) down beats scaling xhdpi (320) up.
    let p400 = open_apk(
        &zip,
        &DeviceConfig {
            density: 400,
            ..de.clone()
        },
    )
    .unwrap();
    assert!(
        matches!(&p400.icon, Some(Icon::Bitmap(i)) if i.path.contains("xxhdpi")),
        "{:?}",
        p400.icon.map(|_| ())
    );
}

#[test]
fn adaptive_icons_reduce_to_layers() {
    let f = common::fixture();
    let data = load(&f.apks["ec256-v3"]);
    let zip = ZipArchive::parse(&data).unwrap();
    let pkg = open_apk(
        &zip,
        &DeviceConfig {
            locale: "ja-JP".into(),
            density: 240,
            sdk_version: 34,
        },
    )
    .unwrap();
    assert_eq!(pkg.label, "こんにちは");
    match &pkg.icon {
        Some(Icon::Adaptive {
            foreground: Some(IconLayer::Image(fg)),
            background: Some(IconLayer::Color(bg)),
            fallback: Some(fallback),
        }) => {
            assert_eq!(*bg, 0xff33_66cc);
            assert!(
                fg.path.contains("hdpi") && fg.path.ends_with("ic_fg.png"),
                "{}",
                fg.path
            );
            assert!(
                fallback.path.contains("mipmap-hdpi") && fallback.path.ends_with("ic_launcher.png"),
                "{}",
                fallback.path
            );
        }
        other => panic!("expected an adaptive icon with both layers, got {other:?}"),
    }
    // A device before API 26 gets the bitmap.
    let old = open_apk(
        &zip,
        &DeviceConfig {
            locale: String::new(),
            density: 240,
            sdk_version: 25,
        },
    )
    .unwrap();
    assert!(matches!(&old.icon, Some(Icon::Bitmap(i)) if i.path.contains("mipmap-hdpi")));
}

#[test]
fn rotation_lineage_and_update_rule_on_real_signatures() {
    let f = common::fixture();
    let open = |name: &str| {
        let data = load(&f.apks[name]);
        let zip = ZipArchive::parse(&data).unwrap();
        open_apk(&zip, &DeviceConfig::default()).unwrap()
    };
    let original = open("rsa-v1v2v3");
    let rotated = open("rotated");
    let other = open("ec384-v1v2v3");
    let lineage = rotated
        .verification
        .lineage
        .as_ref()
        .expect("apksigner rotate wrote a lineage");
    assert_eq!(lineage.nodes.len(), 2);
    assert_eq!(
        lineage.nodes[0].certificate.sha256(),
        original.signers[0].sha256()
    );
    assert_eq!(lineage.nodes[1].certificate.subject, "CN=EC Test, O=Cirrus");
    assert!(lineage.nodes[0].flags & capability::INSTALLED_DATA != 0);
    assert_eq!(
        check_update(&original.signing, &original.signing),
        Ok(UpdateAllowed::SameSigner)
    );
    assert_eq!(
        check_update(&original.signing, &rotated.signing),
        Ok(UpdateAllowed::Rotated)
    );
    assert_eq!(
        check_update(&original.signing, &other.signing),
        Err(UpdateError::DifferentSigner)
    );
    assert_eq!(
        check_update(&rotated.signing, &open("ec256-v1v2v3").signing),
        Ok(UpdateAllowed::SameSigner)
    );
    // apksigner rotate does not grant rollback by default: back to the old key is refused.
    let expected = if lineage.nodes[0].flags & capability::ROLLBACK != 0 {
        Ok(UpdateAllowed::RolledBack)
    } else {
        Err(UpdateError::DifferentSigner)
    };
    assert_eq!(check_update(&rotated.signing, &original.signing), expected);
}
