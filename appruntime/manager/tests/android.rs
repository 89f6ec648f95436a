//! APKs through the app manager over a real bus (Debian's dbus-daemon on a private socket), built
//! at test time with Debian's smali, aapt, zipalign, keytool and apksigner: install → listed as
//! kind `android` with the device-locale label and the rendered icon → launcher entry → permissions
//! mapped by protection level → Launch refused with `…Error.NotSupported` (also through the launcher
//! entry's Exec line) → updates: same key and rotated key accepted; other key, downgrade, tampered
//! and unsigned refused → uninstall removes the row, data, code, icon and launcher entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cirrus_appmanager::bus::manager_when_ready;
use cirrus_appmanager::{DeviceConfig, ServeOptions, serve_on_device};
use cirrus_testsupport::apk::{
    ADAPTIVE_BACKGROUND, ApkProject, apksigner_verify, keystore, next_signer_args, rotate, sign,
};
use cirrus_testsupport::dbus::PrivateBus;
use tiny_skia::Pixmap;

const ID: &str = "org.cirrus.hello";

struct Apks {
    v1: PathBuf,
    v2: PathBuf,
    rotated_v3: PathBuf,
    other_key_v3: PathBuf,
    unsigned_v3: PathBuf,
    tampered_v3: PathBuf,
    legacy: PathBuf,
}

fn hello(code: u64) -> ApkProject {
    ApkProject {
        version_code: code,
        version_name: format!("{code}.0"),
        adaptive: true,
        permissions: [
            "android.permission.INTERNET",
            "android.permission.VIBRATE",
            "android.permission.CAMERA",
            "android.permission.READ_EXTERNAL_STORAGE",
            "android.permission.SEND_SMS",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..ApkProject::new(ID, 24, 33)
    }
}

fn build_apks(dir: &Path) -> Apks {
    let a = keystore(
        dir,
        "a",
        &["-keyalg", "RSA", "-keysize", "2048"],
        "CN=Key A",
    );
    let b = keystore(
        dir,
        "b",
        &["-keyalg", "EC", "-groupname", "secp256r1"],
        "CN=Key B",
    );
    let lineage = rotate(dir, "a-to-b.lineage", &a, &b);
    let v2v3 = [false, true, true];
    let u1 = hello(1).build(dir, "hello1");
    let u2 = hello(2).build(dir, "hello2");
    let u3 = hello(3).build(dir, "hello3");
    let v1 = sign(dir, &u1, "hello-v1.apk", &a, v2v3, &[]);
    let v2 = sign(dir, &u2, "hello-v2.apk", &a, v2v3, &[]);
    let rotated_v3 = sign(
        dir,
        &u3,
        "hello-v3-rotated.apk",
        &a,
        v2v3,
        &next_signer_args(&b, &lineage),
    );
    let other_key_v3 = sign(dir, &u3, "hello-v3-other.apk", &b, v2v3, &[]);
    // One byte of a stored resource (the mdpi legacy icon) changed after signing, its CRC fixed
    // up in both headers as an attacker would: only the signature can notice.
    let mut bytes = std::fs::read(&rotated_v3).unwrap();
    let zip = cirrus_apk::zip::ZipArchive::parse(&bytes).unwrap();
    let dex = zip
        .entries()
        .iter()
        .find(|e| {
            e.method == 0 && e.name.contains("mipmap-mdpi") && e.name.ends_with("ic_launcher.png")
        })
        .unwrap()
        .clone();
    let mut content = zip.read(&dex).unwrap();
    drop(zip);
    let at = dex.data_offset as usize + 40;
    bytes[at] ^= 0x01;
    content[40] ^= 0x01;
    let crc = crc32fast_hash(&content).to_le_bytes();
    let lho = dex.local_header_offset as usize;
    bytes[lho + 14..lho + 18].copy_from_slice(&crc);
    let cd = (0..bytes.len() - 46)
        .rev()
        .find(|&i| {
            bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02]
                && bytes[i + 46..].starts_with(dex.name.as_bytes())
        })
        .unwrap();
    bytes[cd + 16..cd + 20].copy_from_slice(&crc);
    let tampered_v3 = dir.join("hello-v3-tampered.apk");
    std::fs::write(&tampered_v3, &bytes).unwrap();
    let legacy_unsigned = ApkProject::new("org.cirrus.legacy", 21, 29).build(dir, "legacy");
    let legacy = sign(
        dir,
        &legacy_unsigned,
        "legacy.apk",
        &a,
        [true, true, true],
        &[],
    );
    Apks {
        v1,
        v2,
        rotated_v3,
        other_key_v3,
        unsigned_v3: u3,
        tampered_v3,
        legacy,
    }
}

