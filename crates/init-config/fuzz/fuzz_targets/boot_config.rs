//! Fuzzes the first-stage boot config parser, and that what it accepts survives a round trip.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(config) = cirrus_init_config::BootConfig::parse(Path::new("/etc/cirrus/boot.toml"), text)
    {
        let again = cirrus_init_config::BootConfig::parse(Path::new("/etc/cirrus/boot.toml"), &config.to_toml());
        assert_eq!(again.ok(), Some(config), "round trip changed the config");
    }
});
