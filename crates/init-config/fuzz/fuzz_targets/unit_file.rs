//! Fuzzes the unit-file parser: any bytes give a unit or a located error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match cirrus_init_config::UnitFile::parse(Path::new("/system/etc/init/fuzz.toml"), text) {
            Ok(unit) => assert!(unit.exec.is_absolute()),
            Err(err) => {
                let shown = err.to_string();
                assert!(shown.starts_with("/system/etc/init/fuzz.toml"), "error does not name the file: {shown}");
            }
        }
    }
});
