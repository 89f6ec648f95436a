//! The SDK end to end for both templates: `cirrus app new` (C, AssemblyScript) → `app build` (clang
//! or asc, then componentized) → `keys generate` → `app pack` → `app verify`, and the errors a
//! developer sees for a bad id or a non-empty directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const CIRRUS: &str = env!("CARGO_BIN_EXE_cirrus");

fn cirrus(dir: &Path, args: &[&str]) -> Output {
    Command::new(CIRRUS)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = cirrus(dir, args);
    assert!(
        out.status.success(),
        "cirrus {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn new_build_pack_verify(template: &str, id: &str, sources: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "app",
            "new",
            "proj",
            "--template",
            template,
            "--id",
            id,
            "--name",
            "Taps",
        ],
    );
    for s in sources {
        assert!(d.join("proj").join(s).is_file(), "{template}: no {s}");
    }
    ok(d, &["app", "build", "proj"]);
    let component = std::fs::read(d.join("proj/build/app.wasm")).unwrap();
    // A component (layer 1), not a core module.
    assert_eq!(&component[0..4], b"\0asm");
    assert_eq!(component[6..8], [1, 0], "{template}: not a component");
    ok(d, &["keys", "generate", "--out", "dev.key"]);
    ok(
        d,
        &["app", "pack", "proj", "--key", "dev.key", "-o", "app.cpkg"],
    );
    let verified = ok(d, &["app", "verify", "app.cpkg"]);
    assert!(
        verified.contains(&format!("{id} 0.1.0 (wasm)")) && verified.contains(": OK"),
        "{verified}"
    );
}

#[test]
fn web_template_packs_and_verifies_without_a_build() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = "org.example.webtaps";
    ok(
        d,
        &[
            "app",
            "new",
            "proj",
            "--template",
            "web",
            "--id",
            id,
            "--name",
            "Web Taps",
        ],
    );
    ok(d, &["keys", "generate", "--out", "dev.key"]);
    // A key beside the project must never be packed: only the manifest, icons/ and www/ are.
    std::fs::copy(d.join("dev.key"), d.join("proj/dev.key")).unwrap();
    ok(
        d,
        &["app", "pack", "proj", "--key", "dev.key", "-o", "app.cpkg"],
    );
    let verified = ok(d, &["app", "verify", "app.cpkg"]);
    assert!(
        verified.contains(&format!("{id} 0.1.0 (web)")) && verified.contains(": OK, 6 entries"),
        "{verified}"
    );
    let bytes = std::fs::read(d.join("app.cpkg")).unwrap();
    let pkg = cirrus_package::verify(&bytes).unwrap();
    let mut names: Vec<&str> = pkg.contents.names().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "app.js",
            "icons/icon-192.png",
            "icons/icon-96.png",
            "index.html",
            "manifest.webmanifest",
            "style.css"
        ]
    );
    let index = String::from_utf8(pkg.contents.get("index.html").unwrap().to_vec()).unwrap();
    assert!(index.contains("<title>Web Taps</title>"), "{index}");
    assert!(!index.contains("__APP_NAME__"));
    assert_eq!(pkg.manifest.start_url.as_deref(), Some("index.html"));
    assert_eq!(pkg.manifest.icons.len(), 2);
}

#[test]
fn c_template_builds_packs_and_verifies() {
    new_build_pack_verify(
        "c",
        "org.example.ctaps",
        &["src/main.c", "src/cirrus_app.h"],
    );
}

#[test]
fn assemblyscript_template_builds_packs_and_verifies() {
    new_build_pack_verify(
        "assemblyscript",
        "org.example.astaps",
        &["assembly/index.ts", "assembly/cirrus.ts", "package.json"],
    );
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &[
            "app",
            "new",
            "p",
            "--template",
            "assemblyscript",
            "--id",
            "org.example.p",
        ],
    );
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p/package.json")).unwrap())
            .unwrap();
    assert_eq!(package["devDependencies"]["assemblyscript"], "0.28.20");
}

#[test]
fn new_refuses_bad_ids_and_non_empty_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let out = cirrus(dir.path(), &["app", "new", "x", "--id", "Not An Id"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an app id"));
    std::fs::create_dir(dir.path().join("full")).unwrap();
    std::fs::write(dir.path().join("full/file"), "x").unwrap();
    let out = cirrus(
        dir.path(),
        &[
            "app",
            "new",
            "full",
            "--template",
            "assemblyscript",
            "--id",
            "org.example.f",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}
