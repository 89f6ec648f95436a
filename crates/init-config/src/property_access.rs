//! Who may change (and read) which system properties: `/system/etc/property-access.toml`, with
//! `/vendor/etc/property-access.toml` added on top (documented in `docs/properties.md`).
//!
//! ```toml
//! [[rule]]
//! prefix = "persist.sync."          # a name prefix, or a whole name
//! set = ["syncd", "@system"]        # users, `@group`s (members and primary group), or numeric uids
//! read = ["syncd", "@system"]       # optional; left out, everyone may read
//! ```
//!
//! The rule with the longest matching prefix decides; with no matching rule only privileged callers
//! (root, or the user init runs as) may set, and everyone may read. Privileged callers may always
//! do everything. A vendor rule with the same prefix as a system rule replaces it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;

/// The access file, relative to the system (or vendor) root.
pub const PROPERTY_ACCESS: &str = "etc/property-access.toml";

/// Who a rule names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Principal {
    /// A user by name (`syncd`).
    User(String),
    /// A user by number (`10001`).
    Uid(u32),
    /// The members of a group, and the users whose primary group it is (`@system`).
    Group(String),
}

impl Principal {
    /// A list item as written: a string (name, digits, `@group`) or a non-negative integer (uid).
    fn from_toml(value: &toml::Value) -> Result<Principal, String> {
        match value {
            toml::Value::String(s) => Principal::parse(s),
            toml::Value::Integer(n) => u32::try_from(*n)
                .map(Principal::Uid)
                .map_err(|_| format!("uid {n} is out of range")),
            other => Err(format!(
                "expected a user name, uid or `@group`, got {}",
                other.type_str()
            )),
        }
    }

    fn parse(text: &str) -> Result<Principal, String> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if let Some(group) = text.strip_prefix('@') {
            if name_ok(group) {
                return Ok(Principal::Group(group.to_string()));
            }
            return Err(format!("`{text}` is not a group (`@` then a group name)"));
        }
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
            return text
                .parse()
                .map(Principal::Uid)
                .map_err(|_| format!("uid `{text}` is out of range"));
        }
        if name_ok(text) {
            return Ok(Principal::User(text.to_string()));
        }
        Err(format!(
            "`{text}` is not a user name, uid or `@group` (letters, digits, `_`, `-`, `.`)"
        ))
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(name) => f.write_str(name),
            Principal::Uid(uid) => write!(f, "{uid}"),
            Principal::Group(name) => write!(f, "@{name}"),
        }
    }
}

/// One rule: who may set, and who may read, the properties under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub prefix: String,
    pub set: Vec<Principal>,
    /// `None`: everyone may read.
    pub read: Option<Vec<Principal>>,
}

/// The rules of one or more access files, keyed by prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyAccess {
    rules: BTreeMap<String, AccessRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    prefix: Spanned<String>,
    #[serde(default)]
    set: Vec<Spanned<toml::Value>>,
    read: Option<Vec<Spanned<toml::Value>>>,
}

/// Whether `prefix` is a usable rule prefix: a property name, or one followed by a dot.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let name = prefix.strip_suffix('.').unwrap_or(prefix);
    crate::properties::check_name(name).map_err(|e| format!("prefix `{prefix}`: {e}"))
}

