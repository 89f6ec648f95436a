//! Unit files: one service per `NAME.toml` under `/system/etc/init` or `/vendor/etc/init`.
//!
//! The format is documented for OEMs in `docs/unit-files.md`. Parsing is strict (unknown keys are
//! errors) and every error names the file, line and column and says what to do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::ConfigError;

/// Default time between SIGTERM and SIGKILL when a service is stopped.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_millis(5000);

/// One service (or one-shot task) supervised by cirrus-init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitFile {
    /// The file stem: `compositor` for `compositor.toml`.
    pub name: String,
    /// The file the unit was read from.
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Absolute path of the program.
    pub exec: PathBuf,
    /// Arguments after argv[0] (argv[0] is `exec`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Added to the environment cirrus-init passes on.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    pub restart: RestartPolicy,
    #[serde(default)]
    pub ready: Readiness,
    /// Runs to completion; counts as ready once it exits with status 0.
    #[serde(default)]
    pub oneshot: bool,
    /// Units that must be ready before this one starts; if one fails or is missing, this unit is not started.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Units that, if they exist, must be ready (or have failed) before this one starts.
    #[serde(default)]
    pub after: Vec<String>,
    /// Time between SIGTERM and SIGKILL when stopping.
    #[serde(rename = "stop_timeout_ms", with = "millis")]
    pub stop_timeout: Duration,
}

/// What to do when a service's process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart whatever the exit status (the default for services).
    Always,
    /// Restart after a non-zero exit status or a death by signal.
    OnFailure,
    /// Never restart (the default for oneshots).
    Never,
}

/// When a service counts as ready, i.e. when the units ordered after it may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// As soon as its process has been spawned.
    #[default]
    Started,
    /// When it sends `READY=1` to `$NOTIFY_SOCKET` (sd_notify protocol).
    Notify,
}

/// The keys of a unit file, as written (with positions for the checks done after parsing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    description: Option<String>,
    exec: Spanned<PathBuf>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    #[serde(default)]
    env: Option<Spanned<BTreeMap<String, String>>>,
    working_dir: Option<Spanned<PathBuf>>,
    restart: Option<RestartPolicy>,
    #[serde(default)]
    ready: Option<Spanned<Readiness>>,
    #[serde(default)]
    oneshot: bool,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    after: Vec<Spanned<String>>,
    stop_timeout_ms: Option<u64>,
}

/// Whether `name` is a valid unit name: `[a-z0-9][a-z0-9._-]*`.
pub fn is_valid_unit_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

