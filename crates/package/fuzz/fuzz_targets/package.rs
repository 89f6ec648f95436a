//! Fuzzes the package reader and verifier (zip parsing under limits, signature, manifest): any
//! bytes must be verified or refused, never panic or exhaust memory.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = cirrus_package::Limits { max_total_bytes: 16 << 20, max_entry_bytes: 16 << 20, ..Default::default() };
    let _ = cirrus_package::verify_with(data, &limits);
});
