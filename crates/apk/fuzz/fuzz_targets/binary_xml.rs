//! Fuzzes the binary XML parser and the manifest reader: any bytes give a document or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = cirrus_apk::axml::XmlDocument::parse(data) {
        assert!(!doc.elements.is_empty());
        let _ = cirrus_apk::manifest::Manifest::from_document(&doc);
    }
});
