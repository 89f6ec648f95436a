//! Tampered, truncated and hostile APKs are refused with errors that say what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::Path;

use cirrus_apk::arsc::DeviceConfig;
use cirrus_apk::package::{ApkError, open_apk};
use cirrus_apk::signing::SignatureError;
use cirrus_apk::zip::{ZipArchive, ZipError};

fn open_err(data: &[u8]) -> ApkError {
    let zip = match ZipArchive::parse(data) {
        Ok(z) => z,
        Err(e) => return ApkError::Zip(e),
    };
    match open_apk(&zip, &DeviceConfig::default()) {
        Ok(p) => panic!("tampered APK accepted: {}", p.package),
        Err(e) => e,
    }
}

fn signed(name: &str) -> Vec<u8> {
    std::fs::read(&common::fixture().apks[name]).unwrap()
}

/// Flips one byte of an entry's stored data and fixes its CRC-32 in both headers, as a careful
/// attacker would: only the signature can notice.
fn tamper_stored_entry(data: &mut [u8], name: &str, needles: &[&[u8]]) {
    let (lho, cdo, start, len) = {
        let zip = ZipArchive::parse(data).unwrap();
        let e = zip.entry(name).unwrap().clone();
        assert_eq!(e.method, 0, "{name} must be stored for this test");
        let cd = zip.sections().central_directory_offset as usize;
        let cdo = (cd..data.len() - 4)
            .find(|&i| {
                data[i..i + 4] == [0x50, 0x4b, 0x01, 0x02]
                    && data[i + 46..].starts_with(name.as_bytes())
            })
            .unwrap();
        (
            e.local_header_offset as usize,
            cdo,
            e.data_offset as usize,
            e.uncompressed_size as usize,
        )
    };
    let body = &mut data[start..start + len];
    let at = needles
        .iter()
        .find_map(|n| body.windows(n.len()).position(|w| w == *n))
        .unwrap_or_else(|| panic!("none of {needles:?} found in {name}"));
    body[at] ^= 0x01;
    let crc = crc32(&data[start..start + len]).to_le_bytes();
    data[lho + 14..lho + 18].copy_from_slice(&crc);
    data[cdo + 16..cdo + 20].copy_from_slice(&crc);
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

#[test]
fn one_byte_changed_in_the_dex() {
    let mut data = signed("rsa-v1v2v3");
    let start = ZipArchive::parse(&data)
        .unwrap()
        .entry("classes.dex")
        .unwrap()
        .data_offset as usize;
    data[start + 20] ^= 0x10;
    let err = open_err(&data);
    assert!(
        matches!(
            err,
            ApkError::Signature(SignatureError::DigestMismatch { scheme: 3, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("modified after signing"), "{err}");
}

#[test]
fn one_byte_changed_in_a_resource_with_crc_fixed() {
    let mut data = signed("rsa-v1v2v3");
    tamper_stored_entry(
        &mut data,
        "resources.arsc",
        &[b"Bonjour", b"B\0o\0n\0j\0o\0u\0r"],
    );
    let err = open_err(&data);
    assert!(
        matches!(
            err,
            ApkError::Signature(SignatureError::DigestMismatch { scheme: 3, .. })
        ),
        "{err}"
    );
    // The v1 signature catches it too (an APK with only a JAR signature).
    let mut data = signed("rsa-v1");
    tamper_stored_entry(
        &mut data,
        "resources.arsc",
        &[b"Bonjour", b"B\0o\0n\0j\0o\0u\0r"],
    );
    let err = open_err(&data);
    assert!(
        err.to_string()
            .contains("digest of `resources.arsc` does not match"),
        "{err}"
    );
}

#[test]
fn one_byte_changed_in_the_manifest() {
    let mut data = signed("rsa-v1v2v3");
    let e = ZipArchive::parse(&data)
        .unwrap()
        .entry("AndroidManifest.xml")
        .unwrap()
        .clone();
    data[e.data_offset as usize + e.compressed_size as usize / 2] ^= 0x01;
    let err = open_err(&data).to_string();
    // Either the deflate stream/CRC breaks (named), or it inflates and the digest catches it.
    assert!(
        err.contains("AndroidManifest.xml") || err.contains("modified after signing"),
        "{err}"
    );
}

#[test]
fn one_byte_changed_in_the_signing_block() {
    let mut data = signed("rsa-v1v2v3");
    let (offset, v3) = {
        let zip = ZipArchive::parse(&data).unwrap();
        let block = zip.signing_block().unwrap().unwrap();
        let v3 = block.get(0xf053_68c0).unwrap();
        (v3.as_ptr() as usize - data.as_ptr() as usize, v3.len())
    };
    // A byte inside the signed data (the certificate), then one inside the signature.
    for at in [offset + 200, offset + v3 - 300] {
        let mut copy = data.clone();
        copy[at] ^= 0x01;
        let err = open_err(&copy);
        assert!(
            matches!(
                err,
                ApkError::Signature(SignatureError::Scheme { scheme: 3, .. })
            ),
            "{err}"
        );
    }
    // Renaming the v3 block (stripping it) trips the v2 block's stripping protection.
    let id_at = offset - 4;
    data[id_at] ^= 0xff;
    let err = open_err(&data);
    assert!(err.to_string().contains("stripped"), "{err}");
}

#[test]
fn truncated_zip() {
    let data = signed("rsa-v1v2v3");
    for len in [data.len() - 1, data.len() - 30, data.len() / 2, 100, 0] {
        let err = open_err(&data[..len]);
        assert!(matches!(err, ApkError::Zip(_)), "{len}: {err}");
    }
    assert!(matches!(
        open_err(&data[..data.len() - 1]),
        ApkError::Zip(ZipError::NoEndOfCentralDirectory)
    ));
}

#[test]
fn entries_added_after_signing() {
    let f = common::fixture();
    let dir = f.dir.join("added");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["rsa-v1v2v3", "rsa-v1"] {
        let apk = dir.join(format!("{name}.apk"));
        std::fs::copy(&f.apks[name], &apk).unwrap();
        std::fs::write(dir.join("extra.txt"), b"added later").unwrap();
        common::run(&dir, "aapt", &["add", apk.to_str().unwrap(), "extra.txt"]);
        let err = open_err(&std::fs::read(&apk).unwrap()).to_string();
        assert!(
            err.contains("extra.txt")
                || err.contains("stripped")
                || err.contains("modified after signing"),
            "{name}: {err}"
        );
    }
}

#[test]
fn zip_bomb() {
    let f = common::fixture();
    let dir = f.dir.join("bomb");
    std::fs::create_dir_all(&dir).unwrap();
    let apk = dir.join("u.apk");
    std::fs::copy(&f.unsigned["legacy"], &apk).unwrap();
    std::fs::write(dir.join("bomb.bin"), vec![0u8; 32 << 20]).unwrap();
    common::run(&dir, "aapt", &["add", apk.to_str().unwrap(), "bomb.bin"]);
    let signed = common::sign_v1(&apk, "bomb/signed.apk");
    let data = std::fs::read(&signed).unwrap();
    let zip = ZipArchive::parse(&data).unwrap();
    let err = zip.read_by_name("bomb.bin").unwrap_err();
    assert!(matches!(err, ZipError::RatioTooHigh { .. }), "{err}");
    let err = open_err(&data).to_string();
    assert!(
        err.contains("bomb.bin") && err.contains("zip bomb"),
        "{err}"
    );
}

#[test]
fn malicious_string_pool_in_the_manifest() {
    let f = common::fixture();
    let dir = f.dir.join("pool");
    std::fs::create_dir_all(&dir).unwrap();
    let original = {
        let data = std::fs::read(&f.unsigned["legacy"]).unwrap();
        ZipArchive::parse(&data)
            .unwrap()
            .read_by_name("AndroidManifest.xml")
            .unwrap()
    };
    // The pool chunk starts right after the 8-byte document header: claim 2^28 strings.
    let mut evil = original.clone();
    evil[16..20].copy_from_slice(&0x1000_0000u32.to_le_bytes());
    let apk = dir.join("evil.apk");
    std::fs::copy(&f.unsigned["legacy"], &apk).unwrap();
    common::run(
        &dir,
        "aapt",
        &["remove", apk.to_str().unwrap(), "AndroidManifest.xml"],
    );
    std::fs::write(dir.join("AndroidManifest.xml"), &evil).unwrap();
    common::run(
        &dir,
        "aapt",
        &["add", apk.to_str().unwrap(), "AndroidManifest.xml"],
    );
    let err = open_err(&std::fs::read(&apk).unwrap());
    assert!(matches!(err, ApkError::Manifest(_)), "{err}");
    assert!(err.to_string().contains("string pool"), "{err}");
}

#[test]
fn unsigned_apk() {
    let data = std::fs::read(Path::new(&common::fixture().unsigned["legacy"])).unwrap();
    let err = open_err(&data);
    assert_eq!(err, ApkError::Signature(SignatureError::Unsigned));
}
