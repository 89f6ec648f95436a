//! Fuzzes the properties-file parser (`/data/system/properties/persist.toml` is outside data): any
//! bytes give properties that pass the name/value rules, or a located error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = Path::new("/data/system/properties/persist.toml");
        match cirrus_init_config::properties::parse_properties(path, text) {
            Ok(props) => {
                for (name, value) in &props {
                    assert!(cirrus_init_config::properties::check_name(name).is_ok(), "{name}");
                    assert!(cirrus_init_config::properties::check_value(value).is_ok(), "{value}");
                }
                // What init writes back parses to the same properties.
                let again = cirrus_init_config::properties::parse_properties(
                    path,
                    &cirrus_init_config::properties::properties_to_toml(&props),
                )
                .expect("init's own output parses");
                assert_eq!(again, props);
            }
            Err(err) => assert!(err.to_string().starts_with("/data/system/properties/persist.toml")),
        }
    }
});
