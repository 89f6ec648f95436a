//! `cargo xtask bench apps`: launching a WebAssembly app, beside plain wasmtime, in the same run.
//!
//! The app is the SDK's C template (`cirrus app new --template c`, built by `cirrus app build`:
//! clang for wasm32-wasi, componentized), precompiled as install does. Cirrus: `cirrus-wasm-host
//! run` as the app manager starts it, a Wayland client of a headless `cirrus-compositor`; measured
//! from spawning the host to its `first-frame` status (the first frame committed to the compositor),
//! cold (first launch after install: empty data dir, the app's `create` runs) and warm (launched
//! again with its saved state), and the host's RSS/PSS after a second idle on screen. The peer:
//! `cirrus-wasmtime-baseline` — wasmtime's default configuration running the same component with
//! WASI and an in-memory surface (no window, no sandbox, no deadline): spawn → instantiate →
//! `create` → `frame` → its first `present`, from its own precompiled file and compiling from
//! scratch.
//! Release builds. Prints a table; asserts nothing. Args: `[--runs N]` (default 10).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::child::{HeadlessCompositor, Launch, launch, run_checked, runs_arg};
use super::procfs::{build_release, fresh_dir, median, percentile};
use crate::workspace::Workspace;

const APP_ID: &str = "org.cirrus.bench.counter";
/// How long an app sits idle on screen before its memory is read.
const IDLE: Duration = Duration::from_secs(1);

struct Row {
    label: &'static str,
    what: &'static str,
    launches: Vec<Launch>,
}

pub fn run(ws: &Workspace, args: &[String]) -> Result<()> {
    let runs = runs_arg(args, 10, "apps")?;
    let release = build_release(ws, &["cirrus-wasm-host", "cirrus-compositor", "cirrus-cli"])?;
    let host = release.join("cirrus-wasm-host");
    let baseline = release.join("cirrus-wasmtime-baseline");
    let compositor_bin = release.join("cirrus-compositor");
    let cli = release.join("cirrus");

    let work = ws.root.join("target/cirrus/bench-apps");
    fresh_dir(&work)?;
    let project = work.join("counter");
    println!("bench apps: building the C template app with the SDK");
    run_checked(Command::new(&cli).args(["app", "new"]).arg(&project).args([
        "--template",
        "c",
        "--id",
        APP_ID,
        "--name",
        "Counter",
    ]))?;
    run_checked(Command::new(&cli).args(["app", "build"]).arg(&project))?;
    let component = project.join("build/app.wasm");
    let precompiled = work.join("app.cirrus.cwasm");
    let base_precompiled = work.join("app.baseline.cwasm");
    run_checked(
        Command::new(&host)
            .arg("precompile")
            .arg(&component)
            .arg(&precompiled),
    )?;
    run_checked(
        Command::new(&baseline)
            .arg("precompile")
            .arg(&component)
            .arg(&base_precompiled),
    )?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "bench apps: component {} KiB, precompiled {} KiB (Cirrus) / {} KiB (baseline)",
        size(&component) / 1024,
        size(&precompiled) / 1024,
        size(&base_precompiled) / 1024
    );

    let compositor = HeadlessCompositor::start(&compositor_bin, &work)?;
    let (socket, runtime) = (&compositor.socket, &compositor.runtime_dir);

    let host_cmd = |data: &Path| {
        let mut cmd = Command::new(&host);
        cmd.args(["run", "--app-id", APP_ID, "--title", "Counter"])
            .arg("--component")
            .arg(&component)
            .arg("--precompiled")
            .arg(&precompiled)
            .arg("--data-dir")
            .arg(data)
            .arg("--wayland-display")
            .arg(socket)
            .env("XDG_RUNTIME_DIR", runtime)
            .env("CIRRUS_LOG", "warn");
        cmd
    };
    let baseline_cmd = |data: &Path, precompiled: Option<&Path>| {
        let mut cmd = Command::new(&baseline);
        cmd.arg("run").arg(&component);
        if let Some(p) = precompiled {
            cmd.arg("--precompiled").arg(p);
        }
        cmd.arg("--data-dir").arg(data);
        cmd
    };

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut base_pre = Vec::new();
    let mut base_compile = Vec::new();
    println!("bench apps: {runs} rounds (cold, warm, baseline precompiled, baseline compiling)");
    for round in 0..runs {
        let data = work.join(format!("data-{round}"));
        fresh_dir(&data)?;
        cold.push(launch(&mut host_cmd(&data), "first-frame", IDLE).context("cold launch")?);
        warm.push(launch(&mut host_cmd(&data), "first-frame", IDLE).context("warm launch")?);
        let data = work.join(format!("baseline-{round}"));
        fresh_dir(&data)?;
        base_pre.push(
            launch(
                &mut baseline_cmd(&data, Some(&base_precompiled)),
                "first-frame",
                IDLE,
            )
            .context("baseline, precompiled")?,
        );
        base_compile.push(
            launch(&mut baseline_cmd(&data, None), "first-frame", IDLE)
                .context("baseline, compiling")?,
        );
        print!(".");
        let _ = std::io::stdout().flush();
    }
    println!();
    compositor
        .process
        .stop()
        .context("stopping the compositor")?;

    let rows = [
        Row {
            label: "Cirrus host, cold",
            what: "spawn → first frame committed",
            launches: cold,
        },
        Row {
            label: "Cirrus host, warm",
            what: "spawn → first frame committed",
            launches: warm,
        },
        Row {
            label: "wasmtime, precompiled",
            what: "spawn → first frame presented",
            launches: base_pre,
        },
        Row {
            label: "wasmtime, compiling",
            what: "spawn → first frame presented",
            launches: base_compile,
        },
    ];
    println!();
    println!(
        "{:<24} {:<30} {:>9} {:>9} {:>14} {:>14}",
        "", "measured", "p50 (ms)", "p95 (ms)", "idle RSS (KiB)", "idle PSS (KiB)"
    );
    for row in &rows {
        let times: Vec<Duration> = row.launches.iter().map(|l| l.time).collect();
        let mut rss: Vec<u64> = row.launches.iter().map(|l| l.rss_kib).collect();
        let mut pss: Vec<u64> = row.launches.iter().map(|l| l.pss_kib).collect();
        rss.sort_unstable();
        pss.sort_unstable();
        println!(
            "{:<24} {:<30} {:>9.1} {:>9.1} {:>14} {:>14}",
            row.label,
            row.what,
            median(&times).as_secs_f64() * 1000.0,
            percentile(&times, 95).as_secs_f64() * 1000.0,
            rss[rss.len() / 2],
            pss[pss.len() / 2],
        );
    }
    println!(
        "\n{runs} launches each, release builds, headless cirrus-compositor at 720x1440. Goals: warm \
         launch → first frame ≤ 30 ms, idle app RSS ≤ 15 MB. The baseline's frame goes nowhere (an \
         in-memory surface): the host's extra time is its sandbox, Wayland connection and window, \
         and committing the frame to the compositor."
    );
    Ok(())
}
