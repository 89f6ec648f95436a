//! `cirrus apk info|verify` run as a process on APKs built by Debian's tools, output compared with
//! `aapt dump badging` and `apksigner verify -v --print-certs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use cirrus_testsupport::apk::{StandardApks, aapt_badging, apksigner_verify};

fn fixture() -> &'static StandardApks {
    static F: OnceLock<StandardApks> = OnceLock::new();
    F.get_or_init(|| {
        StandardApks::build(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("apk-fixture-cli"))
    })
}

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
    let f = fixture();
    for name in ["rsa-v1v2v3", "ec256-v3", "rsa-v1"] {
        let apk = f.apks[name].to_str().unwrap();
        let (ok, ours) = cirrus(&["apk", "verify", apk]);
        assert!(ok, "{name}: {ours}");
        let (_, theirs) = apksigner_verify(&f.apks[name]);
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
    let f = fixture();
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
    let f = fixture();
    let apk = &f.apks["rsa-v1v2v3"];
    let (ok, ours) = cirrus(&["apk", "info", apk.to_str().unwrap()]);
    assert!(ok, "{ours}");
    let badging = aapt_badging(apk);
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

/// Runs the command and returns (success, stdout, peak resident memory in KiB) from `wait4`.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's Child cannot do with rusage
fn cirrus_with_peak_rss(args: &[&str]) -> (bool, String, i64) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cirrus"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 reaps only our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: pointers to live locals; the child's output (a few KiB) fits in the pipe meanwhile.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, out, usage.ru_maxrss)
}

#[test]
fn info_does_not_read_a_large_apk_into_memory() {
    // The fixture's APK plus a 256 MiB stored asset (as games ship them).
    let f = fixture();
    let big = f.dir.join("cli-big.apk");
    let mut src =
        zip::ZipArchive::new(std::fs::File::open(&f.unsigned["legacy"]).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(&big).unwrap());
    for i in 0..src.len() {
        w.raw_copy_file(src.by_index_raw(i).unwrap()).unwrap();
    }
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    w.start_file("assets/level.bin", options).unwrap();
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for _ in 0..256 {
        std::io::Write::write_all(&mut w, &chunk).unwrap();
    }
    w.finish().unwrap();
    let size_kib = (std::fs::metadata(&big).unwrap().len() / 1024) as i64;
    let (ok, out, peak_kib) = cirrus_with_peak_rss(&["apk", "info", big.to_str().unwrap()]);
    let _ = std::fs::remove_file(&big);
    assert!(ok, "{out}");
    assert!(out.contains("package: name='org.cirrus.hello'"), "{out}");
    assert!(
        peak_kib < size_kib / 4,
        "cirrus apk info peaked at {peak_kib} KiB for a {size_kib} KiB APK"
    );
}
