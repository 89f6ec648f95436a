//! The app manager end to end over a real bus (Debian's dbus-daemon on a private socket) with the
//! real wasm host: install a signed package built from C → listed with label and icon and a
//! launcher entry → launch (state signal, first frame) → stop → relaunch keeps the data; refused
//! installs (unsigned, tampered, downgrade, other signer) say why; permissions are stored and
//! revocable; uninstall removes the data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cirrus_appmanager::bus::manager_when_ready;
use cirrus_appmanager::{ServeOptions, serve};
use cirrus_package::{DeveloperKey, Limits, PackageContents, write_zip};
use futures_util::StreamExt;

fn package(component: &[u8], version: &str, key: &DeveloperKey, permissions: &[&str]) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": "Counter Test", "short_name": "Counter",
        "icons": [{"src": "icons/icon.png", "sizes": "8x8", "type": "image/png"}],
        "cirrus": {"id": "org.test.counter", "version": version, "kind": "wasm", "permissions": permissions}
    });
    let mut c = PackageContents::new();
    c.insert(
        "manifest.webmanifest",
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    c.insert("icons/icon.png", b"\x89PNG\r\n\x1a\n not really".to_vec())
        .unwrap();
    c.insert("app.wasm", component.to_vec()).unwrap();
    c.sign(key).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn install_launch_stop_relaunch_and_refusals_over_dbus() {
    let dir = tempfile::tempdir().unwrap();
    let bus = cirrus_testsupport::dbus::PrivateBus::start(dir.path());
    let component = std::fs::read(common::build_c_app("counter", dir.path())).unwrap();
    let root = dir.path().join("data");
    // As root the manager runs each app under its own uid, which cannot exec from a target
    // directory under a private home: give it a copy any uid can run.
    let host = cirrus_testsupport::ExecutableCopy::new(common::HOST).unwrap();
    let opts = ServeOptions {
        bus_address: Some(bus.address().to_string()),
        data_root: root.clone(),
        wasm_host: host.path().to_path_buf(),
        memory_mb: 64,
        headless_apps: true,
        launch_command: vec!["/usr/bin/cirrus-appmanager".into(), "launch".into()],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve(opts, async move {
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
        let mut states = p.receive_state_changed().await.unwrap();

        let key = DeveloperKey::generate();
        let v1 = write(
            dir.path(),
            "v1.cpkg",
            &package(&component, "1.0.0", &key, &["network", "notifications"]),
        );
        assert_eq!(p.install(&v1).await.unwrap(), "org.test.counter");

        // Listed with label and icon; a launcher entry for the compositor with the absolute icon.
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
            ("org.test.counter", "Counter", "wasm", "1.0.0", "stopped")
        );
        assert!(
            Path::new(icon).is_absolute() && Path::new(icon).exists(),
            "{icon}"
        );
        let entry = std::fs::read_to_string(
            root.join("system/applications/cirrus-app-org.test.counter.desktop"),
        )
        .unwrap();
        assert!(
            entry.contains("Name=Counter\n")
                && entry.contains(&format!("Icon={icon}\n"))
                && entry.contains("\"launch\" \"org.test.counter\""),
            "{entry}"
        );
        // Precompiled at install, keyed by the engine hash.
        let hash = String::from_utf8(
            Command::new(common::HOST)
                .arg("engine-hash")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(
            root.join("system/wasm-cache")
                .join(hash.trim())
                .join("org.test.counter.cwasm")
                .exists()
        );

        // Permissions: notifications granted at install, network asked on first use; revocable.
        let perms = p.permissions("org.test.counter").await.unwrap();
        assert_eq!(
            perms.get("notifications").map(String::as_str),
            Some("granted")
        );
        assert_eq!(perms.get("network").map(String::as_str), Some("ask"));
        p.set_permission("org.test.counter", "network", "granted")
            .await
            .unwrap();
        p.set_permission("org.test.counter", "notifications", "denied")
            .await
            .unwrap();
        assert!(
            p.set_permission("org.test.counter", "user-files", "granted")
                .await
                .is_err(),
            "only requested permissions"
        );
        let perms = p.permissions("org.test.counter").await.unwrap();
        assert_eq!(
            (perms["network"].as_str(), perms["notifications"].as_str()),
            ("granted", "denied")
        );

        // Launch: state signal, and the app writes its log.
        assert_eq!(p.launch("org.test.counter").await.unwrap(), "foreground");
        let sig = tokio::time::timeout(Duration::from_secs(10), states.next())
            .await
            .unwrap()
            .unwrap();
        let args = sig.args().unwrap();
        assert_eq!(
            (args.id.as_str(), args.state.as_str()),
            ("org.test.counter", "foreground")
        );
        let log = PathBuf::from(p.log_path("org.test.counter").await.unwrap());
        wait_for(&log, "counter: created with count 0").await;
        assert_eq!(
            p.background("org.test.counter").await.unwrap(),
            "background"
        );
        p.stop("org.test.counter").await.unwrap();
        wait_for(&log, "counter: destroyed at 0").await;
        // The app's data dir (under the data root) is where its state lives across launches.
        assert_eq!(
            std::fs::read_to_string(root.join("app/org.test.counter/count.txt")).unwrap(),
            "0\n"
        );
        std::fs::write(root.join("app/org.test.counter/count.txt"), "41\n").unwrap();
        let listed = p.list().await.unwrap();
        assert_eq!(listed[0].5, "stopped");
        p.launch("org.test.counter").await.unwrap();
        wait_for(&log, "counter: created with count 41").await;

        // Refusals, each naming what was wrong.
        let refuse = |bytes: Vec<u8>, name: &'static str| {
            let path = write(dir.path(), name, &bytes);
            let p = p.clone();
            async move {
                p.install(&path)
                    .await
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| panic!("{name} was installed"))
            }
        };
        let unsigned = {
            let (c, _) = PackageContents::read_zip(
                &package(&component, "1.1.0", &key, &[]),
                &Limits::default(),
                false,
            )
            .unwrap();
            c.to_unsigned_zip().unwrap()
        };
        assert!(refuse(unsigned, "unsigned.cpkg").await.contains("unsigned"));
        let tampered = {
            let signed = package(&component, "1.1.0", &key, &[]);
            let (c, sig) = PackageContents::read_zip(&signed, &Limits::default(), false).unwrap();
            let mut wasm = c.get("app.wasm").unwrap().to_vec();
            let last = wasm.len() - 1;
            wasm[last] ^= 1;
            let sig = sig.unwrap();
            write_zip(&[
                (
                    "manifest.webmanifest",
                    c.get("manifest.webmanifest").unwrap(),
                ),
                ("icons/icon.png", c.get("icons/icon.png").unwrap()),
                ("app.wasm", &wasm),
                ("META-INF/cirrus.sig", &sig),
            ])
            .unwrap()
        };
        assert!(
            refuse(tampered, "tampered.cpkg")
                .await
                .contains("`app.wasm` was modified")
        );
        let err = refuse(package(&component, "0.9.0", &key, &[]), "old.cpkg").await;
        assert!(
            err.contains("downgrade refused") && err.contains("1.0.0") && err.contains("0.9.0"),
            "{err}"
        );
        let err = refuse(
            package(&component, "2.0.0", &DeveloperKey::generate(), &[]),
            "other.cpkg",
        )
        .await;
        assert!(err.contains("different key"), "{err}");
        assert_eq!(
            p.list().await.unwrap()[0].4,
            "1.0.0",
            "refused packages change nothing"
        );

        // An update by the same key keeps data, uid and the user's permission choices.
        let v2 = write(
            dir.path(),
            "v2.cpkg",
            &package(&component, "1.1.0", &key, &["network", "notifications"]),
        );
        p.install(&v2).await.unwrap();
        let perms = p.permissions("org.test.counter").await.unwrap();
        assert_eq!(
            (perms["network"].as_str(), perms["notifications"].as_str()),
            ("granted", "denied")
        );
        assert!(root.join("app/org.test.counter/count.txt").exists());

        p.uninstall("org.test.counter").await.unwrap();
        assert!(p.list().await.unwrap().is_empty());
        assert!(!root.join("app/org.test.counter").exists());
        assert!(
            !root
                .join("system/applications/cirrus-app-org.test.counter.desktop")
                .exists()
        );
    });
    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
}

async fn wait_for(log: &Path, text: &str) {
    for _ in 0..1000 {
        if std::fs::read_to_string(log)
            .map(|l| l.contains(text))
            .unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "`{text}` never appeared in {}:\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
