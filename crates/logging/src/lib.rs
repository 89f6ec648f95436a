//! Logging setup shared by every Cirrus program.
//!
//! Every binary calls [`init`] first thing. Output goes to stderr, one event per line, stamped with
//! the *boot clock* (`CLOCK_BOOTTIME`, seconds since the kernel started) in the same
//! `[    1.234567]` form the kernel uses for its own messages. That makes the serial console of a
//! booting device read as one timeline (kernel → init → services), which is what the boot test parses
//! to report the boot timeline. On the device, cirrus-init forwards each service's stderr to the
//! console prefixed with the service name.
//!
//! The filter comes from `CIRRUS_LOG`, default `info`: a comma-separated list of `level` (the
//! default) and `target=level` pairs, e.g. `CIRRUS_LOG=cirrus_init=debug,warn`. It is a plain
//! target filter, not `RUST_LOG`'s full syntax: PID 1 links this crate, and a regex engine would cost
//! it more resident memory than all its own code (see `cargo xtask bench init`).

pub mod readiness;

use std::fmt;

use nix::time::{ClockId, clock_gettime};
use tracing_subscriber::filter::{LevelFilter, Targets};
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

/// The filter `CIRRUS_LOG` asks for: `Ok(None)` when it is unset, an error naming the bad
/// directive when it does not parse.
pub fn filter_from_env() -> Result<Option<Targets>, String> {
    match std::env::var(FILTER_ENV) {
        Err(_) => Ok(None),
        Ok(value) => parse_filter(&value).map(Some),
    }
}

/// Parses a filter in the `CIRRUS_LOG` syntax.
pub fn parse_filter(value: &str) -> Result<Targets, String> {
    value
        .parse::<Targets>()
        .map_err(|e| format!("{FILTER_ENV}={value:?} is not a valid filter ({e})"))
}

/// Installs the global subscriber for program `name`. Calling it twice is harmless (the second call
/// keeps the first subscriber), so tests can call it freely. A malformed `CIRRUS_LOG` is reported
/// as a warning and the default (`info`) used.
pub fn init(name: &str) {
    let (filter, problem) = match filter_from_env() {
        Ok(Some(filter)) => (filter, None),
        Ok(None) => (Targets::new().with_default(LevelFilter::INFO), None),
        Err(problem) => (
            Targets::new().with_default(LevelFilter::INFO),
            Some(problem),
        ),
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let result = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_timer(BootClock)
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(true),
        )
        .with(filter)
        .try_init();
    if result.is_ok() {
        tracing::debug!(program = name, "logging initialised");
        if let Some(problem) = problem {
            tracing::warn!("{problem}; logging at info");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_bad_ones_are_named() {
        use tracing::Level;
        let f = parse_filter("cirrus_init=debug,warn").unwrap_or_else(|e| panic!("{e}"));
        assert!(f.would_enable("cirrus_init::supervisor", &Level::DEBUG));
        assert!(!f.would_enable("cirrus_init", &Level::TRACE));
        assert!(!f.would_enable("smithay", &Level::INFO));
        assert!(f.would_enable("smithay", &Level::WARN));
        let err = parse_filter("cirrus_init=loud").err().unwrap_or_default();
        assert!(err.contains("CIRRUS_LOG=\"cirrus_init=loud\""), "{err}");
    }

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