impl PropertyAccess {
    /// Parses one access file.
    pub fn parse(path: &Path, text: &str) -> Result<PropertyAccess, ConfigError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        let err = |span: std::ops::Range<usize>, message: String| {
            ConfigError::at(path, text, Some(span), message)
        };
        let principals = |list: &[Spanned<toml::Value>]| -> Result<Vec<Principal>, ConfigError> {
            list.iter()
                .map(|p| Principal::from_toml(p.get_ref()).map_err(|m| err(p.span(), m)))
                .collect()
        };
        let mut rules = BTreeMap::new();
        for r in raw.rule {
            check_prefix(r.prefix.get_ref()).map_err(|m| err(r.prefix.span(), m))?;
            let rule = AccessRule {
                prefix: r.prefix.get_ref().clone(),
                set: principals(&r.set)?,
                read: r.read.as_deref().map(principals).transpose()?,
            };
            if rules.insert(rule.prefix.clone(), rule).is_some() {
                return Err(err(
                    r.prefix.span(),
                    format!(
                        "a rule for prefix `{}` is already in this file",
                        r.prefix.get_ref()
                    ),
                ));
            }
        }
        Ok(PropertyAccess { rules })
    }

    /// Adds `other`'s rules on top of these (the vendor file over the system one): a rule with the
    /// same prefix replaces the one here.
    pub fn extend(&mut self, other: PropertyAccess) {
        self.rules.extend(other.rules);
    }

    /// The rule deciding about property `name`: the one with the longest prefix it starts with.
    pub fn rule_for(&self, name: &str) -> Option<&AccessRule> {
        // Prefixes are few (tens); a scan keeps this allocation-free.
        self.rules
            .values()
            .filter(|r| name.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
    }

    /// Every rule, by prefix.
    pub fn rules(&self) -> impl Iterator<Item = &AccessRule> {
        self.rules.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PropertyAccess, String> {
        PropertyAccess::parse(Path::new("/system/etc/property-access.toml"), text)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn longest_prefix_decides_and_vendor_replaces() {
        let mut access = parse(
            r#"
[[rule]]
prefix = "persist."
set = ["@system"]

[[rule]]
prefix = "persist.sync."
set = ["syncd", 10001]
read = ["syncd"]
"#,
        )
        .unwrap();
        let rule = access.rule_for("persist.sync.enabled").unwrap();
        assert_eq!(
            rule.set,
            vec![Principal::User("syncd".into()), Principal::Uid(10001)]
        );
        assert_eq!(rule.read, Some(vec![Principal::User("syncd".into())]));
        let rule = access.rule_for("persist.sys.locale").unwrap();
        assert_eq!(rule.set, vec![Principal::Group("system".into())]);
        assert_eq!(rule.read, None);
        assert!(access.rule_for("sys.usb.config").is_none());
        // A whole name is a prefix too.
        assert!(access.rule_for("persist").is_none());

        let vendor = parse("[[rule]]\nprefix = \"persist.\"\nset = [\"radio\"]\n").unwrap();
        access.extend(vendor);
        assert_eq!(
            access.rule_for("persist.sys.locale").unwrap().set,
            vec![Principal::User("radio".into())]
        );
        assert_eq!(access.rules().count(), 2);
    }

    #[test]
    fn bad_files_name_the_place() {
        for (text, want) in [
            ("[[rule]]\nprefix = \"sys.\"\nset = [\"bad name\"]\n", "3:8"),
            (
                "[[rule]]\nprefix = \"sys.\"\nset = [\"@\"]\n",
                "is not a group",
            ),
            (
                "[[rule]]\nprefix = \"sys.\"\nset = [\"99999999999\"]\n",
                "out of range",
            ),
            ("[[rule]]\nprefix = \"sys.\"\nset = [-1]\n", "out of range"),
            (
                "[[rule]]\nprefix = \"sys.\"\nread = [true]\n",
                "got boolean",
            ),
            (
                "[[rule]]\nprefix = \"sys.\"\nwrite = []\n",
                "unknown key `write`",
            ),
            ("[[rule]]\nset = []\n", "missing required key `prefix`"),
            (
                "[[rule]]\nprefix = \"x.\"\n[[rule]]\nprefix = \"x.\"\n",
                "already in this file",
            ),
        ] {
            let err = parse(text).err().unwrap_or_default();
            assert!(
                err.starts_with("/system/etc/property-access.toml:") && err.contains(want),
                "{text:?}: {err}"
            );
        }
        // The prefix check points at the prefix's value.
        let err = parse("[[rule]]\nprefix = \"a..b\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            err.contains(":2:10:") && err.contains("empty part"),
            "{err}"
        );
    }

    #[test]
    fn principals_display_as_written() {
        for text in ["syncd", "10001", "@system"] {
            assert_eq!(Principal::parse(text).unwrap().to_string(), text);
        }
    }
}
