//! Fuzzes the resource table: parse, then resolve a spread of ids for a few devices.
#![no_main]

use cirrus_apk::arsc::{DeviceConfig, ResourceTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = ResourceTable::parse(data) {
        let _ = table.locales();
        let _ = table.densities();
        for device in [DeviceConfig::default(), DeviceConfig { locale: "de-DE".into(), density: 120, sdk_version: 21 }] {
            for ty in 1..=4u32 {
                for entry in 0..4u32 {
                    let id = 0x7f00_0000 | (ty << 16) | entry;
                    let _ = table.resolve(id, &device);
                    let _ = table.resolve_string(id, &device);
                }
            }
        }
    }
});
