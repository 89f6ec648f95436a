//! Boots the built `qemu-x86_64` image in QEMU with a probe standing in for cirrus-init
//! (`tests/fixtures/probe_init.rs`): proves the initramfs runs `/init` with its libraries, that
//! every module of `boot.toml` loads in the builder's order, that the erofs system image and the
//! ext4 data image mount, and that `[display]` reaches virtio-gpu. Needs `qemu-system-x86_64`
//! and `rustc` (to compile the probe).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cirrus_images::{BuildRequest, Device, QemuDisplay, QemuOptions, build, qemu_command};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("images/ has a parent")
        .to_path_buf()
}

fn cache_dir() -> PathBuf {
    match std::env::var_os("CIRRUS_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&std::env::var_os("HOME").expect("HOME is set")).join(".cache/cirrus"),
    }
}

#[test]
fn the_image_boots_to_a_probe_init_that_mounts_everything() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    let tmp = tempfile::tempdir().unwrap();
    let probe = tmp.path().join("cirrus-init");
    let out = Command::new("rustc")
        .args(["-O", "--edition", "2021", "-o"])
        .arg(&probe)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe_init.rs"))
        .output()
        .expect("rustc runs");
    assert!(
        out.status.success(),
        "compiling the probe: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let root = repo_root();
    let device = Device::load(&root, "qemu-x86_64").unwrap();
    // The probe is /init; every other program the device lists is a stand-in ELF.
    let mut binaries: BTreeMap<String, PathBuf> = device
        .binaries
        .iter()
        .map(|name| (name.clone(), PathBuf::from("/bin/sleep")))
        .collect();
    binaries.insert("cirrus-init".to_string(), probe);
    let out_dir = tmp.path().join("out");
    let req = BuildRequest {
        device: &device,
        repo_root: &root,
        binaries,
        out_dir,
        cache_dir: cache_dir(),
    };
    let image = build(&req).unwrap();

    let serial = tmp.path().join("serial.log");
    let opts = QemuOptions {
        display: QemuDisplay::Headless,
        qmp_socket: tmp.path().join("qmp.sock"),
        serial_log: Some(serial.clone()),
        data_image: None,
        extra_cmdline: vec!["panic=-1".into()],
    };
    let mut cmd = qemu_command(&device, &image, &opts);
    let mut child = cmd.stdin(Stdio::null()).spawn().expect(
        "qemu-system-x86_64 runs (install it with `cargo xtask deps`, package qemu-system-x86)",
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&serial).unwrap_or_default();
    let probe: Vec<&str> = log.lines().filter(|l| l.starts_with("PROBE")).collect();
    let context = format!("serial console:\n{log}");
    assert!(
        status.is_some(),
        "QEMU did not power off within 300 s; {context}"
    );
    assert!(
        probe
            .first()
            .is_some_and(|l| l.starts_with("PROBE started pid=1")),
        "{context}"
    );
    let modules = format!("PROBE modules loaded={} failed=0", image.modules.len());
    assert!(
        probe.contains(&modules.as_str()),
        "expected `{modules}`; {context}"
    );
    assert!(
        probe.iter().any(|l| l
            .strip_prefix("PROBE root mounted /dev/vda erofs bin=")
            .is_some_and(|bins| {
                let bins: Vec<&str> = bins.split(',').collect();
                bins.contains(&"cirrus-compositor") && bins.contains(&"cirrus-init")
            })),
        "{context}"
    );
    assert!(
        probe.contains(&"PROBE data mounted /dev/vdb ext4 on /data"),
        "{context}"
    );
    let display = format!("mode={}x{}", image.display.width, image.display.height);
    assert!(
        probe
            .iter()
            .any(|l| l.starts_with("PROBE drm=card0") && l.ends_with(&display)),
        "{context}"
    );
    assert!(
        probe
            .iter()
            .any(|l| l.starts_with("PROBE input=") && l != &"PROBE input=0"),
        "tablet and keyboard; {context}"
    );
    assert!(probe.contains(&"PROBE done"), "{context}");
}
