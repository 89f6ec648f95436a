//! The names unit files use for sandboxing and limits: Linux capabilities, resource limits (rlimits)
//! and cgroup v2 sizes, with their kernel numbers. Shared by the parser (validation with file:line)
//! and init (which applies them).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Linux capability names in kernel order: `CAPABILITY_NAMES[n]` is capability number `n`.
pub const CAPABILITY_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// One Linux capability, written `CAP_NET_BIND_SERVICE` or `net_bind_service` (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(pub u8);

impl Capability {
    /// The kernel's number for it (`CAP_NET_BIND_SERVICE` is 10).
    pub fn number(self) -> u8 {
        self.0
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(text: &str) -> Result<Capability, String> {
        let lower = text.to_ascii_lowercase();
        let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
        CAPABILITY_NAMES
            .iter()
            .position(|name| *name == bare)
            .and_then(|n| u8::try_from(n).ok())
            .map(Capability)
            .ok_or_else(|| {
                format!("unknown capability `{text}` (write e.g. `CAP_NET_BIND_SERVICE`; see capabilities(7))")
            })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = CAPABILITY_NAMES
            .get(usize::from(self.0))
            .unwrap_or(&"unknown");
        write!(f, "CAP_{}", name.to_ascii_uppercase())
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Capability, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A resource limit (setrlimit(2)), named as in `ulimit`/prlimit: `nofile`, `core`, `nproc` …
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rlimit {
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

impl Rlimit {
    pub const ALL: [Rlimit; 16] = [
        Rlimit::As,
        Rlimit::Core,
        Rlimit::Cpu,
        Rlimit::Data,
        Rlimit::Fsize,
        Rlimit::Locks,
        Rlimit::Memlock,
        Rlimit::Msgqueue,
        Rlimit::Nice,
        Rlimit::Nofile,
        Rlimit::Nproc,
        Rlimit::Rss,
        Rlimit::Rtprio,
        Rlimit::Rttime,
        Rlimit::Sigpending,
        Rlimit::Stack,
    ];

    /// The key in a unit file's `[rlimits]` table.
    pub fn key(self) -> &'static str {
        match self {
            Rlimit::As => "as",
            Rlimit::Core => "core",
            Rlimit::Cpu => "cpu",
            Rlimit::Data => "data",
            Rlimit::Fsize => "fsize",
            Rlimit::Locks => "locks",
            Rlimit::Memlock => "memlock",
            Rlimit::Msgqueue => "msgqueue",
            Rlimit::Nice => "nice",
            Rlimit::Nofile => "nofile",
            Rlimit::Nproc => "nproc",
            Rlimit::Rss => "rss",
            Rlimit::Rtprio => "rtprio",
            Rlimit::Rttime => "rttime",
            Rlimit::Sigpending => "sigpending",
            Rlimit::Stack => "stack",
        }
    }

    pub fn from_key(key: &str) -> Option<Rlimit> {
        Rlimit::ALL.into_iter().find(|r| r.key() == key)
    }
}

/// Soft and hard value of one limit; `None` is unlimited (`RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlimitValue {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Parses a size: an integer number of bytes, or a string with a binary suffix `K`, `M`, `G`
/// (`"64M"` is 64 MiB), or `"max"` (no limit, returned as `None`).
pub fn parse_size(value: &toml::Value) -> Result<Option<u64>, String> {
    match value {
        toml::Value::Integer(n) => u64::try_from(*n)
            .map(Some)
            .map_err(|_| format!("a size must not be negative, got {n}")),
        toml::Value::String(text) => {
            let text = text.trim();
            if text == "max" || text == "unlimited" {
                return Ok(None);
            }
            let (digits, factor) = match text.char_indices().last() {
                Some((i, 'K' | 'k')) => (&text[..i], 1u64 << 10),
                Some((i, 'M' | 'm')) => (&text[..i], 1 << 20),
                Some((i, 'G' | 'g')) => (&text[..i], 1 << 30),
                _ => (text, 1),
            };
            digits
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(factor))
                .map(Some)
                .ok_or_else(|| {
                    format!("`{text}` is not a size (write bytes as an integer, or e.g. \"64M\", \"1G\", \"max\")")
                })
        }
        other => Err(format!(
            "expected a size (integer bytes, \"64M\" or \"max\"), got {}",
            other.type_str()
        )),
    }
}

/// Parses one rlimit value: `1024` (soft = hard), `"unlimited"`, or `[soft, hard]`.
pub fn parse_rlimit(value: &toml::Value) -> Result<RlimitValue, String> {
    let one = |v: &toml::Value| -> Result<Option<u64>, String> {
        match v {
            toml::Value::Integer(n) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| format!("a limit must not be negative, got {n}")),
            toml::Value::String(s) if s == "unlimited" || s == "infinity" => Ok(None),
            other => Err(format!(
                "expected an integer or \"unlimited\", got {}",
                match other {
                    toml::Value::String(s) => format!("\"{s}\""),
                    v => v.type_str().to_string(),
                }
            )),
        }
    };
    match value {
        toml::Value::Array(pair) => {
            if pair.len() != 2 {
                return Err(format!(
                    "a limit as an array is [soft, hard], got {} element(s)",
                    pair.len()
                ));
            }
            let soft = one(&pair[0])?;
            let hard = one(&pair[1])?;
            let soft_n = soft.unwrap_or(u64::MAX);
            let hard_n = hard.unwrap_or(u64::MAX);
            if soft_n > hard_n {
                return Err("the soft limit is above the hard limit".to_string());
            }
            Ok(RlimitValue { soft, hard })
        }
        v => {
            let n = one(v)?;
            Ok(RlimitValue { soft: n, hard: n })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!("CAP_NET_BIND_SERVICE".parse(), Ok(Capability(10)));
        assert_eq!("net_raw".parse(), Ok(Capability(13)));
        assert_eq!("cap_checkpoint_restore".parse(), Ok(Capability(40)));
        assert!("CAP_FLY".parse::<Capability>().is_err());
        assert_eq!(Capability(21).to_string(), "CAP_SYS_ADMIN");
    }

    #[test]
    fn sizes() {
        let v = |s: &str| toml::Value::String(s.into());
        assert_eq!(parse_size(&v("64M")), Ok(Some(64 << 20)));
        assert_eq!(parse_size(&v("2k")), Ok(Some(2048)));
        assert_eq!(parse_size(&v("max")), Ok(None));
        assert_eq!(parse_size(&toml::Value::Integer(5)), Ok(Some(5)));
        assert!(parse_size(&toml::Value::Integer(-5)).is_err());
        assert!(parse_size(&v("lots")).is_err());
        assert!(parse_size(&v("99999999999999999G")).is_err());
    }

    #[test]
    fn rlimits() {
        let unlimited = toml::Value::String("unlimited".into());
        assert_eq!(
            parse_rlimit(&toml::Value::Integer(1024)),
            Ok(RlimitValue {
                soft: Some(1024),
                hard: Some(1024)
            })
        );
        assert_eq!(
            parse_rlimit(&unlimited),
            Ok(RlimitValue {
                soft: None,
                hard: None
            })
        );
        let pair = toml::Value::Array(vec![toml::Value::Integer(10), unlimited]);
        assert_eq!(
            parse_rlimit(&pair),
            Ok(RlimitValue {
                soft: Some(10),
                hard: None
            })
        );
        let inverted = toml::Value::Array(vec![toml::Value::Integer(10), toml::Value::Integer(5)]);
        assert!(parse_rlimit(&inverted).is_err());
        assert_eq!(Rlimit::from_key("nofile"), Some(Rlimit::Nofile));
        assert_eq!(Rlimit::from_key("files"), None);
    }
}
