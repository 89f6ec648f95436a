//! `cirrus apk info|verify` run as a process on APKs built by Debian's tools, output compared with
//! `aapt dump badging` and `apksigner verify -v --print-certs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../apk/tests/common/mod.rs"]
mod common;

use std::process::Command;

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
fn verify_prints_what_apksigner_prints() {
    let f = common::fixture();
    for name in ["rsa-v1v2v3", "ec256-v3", "rsa-v1"] {
        let apk = f.apks[name].to_str().unwrap();
        let (ok, ours) = cirrus(&["apk", "verify", apk]);
        assert!(ok, "{name}: {ours}");
        let (_, theirs) = common::apksigner_verify(&f.apks[name]);
        let mut compared = 0;
        for line in ours.lines().filter(|l| {
            l.starts_with("Verified using")
                || l.starts_with("Signer #")
                || l.starts_with("Number of")
        }) {
            let (k, v) = line.split_once(": ").unwrap();
            let theirs_v = theirs
                .iter()
                .find(|(tk, _)| tk == k)
                .map(|(_, tv)| tv.as_str());
            assert_eq!(Some(v), theirs_v, "{name}: {k}");
            compared += 1;
        }
        assert!(compared >= 13, "{name}: {ours}");
    }
}

#[test]
fn verify_fails_on_a_tampered_apk() {
    let f = common::fixture();
    let mut data = std::fs::read(&f.apks["rsa-v1v2v3"]).unwrap();
    let n = data.len();
    data[n / 3] ^= 0x55;
    let bad = f.dir.join("cli-tampered.apk");
    std::fs::write(&bad, &data).unwrap();
    let (ok, out) = cirrus(&["apk", "verify", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("DOES NOT VERIFY") && out.contains("ERROR:"),
        "{out}"
    );
    let (ok, out) = cirrus(&["apk", "verify", "/nonexistent.apk"]);
    assert!(!ok && out.contains("/nonexistent.apk"), "{out}");
}

#[test]
fn info_shows_badging_facts() {
    let f = common::fixture();
    let apk = &f.apks["rsa-v1v2v3"];
    let (ok, ours) = cirrus(&["apk", "info", apk.to_str().unwrap()]);
    assert!(ok, "{ours}");
    let badging = common::aapt_badging(apk);
    for prefix in [
        "sdkVersion:",
        "targetSdkVersion:",
        "application-label",
        "application-icon-",
        "locales:",
        "densities:",
    ] {
        let theirs: Vec<&str> = badging.lines().filter(|l| l.starts_with(prefix)).collect();
        let mine: Vec<&str> = ours.lines().filter(|l| l.starts_with(prefix)).collect();
        assert!(!theirs.is_empty(), "{prefix}");
        assert_eq!(mine, theirs, "{prefix}");
    }
    assert!(
        ours.contains("uses-permission: name='android.permission.CAMERA' cirrus='camera'"),
        "{ours}"
    );
    assert!(
        ours.contains("launchable-activity: name='org.cirrus.hello.Main'  label='Hello'"),
        "{ours}"
    );
    assert!(ours.contains("native-code: 'arm64-v8a' 'x86_64'"), "{ours}");
    assert!(
        ours.contains("package: name='org.cirrus.hello' versionCode='42' versionName='1.2.3'"),
        "{ours}"
    );
}
