//! `cirrus app install|list|launch` with an APK, run as processes against the real app
//! manager on a private dbus-daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cirrus_appmanager::{DeviceConfig, ServeOptions, serve_on_device};
use cirrus_testsupport::apk::{ApkProject, keystore, sign};
use cirrus_testsupport::dbus::PrivateBus;

fn cirrus(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cirrus"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn app_install_takes_an_apk() {
    let dir = tempfile::tempdir().unwrap();
    let unsigned = ApkProject::new("org.cirrus.clidemo", 24, 33).build(dir.path(), "demo");
    let ks = keystore(
        dir.path(),
        "k",
        &["-keyalg", "RSA", "-keysize", "2048"],
        "CN=K",
    );
    let apk = sign(
        dir.path(),
        &unsigned,
        "demo.apk",
        &ks,
        [false, true, true],
        &[],
    );
    let bus = PrivateBus::start(dir.path());
    let root = dir.path().join("data");
    let opts = ServeOptions {
        bus_address: Some(bus.address().to_owned()),
        data_root: root.clone(),
        wasm_host: PathBuf::from("/nonexistent/cirrus-wasm-host"),
        memory_mb: 64,
        headless_apps: true,
        launch_command: vec!["cirrus-appmanager".into(), "launch".into()],
    };
    let device = DeviceConfig {
        locale: "ja-JP".into(),
        density: 480,
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
    let addr = bus.address().to_owned();
    let with_bus = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--bus-address", addr.as_str()]);
        cirrus(&a)
    };
    let mut listed = (false, String::new());
    for _ in 0..500 {
        listed = with_bus(&["app", "list"]);
        if listed.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(listed.0, "the manager never answered: {}", listed.1);

    let (ok, out) = with_bus(&["app", "install", apk.to_str().unwrap()]);
    assert!(ok && out.contains("installed org.cirrus.clidemo"), "{out}");
    let (ok, out) = with_bus(&["app", "list"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("org.cirrus.clidemo"))
        .unwrap_or_else(|| panic!("{out}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(ok);
    assert_eq!(
        fields,
        [
            "org.cirrus.clidemo",
            "1.2.3",
            "android",
            "stopped",
            "こんにちは"
        ]
    );
    let (ok, out) = with_bus(&["app", "launch", "org.cirrus.clidemo"]);
    assert!(
        !ok && out.contains("Android apps cannot be launched"),
        "{out}"
    );
    // The inspector only in developer mode (this manager runs without it).
    let (ok, out) = with_bus(&["app", "inspect", "org.cirrus.clidemo"]);
    assert!(!ok && out.contains("developer mode is off"), "{out}");
    // A file that is neither a package nor an APK is refused as a Cirrus package.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not a package").unwrap();
    let (ok, out) = with_bus(&["app", "install", junk.to_str().unwrap()]);
    assert!(!ok && out.contains("refused"), "{out}");
    assert!(
        root.join("system/app-code/org.cirrus.clidemo/base.apk")
            .exists()
    );

    let _ = stop_tx.send(());
    rt.block_on(server).unwrap().unwrap();
}
