//! `cargo xtask bench apk`: APK parse + signature verification, Cirrus beside Android's own tools
//! on the same files in the same run.
//!
//! Builds test APKs with Debian's smali/aapt/zipalign/keytool/apksigner into
//! `target/cirrus/bench-apk/` (a small one signed v1+v2+v3 with RSA, the same with EC P-256, and a
//! 32 MiB one whose signature checks dominate), builds `cirrus` in release mode, then times as
//! processes, median of N runs: `cirrus apk verify` vs `apksigner verify`, and `cirrus apk info` vs
//! `aapt dump badging`. Prints a table; asserts nothing. Args: `[--runs N]` (default 9).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::workspace::{Workspace, cargo};

const FRAMEWORK: &str = "/usr/share/android-framework-res/framework-res.apk";

fn run(dir: &Path, program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program} (run `cargo xtask deps`)"))?;
    if !out.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Builds the benchmark APKs; returns (label, path).
fn build_apks(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("res/values")).context("creating the bench directory")?;
    std::fs::create_dir_all(dir.join("assets"))?;
    std::fs::write(
        dir.join("AndroidManifest.xml"),
        r#"<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="org.cirrus.bench" android:versionCode="1" android:versionName="1.0">
  <uses-sdk android:minSdkVersion="21" android:targetSdkVersion="29"/>
  <uses-permission android:name="android.permission.INTERNET"/>
  <application android:label="@string/app_name">
    <activity android:name=".Main"><intent-filter><action android:name="android.intent.action.MAIN"/><category android:name="android.intent.category.LAUNCHER"/></intent-filter></activity>
  </application>
</manifest>"#,
    )?;
    std::fs::write(
        dir.join("res/values/strings.xml"),
        r#"<resources><string name="app_name">Bench</string></resources>"#,
    )?;
    std::fs::write(
        dir.join("Main.smali"),
        ".class public Lorg/cirrus/bench/Main;\n.super Ljava/lang/Object;\n.method public static main([Ljava/lang/String;)V\n    .registers 1\n    return-void\n.end method\n",
    )?;
    // 32 MiB of incompressible bytes (xorshift), stored: the digests have to read them all.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..(32usize << 20) / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(dir.join("assets/blob.bin"), big)?;
    run(dir, "smali", &["a", "-o", "classes.dex", "Main.smali"])?;
    run(
        dir,
        "aapt",
        &[
            "package",
            "-f",
            "-M",
            "AndroidManifest.xml",
            "-S",
            "res",
            "-I",
            FRAMEWORK,
            "-F",
            "small-u.apk",
        ],
    )?;
    run(dir, "aapt", &["add", "small-u.apk", "classes.dex"])?;
    std::fs::copy(dir.join("small-u.apk"), dir.join("big-u.apk"))?;
    run(
        dir,
        "aapt",
        &["add", "-0", "bin", "big-u.apk", "assets/blob.bin"],
    )?;
    for base in ["small", "big"] {
        run(
            dir,
            "zipalign",
            &[
                "-f",
                "-p",
                "4",
                &format!("{base}-u.apk"),
                &format!("{base}-a.apk"),
            ],
        )?;
    }
    for (ks, alg) in [
        ("rsa", &["-keyalg", "RSA", "-keysize", "2048"][..]),
        ("ec", &["-keyalg", "EC", "-groupname", "secp256r1"][..]),
    ] {
        let mut args = vec![
            "-genkeypair",
            "-keystore",
            ks,
            "-storepass",
            "android",
            "-keypass",
            "android",
            "-alias",
            ks,
            "-validity",
            "1000",
            "-dname",
            "CN=Bench",
        ];
        args.extend_from_slice(alg);
        run(dir, "keytool", &args)?;
    }
    let mut out = Vec::new();
    for (label, input, ks) in [
        ("small, RSA v1+v2+v3", "small-a.apk", "rsa"),
        ("small, EC v1+v2+v3", "small-a.apk", "ec"),
        ("32 MiB, RSA v1+v2+v3", "big-a.apk", "rsa"),
    ] {
        let name = format!("{}-{ks}.apk", input.trim_end_matches("-a.apk"));
        run(
            dir,
            "apksigner",
            &[
                "sign",
                "--ks",
                ks,
                "--ks-pass",
                "pass:android",
                "--v1-signing-enabled",
                "true",
                "--v2-signing-enabled",
                "true",
                "--v3-signing-enabled",
                "true",
                "--v4-signing-enabled",
                "false",
                "--out",
                &name,
                input,
            ],
        )?;
        out.push((label.to_owned(), dir.join(name)));
    }
    Ok(out)
}

/// Median wall time of `runs` runs of a command that must succeed.
fn time(runs: usize, program: &Path, args: &[&str]) -> Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {}", program.display()))?;
        let elapsed = start.elapsed();
        if !status.success() {
            bail!("{} {args:?} failed ({status})", program.display());
        }
        times.push(elapsed);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

pub fn run_suite(ws: &Workspace, args: &[String]) -> Result<()> {
    let mut runs = 9;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                runs = it
                    .next()
                    .context("--runs needs a number")?
                    .parse()
                    .context("--runs needs a number")?
            }
            other => bail!("unknown argument `{other}` (accepted: --runs N)"),
        }
    }
    let runs = runs.max(1);
    println!("bench apk: building cirrus (release)");
    let status = cargo()
        .args(["build", "--release", "-p", "cirrus-cli"])
        .current_dir(&ws.root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p cirrus-cli failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.root.join("target"));
    let cirrus = target.join("release/cirrus");
    let dir = ws.root.join("target/cirrus/bench-apk");
    println!("bench apk: building test APKs in {}", dir.display());
    let apks = build_apks(&dir)?;
    let apksigner = PathBuf::from("apksigner");
    let aapt = PathBuf::from("aapt");
    println!(
        "\nmedian wall time of {runs} runs per command (process start included), throughput = APK size / time\n"
    );
    println!(
        "{:<22} {:>8} | {:>22} {:>22} | {:>22} {:>22}",
        "APK",
        "size",
        "cirrus apk verify",
        "apksigner verify",
        "cirrus apk info",
        "aapt dump badging"
    );
    for (label, path) in &apks {
        let p = path.to_str().context("non-UTF-8 path")?;
        let size = std::fs::metadata(path)?.len() as f64;
        let cell = |d: Duration| {
            format!(
                "{:>8.1} ms {:>7.1} MB/s",
                d.as_secs_f64() * 1e3,
                size / d.as_secs_f64() / 1e6
            )
        };
        let cv = time(runs, &cirrus, &["apk", "verify", p])?;
        let av = time(runs, &apksigner, &["verify", "--print-certs", p])?;
        let ci = time(runs, &cirrus, &["apk", "info", p])?;
        let ab = time(runs, &aapt, &["dump", "badging", p])?;
        println!(
            "{:<22} {:>6.1}MB | {:>22} {:>22} | {:>22} {:>22}",
            label,
            size / 1e6,
            cell(cv),
            cell(av),
            cell(ci),
            cell(ab)
        );
    }
    Ok(())
}
