//! `cargo xtask bench SUITE`: benchmarks that print Cirrus's figures beside its peer's, measured in
//! the same run on the same machine (these machines are noisy: only side-by-side figures mean
//! anything). Benchmarks print; they never assert a time.
//!
//! Each suite is a module here with `pub fn run(ws: &Workspace, args: &[String]) -> Result<()>`,
//! registered in [`SUITES`].

use std::process::ExitCode;

mod apk;
mod apps;
mod child;
mod compositor;
mod init;
mod procfs;
mod sync;
mod web;

use anyhow::{Result, bail};

use crate::workspace::Workspace;

/// A benchmark suite: name, what it measures and against which peer, entry point.
pub struct Suite {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&Workspace, &[String]) -> Result<()>,
}

/// Every suite, in the order `cargo xtask bench` lists them.
pub const SUITES: &[Suite] = &[
    Suite {
        name: "apk",
        about: "APK parse + signature verification: cirrus apk verify/info beside apksigner and aapt",
        run: apk::run_suite,
    },
    Suite {
        name: "apps",
        about: "WebAssembly app launch (cold/warm) → first frame and idle RSS: cirrus-wasm-host beside plain wasmtime",
        run: apps::run,
    },
    Suite {
        name: "compositor",
        about: "cirrus-compositor beside weston (headless, pixman, 720x1440): frames/s, commit→present p50/p95, CPU/frame, RSS/PSS",
        run: compositor::run,
    },
    Suite {
        name: "init",
        about: "cirrus-init beside runit, s6 and busybox init: start 100 services, RSS, restart latency",
        run: init::run,
    },
    Suite {
        name: "sync",
        about: "cirrus-syncd beside rclone (8 transfers) on loopback S3: first upload, rescan, change latency, RSS, requests",
        run: sync::run_suite,
    },
    Suite {
        name: "web",
        about: "web app launch → first paint and RSS/PSS (host + WebKit processes): cirrus-web-host beside a plain WebKitGTK program, same page",
        run: web::run,
    },
];

/// `cargo xtask bench [SUITE [ARGS…]]`.
pub fn run(suite: Option<&str>, args: &[String]) -> Result<ExitCode> {
    let Some(name) = suite else {
        println!("benchmark suites (cargo xtask bench SUITE):");
        for s in SUITES {
            println!("  {:<12} {}", s.name, s.about);
        }
        if SUITES.is_empty() {
            println!("  (none yet)");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(found) = SUITES.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
        bail!(
            "no benchmark suite named `{name}`; the suites are: {}",
            if names.is_empty() {
                "(none yet)".to_owned()
            } else {
                names.join(", ")
            }
        );
    };
    let ws = Workspace::locate()?;
    (found.run)(&ws, args)?;
    Ok(ExitCode::SUCCESS)
}
