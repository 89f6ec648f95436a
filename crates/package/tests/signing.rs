//! Signing and verification of whole packages: what install must accept and everything it must
//! refuse (unsigned, tampered, added, removed, downgraded, re-signed, malicious zips).

use cirrus_package::{
    DeveloperKey, Limits, PackageContents, PackageError, UpdateError, Version, check_update,
    verify, verify_with, write_zip,
};

fn manifest(version: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "name": "Counter", "short_name": "Counter",
        "icons": [{"src": "icons/64.png", "sizes": "64x64", "type": "image/png"}],
        "cirrus": {"id": "org.example.counter", "version": version, "kind": "wasm", "permissions": ["notifications"]}
    }))
    .unwrap_or_default()
}

fn contents(version: &str) -> PackageContents {
    let mut c = PackageContents::new();
    for (name, bytes) in [
        ("manifest.webmanifest", manifest(version)),
        ("icons/64.png", b"\x89PNG fake icon".to_vec()),
        ("app.wasm", b"\0asm component bytes".to_vec()),
        ("assets/readme.txt", b"hello".to_vec()),
    ] {
        c.insert(name, bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    c
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Rebuilds a signed zip with `edit` applied to its (name, content) list, keeping the signature.
fn rewrite(signed: &[u8], edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let (c, sig) = ok(PackageContents::read_zip(signed, &Limits::default(), false));
    let mut list: Vec<(String, Vec<u8>)> = c
        .names()
        .map(|n| (n.to_owned(), c.get(n).unwrap_or_default().to_vec()))
        .collect();
    edit(&mut list);
    if let Some(sig) = sig {
        list.push(("META-INF/cirrus.sig".into(), sig));
    }
    let refs: Vec<(&str, &[u8])> = list
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    ok(write_zip(&refs))
}

#[test]
fn a_signed_package_verifies_and_round_trips() {
    let key = DeveloperKey::generate();
    let signed = ok(contents("1.0.0").sign(&key));
    let pkg = ok(verify(&signed));
    assert_eq!(pkg.signer, key.public());
    assert_eq!(pkg.manifest.cirrus.id, "org.example.counter");
    assert_eq!(pkg.contents, contents("1.0.0"));
    // Deterministic: signing again gives the same bytes.
    assert_eq!(ok(contents("1.0.0").sign(&key)), signed);
}

#[test]
fn unsigned_is_refused() {
    let zip = ok(contents("1.0.0").to_unsigned_zip());
    let err = verify(&zip)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("unsigned"), "{err}");
}

#[test]
fn a_tampered_entry_is_refused_by_name() {
    let signed = ok(contents("1.0.0").sign(&DeveloperKey::generate()));
    let tampered = rewrite(&signed, |list| {
        if let Some(e) = list.iter_mut().find(|(n, _)| n == "app.wasm") {
            e.1.push(0);
        }
    });
    assert!(matches!(verify(&tampered), Err(PackageError::EntryModified(n)) if n == "app.wasm"));
}

#[test]
fn an_added_entry_is_refused_by_name() {
    let signed = ok(contents("1.0.0").sign(&DeveloperKey::generate()));
    let added = rewrite(&signed, |list| {
        list.push(("assets/evil.js".into(), b"x".to_vec()))
    });
    assert!(matches!(verify(&added), Err(PackageError::EntryAdded(n)) if n == "assets/evil.js"));
}

#[test]
fn a_removed_entry_is_refused_by_name() {
    let signed = ok(contents("1.0.0").sign(&DeveloperKey::generate()));
    let removed = rewrite(&signed, |list| {
        list.retain(|(n, _)| n != "assets/readme.txt")
    });
    assert!(
        matches!(verify(&removed), Err(PackageError::EntryRemoved(n)) if n == "assets/readme.txt")
    );
}

#[test]
fn a_forged_signature_file_is_refused() {
    let signed = ok(contents("1.0.0").sign(&DeveloperKey::generate()));
    // Edit the signed list itself (claim a different size for the first entry): the signature fails.
    let (c, sig) = ok(PackageContents::read_zip(
        &signed,
        &Limits::default(),
        false,
    ));
    let mut v: serde_json::Value =
        serde_json::from_slice(&sig.unwrap_or_default()).unwrap_or_default();
    v["entries"][0]["size"] = 1.into();
    let sig = serde_json::to_vec(&v).unwrap_or_default();
    let mut list: Vec<(&str, &[u8])> = c
        .names()
        .map(|n| (n, c.get(n).unwrap_or_default()))
        .collect();
    list.push(("META-INF/cirrus.sig", &sig));
    let forged2 = ok(write_zip(&list));
    assert!(
        matches!(verify(&forged2), Err(PackageError::BadSignature)),
        "{:?}",
        verify(&forged2).err()
    );
}

#[test]
fn downgrade_and_other_signer_are_refused() {
    let key = DeveloperKey::generate();
    let installed = ok(verify(&ok(contents("1.2.0").sign(&key))));
    let v = |s: &str| ok(Version::parse(s));
    let older = ok(verify(&ok(contents("1.1.9").sign(&key))));
    let err = check_update(&v("1.2.0"), &installed.signer, &older).err();
    assert!(
        matches!(&err, Some(UpdateError::Downgrade { installed, offered, .. }) if installed == "1.2.0" && offered == "1.1.9"),
        "{err:?}"
    );
    let newer_other_key = ok(verify(&ok(
        contents("2.0.0").sign(&DeveloperKey::generate())
    )));
    assert!(matches!(
        check_update(&v("1.2.0"), &installed.signer, &newer_other_key),
        Err(UpdateError::SignerChanged { .. })
    ));
    let newer = ok(verify(&ok(contents("1.3.0").sign(&key))));
    assert_eq!(check_update(&v("1.2.0"), &installed.signer, &newer), Ok(()));
    assert_eq!(
        check_update(&v("1.2.0"), &installed.signer, &installed),
        Ok(()),
        "reinstalling the same version is allowed"
    );
}

#[test]
fn malicious_zips_are_refused() {
    // Path traversal.
    let evil = ok(write_zip(&[
        ("../../etc/passwd", b"x"),
        ("manifest.webmanifest", &manifest("1.0")),
    ]));
    assert!(matches!(verify(&evil), Err(PackageError::BadEntryName(n)) if n.contains("..")));
    // Absolute path.
    let evil = ok(write_zip(&[("/etc/passwd", b"x")]));
    assert!(matches!(verify(&evil), Err(PackageError::BadEntryName(_))));
    // A zip bomb: 64 MiB of zeros deflates to ~64 KiB.
    let zeros = vec![0u8; 64 << 20];
    let bomb = ok(write_zip(&[("bomb.txt", &zeros)]));
    let err = verify(&bomb)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("zip bomb"), "{err}");
    // Too many entries.
    let names: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    assert!(matches!(
        verify_with(&ok(write_zip(&many)), &limits),
        Err(PackageError::Limit(_))
    ));
    // Not a zip at all.
    assert!(matches!(verify(b"hello"), Err(PackageError::NotAZip(_))));
}

#[test]
fn manifest_must_name_files_that_exist() {
    let mut c = contents("1.0.0");
    let mut bad = PackageContents::new();
    for n in c.names().filter(|n| *n != "app.wasm") {
        ok(bad.insert(n, c.get(n).unwrap_or_default().to_vec()));
    }
    assert!(matches!(
        bad.sign(&DeveloperKey::generate()),
        Err(PackageError::MissingFile {
            field: "cirrus.component",
            ..
        })
    ));
    assert!(
        c.insert("META-INF/cirrus.sig", vec![]).is_err(),
        "the signature entry name is reserved"
    );
}
