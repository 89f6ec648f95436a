//! What the benchmarks read about a running process from /proc, and small statistics helpers, in
//! one place for every suite.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::workspace::{Workspace, cargo};

/// A `/proc/PID/status` field in KiB (`VmRSS`, `RssAnon`, `VmHWM`); 0 when the process is gone.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Proportional set size (`Pss` of `/proc/PID/smaps_rollup`): shared pages divided among sharers.
pub fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// The `p`-th percentile (0–100, nearest rank) of `samples`; zero for none.
pub fn percentile(samples: &[Duration], p: u32) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (sorted.len() * p.min(100) as usize).div_ceil(100);
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// The median of `samples` (the upper one for an even count); zero for none.
pub fn median(samples: &[Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// The cargo target directory benchmarks build into.
pub fn target_dir(ws: &Workspace) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.root.join("target"))
}

/// `cargo build --release -p …` of `packages`; returns the release directory.
pub fn build_release(ws: &Workspace, packages: &[&str]) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release"]).current_dir(&ws.root);
    for p in packages {
        cmd.args(["-p", p]);
    }
    println!("build: cargo build --release -p {}", packages.join(" -p "));
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    Ok(target_dir(ws).join("release"))
}

/// A fresh, empty directory at `path`.
pub fn fresh_dir(path: &Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let s = ms(&[5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
        assert_eq!(percentile(&s, 50), Duration::from_millis(5));
        assert_eq!(percentile(&s, 95), Duration::from_millis(10));
        assert_eq!(percentile(&s, 0), Duration::from_millis(1));
        assert_eq!(median(&ms(&[3, 1, 2])), Duration::from_millis(2));
        assert_eq!(median(&[]), Duration::ZERO);
    }

    #[test]
    fn reads_our_own_memory() {
        let me = std::process::id();
        assert!(rss_kib(me) > 0);
        assert!(pss_kib(me) > 0);
        assert!(status_kib(me, "RssAnon") > 0);
        assert_eq!(status_kib(me, "NoSuchField"), 0);
    }
}