impl UnitFile {
    /// Parses the unit file `path` whose contents are `text`. The unit's name is the file stem.
    pub fn parse(path: &Path, text: &str) -> Result<UnitFile, ConfigError> {
        let name = unit_name_from_path(path)?;
        let raw: RawUnit =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        let err = |span: std::ops::Range<usize>, message: String| {
            ConfigError::at(path, text, Some(span), message)
        };

        let exec = raw.exec.get_ref();
        if !exec.is_absolute() {
            return Err(err(
                raw.exec.span(),
                format!(
                    "`exec` must be an absolute path, got `{}` (write e.g. `/system/bin/{}`)",
                    exec.display(),
                    exec.display()
                ),
            ));
        }
        if has_nul(exec.as_os_str().as_encoded_bytes()) {
            return Err(err(
                raw.exec.span(),
                "`exec` contains a NUL character".into(),
            ));
        }
        for arg in &raw.args {
            if has_nul(arg.get_ref().as_bytes()) {
                return Err(err(
                    arg.span(),
                    "an argument in `args` contains a NUL character".into(),
                ));
            }
        }
        if let Some(env) = &raw.env {
            for (key, value) in env.get_ref() {
                if key.is_empty() || key.contains('=') || has_nul(key.as_bytes()) {
                    return Err(err(
                        env.span(),
                        format!(
                            "invalid environment variable name `{key}` in `env` (it must be non-empty, without `=` or NUL)"
                        ),
                    ));
                }
                if has_nul(value.as_bytes()) {
                    return Err(err(
                        env.span(),
                        format!("the value of `{key}` in `env` contains a NUL character"),
                    ));
                }
            }
        }
        if let Some(dir) = &raw.working_dir
            && !dir.get_ref().is_absolute()
        {
            return Err(err(
                dir.span(),
                format!(
                    "`working_dir` must be an absolute path, got `{}`",
                    dir.get_ref().display()
                ),
            ));
        }
        if raw.oneshot
            && let Some(ready) = &raw.ready
            && *ready.get_ref() == Readiness::Notify
        {
            return Err(err(
                ready.span(),
                "a oneshot is ready when it exits with status 0; remove `ready = \"notify\"` or `oneshot = true`".into(),
            ));
        }
        for (key, list) in [("requires", &raw.requires), ("after", &raw.after)] {
            for dep in list {
                let dep_name = dep.get_ref();
                if !is_valid_unit_name(dep_name) {
                    return Err(err(
                        dep.span(),
                        format!(
                            "`{dep_name}` in `{key}` is not a unit name (a file stem like `compositor`, matching [a-z0-9][a-z0-9._-]*)"
                        ),
                    ));
                }
                if *dep_name == name {
                    return Err(err(
                        dep.span(),
                        format!("unit `{name}` lists itself in `{key}`; remove it"),
                    ));
                }
            }
        }

        let oneshot = raw.oneshot;
        Ok(UnitFile {
            name,
            path: path.to_path_buf(),
            description: raw.description,
            exec: raw.exec.into_inner(),
            args: raw.args.into_iter().map(Spanned::into_inner).collect(),
            env: raw.env.map(Spanned::into_inner).unwrap_or_default(),
            working_dir: raw.working_dir.map(Spanned::into_inner),
            restart: raw.restart.unwrap_or(if oneshot {
                RestartPolicy::Never
            } else {
                RestartPolicy::Always
            }),
            ready: raw.ready.map(Spanned::into_inner).unwrap_or_default(),
            oneshot,
            requires: raw.requires.into_iter().map(Spanned::into_inner).collect(),
            after: raw.after.into_iter().map(Spanned::into_inner).collect(),
            stop_timeout: raw
                .stop_timeout_ms
                .map_or(DEFAULT_STOP_TIMEOUT, Duration::from_millis),
        })
    }

    /// Reads and parses the unit file at `path`.
    pub fn load(path: &Path) -> Result<UnitFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read unit file: {e}")))?;
        UnitFile::parse(path, &text)
    }
}

fn has_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0)
}

fn unit_name_from_path(path: &Path) -> Result<String, ConfigError> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if !is_valid_unit_name(stem) {
        return Err(ConfigError::new(
            path,
            format!(
                "`{stem}` is not a valid unit name; rename the file to match [a-z0-9][a-z0-9._-]*.toml"
            ),
        ));
    }
    Ok(stem.to_string())
}

