//! Logging setup shared by every Cirrus program.
//!
//! Every binary calls [`init`] first thing. Output goes to stderr, one event per line, stamped with
//! the *boot clock* (`CLOCK_BOOTTIME`, seconds since the kernel started) in the same
//! `[    1.234567]` form the kernel uses for its own messages. That makes the serial console of a
//! booting device read as one timeline (kernel → init → services), which is what the boot test parses
//! to report the boot timeline. On the device, cirrus-init forwards each service's stderr to the
//! console prefixed with the service name.
//!
//! The filter comes from `CIRRUS_LOG` (same syntax as `RUST_LOG`), default `info`.

use std::fmt;

use nix::time::{ClockId, clock_gettime};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Environment variable holding the tracing filter directives.
pub const FILTER_ENV: &str = "CIRRUS_LOG";

/// Seconds since boot (`CLOCK_BOOTTIME`), the clock of the kernel's printk timestamps.
///
/// Returns `None` only if the kernel refuses the clock, which no supported kernel does.
pub fn boot_time_secs() -> Option<f64> {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    Some(ts.tv_sec() as f64 + ts.tv_nsec() as f64 / 1e9)
}

/// Formats a boot-clock stamp as the kernel does: `[    1.234567]`.
pub fn format_boot_stamp(secs: f64) -> String {
    format!("[{secs:12.6}]")
}

/// A `tracing` timer printing the boot clock like the kernel's printk timestamps.
#[derive(Debug, Clone, Copy, Default)]
pub struct BootClock;

impl FormatTime for BootClock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match boot_time_secs() {
            Some(secs) => w.write_str(&format_boot_stamp(secs)),
            None => w.write_str("[           ?]"),
        }
    }
}

/// Installs the global subscriber for program `name`. Calling it twice is harmless (the second call
/// keeps the first subscriber), so tests can call it freely.
pub fn init(name: &str) {
    let filter = EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(BootClock)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true)
        .try_init();
    if result.is_ok() {
        tracing::debug!(program = name, "logging initialised");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_stamp_matches_kernel_format() {
        assert_eq!(format_boot_stamp(1.5), "[    1.500000]");
        assert_eq!(format_boot_stamp(12345.000001), "[12345.000001]");
    }

    #[test]
    fn boot_clock_is_monotonic_and_positive() {
        let a = boot_time_secs().unwrap_or(-1.0);
        let b = boot_time_secs().unwrap_or(-1.0);
        assert!(a > 0.0, "boot clock must be positive, got {a}");
        assert!(b >= a, "boot clock went backwards: {a} then {b}");
    }
}
