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
use crate::sandbox::{Capability, Rlimit, RlimitValue, parse_rlimit, parse_size};

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
    /// Not started at boot; started by a trigger, a control request, or a unit that needs it.
    #[serde(default)]
    pub disabled: bool,
    /// Units that must be ready before this one starts; if one fails or is missing, this unit is not started.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Units started with this one (even if disabled) and waited for, but whose failure or absence
    /// does not keep this one from starting.
    #[serde(default)]
    pub wants: Vec<String>,
    /// Units that, if they are being started, must be ready (or have failed) before this one starts.
    #[serde(default)]
    pub after: Vec<String>,
    /// Time between SIGTERM and SIGKILL when stopping.
    #[serde(rename = "stop_timeout_ms", with = "millis")]
    pub stop_timeout: Duration,
    /// Android's `critical`: too many crashes in a window trigger a system action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<CriticalPolicy>,
    /// User to run as (name or number); init's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group to run as (name or number); the user's primary group when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub supplementary_groups: Vec<String>,
    /// The capability bounding set; `None` leaves it as inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<Capability>>,
    /// Capabilities kept across exec as ambient capabilities (also for a non-root `user`).
    #[serde(default)]
    pub ambient_capabilities: Vec<Capability>,
    #[serde(default)]
    pub rlimits: BTreeMap<Rlimit, RlimitValue>,
    #[serde(default)]
    pub cgroup: CgroupLimits,
    /// A private, empty `/tmp` (a tmpfs in a mount namespace of its own).
    #[serde(default)]
    pub private_tmp: bool,
    /// Paths bind-mounted read-only in a mount namespace of its own.
    #[serde(default)]
    pub read_only_paths: Vec<PathBuf>,
    /// Start/stop/restart this unit when a property takes a value.
    #[serde(default)]
    pub triggers: Vec<PropertyTrigger>,
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
#[serde(rename_all = "kebab-case", tag = "kind", content = "fd")]
pub enum Readiness {
    /// As soon as its process has been spawned.
    #[default]
    Started,
    /// When it sends `READY=1` to `$NOTIFY_SOCKET` (sd_notify protocol).
    Notify,
    /// When it writes a line to this file descriptor (s6's notification-fd, dinit's ready-fd).
    Fd(u32),
}

/// The `critical` policy: more than `crashes` unrequested exits within `window` → `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalPolicy {
    pub crashes: u32,
    #[serde(with = "millis")]
    pub window: Duration,
    pub action: CriticalAction,
}

/// Android's defaults: more than 4 crashes in 4 minutes reboot into recovery.
pub const DEFAULT_CRITICAL: CriticalPolicy = CriticalPolicy {
    crashes: 4,
    window: Duration::from_secs(240),
    action: CriticalAction::RebootRecovery,
};

/// What a critical service's crash loop does to the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CriticalAction {
    /// Reboot into the recovery system (`reboot(2)` RESTART2 with argument `recovery`).
    RebootRecovery,
    /// Reboot into the bootloader (RESTART2 `bootloader`).
    RebootBootloader,
    Reboot,
    Poweroff,
}

impl CriticalAction {
    pub fn word(self) -> &'static str {
        match self {
            CriticalAction::RebootRecovery => "reboot-recovery",
            CriticalAction::RebootBootloader => "reboot-bootloader",
            CriticalAction::Reboot => "reboot",
            CriticalAction::Poweroff => "poweroff",
        }
    }
}

/// cgroup v2 limits of the service's own cgroup; `None` leaves the kernel default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CgroupLimits {
    /// `memory.max` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// `cpu.weight`, 1–10000 (kernel default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u32>,
    /// `pids.max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
}

/// `[[triggers]]`: when property `property` becomes `value` (any value if `None`), do `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyTrigger {
    pub property: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub action: TriggerAction,
}

