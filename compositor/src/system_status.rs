//! What the status bar's indicators show, read from sysfs: the battery from
//! `/sys/class/power_supply/*` (type `Battery`: `capacity`, `status`) and the network in use from
//! `/sys/class/net/*` (an interface other than loopback whose `operstate` is `up`; Wi-Fi when it
//! has a `wireless` or `phy80211` entry, cellular for `wwan*`/`rmnet*`, else wired).

use std::path::Path;

use cirrus_ui::shell::{Battery, Network};

fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_owned())
}

/// The first battery's state, if the device has a battery.
pub fn read_battery(sysfs: &Path) -> Option<Battery> {
    let dir = sysfs.join("class/power_supply");
    let mut supplies: Vec<_> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    supplies.sort();
    for supply in supplies {
        if read_trimmed(&supply.join("type")).as_deref() != Some("Battery") {
            continue;
        }
        if read_trimmed(&supply.join("present")).as_deref() == Some("0") {
            continue;
        }
        let percent = read_trimmed(&supply.join("capacity"))
            .and_then(|c| c.parse::<u32>().ok())?
            .min(100) as u8;
        let charging = matches!(
            read_trimmed(&supply.join("status")).as_deref(),
            Some("Charging") | Some("Full")
        );
        return Some(Battery { percent, charging });
    }
    None
}

/// The network connection in use, preferring Wi-Fi, then wired, then cellular.
pub fn read_network(sysfs: &Path) -> Option<Network> {
    let dir = sysfs.join("class/net");
    let mut best: Option<Network> = None;
    for entry in std::fs::read_dir(&dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == "lo" || read_trimmed(&path.join("operstate")).as_deref() != Some("up") {
            continue;
        }
        let kind = if path.join("wireless").exists() || path.join("phy80211").exists() {
            Network::Wifi
        } else if name.starts_with("wwan") || name.starts_with("rmnet") {
            Network::Cellular
        } else {
            Network::Wired
        };
        let rank = |n: Network| match n {
            Network::Wifi => 0,
            Network::Wired => 1,
            Network::Cellular => 2,
        };
        if best.is_none_or(|b| rank(kind) < rank(b)) {
            best = Some(kind);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn battery_and_network_from_a_fake_sysfs() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sys = dir.path();
        assert_eq!(read_battery(sys), None);
        assert_eq!(read_network(sys), None);
        write(sys, "class/power_supply/AC/type", "Mains\n");
        write(sys, "class/power_supply/BAT0/type", "Battery\n");
        write(sys, "class/power_supply/BAT0/capacity", "57\n");
        write(sys, "class/power_supply/BAT0/status", "Discharging\n");
        assert_eq!(
            read_battery(sys),
            Some(Battery {
                percent: 57,
                charging: false
            })
        );
        write(sys, "class/power_supply/BAT0/status", "Charging\n");
        write(sys, "class/power_supply/BAT0/capacity", "250\n");
        assert_eq!(
            read_battery(sys),
            Some(Battery {
                percent: 100,
                charging: true
            })
        );
        write(sys, "class/power_supply/BAT0/capacity", "lots\n");
        assert_eq!(
            read_battery(sys),
            None,
            "garbage capacity must not show a battery"
        );

        write(sys, "class/net/lo/operstate", "unknown\n");
        write(sys, "class/net/eth0/operstate", "down\n");
        assert_eq!(read_network(sys), None);
        write(sys, "class/net/rmnet0/operstate", "up\n");
        assert_eq!(read_network(sys), Some(Network::Cellular));
        write(sys, "class/net/eth0/operstate", "up\n");
        assert_eq!(read_network(sys), Some(Network::Wired));
        write(sys, "class/net/wlan0/operstate", "up\n");
        write(sys, "class/net/wlan0/wireless/.keep", "");
        assert_eq!(read_network(sys), Some(Network::Wifi));
    }
}
