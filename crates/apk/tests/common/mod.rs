//! Test fixture: the standard APK set (`cirrus_testsupport::apk::StandardApks`), built once per test
//! binary with Debian's smali, aapt, zipalign, keytool and apksigner.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use cirrus_testsupport::apk::{StandardApks as Fixture, aapt_badging, apksigner_verify, run};

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Under target/tmp (reused, never leaked), one directory per test binary.
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        Fixture::build(
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("apk-fixture-{binary}")),
        )
    })
}

pub fn sign_v1(input: &Path, out: &str) -> PathBuf {
    fixture().sign_v1(input, out)
}
