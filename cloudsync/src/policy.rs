//! When and how fast cirrus-syncd may transfer: a shared bandwidth limit (token bucket over every
//! transfer) and the conditions "only on an unmetered network" and "only while charging".
//!
//! Charging comes from the kernel's power-supply class (`/sys/class/power_supply/*`: an online
//! `Mains`/`USB` supply, or a battery whose `status` is `Charging`/`Full`); whether the network is
//! metered comes from a property, since only the connectivity service knows (a `key=value`
//! properties file, `network.metered=1`). Either input can be overridden by the properties file
//! (`power.charging=0|1`) or the environment (`CIRRUS_SYNC_CHARGING`, `CIRRUS_SYNC_METERED`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Mutex;

/// A token bucket shared by all transfers: `take(n)` waits until `n` bytes may be sent.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: u64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec: bytes_per_sec.max(1),
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Accounts for `n` bytes, sleeping as long as needed to keep the average rate.
    pub async fn take(&self, n: u64) {
        let wait = {
            let mut st = self.state.lock().await;
            let now = Instant::now();
            let rate = self.bytes_per_sec as f64;
            // Allow a burst of at most one second's worth.
            let elapsed = now.duration_since(st.1).as_secs_f64();
            st.0 = (st.0 + elapsed * rate).min(rate);
            st.1 = now;
            st.0 -= n as f64;
            if st.0 < 0.0 {
                Duration::from_secs_f64(-st.0 / rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Conditions a sync cycle waits for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// Transfer only on an unmetered network.
    pub unmetered_only: bool,
    /// Transfer only while the device is charging (or full on the charger).
    pub charging_only: bool,
    /// Where the power-supply class lives (tests point this at a fake tree).
    pub power_supply_dir: Option<PathBuf>,
    /// A `key=value` properties file (`network.metered`, `power.charging`).
    pub properties_file: Option<PathBuf>,
}

/// Why a cycle is not allowed now (shown in status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    NotCharging,
    Metered,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Blocked::NotCharging => "waiting for the charger (charging-only is on)",
            Blocked::Metered => "waiting for an unmetered network (unmetered-only is on)",
        })
    }
}

fn property(file: Option<&Path>, key: &str) -> Option<bool> {
    let text = std::fs::read_to_string(file?).ok()?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| parse_bool(v))
}

fn parse_bool(v: &str) -> bool {
    matches!(v.trim(), "1" | "true" | "yes" | "on")
}

/// Whether any power supply says the device is on external power.
pub fn charging_from_sysfs(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        let read = |name: &str| {
            std::fs::read_to_string(p.join(name))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        match read("type").as_str() {
            "Battery" => matches!(read("status").as_str(), "Charging" | "Full"),
            "Mains" | "USB" | "Wireless" => read("online") == "1",
            _ => false,
        }
    })
}

impl Conditions {
    pub fn is_charging(&self) -> bool {
        if let Ok(v) = std::env::var("CIRRUS_SYNC_CHARGING") {
            return parse_bool(&v);
        }
        if let Some(v) = property(self.properties_file.as_deref(), "power.charging") {
            return v;
        }
        charging_from_sysfs(
            self.power_supply_dir
                .as_deref()
                .unwrap_or(Path::new("/sys/class/power_supply")),
        )
    }

    pub fn is_metered(&self) -> bool {
        if let Ok(v) = std::env::var("CIRRUS_SYNC_METERED") {
            return parse_bool(&v);
        }
        property(self.properties_file.as_deref(), "network.metered").unwrap_or(false)
    }

    /// `Ok` if a cycle may transfer now.
    pub fn check(&self) -> Result<(), Blocked> {
        if self.charging_only && !self.is_charging() {
            return Err(Blocked::NotCharging);
        }
        if self.unmetered_only && self.is_metered() {
            return Err(Blocked::Metered);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn supply(root: &Path, name: &str, files: &[(&str, &str)]) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in files {
            std::fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
    }

    #[test]
    fn charging_from_power_supply_class() {
        let t = tempfile::tempdir().unwrap();
        supply(
            t.path(),
            "BAT0",
            &[("type", "Battery"), ("status", "Discharging")],
        );
        supply(t.path(), "AC", &[("type", "Mains"), ("online", "0")]);
        assert!(!charging_from_sysfs(t.path()));
        supply(t.path(), "AC", &[("type", "Mains"), ("online", "1")]);
        assert!(charging_from_sysfs(t.path()));
        supply(t.path(), "AC", &[("type", "Mains"), ("online", "0")]);
        supply(t.path(), "BAT0", &[("type", "Battery"), ("status", "Full")]);
        assert!(charging_from_sysfs(t.path()));
    }

    #[test]
    fn conditions_block_and_release() {
        let t = tempfile::tempdir().unwrap();
        supply(
            t.path(),
            "BAT0",
            &[("type", "Battery"), ("status", "Discharging")],
        );
        let props = t.path().join("props");
        std::fs::write(&props, "network.metered=1\n").unwrap();
        let c = Conditions {
            unmetered_only: true,
            charging_only: true,
            power_supply_dir: Some(t.path().to_path_buf()),
            properties_file: Some(props.clone()),
        };
        assert_eq!(c.check(), Err(Blocked::NotCharging));
        std::fs::write(&props, "network.metered=1\npower.charging=1\n").unwrap();
        assert_eq!(c.check(), Err(Blocked::Metered));
        std::fs::write(&props, "network.metered=0\npower.charging=1\n").unwrap();
        assert_eq!(c.check(), Ok(()));
    }

    /// On tokio's paused (virtual) clock: checks the pacing arithmetic, not wall time.
    #[tokio::test(start_paused = true)]
    async fn rate_limiter_paces_transfers() {
        let l = RateLimiter::new(1_000_000);
        let start = Instant::now();
        // The bucket starts empty: 500 kB at 1 MB/s needs half a second, then 1 MB one more second.
        l.take(500_000).await;
        assert_eq!(start.elapsed().as_millis(), 500);
        l.take(1_000_000).await;
        assert_eq!(start.elapsed().as_millis(), 1500);
    }
}
