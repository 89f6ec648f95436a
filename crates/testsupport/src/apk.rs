//! Real APKs for tests, built with Debian's smali, aapt, zipalign, keytool and apksigner (installed
//! by `cargo xtask deps`), and what `aapt dump badging` / `apksigner verify` say about them.
//!
//! [`ApkProject`] describes one app (package, versions, SDK levels, permissions, bitmap or adaptive
//! icon, labels in four locales) and builds its unsigned, aligned APK; [`keystore`], [`sign`] and
//! [`rotate`] make keys, signatures and rotation lineages; [`StandardApks`] is the set the APK
//! parser's and the CLI's tests compare with the Android tools. Every helper panics with the
//! failing command's output: these are test fixtures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Android framework resources aapt links against (Debian's android-framework-res).
pub const FRAMEWORK: &str = "/usr/share/android-framework-res/framework-res.apk";

fn text(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", p.display()))
}

/// Runs `program args` in `dir`; panics (with its output) unless it succeeds. Returns stdout.
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

fn crc32(d: &[u8]) -> u32 {
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

/// A `w`×`w` RGBA PNG whose pixels `pixel(x, y)` gives (stored deflate blocks: no compressor).
pub fn png_with(w: u32, pixel: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..w {
        raw.push(0);
        for x in 0..w {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    // zlib stream with stored deflate blocks.
    let mut z = vec![0x78, 0x01];
    for (i, block) in raw.chunks(65535).enumerate() {
        let last = (i + 1) * 65535 >= raw.len();
        z.push(u8::from(last));
        z.extend_from_slice(&(block.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A `w`×`w` PNG of one opaque colour.
pub fn png(w: u32, rgb: [u8; 3]) -> Vec<u8> {
    png_with(w, |_, _| [rgb[0], rgb[1], rgb[2], 255])
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

/// Colour of the bitmap icon per density (mdpi, hdpi, xhdpi, xxhdpi), and of an adaptive icon's
/// foreground square at that density.
pub const DENSITY_COLOURS: [(&str, u32, [u8; 3]); 4] = [
    ("mdpi", 48, [255, 0, 0]),
    ("hdpi", 72, [0, 255, 0]),
    ("xhdpi", 96, [0, 0, 255]),
    ("xxhdpi", 144, [9, 9, 9]),
];

/// An adaptive icon's background colour (0xAARRGGBB as aapt stores `#FF3366CC`).
pub const ADAPTIVE_BACKGROUND: [u8; 3] = [0x33, 0x66, 0xcc];

/// One test app: builds an unsigned, zipaligned APK.
#[derive(Debug, Clone)]
pub struct ApkProject {
    pub package: String,
    pub version_code: u64,
    pub version_name: String,
    pub min_sdk: u32,
    pub target_sdk: u32,
    /// `android.permission.*` names (full names).
    pub permissions: Vec<String>,
    /// An adaptive icon (mipmap-anydpi-v26: colour background, bitmap foreground with a transparent
    /// margin) plus legacy mipmaps; otherwise one bitmap icon per density.
    pub adaptive: bool,
    /// Label per locale: default "Hello", de "Grüß dich", fr-rCA "Bonjour", ja "こんにちは".
    pub labels: Vec<(&'static str, String)>,
}

impl ApkProject {
    /// versionCode 42 / versionName 1.2.3, asking for INTERNET, CAMERA and SEND_SMS.
    pub fn new(package: &str, min_sdk: u32, target_sdk: u32) -> Self {
        ApkProject {
            package: package.to_owned(),
            version_code: 42,
            version_name: "1.2.3".to_owned(),
            min_sdk,
            target_sdk,
            permissions: [
                "android.permission.INTERNET",
                "android.permission.CAMERA",
                "android.permission.SEND_SMS",
            ]
            .map(str::to_owned)
            .to_vec(),
            adaptive: false,
            labels: vec![
                ("", "Hello".into()),
                ("de", "Grüß dich".into()),
                ("fr-rCA", "Bonjour".into()),
                ("ja", "こんにちは".into()),
            ],
        }
    }

    fn manifest(&self) -> String {
        let icon = if self.adaptive {
            "mipmap/ic_launcher"
        } else {
            "drawable/icon"
        };
        let permissions: String = self
            .permissions
            .iter()
            .map(|p| format!("  <uses-permission android:name=\"{p}\"/>\n"))
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="{package}" android:versionCode="{code}" android:versionName="{name}">
  <uses-sdk android:minSdkVersion="{min}" android:targetSdkVersion="{target}"/>
{permissions}  <application android:label="@string/app_name" android:icon="@{icon}">
    <activity android:name=".Main" android:label="@string/app_name">
      <intent-filter><action android:name="android.intent.action.MAIN"/><category android:name="android.intent.category.LAUNCHER"/></intent-filter>
    </activity>
    <activity android:name="org.cirrus.hello.Settings"/>
    <service android:name=".SyncService"/>
  </application>
</manifest>
"#,
            package = self.package,
            code = self.version_code,
            name = self.version_name,
            min = self.min_sdk,
            target = self.target_sdk,
        )
    }

    /// Builds `dir/name/a.apk` (unsigned, aligned) and returns its path.
    pub fn build(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        let _ = std::fs::remove_dir_all(&p);
        let res = p.join("res");
        let write = |rel: &str, data: &[u8]| {
            let path = p.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
            }
            std::fs::write(&path, data)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        };
        write("AndroidManifest.xml", self.manifest().as_bytes());
        for (locale, label) in &self.labels {
            let values = if locale.is_empty() {
                "values".to_owned()
            } else {
                format!("values-{locale}")
            };
            write(
                &format!("res/{values}/strings.xml"),
                format!("<resources><string name=\"app_name\">{label}</string></resources>")
                    .as_bytes(),
            );
        }
        write(
            "res/values/colors.xml",
            b"<resources><color name=\"icon_bg\">#FF3366CC</color></resources>",
        );
        for (dir, w, rgb) in DENSITY_COLOURS {
            if self.adaptive {
                write(&format!("res/mipmap-{dir}/ic_launcher.png"), &png(w, rgb));
                // 108 dp foreground: an opaque square over the middle third, transparent around.
                let fw = w * 9 / 4;
                let fg = png_with(fw, |x, y| {
                    let inside = |v: u32| v >= fw / 3 && v < fw * 2 / 3;
                    if inside(x) && inside(y) {
                        [rgb[0], rgb[1], rgb[2], 255]
                    } else {
                        [0, 0, 0, 0]
                    }
                });
                write(&format!("res/mipmap-{dir}/ic_fg.png"), &fg);
            } else {
                write(&format!("res/drawable-{dir}/icon.png"), &png(w, rgb));
            }
        }
        if self.adaptive {
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
                text(&res),
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
}

/// Makes `dir/name.jks` (store and key password `android`, alias `name`) with keytool; `args`
/// choose the key (e.g. `-keyalg EC -groupname secp256r1`).
pub fn keystore(dir: &Path, name: &str, args: &[&str], dname: &str) -> PathBuf {
    let ks = dir.join(format!("{name}.jks"));
    let _ = std::fs::remove_file(&ks);
    let mut a = vec![
        "-genkeypair",
        "-keystore",
        text(&ks),
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

/// Signs `input` into `dir/out` with apksigner; `schemes` enables v1, v2, v3; `extra` goes before
/// the scheme options (e.g. `--next-signer … --lineage …`).
pub fn sign(
    dir: &Path,
    input: &Path,
    out: &str,
    ks: &Path,
    schemes: [bool; 3],
    extra: &[&str],
) -> PathBuf {
    let out = dir.join(out);
    let [v1, v2, v3] = schemes.map(|b| if b { "true" } else { "false" });
    let mut args = vec!["sign", "--ks", text(ks), "--ks-pass", "pass:android"];
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
        text(&out),
        text(input),
    ]);
    run(dir, "apksigner", &args);
    out
}

/// A proof-of-rotation lineage `old → new` (`apksigner rotate`), written to `dir/name`.
pub fn rotate(dir: &Path, name: &str, old: &Path, new: &Path) -> PathBuf {
    let lineage = dir.join(name);
    let _ = std::fs::remove_file(&lineage);
    run(
        dir,
        "apksigner",
        &[
            "rotate",
            "--out",
            text(&lineage),
            "--old-signer",
            "--ks",
            text(old),
            "--ks-pass",
            "pass:android",
            "--new-signer",
            "--ks",
            text(new),
            "--ks-pass",
            "pass:android",
        ],
    );
    lineage
}

/// The options that make [`sign`] sign with `ks` as the next signer after a rotation `lineage`.
pub fn next_signer_args<'a>(ks: &'a Path, lineage: &'a Path) -> [&'a str; 7] {
    [
        "--next-signer",
        "--ks",
        text(ks),
        "--ks-pass",
        "pass:android",
        "--lineage",
        text(lineage),
    ]
}

/// The APKs the parser and CLI tests compare with aapt and apksigner: three projects (legacy
/// minSdk 21 with bitmap icons, modern minSdk 28 with an adaptive icon, nougat minSdk 24/target 30)
/// signed with RSA 2048/4096 and EC P-256/P-384 keys in every scheme combination, plus one rotated
/// RSA → EC P-256.
#[derive(Debug)]
pub struct StandardApks {
    pub dir: PathBuf,
    /// name → signed APK path.
    pub apks: BTreeMap<&'static str, PathBuf>,
    /// Unsigned (aligned) APKs to build tampered variants from.
    pub unsigned: BTreeMap<&'static str, PathBuf>,
}

impl StandardApks {
    /// Builds the set in `dir` (emptied first).
    pub fn build(dir: &Path) -> StandardApks {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let legacy = ApkProject::new("org.cirrus.hello", 21, 29).build(dir, "legacy");
        let modern = ApkProject {
            adaptive: true,
            ..ApkProject::new("org.cirrus.modern", 28, 34)
        }
        .build(dir, "modern");
        let nougat = ApkProject::new("org.cirrus.nougat", 24, 30).build(dir, "nougat");
        let rsa = keystore(
            dir,
            "rsa",
            &["-keyalg", "RSA", "-keysize", "2048"],
            "CN=Cirrus Test, OU=Apps, O=Cirrus, L=Hangzhou, C=CN",
        );
        let rsa4k = keystore(
            dir,
            "rsa4k",
            &["-keyalg", "RSA", "-keysize", "4096"],
            "CN=Big Key",
        );
        let ec256 = keystore(
            dir,
            "ec256",
            &["-keyalg", "EC", "-groupname", "secp256r1"],
            "CN=EC Test, O=Cirrus",
        );
        let ec384 = keystore(
            dir,
            "ec384",
            &["-keyalg", "EC", "-groupname", "secp384r1"],
            "CN=EC384",
        );
        let lineage = rotate(dir, "lineage", &rsa, &ec256);
        let all = [true, true, true];
        let mut apks = BTreeMap::new();
        let mut add = |name: &'static str, input: &Path, ks: &Path, schemes, extra: &[&str]| {
            apks.insert(
                name,
                sign(dir, input, &format!("{name}.apk"), ks, schemes, extra),
            );
        };
        add("rsa-v1v2v3", &legacy, &rsa, all, &[]);
        add("rsa-v1", &legacy, &rsa, [true, false, false], &[]);
        add("rsa-v1-target30", &nougat, &rsa, [true, false, false], &[]);
        add("rsa-v2", &nougat, &rsa, [false, true, false], &[]);
        add("rsa4k-v3", &modern, &rsa4k, [false, false, true], &[]);
        add("ec256-v3", &modern, &ec256, [false, false, true], &[]);
        add("ec384-v1v2v3", &legacy, &ec384, all, &[]);
        add("rsa-v2-legacy", &legacy, &rsa, [false, true, false], &[]);
        add(
            "rotated",
            &legacy,
            &rsa,
            all,
            &next_signer_args(&ec256, &lineage),
        );
        add("ec256-v1v2v3", &legacy, &ec256, all, &[]);
        let mut unsigned = BTreeMap::new();
        unsigned.insert("legacy", legacy);
        unsigned.insert("modern", modern);
        StandardApks {
            dir: dir.to_owned(),
            apks,
            unsigned,
        }
    }

    /// Signs `input` with the set's RSA key, JAR (v1) only, into `out` under the set's dir.
    pub fn sign_v1(&self, input: &Path, out: &str) -> PathBuf {
        sign(
            &self.dir,
            input,
            out,
            &self.dir.join("rsa.jks"),
            [true, false, false],
            &[],
        )
    }
}

/// `apksigner verify -v --print-certs` as (ok, key → value lines).
pub fn apksigner_verify(apk: &Path) -> (bool, Vec<(String, String)>) {
    let out = Command::new("apksigner")
        .args(["verify", "-v", "--print-certs"])
        .arg(apk)
        .output()
        .unwrap_or_else(|e| panic!("apksigner not runnable ({e}); run `cargo xtask deps`"));
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

/// `aapt dump badging APK`'s output.
pub fn aapt_badging(apk: &Path) -> String {
    run(Path::new("/"), "aapt", &["dump", "badging", text(apk)])
}
