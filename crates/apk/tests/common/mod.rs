//! Test fixture: builds real APKs once per test binary with Debian's smali, aapt, zipalign, keytool
//! and apksigner, and records what `aapt dump badging` and `apksigner verify` say about them.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::same_item_push
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const FRAMEWORK: &str = "/usr/share/android-framework-res/framework-res.apk";

pub struct Fixture {
    pub dir: PathBuf,
    /// name → signed APK path.
    pub apks: BTreeMap<&'static str, PathBuf>,
    /// Unsigned (aligned) APKs to build tampered variants from.
    pub unsigned: BTreeMap<&'static str, PathBuf>,
}

pub fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} not runnable ({e}); run `cargo xtask deps`"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PNG of `w`×`w` pixels of one colour (stored blocks: no compressor needed).
pub fn png(w: u32, rgb: [u8; 3]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }
    fn crc32(d: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in d {
            crc ^= b as u32;
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
    let mut raw = Vec::new();
    for _ in 0..w {
        raw.push(0);
        for _ in 0..w {
            raw.extend_from_slice(&rgb);
        }
    }
    // zlib stream with stored deflate blocks.
    let mut z = vec![0x78, 0x01];
    for (i, block) in raw.chunks(65535).enumerate() {
        let last = (i + 1) * 65535 >= raw.len();
        z.push(last as u8);
        z.extend_from_slice(&(block.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

const SMALI: &str = r#".class public Lorg/cirrus/hello/Main;
.super Ljava/lang/Object;
.method public static main([Ljava/lang/String;)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    const-string v1, "hello from smali"
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    return-void
.end method
"#;

fn manifest(package: &str, min_sdk: u32, target_sdk: u32, extra_app: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="{package}" android:versionCode="42" android:versionName="1.2.3">
  <uses-sdk android:minSdkVersion="{min_sdk}" android:targetSdkVersion="{target_sdk}"/>
  <uses-permission android:name="android.permission.INTERNET"/>
  <uses-permission android:name="android.permission.CAMERA"/>
  <uses-permission android:name="android.permission.SEND_SMS"/>
  <application android:label="@string/app_name" android:icon="@{extra_app}">
    <activity android:name=".Main" android:label="@string/app_name">
      <intent-filter><action android:name="android.intent.action.MAIN"/><category android:name="android.intent.category.LAUNCHER"/></intent-filter>
    </activity>
    <activity android:name="org.cirrus.hello.Settings"/>
    <service android:name=".SyncService"/>
  </application>
</manifest>
"#
    )
}

/// Builds an unsigned, aligned APK from a project directory.
fn build_project(
    dir: &Path,
    name: &str,
    package: &str,
    min_sdk: u32,
    target_sdk: u32,
    adaptive: bool,
) -> PathBuf {
    let p = dir.join(name);
    let res = p.join("res");
    let write = |rel: &str, data: &[u8]| {
        let path = p.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    let icon = if adaptive {
        "mipmap/ic_launcher"
    } else {
        "drawable/icon"
    };
    write(
        "AndroidManifest.xml",
        manifest(package, min_sdk, target_sdk, icon).as_bytes(),
    );
    write(
        "res/values/strings.xml",
        b"<resources><string name=\"app_name\">Hello</string></resources>",
    );
    write(
        "res/values-de/strings.xml",
        "<resources><string name=\"app_name\">Grüß dich</string></resources>".as_bytes(),
    );
    write(
        "res/values-fr-rCA/strings.xml",
        b"<resources><string name=\"app_name\">Bonjour</string></resources>",
    );
    write(
        "res/values-ja/strings.xml",
        "<resources><string name=\"app_name\">こんにちは</string></resources>".as_bytes(),
    );
    write(
        "res/values/colors.xml",
        b"<resources><color name=\"icon_bg\">#FF3366CC</color></resources>",
    );
    for (dir, w, rgb) in [
        ("mdpi", 48, [255, 0, 0]),
        ("hdpi", 72, [0, 255, 0]),
        ("xhdpi", 96, [0, 0, 255]),
        ("xxhdpi", 144, [9, 9, 9]),
    ] {
        if adaptive {
            write(&format!("res/mipmap-{dir}/ic_launcher.png"), &png(w, rgb));
            write(&format!("res/mipmap-{dir}/ic_fg.png"), &png(w * 9 / 4, rgb));
        } else {
            write(&format!("res/drawable-{dir}/icon.png"), &png(w, rgb));
        }
    }
    if adaptive {
        write(
            "res/mipmap-anydpi-v26/ic_launcher.xml",
            br#"<?xml version="1.0" encoding="utf-8"?>
<adaptive-icon xmlns:android="http://schemas.android.com/apk/res/android">
  <background android:drawable="@color/icon_bg"/>
  <foreground android:drawable="@mipmap/ic_fg"/>
</adaptive-icon>
"#,
        );
    }
    write("Main.smali", SMALI.as_bytes());
    write("lib/arm64-v8a/libhello.so", b"\x7fELF arm64 test library");
    write("lib/x86_64/libhello.so", b"\x7fELF x86_64 test library");
    run(&p, "smali", &["a", "-o", "classes.dex", "Main.smali"]);
    run(
        &p,
        "aapt",
        &[
            "package",
            "-f",
            "-M",
            "AndroidManifest.xml",
            "-S",
            res.to_str().unwrap(),
            "-I",
            FRAMEWORK,
            "-F",
            "u.apk",
        ],
    );
    run(
        &p,
        "aapt",
        &[
            "add",
            "u.apk",
            "classes.dex",
            "lib/arm64-v8a/libhello.so",
            "lib/x86_64/libhello.so",
        ],
    );
    run(&p, "zipalign", &["-f", "-p", "4", "u.apk", "a.apk"]);
    p.join("a.apk")
}

fn keystore(dir: &Path, name: &str, args: &[&str], dname: &str) -> PathBuf {
    let ks = dir.join(format!("{name}.jks"));
    let mut a = vec![
        "-genkeypair",
        "-keystore",
        ks.to_str().unwrap(),
        "-storepass",
        "android",
        "-keypass",
        "android",
        "-alias",
        name,
        "-validity",
        "10000",
        "-dname",
        dname,
    ];
    a.extend_from_slice(args);
    run(dir, "keytool", &a);
    ks
}

fn sign(
    dir: &Path,
    input: &Path,
    out: &str,
    ks: &Path,
    schemes: [bool; 3],
    extra: &[&str],
) -> PathBuf {
    let out = dir.join(out);
    let [v1, v2, v3] = schemes.map(|b| if b { "true" } else { "false" });
    let mut args = vec![
        "sign",
        "--ks",
        ks.to_str().unwrap(),
        "--ks-pass",
        "pass:android",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--v1-signing-enabled",
        v1,
        "--v2-signing-enabled",
        v2,
        "--v3-signing-enabled",
        v3,
        "--v4-signing-enabled",
        "false",
        "--out",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    run(dir, "apksigner", &args);
    out
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Under target/tmp (reused, never leaked), one directory per test binary.
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("apk-fixture-{binary}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let legacy = build_project(&dir, "legacy", "org.cirrus.hello", 21, 29, false);
        let modern = build_project(&dir, "modern", "org.cirrus.modern", 28, 34, true);
        let nougat = build_project(&dir, "nougat", "org.cirrus.nougat", 24, 30, false);
        let rsa = keystore(
            &dir,
            "rsa",
            &["-keyalg", "RSA", "-keysize", "2048"],
            "CN=Cirrus Test, OU=Apps, O=Cirrus, L=Hangzhou, C=CN",
        );
        let rsa4k = keystore(
            &dir,
            "rsa4k",
            &["-keyalg", "RSA", "-keysize", "4096"],
            "CN=Big Key",
        );
        let ec256 = keystore(
            &dir,
            "ec256",
            &["-keyalg", "EC", "-groupname", "secp256r1"],
            "CN=EC Test, O=Cirrus",
        );
        let ec384 = keystore(
            &dir,
            "ec384",
            &["-keyalg", "EC", "-groupname", "secp384r1"],
            "CN=EC384",
        );
        let lineage = dir.join("lineage");
        run(
            &dir,
            "apksigner",
            &[
                "rotate",
                "--out",
                lineage.to_str().unwrap(),
                "--old-signer",
                "--ks",
                rsa.to_str().unwrap(),
                "--ks-pass",
                "pass:android",
                "--new-signer",
                "--ks",
                ec256.to_str().unwrap(),
                "--ks-pass",
                "pass:android",
            ],
        );
        let mut apks = BTreeMap::new();
        apks.insert(
            "rsa-v1v2v3",
            sign(
                &dir,
                &legacy,
                "rsa-v1v2v3.apk",
                &rsa,
                [true, true, true],
                &[],
            ),
        );
        apks.insert(
            "rsa-v1",
            sign(&dir, &legacy, "rsa-v1.apk", &rsa, [true, false, false], &[]),
        );
        apks.insert(
            "rsa-v1-target30",
            sign(
                &dir,
                &nougat,
                "rsa-v1-target30.apk",
                &rsa,
                [true, false, false],
                &[],
            ),
        );
        apks.insert(
            "rsa-v2",
            sign(&dir, &nougat, "rsa-v2.apk", &rsa, [false, true, false], &[]),
        );
        apks.insert(
            "rsa4k-v3",
            sign(
                &dir,
                &modern,
                "rsa4k-v3.apk",
                &rsa4k,
                [false, false, true],
                &[],
            ),
        );
        apks.insert(
            "ec256-v3",
            sign(
                &dir,
                &modern,
                "ec256-v3.apk",
                &ec256,
                [false, false, true],
                &[],
            ),
        );
        apks.insert(
            "ec384-v1v2v3",
            sign(
                &dir,
                &legacy,
                "ec384-v1v2v3.apk",
                &ec384,
                [true, true, true],
                &[],
            ),
        );
        apks.insert(
            "rsa-v2-legacy",
            sign(
                &dir,
                &legacy,
                "rsa-v2-legacy.apk",
                &rsa,
                [false, true, false],
                &[],
            ),
        );
        let next = [
            "--next-signer",
            "--ks",
            ec256.to_str().unwrap(),
            "--ks-pass",
            "pass:android",
            "--lineage",
            lineage.to_str().unwrap(),
        ];
        apks.insert(
            "rotated",
            sign(
                &dir,
                &legacy,
                "rotated.apk",
                &rsa,
                [true, true, true],
                &next,
            ),
        );
        apks.insert(
            "ec256-v1v2v3",
            sign(
                &dir,
                &legacy,
                "ec256-v1v2v3.apk",
                &ec256,
                [true, true, true],
                &[],
            ),
        );
        let mut unsigned = BTreeMap::new();
        unsigned.insert("legacy", legacy);
        unsigned.insert("modern", modern);
        Fixture {
            dir,
            apks,
            unsigned,
        }
    })
}

pub fn sign_v1(input: &Path, out: &str) -> PathBuf {
    let f = fixture();
    sign(
        &f.dir,
        input,
        out,
        &f.dir.join("rsa.jks"),
        [true, false, false],
        &[],
    )
}

/// `apksigner verify -v --print-certs` as (ok, key → value lines).
pub fn apksigner_verify(apk: &Path) -> (bool, Vec<(String, String)>) {
    let out = Command::new("apksigner")
        .args(["verify", "-v", "--print-certs"])
        .arg(apk)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines = text
        .lines()
        .filter_map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    (out.status.success(), lines)
}

pub fn aapt_badging(apk: &Path) -> String {
    run(
        Path::new("/"),
        "aapt",
        &["dump", "badging", apk.to_str().unwrap()],
    )
}
