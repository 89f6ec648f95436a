//! Fuzzes the zip reader, the signing block locator, entry reads and the whole APK pipeline
//! (manifest, resources, signature verification) on whatever parses.
#![no_main]

use cirrus_apk::arsc::DeviceConfig;
use cirrus_apk::zip::ZipArchive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(zip) = ZipArchive::parse(data) {
        let _ = zip.signing_block();
        for entry in zip.entries().iter().take(8) {
            let _ = zip.read(entry);
        }
        let _ = cirrus_apk::open_apk(&zip, &DeviceConfig::default());
    }
});
