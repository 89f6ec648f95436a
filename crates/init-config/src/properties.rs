//! System properties (Android-style `name = value` strings): names, values, and the two files
//! that hold them.
//!
//! * `/system/etc/properties.toml` (and `/vendor/etc/properties.toml`, which overrides it): the
//!   build's properties, written by the image builder from the device definition. Keys may be
//!   written dotted (`ro.product.model = "x"`, nested TOML tables) or quoted (`"ro.product.model" = "x"`).
//! * `/data/system/properties/persist.toml`: the `persist.*` properties init saved, restored at boot.
//!
//! Rules shared by init and the tools: a name is 1–[`MAX_NAME`] bytes of `[A-Za-z0-9_.:@-]`,
//! dot-separated without empty parts; a value is at most [`MAX_VALUE`] bytes without NUL or newline.
//! `ro.*` are set once, `persist.*` survive reboots, the others live in memory.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::ConfigError;

/// Longest property name.
pub const MAX_NAME: usize = 256;
/// Longest property value.
pub const MAX_VALUE: usize = 4096;

/// Build properties file, relative to the system (or vendor) root.
pub const BUILD_PROPERTIES: &str = "etc/properties.toml";
/// Persistent properties file, relative to `/data`.
pub const PERSIST_PROPERTIES: &str = "system/properties/persist.toml";

/// Checks a property name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "a property name has 1 to {MAX_NAME} bytes, got {}",
            name.len()
        ));
    }
    if name.split('.').any(str::is_empty) {
        return Err(format!(
            "property name `{name}` has an empty part (no leading, trailing or double dots)"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')))
    {
        return Err(format!(
            "property name `{name}` contains `{}`; use letters, digits and `_ . : @ -`",
            bad.escape_default()
        ));
    }
    Ok(())
}

/// Checks a property value.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE {
        return Err(format!(
            "a property value has at most {MAX_VALUE} bytes, got {}",
            value.len()
        ));
    }
    if value.contains(['\0', '\n', '\r']) {
        return Err("a property value must not contain NUL or line breaks".to_string());
    }
    Ok(())
}

/// Whether `name` is read-only once set.
pub fn is_read_only(name: &str) -> bool {
    name.starts_with("ro.")
}

/// Whether `name` is saved under /data and restored at boot.
pub fn is_persistent(name: &str) -> bool {
    name.starts_with("persist.")
}

/// Parses a properties file (build or persist): a TOML table whose leaves are strings (integers and
/// booleans are taken as their text), flattened with dots.
pub fn parse_properties(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
    let mut out = BTreeMap::new();
    flatten(path, "", &table, &mut out)?;
    Ok(out)
}

fn flatten(
    path: &Path,
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            toml::Value::Table(inner) => {
                flatten(path, &name, inner, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "property `{name}`: expected a string, got {}",
                        other.type_str()
                    ),
                ));
            }
        };
        check_name(&name).map_err(|m| ConfigError::new(path, m))?;
        check_value(&text)
            .map_err(|m| ConfigError::new(path, format!("property `{name}`: {m}")))?;
        if out.insert(name.clone(), text).is_some() {
            return Err(ConfigError::new(
                path,
                format!("property `{name}` is set twice"),
            ));
        }
    }
    Ok(())
}

/// Writes `properties` as a properties file (quoted keys, one per line, sorted).
pub fn properties_to_toml(properties: &BTreeMap<String, String>) -> String {
    let mut table = toml::Table::new();
    for (name, value) in properties {
        table.insert(name.clone(), toml::Value::String(value.clone()));
    }
    toml::to_string(&table).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert!(check_name("ro.product.model").is_ok());
        assert!(check_name("persist.sys.usb-config").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a..b").is_err());
        assert!(check_name(".a").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
        assert!(check_value("x y z").is_ok());
        assert!(check_value("a\nb").is_err());
        assert!(check_value(&"v".repeat(MAX_VALUE + 1)).is_err());
        assert!(is_read_only("ro.x") && !is_read_only("rox"));
        assert!(is_persistent("persist.a") && !is_persistent("sys.a"));
    }

    #[test]
    fn dotted_and_quoted_keys_flatten() {
        let text = "ro.product.model = \"QEMU\"\n\"ro.build.id\" = \"abc\"\n[sys]\nbooted = true\nlevel = 3\n";
        let props = parse_properties(Path::new("/p.toml"), text).unwrap();
        let got: Vec<(&str, &str)> = props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("ro.build.id", "abc"),
                ("ro.product.model", "QEMU"),
                ("sys.booted", "true"),
                ("sys.level", "3")
            ]
        );
        let round = parse_properties(Path::new("/p.toml"), &properties_to_toml(&props)).unwrap();
        assert_eq!(round, props);
    }

    #[test]
    fn bad_files() {
        let e = parse_properties(Path::new("/p.toml"), "a = [1]\n").unwrap_err();
        assert!(e.message.contains("expected a string"), "{e}");
        let e = parse_properties(Path::new("/p.toml"), "a = \"x\"\n\"a\" = \"y\"\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");
        let e = parse_properties(Path::new("/p.toml"), "\"a.b\" = \"x\"\n[a]\nb = \"y\"\n")
            .unwrap_err();
        assert!(e.message.contains("set twice"), "{e}");
    }
}