/// Reads every `*.toml` in each directory of `dirs`, in order.
///
/// A unit in a later directory replaces the same-named unit of an earlier one (vendor overrides
/// system). A missing directory is not an error. A bad file yields an error in the returned `Vec`
/// but never stops the other units loading; if a bad file would have overridden a good one, the good
/// one stays. Units are returned sorted by name.
pub fn load_unit_dirs(dirs: &[&Path]) -> (Vec<UnitFile>, Vec<ConfigError>) {
    let mut units: BTreeMap<String, UnitFile> = BTreeMap::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(ConfigError::new(
                    dir,
                    format!("cannot read unit directory: {e}"),
                ));
                continue;
            }
        };
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    if path.extension().is_some_and(|ext| ext == "toml") {
                        // Follows symlinks: a directory named `x.toml` is skipped, a link to a file is read.
                        if std::fs::metadata(&path)
                            .map(|m| m.is_file())
                            .unwrap_or(true)
                        {
                            paths.push(path);
                        }
                    }
                }
                Err(e) => errors.push(ConfigError::new(
                    dir,
                    format!("cannot list unit directory: {e}"),
                )),
            }
        }
        paths.sort();
        for path in paths {
            match UnitFile::load(&path) {
                Ok(unit) => {
                    units.insert(unit.name.clone(), unit);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    (units.into_values().collect(), errors)
}

/// `Duration` as an integer number of milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UnitFile, ConfigError> {
        UnitFile::parse(Path::new("/system/etc/init/svc.toml"), text)
    }

    fn parse_err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(unit) => panic!("expected an error, parsed {unit:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn minimal_unit_gets_defaults() {
        let unit = parse("exec = \"/bin/true\"\n").unwrap();
        assert_eq!(unit.name, "svc");
        assert_eq!(unit.path, Path::new("/system/etc/init/svc.toml"));
        assert_eq!(unit.exec, Path::new("/bin/true"));
        assert_eq!(unit.restart, RestartPolicy::Always);
        assert_eq!(unit.ready, Readiness::Started);
        assert!(!unit.oneshot);
        assert_eq!(unit.stop_timeout, Duration::from_millis(5000));
        assert!(
            unit.args.is_empty()
                && unit.env.is_empty()
                && unit.requires.is_empty()
                && unit.after.is_empty()
        );
    }

    #[test]
    fn full_unit() {
        let unit = parse(
            r#"
description = "Wayland compositor and phone shell"
exec = "/system/bin/cirrus-compositor"
args = ["--backend", "drm"]
env = { XDG_RUNTIME_DIR = "/run/user/0" }
working_dir = "/"
restart = "on-failure"
ready = "notify"
requires = ["dbus"]
after = ["logd"]
stop_timeout_ms = 2500
"#,
        )
        .unwrap();
        assert_eq!(
            unit.description.as_deref(),
            Some("Wayland compositor and phone shell")
        );
        assert_eq!(unit.args, ["--backend", "drm"]);
        assert_eq!(
            unit.env.get("XDG_RUNTIME_DIR").map(String::as_str),
            Some("/run/user/0")
        );
        assert_eq!(unit.working_dir.as_deref(), Some(Path::new("/")));
        assert_eq!(unit.restart, RestartPolicy::OnFailure);
        assert_eq!(unit.ready, Readiness::Notify);
        assert_eq!(unit.requires, ["dbus"]);
        assert_eq!(unit.after, ["logd"]);
        assert_eq!(unit.stop_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn oneshot_defaults_to_never_restart() {
        let unit = parse("exec = \"/bin/true\"\noneshot = true\n").unwrap();
        assert_eq!(unit.restart, RestartPolicy::Never);
        let unit =
            parse("exec = \"/bin/true\"\noneshot = true\nrestart = \"on-failure\"\n").unwrap();
        assert_eq!(unit.restart, RestartPolicy::OnFailure);
    }

    #[test]
    fn unknown_key_names_line_column_and_alternatives() {
        let e = parse_err("description = \"x\"\nexce = \"/bin/true\"\n");
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
        assert!(
            e.message.starts_with("unknown key `exce`, expected one of"),
            "{}",
            e.message
        );
        assert!(e.message.contains("`exec`"), "{}", e.message);
        assert!(
            e.to_string()
                .starts_with("/system/etc/init/svc.toml:2:1: unknown key `exce`"),
            "{e}"
        );
    }

    #[test]
    fn missing_exec() {
        let e = parse_err("description = \"x\"\n");
        assert!(
            e.message.contains("missing required key `exec`"),
            "{}",
            e.message
        );
        assert!(e.line.is_some());
    }

    #[test]
    fn wrong_type_points_at_value() {
        let e = parse_err("exec = \"/bin/true\"\noneshot = \"yes\"\n");
        assert_eq!(e.line, Some(2));
        assert_eq!(e.column, Some(11));
        assert!(e.message.contains("bool"), "{}", e.message);
    }

    #[test]
    fn bad_restart_value() {
        let e = parse_err("exec = \"/bin/true\"\nrestart = \"sometimes\"\n");
        assert_eq!(e.line, Some(2));
        assert!(
            e.message.contains("unknown value `sometimes`") && e.message.contains("on-failure"),
            "{}",
            e.message
        );
    }

    #[test]
    fn toml_syntax_error() {
        let e = parse_err("exec = \"/bin/true\"\nargs = [\"a\"\n");
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn relative_exec() {
        let e = parse_err("\n\nexec = \"bin/foo\"\n");
        assert_eq!((e.line, e.column), (Some(3), Some(8)));
        assert!(e.message.contains("absolute path"), "{}", e.message);
    }

    #[test]
    fn relative_working_dir() {
        let e = parse_err("exec = \"/bin/true\"\nworking_dir = \"tmp\"\n");
        assert_eq!(e.line, Some(2));
        assert!(
            e.message.contains("`working_dir` must be an absolute path"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unit_requiring_itself() {
        let e = parse_err("exec = \"/bin/true\"\nrequires = [\"a\", \"svc\"]\n");
        assert_eq!((e.line, e.column), (Some(2), Some(18)));
        assert!(
            e.message.contains("lists itself in `requires`"),
            "{}",
            e.message
        );
        let e = parse_err("exec = \"/bin/true\"\nafter = [\"svc\"]\n");
        assert!(
            e.message.contains("lists itself in `after`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn invalid_dependency_name() {
        let e = parse_err("exec = \"/bin/true\"\nafter = [\"Foo.service\"]\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("not a unit name"), "{}", e.message);
    }

    #[test]
    fn invalid_env_name() {
        let e = parse_err("exec = \"/bin/true\"\n[env]\n\"A=B\" = \"x\"\n");
        assert!(
            e.message
                .contains("invalid environment variable name `A=B`"),
            "{}",
            e.message
        );
        assert!(e.line.is_some());
    }

    #[test]
    fn notify_oneshot_rejected() {
        let e = parse_err("exec = \"/bin/true\"\noneshot = true\nready = \"notify\"\n");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn invalid_file_name() {
        let e = UnitFile::parse(
            Path::new("/etc/init/Bad Name.toml"),
            "exec = \"/bin/true\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, None);
        assert!(e.to_string().contains("is not a valid unit name"), "{e}");
        assert!(!is_valid_unit_name(".hidden"));
        assert!(!is_valid_unit_name(""));
        assert!(is_valid_unit_name("0abc.d_e-f"));
    }

    #[test]
    fn serde_round_trip() {
        let unit = parse("exec = \"/bin/true\"\nstop_timeout_ms = 42\n").unwrap();
        let text = toml::to_string(&unit).unwrap();
        assert!(text.contains("stop_timeout_ms = 42"), "{text}");
        let back: UnitFile = toml::from_str(&text).unwrap();
        assert_eq!(back, unit);
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn vendor_overrides_system_and_errors_do_not_stop_loading() {
        let tmp = tempfile::tempdir().unwrap();
        let system = tmp.path().join("system");
        let vendor = tmp.path().join("vendor");
        write(&system, "a.toml", "exec = \"/system/a\"\n");
        write(&system, "b.toml", "exec = \"/system/b\"\n");
        write(&system, "c.toml", "exec = \"/system/c\"\n");
        write(&system, "bad.toml", "exce = \"/x\"\n");
        write(&system, "notes.txt", "not a unit");
        write(&vendor, "b.toml", "exec = \"/vendor/b\"\n");
        write(&vendor, "c.toml", "exec = \"relative\"\n");
        write(&vendor, "d.toml", "exec = \"/vendor/d\"\n");
        let missing = tmp.path().join("missing");
        let (units, errors) = load_unit_dirs(&[&system, &vendor, &missing]);
        let got: Vec<(&str, &Path)> = units
            .iter()
            .map(|u| (u.name.as_str(), u.exec.as_path()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Path::new("/system/a")),
                ("b", Path::new("/vendor/b")),
                // The bad vendor override is reported and the system unit is kept.
                ("c", Path::new("/system/c")),
                ("d", Path::new("/vendor/d")),
            ]
        );
        assert_eq!(units[1].path, vendor.join("b.toml"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].path, system.join("bad.toml"));
        assert_eq!(errors[0].line, Some(1));
        assert_eq!(errors[1].path, vendor.join("c.toml"));
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let e = UnitFile::load(&tmp.path().join("nope.toml")).unwrap_err();
        assert!(e.message.contains("cannot read unit file"), "{e}");
    }
}
