//! Fuzzes the app manifest parser: any bytes must give a manifest or an error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = cirrus_package::Manifest::parse(data) {
        let _ = (m.label(), m.best_icon(), m.component_path());
    }
});