fn crc32fast_hash(d: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in d {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn pixel(p: &Pixmap, x: u32, y: u32) -> [u8; 4] {
    let c = p.pixel(x, y).unwrap().demultiply();
    [c.red(), c.green(), c.blue(), c.alpha()]
}

/// The arguments of a `.desktop` Exec value whose arguments are all double-quoted (as the manager
/// writes them).
fn exec_args(entry: &str) -> Vec<String> {
    let exec = entry.lines().find_map(|l| l.strip_prefix("Exec=")).unwrap();
    exec.split("\" \"")
        .map(|a| {
            a.trim_matches('"')
                .replace("\\\"", "\"")
                .replace("\\$", "$")
                .replace("\\`", "`")
                .replace("\\\\", "\\")
                .replace("%%", "%")
        })
        .collect()
}

fn db(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("system/packages.json")).unwrap()).unwrap()
}

#[test]
fn apks_install_list_refuse_launch_update_and_uninstall_over_dbus() {
    let dir = tempfile::tempdir().unwrap();
    let apks = build_apks(dir.path());
    let bus = PrivateBus::start(dir.path());
    let root = dir.path().join("data");
    let opts = ServeOptions {
        bus_address: Some(bus.address().to_owned()),
        data_root: root.clone(),
        // APKs never reach the wasm host.
        wasm_host: PathBuf::from("/nonexistent/cirrus-wasm-host"),
        memory_mb: 64,
        headless_apps: true,
        launch_command: vec![
            env!("CARGO_BIN_EXE_cirrus-appmanager").into(),
            format!("--bus-address={}", bus.address()),
            "launch".into(),
        ],
    };
    let device = DeviceConfig {
        locale: "de-DE".into(),
        density: 320,
        sdk_version: 34,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve_on_device(opts, device, async move {
        let _ = stop_rx.await;
    }));
    rt.block_on(async {
        let conn = zbus::connection::Builder::address(bus.address())
            .build()
            .await
            .unwrap();
        let p = manager_when_ready(&conn, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("the manager never answered on the bus: {e}"));
        let path = |p: &Path| p.display().to_string();

        // Install: the Android package name is the id.
        assert_eq!(p.install(&path(&apks.v1)).await.unwrap(), ID);
        let list = p.list().await.unwrap();
        assert_eq!(list.len(), 1);
        let (id, label, icon, kind, version, state) = &list[0];
        assert_eq!(
            (
                id.as_str(),
                label.as_str(),
                kind.as_str(),
                version.as_str(),
                state.as_str()
            ),
            (ID, "Grüß dich", "android", "1.0", "stopped"),
            "label for de-DE, versionName, kind android"
        );
        let icon_path = root.join("system/app-icons/org.cirrus.hello.png");
        assert_eq!(Path::new(icon), icon_path);

        // The adaptive icon, composed: the xhdpi foreground (blue square over the middle) on the
        // colour background, cropped to the visible 72 of 108 dp, corners cut.
        let png = Pixmap::decode_png(&std::fs::read(&icon_path).unwrap()).unwrap();
        assert_eq!((png.width(), png.height()), (144, 144));
        assert_eq!(pixel(&png, 72, 72), [0, 0, 255, 255], "foreground");
        let [r, g, b] = ADAPTIVE_BACKGROUND;
        assert_eq!(pixel(&png, 18, 72), [r, g, b, 255], "background");
        assert_eq!(pixel(&png, 0, 0)[3], 0, "masked corner");

        // The launcher entry the compositor reads.
        let entry_path = root.join("system/applications/cirrus-app-org.cirrus.hello.desktop");
        let entry = std::fs::read_to_string(&entry_path).unwrap();
        for line in [
            "Name=Grüß dich\n",
            "Name[fr_CA]=Bonjour\n",
            "Name[ja]=こんにちは\n",
            &format!("Icon={}\n", icon_path.display()),
            "X-Cirrus-App-Id=org.cirrus.hello\n",
            "X-Cirrus-App-Kind=android\n",
        ] {
            assert!(entry.contains(line), "{line:?} missing from\n{entry}");
        }

        // The package database: kind, versionCode, the signer's certificate digest (as apksigner
        // prints it), a fresh app uid; the APK kept whole; a data dir.
        let record = &db(&root)["apps"][ID];
        assert_eq!(record["kind"], "android");
        assert_eq!(record["android"]["version_code"], 1);
        assert_eq!(record["android"]["version_name"], "1.0");
        let (ok, certs) = apksigner_verify(&apks.v1);
        assert!(ok);
        let key_a = certs
            .iter()
            .find(|(k, _)| k == "Signer #1 certificate SHA-256 digest")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert_eq!(record["android"]["signers"][0], key_a.as_str());
        let uid = record["uid"].as_u64().unwrap();
        assert!(uid >= 10_000, "{uid}");
        assert_eq!(
            std::fs::read(root.join("system/app-code/org.cirrus.hello/base.apk")).unwrap(),
            std::fs::read(&apks.v1).unwrap()
        );
        assert!(root.join("app/org.cirrus.hello").is_dir());

        // Permissions: normal ones granted, dangerous ones ask, unmapped ones (SEND_SMS) absent.
        let perms = p.permissions(ID).await.unwrap();
        let mut got: Vec<(&str, &str)> = perms
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("camera", "ask"),
                ("network", "granted"),
                ("user-files", "ask"),
                ("vibrate", "granted")
            ]
        );

        // Launch: a typed error that says why.
        let err = p.launch(ID).await.unwrap_err();
        let zbus::Error::MethodError(name, message, _) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(name.as_str(), "org.cirrus.AppManager1.Error.NotSupported");
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("Android apps cannot be launched")),
            "{message:?}"
        );
        let err = p.launch("org.nowhere.app").await.unwrap_err();
        assert!(
            matches!(&err, zbus::Error::MethodError(n, _, _) if n.as_str() == "org.cirrus.AppManager1.Error.NotInstalled"),
            "{err:?}"
        );
        // What tapping the launcher entry runs: the same clear error, not a crash.
        let args = exec_args(&entry);
        assert_eq!(args.last().map(String::as_str), Some(ID), "{args:?}");
        let out = tokio::task::spawn_blocking(move || {
            Command::new(&args[0]).args(&args[1..]).output().unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("org.cirrus.AppManager1.Error.NotSupported")
                && stderr.contains("Android apps cannot be launched"),
            "{stderr}"
        );
        assert_eq!(p.list().await.unwrap()[0].5, "stopped");

        // Update with the same key: accepted; uid, data and the user's choices kept.
        p.set_permission(ID, "camera", "granted").await.unwrap();
        p.set_permission(ID, "network", "denied").await.unwrap();
        std::fs::write(root.join("app/org.cirrus.hello/state"), "kept").unwrap();
        assert_eq!(p.install(&path(&apks.v2)).await.unwrap(), ID);
        let app = p.list().await.unwrap().remove(0);
        assert_eq!(app.4, "2.0");
        assert_eq!(db(&root)["apps"][ID]["uid"].as_u64(), Some(uid));
        assert_eq!(
            std::fs::read_to_string(root.join("app/org.cirrus.hello/state")).unwrap(),
            "kept"
        );
        let perms = p.permissions(ID).await.unwrap();
        assert_eq!(
            (perms["camera"].as_str(), perms["network"].as_str()),
            ("granted", "denied")
        );

        // Refusals, each saying why, each changing nothing.
        let refuse = |apk: PathBuf| {
            let p = p.clone();
            async move {
                match p.install(&apk.display().to_string()).await {
                    Ok(id) => panic!("{} was installed as {id}", apk.display()),
                    Err(e) => e.to_string(),
                }
            }
        };
        let err = refuse(apks.other_key_v3.clone()).await;
        assert!(err.contains("signed by a different key"), "{err}");
        let err = refuse(apks.v1.clone()).await;
        assert!(
            err.contains("downgrade refused") && err.contains("versionCode 2") && err.contains("versionCode 1"),
            "{err}"
        );
        let err = refuse(apks.tampered_v3.clone()).await;
        assert!(
            err.contains("refused") && err.contains("modified after signing"),
            "{err}"
        );
        let err = refuse(apks.unsigned_v3.clone()).await;
        assert!(err.contains("not signed"), "{err}");
        assert_eq!(p.list().await.unwrap()[0].4, "2.0", "refusals change nothing");
        assert_eq!(
            std::fs::read(root.join("system/app-code/org.cirrus.hello/base.apk")).unwrap(),
            std::fs::read(&apks.v2).unwrap()
        );

        // A new key with a v3 rotation lineage from the installed one: accepted.
        assert_eq!(p.install(&path(&apks.rotated_v3)).await.unwrap(), ID);
        assert_eq!(p.list().await.unwrap()[0].4, "3.0");
        assert!(db(&root)["apps"][ID]["android"]["lineage"].is_array());

        // A second app with a plain bitmap icon: the xhdpi PNG (blue) for 320 dpi.
        assert_eq!(
            p.install(&path(&apks.legacy)).await.unwrap(),
            "org.cirrus.legacy"
        );
        let list = p.list().await.unwrap();
        assert_eq!(list.len(), 2);
        let legacy = list.iter().find(|a| a.0 == "org.cirrus.legacy").unwrap();
        let png = Pixmap::decode_png(&std::fs::read(&legacy.2).unwrap()).unwrap();
        assert_eq!((png.width(), png.height()), (96, 96));
        assert_eq!(pixel(&png, 0, 0), [0, 0, 255, 255]);
        let uid_legacy = db(&root)["apps"]["org.cirrus.legacy"]["uid"].as_u64();
        assert!(uid_legacy.is_some_and(|u| u != uid), "a fresh uid");

        // Uninstall removes everything of that app, and only of that app.
        p.uninstall(ID).await.unwrap();
        let list = p.list().await.unwrap();
        assert_eq!(
            list.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
            ["org.cirrus.legacy"]
        );
        assert!(db(&root)["apps"].get(ID).is_none());
        for gone in [
            root.join("app/org.cirrus.hello"),
            root.join("system/app-code/org.cirrus.hello"),
            icon_path.clone(),
            entry_path.clone(),
        ] {
            assert!(!gone.exists(), "{} is left", gone.display());
        }
        assert!(Path::new(&legacy.2).exists());
    });
    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
}
