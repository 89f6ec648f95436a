//! `cirrus apk info FILE` (the facts of `aapt dump badging` an installer cares about, plus the
//! Cirrus permission each Android one maps to) and `cirrus apk verify FILE` (signature
//! verification with `apksigner verify --print-certs`'s output).
//!
//! `info` maps the file instead of reading it: only the pages holding the central directory, the
//! manifest, the resource table and the chosen icon are read from disk, so a 2 GiB game costs what
//! a small app does. `verify` reads the whole file (every byte is digested anyway).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cirrus_apk::arsc::DeviceConfig;
use cirrus_apk::der::hex;
use cirrus_apk::package::{Icon, IconLayer};
use cirrus_apk::permissions::cirrus_permission;
use cirrus_apk::zip::ZipArchive;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ApkCommand {
    /// Show an APK's package, version, SDK levels, permissions, labels, icons, launcher activities.
    Info {
        file: PathBuf,
        /// Device locale the label and icon are resolved for (e.g. de-DE).
        #[arg(long, default_value = "")]
        locale: String,
        /// Device density in dpi the icon is chosen for.
        #[arg(long, default_value_t = 320)]
        density: u16,
    },
    /// Verify an APK's signatures (v1/v2/v3) and print its signers' certificates.
    Verify { file: PathBuf },
}

pub fn run(cmd: ApkCommand) -> ExitCode {
    let result = match cmd {
        ApkCommand::Info {
            file,
            locale,
            density,
        } => info(
            &file,
            DeviceConfig {
                locale,
                density,
                sdk_version: 34,
            },
        ),
        ApkCommand::Verify { file } => verify(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cirrus apk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read(file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

/// The file mapped read-only into memory.
fn map(file: &Path) -> Result<memmap2::Mmap> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    // SAFETY: the mapping is read-only and private to this short-lived process; if another
    // process truncates the file meanwhile, reading past the new end raises SIGBUS and the
    // command dies (as aapt does) — it cannot read memory it does not own.
    unsafe { memmap2::Mmap::map(&f) }.with_context(|| format!("mapping {}", file.display()))
}

fn info(file: &Path, device: DeviceConfig) -> Result<ExitCode> {
    let data = map(file)?;
    let zip = ZipArchive::parse(&data)
        .with_context(|| format!("{} is not a readable APK", file.display()))?;
    let (info, icon) = cirrus_apk::inspect(&zip, &device)
        .with_context(|| format!("parsing {}", file.display()))?;
    let m = &info.manifest;
    println!(
        "package: name='{}' versionCode='{}' versionName='{}'",
        m.package,
        m.version_code,
        info.version_name.as_deref().unwrap_or("")
    );
    println!("sdkVersion:'{}'", m.min_sdk);
    println!("targetSdkVersion:'{}'", m.target_sdk);
    if let Some(max) = m.max_sdk {
        println!("maxSdkVersion:'{max}'");
    }
    for p in &m.uses_permissions {
        println!(
            "uses-permission: name='{p}' cirrus='{}'",
            cirrus_permission(p).unwrap_or("(none: denied)")
        );
    }
    for (locale, label) in &info.labels {
        if locale.is_empty() {
            println!("application-label:'{label}'");
        } else {
            println!("application-label-{locale}:'{label}'");
        }
    }
    for (density, path) in &info.icons {
        println!("application-icon-{density}:'{path}'");
    }
    match &icon {
        Some(Icon::Bitmap(img)) => println!(
            "launcher-icon: '{}' ({} bytes, {:?})",
            img.path,
            img.bytes.len(),
            img.format
        ),
        Some(Icon::Adaptive {
            foreground,
            background,
            ..
        }) => {
            let layer = |l: &Option<IconLayer>| match l {
                Some(IconLayer::Image(i)) => format!("'{}'", i.path),
                Some(IconLayer::Color(c)) => format!("#{c:08x}"),
                None => "none".to_owned(),
            };
            println!(
                "launcher-icon: adaptive foreground={} background={}",
                layer(foreground),
                layer(background)
            );
        }
        None => {}
    }
    for a in &info.launcher_activities {
        println!(
            "launchable-activity: name='{}'  label='{}'",
            a.name,
            a.label.as_deref().unwrap_or("")
        );
    }
    for s in &m.services {
        println!("service: name='{}'", s.name);
    }
    let locales: Vec<String> = info
        .locales
        .iter()
        .map(|l| {
            if l.is_empty() {
                "'--_--'".to_owned()
            } else {
                format!("'{l}'")
            }
        })
        .collect();
    println!("locales: {}", locales.join(" "));
    let densities: Vec<String> = info.densities.iter().map(|d| format!("'{d}'")).collect();
    println!("densities: {}", densities.join(" "));
    if !info.native_abis.is_empty() {
        let abis: Vec<String> = info.native_abis.iter().map(|a| format!("'{a}'")).collect();
        println!("native-code: {}", abis.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(file: &Path) -> Result<ExitCode> {
    let data = read(file)?;
    let outcome = ZipArchive::parse(&data)
        .map_err(cirrus_apk::ApkError::from)
        .and_then(|zip| cirrus_apk::open_apk(&zip, &DeviceConfig::default()));
    let pkg = match outcome {
        Ok(p) => p,
        Err(e) => {
            println!("DOES NOT VERIFY");
            println!("ERROR: {}: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let v = &pkg.verification;
    println!("Verifies");
    println!("Verified using v1 scheme (JAR signing): {}", v.v1);
    println!(
        "Verified using v2 scheme (APK Signature Scheme v2): {}",
        v.v2
    );
    println!(
        "Verified using v3 scheme (APK Signature Scheme v3): {}",
        v.v3
    );
    println!("Number of signers: {}", v.signers.len());
    for (i, c) in v.signers.iter().enumerate() {
        let n = i + 1;
        println!("Signer #{n} certificate DN: {}", c.subject);
        println!(
            "Signer #{n} certificate SHA-256 digest: {}",
            hex(&c.sha256())
        );
        println!("Signer #{n} certificate SHA-1 digest: {}", hex(&c.sha1()));
        println!("Signer #{n} certificate MD5 digest: {}", hex(&c.md5()));
        println!("Signer #{n} key algorithm: {}", c.key_algorithm.name());
        println!("Signer #{n} key size (bits): {}", c.key_bits);
        println!(
            "Signer #{n} public key SHA-256 digest: {}",
            hex(&c.public_key_sha256())
        );
        println!(
            "Signer #{n} public key SHA-1 digest: {}",
            hex(&c.public_key_sha1())
        );
        println!(
            "Signer #{n} public key MD5 digest: {}",
            hex(&c.public_key_md5())
        );
    }
    if let Some(l) = &v.lineage {
        for (i, node) in l.nodes.iter().enumerate() {
            println!(
                "Rotation lineage #{}: {} (SHA-256 {}, capabilities {:#x})",
                i + 1,
                node.certificate.subject,
                hex(&node.certificate.sha256()),
                node.flags
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
