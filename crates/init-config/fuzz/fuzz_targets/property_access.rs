//! Fuzzes the property-access parser (`/vendor/etc/property-access.toml` comes from an OEM's
//! build): any bytes give rules whose prefixes are valid, or a located error, never a panic.
#![no_main]

use std::path::Path;

use cirrus_init_config::property_access::PropertyAccess;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = Path::new("/vendor/etc/property-access.toml");
        match PropertyAccess::parse(path, text) {
            Ok(access) => {
                for rule in access.rules() {
                    let name = rule.prefix.strip_suffix('.').unwrap_or(&rule.prefix);
                    assert!(cirrus_init_config::properties::check_name(name).is_ok(), "{rule:?}");
                    // The rule decides for its own prefix (or a more specific rule does).
                    let decided = access.rule_for(name).map(|r| r.prefix.len());
                    if rule.prefix.ends_with('.') {
                        assert!(access.rule_for(&format!("{name}.x")).is_some());
                    } else {
                        assert!(decided >= Some(rule.prefix.len()), "{rule:?}");
                    }
                }
            }
            Err(err) => assert!(err.to_string().starts_with("/vendor/etc/property-access.toml")),
        }
    }
});