/// What a trigger does to its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerAction {
    Start,
    Stop,
    Restart,
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
    ready: Option<Spanned<RawReadiness>>,
    ready_fd: Option<Spanned<i64>>,
    #[serde(default)]
    oneshot: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    wants: Vec<Spanned<String>>,
    #[serde(default)]
    after: Vec<Spanned<String>>,
    stop_timeout_ms: Option<u64>,
    critical: Option<Spanned<bool>>,
    critical_crashes: Option<Spanned<u32>>,
    critical_window_secs: Option<Spanned<u64>>,
    critical_action: Option<Spanned<CriticalAction>>,
    user: Option<Spanned<toml::Value>>,
    group: Option<Spanned<toml::Value>>,
    #[serde(default)]
    supplementary_groups: Vec<Spanned<toml::Value>>,
    capabilities: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    ambient_capabilities: Vec<Spanned<String>>,
    rlimits: Option<Spanned<BTreeMap<String, toml::Value>>>,
    cgroup: Option<Spanned<RawCgroup>>,
    #[serde(default)]
    private_tmp: bool,
    #[serde(default)]
    read_only_paths: Vec<Spanned<PathBuf>>,
    #[serde(default)]
    triggers: Vec<Spanned<RawTrigger>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum RawReadiness {
    Started,
    Notify,
    Fd,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCgroup {
    memory_max: Option<toml::Value>,
    cpu_weight: Option<i64>,
    pids_max: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    property: String,
    value: Option<toml::Value>,
    action: TriggerAction,
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

/// A user or group as written: a name (`system`) or a number (`1000`).
fn user_or_group(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::Integer(n) if *n >= 0 && *n < i64::from(u32::MAX) => Ok(n.to_string()),
        toml::Value::String(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            Ok(s.clone())
        }
        toml::Value::String(s) => Err(format!(
            "`{s}` is not a user or group name (letters, digits, `_`, `-`, `.`)"
        )),
        other => Err(format!(
            "expected a name or a non-negative number, got {}",
            other.type_str()
        )),
    }
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

        // Readiness.
        let raw_ready = raw.ready.as_ref().map(|r| *r.get_ref());
        if raw.oneshot
            && let Some(ready) = &raw.ready
            && *ready.get_ref() != RawReadiness::Started
        {
            return Err(err(
                ready.span(),
                "a oneshot is ready when it exits with status 0; remove `ready` or `oneshot = true`".into(),
            ));
        }
        let ready = match raw_ready {
            None | Some(RawReadiness::Started) => {
                if let Some(fd) = &raw.ready_fd {
                    return Err(err(fd.span(), "`ready_fd` needs `ready = \"fd\"`".into()));
                }
                Readiness::Started
            }
            Some(RawReadiness::Notify) => {
                if let Some(fd) = &raw.ready_fd {
                    return Err(err(
                        fd.span(),
                        "`ready_fd` needs `ready = \"fd\"`, not \"notify\"".into(),
                    ));
                }
                Readiness::Notify
            }
            Some(RawReadiness::Fd) => match &raw.ready_fd {
                None => Readiness::Fd(3),
                Some(fd) => match u32::try_from(*fd.get_ref()) {
                    Ok(n) if (3..=255).contains(&n) => Readiness::Fd(n),
                    _ => {
                        return Err(err(
                            fd.span(),
                            format!(
                                "`ready_fd` must be between 3 and 255 (0–2 are stdin/stdout/stderr), got {}",
                                fd.get_ref()
                            ),
                        ));
                    }
                },
            },
        };

        for (key, list) in [
            ("requires", &raw.requires),
            ("wants", &raw.wants),
            ("after", &raw.after),
        ] {
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

        // critical.
        let critical_enabled = raw.critical.as_ref().is_some_and(|c| *c.get_ref());
        let critical = if critical_enabled {
            let mut policy = DEFAULT_CRITICAL;
            if let Some(n) = &raw.critical_crashes {
                if *n.get_ref() == 0 {
                    return Err(err(
                        n.span(),
                        "`critical_crashes` must be at least 1".into(),
                    ));
                }
                policy.crashes = *n.get_ref();
            }
            if let Some(w) = &raw.critical_window_secs {
                if *w.get_ref() == 0 || *w.get_ref() > 86_400 {
                    return Err(err(
                        w.span(),
                        "`critical_window_secs` must be between 1 and 86400".into(),
                    ));
                }
                policy.window = Duration::from_secs(*w.get_ref());
            }
            if let Some(a) = &raw.critical_action {
                policy.action = *a.get_ref();
            }
            Some(policy)
        } else {
            let stray = [
                raw.critical_crashes.as_ref().map(|s| s.span()),
                raw.critical_window_secs.as_ref().map(|s| s.span()),
                raw.critical_action.as_ref().map(|s| s.span()),
            ];
            if let Some(span) = stray.into_iter().flatten().next() {
                return Err(err(span, "`critical_*` keys need `critical = true`".into()));
            }
            None
        };

        // Credentials.
        let user = match &raw.user {
            Some(v) => Some(
                user_or_group(v.get_ref()).map_err(|m| err(v.span(), format!("`user`: {m}")))?,
            ),
            None => None,
        };
        let group = match &raw.group {
            Some(v) => Some(
                user_or_group(v.get_ref()).map_err(|m| err(v.span(), format!("`group`: {m}")))?,
            ),
            None => None,
        };
        let mut supplementary_groups = Vec::new();
        for g in &raw.supplementary_groups {
            supplementary_groups.push(
                user_or_group(g.get_ref())
                    .map_err(|m| err(g.span(), format!("`supplementary_groups`: {m}")))?,
            );
        }

        // Capabilities.
        let parse_caps = |list: &[Spanned<String>]| -> Result<Vec<Capability>, ConfigError> {
            let mut caps = Vec::new();
            for c in list {
                let cap: Capability = c.get_ref().parse().map_err(|m| err(c.span(), m))?;
                if !caps.contains(&cap) {
                    caps.push(cap);
                }
            }
            caps.sort();
            Ok(caps)
        };
        let capabilities = match &raw.capabilities {
            Some(list) => Some(parse_caps(list)?),
            None => None,
        };
        let ambient_capabilities = parse_caps(&raw.ambient_capabilities)?;
        if let Some(bounding) = &capabilities {
            for (cap, spanned) in ambient_capabilities.iter().zip(&raw.ambient_capabilities) {
                if !bounding.contains(cap) {
                    return Err(err(
                        spanned.span(),
                        format!(
                            "ambient capability {cap} is not in `capabilities` (the bounding set); add it there"
                        ),
                    ));
                }
            }
        }

        // Limits.
        let mut rlimits = BTreeMap::new();
        if let Some(table) = &raw.rlimits {
            for (key, value) in table.get_ref() {
                let Some(limit) = Rlimit::from_key(key) else {
                    let known: Vec<&str> = Rlimit::ALL.iter().map(|r| r.key()).collect();
                    return Err(err(
                        table.span(),
                        format!(
                            "unknown rlimit `{key}` in `rlimits`, expected one of {}",
                            known.join(", ")
                        ),
                    ));
                };
                let value = parse_rlimit(value)
                    .map_err(|m| err(table.span(), format!("`rlimits.{key}`: {m}")))?;
                rlimits.insert(limit, value);
            }
        }
        let mut cgroup = CgroupLimits::default();
        if let Some(raw_cgroup) = &raw.cgroup {
            let span = raw_cgroup.span();
            let c = raw_cgroup.get_ref();
            if let Some(v) = &c.memory_max {
                cgroup.memory_max = parse_size(v)
                    .map_err(|m| err(span.clone(), format!("`cgroup.memory_max`: {m}")))?;
            }
            if let Some(w) = c.cpu_weight {
                if !(1..=10_000).contains(&w) {
                    return Err(err(
                        span,
                        format!("`cgroup.cpu_weight` must be between 1 and 10000, got {w}"),
                    ));
                }
                cgroup.cpu_weight = u32::try_from(w).ok();
            }
            if let Some(v) = &c.pids_max {
                cgroup.pids_max = parse_size(v)
                    .map_err(|m| err(span.clone(), format!("`cgroup.pids_max`: {m}")))?;
            }
        }

        let mut read_only_paths = Vec::new();
        for p in &raw.read_only_paths {
            let path_ref = p.get_ref();
            if !path_ref.is_absolute() || has_nul(path_ref.as_os_str().as_encoded_bytes()) {
                return Err(err(
                    p.span(),
                    format!(
                        "`read_only_paths` entries must be absolute paths, got `{}`",
                        path_ref.display()
                    ),
                ));
            }
            read_only_paths.push(path_ref.clone());
        }

        let mut triggers = Vec::new();
        for t in &raw.triggers {
            let trigger = t.get_ref();
            if let Err(m) = crate::properties::check_name(&trigger.property) {
                return Err(err(t.span(), format!("trigger: {m}")));
            }
            let value = match &trigger.value {
                None => None,
                Some(toml::Value::String(s)) => Some(s.clone()),
                Some(toml::Value::Integer(n)) => Some(n.to_string()),
                Some(toml::Value::Boolean(b)) => Some(b.to_string()),
                Some(other) => {
                    return Err(err(
                        t.span(),
                        format!("trigger `value` must be a string, got {}", other.type_str()),
                    ));
                }
            };
            triggers.push(PropertyTrigger {
                property: trigger.property.clone(),
                value,
                action: trigger.action,
            });
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
            ready,
            oneshot,
            disabled: raw.disabled,
            requires: raw.requires.into_iter().map(Spanned::into_inner).collect(),
            wants: raw.wants.into_iter().map(Spanned::into_inner).collect(),
            after: raw.after.into_iter().map(Spanned::into_inner).collect(),
            stop_timeout: raw
                .stop_timeout_ms
                .map_or(DEFAULT_STOP_TIMEOUT, Duration::from_millis),
            critical,
            user,
            group,
            supplementary_groups,
            capabilities,
            ambient_capabilities,
            rlimits,
            cgroup,
            private_tmp: raw.private_tmp,
            read_only_paths,
            triggers,
        })
    }

    /// Whether the process needs a mount namespace of its own.
    pub fn needs_mount_namespace(&self) -> bool {
        self.private_tmp || !self.read_only_paths.is_empty()
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
    fn sandbox_and_limits() {
        let unit = parse(
            r#"
exec = "/bin/true"
user = "system"
group = 1000
supplementary_groups = ["audio", 1004]
capabilities = ["CAP_NET_BIND_SERVICE", "net_raw"]
ambient_capabilities = ["cap_net_bind_service"]
private_tmp = true
read_only_paths = ["/etc"]
wants = ["logd"]
disabled = true
critical = true
critical_crashes = 2
critical_action = "poweroff"
ready = "fd"
ready_fd = 5
rlimits = { nofile = [1024, 4096], core = "unlimited" }
[cgroup]
memory_max = "64M"
cpu_weight = 50
pids_max = 32
[[triggers]]
property = "sys.usb.config"
value = "adb"
action = "start"
"#,
        )
        .unwrap();
        assert_eq!(unit.user.as_deref(), Some("system"));
        assert_eq!(unit.group.as_deref(), Some("1000"));
        assert_eq!(unit.supplementary_groups, ["audio", "1004"]);
        assert_eq!(
            unit.capabilities,
            Some(vec![Capability(10), Capability(13)])
        );
        assert_eq!(unit.ambient_capabilities, [Capability(10)]);
        assert!(unit.private_tmp && unit.needs_mount_namespace() && unit.disabled);
        assert_eq!(unit.wants, ["logd"]);
        assert_eq!(
            unit.critical,
            Some(CriticalPolicy {
                crashes: 2,
                window: Duration::from_secs(240),
                action: CriticalAction::Poweroff
            })
        );
        assert_eq!(unit.ready, Readiness::Fd(5));
        assert_eq!(
            unit.rlimits.get(&Rlimit::Nofile),
            Some(&RlimitValue {
                soft: Some(1024),
                hard: Some(4096)
            })
        );
        assert_eq!(unit.cgroup.memory_max, Some(64 << 20));
        assert_eq!(unit.cgroup.cpu_weight, Some(50));
        assert_eq!(unit.cgroup.pids_max, Some(32));
        assert_eq!(
            unit.triggers,
            [PropertyTrigger {
                property: "sys.usb.config".into(),
                value: Some("adb".into()),
                action: TriggerAction::Start
            }]
        );
        let plain = parse("exec = \"/bin/true\"\ncritical = true\nready = \"fd\"\n").unwrap();
        assert_eq!(plain.critical, Some(DEFAULT_CRITICAL));
        assert_eq!(plain.ready, Readiness::Fd(3));
        assert!(!plain.needs_mount_namespace());
    }

    #[test]
    fn sandbox_errors_are_located() {
        let e = parse_err("exec = \"/bin/true\"\ncapabilities = [\"CAP_FLY\"]\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("unknown capability `CAP_FLY`"), "{e}");
        let e = parse_err(
            "exec = \"/bin/true\"\ncapabilities = [\"kill\"]\nambient_capabilities = [\"net_raw\"]\n",
        );
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("not in `capabilities`"), "{e}");
        let e = parse_err("exec = \"/bin/true\"\n[rlimits]\nfiles = 3\n");
        assert!(e.message.contains("unknown rlimit `files`"), "{e}");
        let e = parse_err("exec = \"/bin/true\"\n[cgroup]\ncpu_weight = 0\n");
        assert!(e.message.contains("cpu_weight"), "{e}");
        let e = parse_err("exec = \"/bin/true\"\n[cgroup]\nmemory = 1\n");
        assert_eq!(e.line, Some(3));
        let e = parse_err("exec = \"/bin/true\"\ncritical_crashes = 3\n");
        assert!(e.message.contains("need `critical = true`"), "{e}");
        let e = parse_err("exec = \"/bin/true\"\nready = \"fd\"\nready_fd = 1\n");
        assert_eq!(e.line, Some(3));
        let e = parse_err("exec = \"/bin/true\"\nready_fd = 4\n");
        assert!(e.message.contains("needs `ready = \"fd\"`"), "{e}");
        let e = parse_err("exec = \"/bin/true\"\nuser = \"a b\"\n");
        assert_eq!(e.line, Some(2));
        let e = parse_err("exec = \"/bin/true\"\nread_only_paths = [\"etc\"]\n");
        assert!(e.message.contains("absolute"), "{e}");
        let e = parse_err(
            "exec = \"/bin/true\"\n[[triggers]]\nproperty = \"a..b\"\naction = \"start\"\n",
        );
        assert!(e.message.contains("empty part"), "{e}");
        let e = parse_err(
            "exec = \"/bin/true\"\n[[triggers]]\nproperty = \"a\"\naction = \"explode\"\n",
        );
        assert!(e.message.contains("unknown value `explode`"), "{e}");
        let e = parse_err("exec = \"/bin/true\"\nwants = [\"svc\"]\n");
        assert!(e.message.contains("lists itself in `wants`"), "{e}");
    }

    #[test]
    fn every_key_is_documented() {
        let e = parse_err("no_such_key = 1\nexec = \"/bin/true\"\n");
        let docs = include_str!("../../../docs/unit-files.md");
        let keys: Vec<&str> = e.message.split('`').skip(3).step_by(2).collect();
        assert!(keys.len() > 25, "{}", e.message);
        for key in keys {
            assert!(
                docs.contains(&format!("`{key}`")),
                "`{key}` is not in docs/unit-files.md"
            );
        }
    }

    #[test]
    fn serde_round_trip() {
        let unit = parse("exec = \"/bin/true\"\nstop_timeout_ms = 42\nready = \"fd\"\ncritical = true\nrlimits = { nofile = 9 }\ncapabilities = [\"kill\"]\n").unwrap();
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
