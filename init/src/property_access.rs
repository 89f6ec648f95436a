//! Deciding who may set and read a property: the rules of `/system/etc/property-access.toml` and
//! `/vendor/etc/property-access.toml` (parsed by `cirrus-init-config`) applied to a caller's uid.
//!
//! Privileged callers (root, or the user init runs as) may do everything. Otherwise the rule with
//! the longest matching prefix decides; without one, only privileged callers may set and everyone
//! may read. Names in rules are looked up in the user and group databases when a request is judged
//! (not at boot), so a user added later by an update counts without a restart.

use std::path::{Path, PathBuf};

use cirrus_init_config::ConfigError;
use cirrus_init_config::property_access::{Principal, PropertyAccess};
use nix::unistd::{Group, Uid, User};

use crate::control::is_privileged_uid;

/// The access rules init judges property requests by.
#[derive(Debug, Default)]
pub struct AccessPolicy {
    access: PropertyAccess,
}

impl AccessPolicy {
    /// Loads the access files in order (later ones add to and override earlier ones); a missing
    /// file is no error. Errors are returned for logging; the readable files still count.
    pub fn load(files: &[PathBuf]) -> (AccessPolicy, Vec<ConfigError>) {
        let mut access = PropertyAccess::default();
        let mut errors = Vec::new();
        for path in files {
            match read(path) {
                Ok(Some(more)) => access.extend(more),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        (AccessPolicy { access }, errors)
    }

    /// Whether `uid` may set property `name`.
    pub fn may_set(&self, uid: u32, name: &str) -> bool {
        if is_privileged_uid(uid) {
            return true;
        }
        self.access
            .rule_for(name)
            .is_some_and(|rule| rule.set.iter().any(|p| names(p, uid)))
    }

    /// Whether `uid` may read property `name`.
    pub fn may_read(&self, uid: u32, name: &str) -> bool {
        if is_privileged_uid(uid) {
            return true;
        }
        match self
            .access
            .rule_for(name)
            .and_then(|rule| rule.read.as_ref())
        {
            None => true,
            Some(readers) => readers.iter().any(|p| names(p, uid)),
        }
    }
}

fn read(path: &Path) -> Result<Option<PropertyAccess>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => PropertyAccess::parse(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new(path, format!("cannot read: {e}"))),
    }
}

/// Whether `principal` names `uid`. Unknown names name nobody.
fn names(principal: &Principal, uid: u32) -> bool {
    match principal {
        Principal::Uid(n) => *n == uid,
        Principal::User(name) => {
            matches!(User::from_name(name), Ok(Some(user)) if user.uid.as_raw() == uid)
        }
        Principal::Group(name) => {
            let Ok(Some(group)) = Group::from_name(name) else {
                return false;
            };
            match User::from_uid(Uid::from_raw(uid)) {
                Ok(Some(user)) => user.gid == group.gid || group.mem.contains(&user.name),
                // A uid without a name can only be in the group as its primary one, which the
                // user database would have said: not a member.
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> AccessPolicy {
        let access = PropertyAccess::parse(Path::new("t.toml"), text).unwrap();
        AccessPolicy { access }
    }

    #[test]
    fn rules_by_uid_user_and_group() {
        // Debian's base-passwd: nobody is 65534 with primary group nogroup; daemon is 1 in group 1.
        let p = policy(
            r#"
[[rule]]
prefix = "test.nobody."
set = [65534]

[[rule]]
prefix = "test.daemon."
set = ["daemon"]

[[rule]]
prefix = "test.nogroup."
set = ["@nogroup"]
read = ["@nogroup"]

[[rule]]
prefix = "test.nogroup.open"
set = []
"#,
        );
        assert!(p.may_set(65534, "test.nobody.x"));
        assert!(!p.may_set(65534, "test.daemon.x"));
        assert!(p.may_set(1, "test.daemon.x"));
        assert!(!p.may_set(1, "test.nobody.x"));
        assert!(p.may_set(65534, "test.nogroup.x"), "primary group counts");
        assert!(!p.may_set(1, "test.nogroup.x"));
        assert!(p.may_read(65534, "test.nogroup.x"));
        assert!(!p.may_read(1, "test.nogroup.x"));
        // Longest prefix wins: nobody may not set it, and everyone may read it.
        assert!(!p.may_set(65534, "test.nogroup.open"));
        assert!(p.may_read(1, "test.nogroup.open"));
        // No rule: only privileged callers set; everyone reads.
        assert!(!p.may_set(65534, "sys.other") && p.may_read(65534, "sys.other"));
        assert!(p.may_set(0, "sys.other") && p.may_read(0, "test.nogroup.x"));
        // Names that do not exist name nobody.
        let p = policy("[[rule]]\nprefix = \"x.\"\nset = [\"no-such-user\", \"@no-such-group\"]\n");
        assert!(!p.may_set(65534, "x.y"));
    }

    #[test]
    fn load_reports_bad_files_and_keeps_good_ones() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let vendor = dir.path().join("vendor.toml");
        std::fs::write(&system, "[[rule]]\nprefix = \"a.\"\nset = [65534]\n").unwrap();
        std::fs::write(&vendor, "[[rule]]\nprefix = \"b.\"\nset = [\"bad name\"]\n").unwrap();
        let (p, errors) = AccessPolicy::load(&[system, vendor, dir.path().join("missing")]);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().contains("vendor.toml:3:"),
            "{}",
            errors[0]
        );
        assert!(p.may_set(65534, "a.x"));
    }
}
