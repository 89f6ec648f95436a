//! `cargo xtask bench web`: launching a web app, beside a plain WebKitGTK program loading the same
//! page, in the same run.
//!
//! The page is the SDK's web template (`cirrus app new --template web`: index.html, app.js,
//! style.css), packed and signed by `cirrus app pack`. Cirrus: `cirrus-web-host run` with the
//! arguments the app manager gives it (the signed package, verified again at start, served under
//! `app://`, the app's CSP, the JS API, website data in the app's data dir, the closed proxy), a
//! Wayland client of a headless `cirrus-compositor`. The peer: `cirrus-webkit-baseline`, a GTK 3
//! window with one WebKitWebView loading the same files from a `file://` path, rendering the same
//! way. Both print `first-frame` at first paint, one definition for both
//! (appruntime/web-host/src/first_paint.rs: load finished, then two animation frames rendered).
//!
//! Measured: spawn → first paint (launch request → first paint, without the manager's D-Bus hop),
//! cold (fresh data dir) and warm (same data dir again); memory after idling 2 s on screen — RSS
//! and PSS summed over the process and its descendants (the UI process + WebKitWebProcess +
//! WebKitNetworkProcess). Release builds. Prints a table; asserts nothing. Args: `[--runs N]`
//! (default 5).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::child::{HeadlessCompositor, launch, run_checked, runs_arg};
use super::procfs::{build_release, fresh_dir, median, percentile};
use crate::workspace::Workspace;

const APP_ID: &str = "org.cirrus.bench.webtaps";
/// How long an app sits idle on screen before its memory is read.
const IDLE: Duration = Duration::from_secs(2);

pub fn run(ws: &Workspace, args: &[String]) -> Result<()> {
    let runs = runs_arg(args, 5, "web")?;
    let release = build_release(ws, &["cirrus-web-host", "cirrus-compositor", "cirrus-cli"])?;
    let host = release.join("cirrus-web-host");
    let baseline = release.join("cirrus-webkit-baseline");
    let compositor_bin = release.join("cirrus-compositor");
    let cli = release.join("cirrus");

    let work = ws.root.join("target/cirrus/bench-web");
    fresh_dir(&work)?;
    let project = work.join("webtaps");
    println!("bench web: the SDK's web template, packed and signed by `cirrus app pack`");
    run_checked(Command::new(&cli).args(["app", "new"]).arg(&project).args([
        "--template",
        "web",
        "--id",
        APP_ID,
        "--name",
        "Web Taps",
    ]))?;
    let key = work.join("dev.key");
    run_checked(
        Command::new(&cli)
            .args(["keys", "generate", "--out"])
            .arg(&key),
    )?;
    let package = work.join("webtaps.cpkg");
    run_checked(
        Command::new(&cli)
            .args(["app", "pack"])
            .arg(&project)
            .arg("--key")
            .arg(&key)
            .arg("-o")
            .arg(&package),
    )?;
    // `keys generate` writes the publisher key beside the secret one (what install records).
    let public = key.with_extension("pub");
    let signer = std::fs::read_to_string(&public)
        .with_context(|| format!("reading {}", public.display()))?
        .trim()
        .to_owned();
    let page = project.join("www/index.html");

    let compositor = HeadlessCompositor::start(&compositor_bin, &work)?;
    let (socket, runtime) = (&compositor.socket, &compositor.runtime_dir);

    let host_cmd = |data: &Path| {
        let mut cmd = Command::new(&host);
        cmd.args(["run", "--app-id", APP_ID])
            .arg("--package")
            .arg(&package)
            .arg("--signer")
            .arg(&signer)
            .arg("--data-dir")
            .arg(data)
            .arg("--wayland-display")
            .arg(socket)
            .args(["--permission", "notifications"])
            .env("CIRRUS_LOG", "warn");
        cmd
    };
    let baseline_cmd = |home: &Path| {
        let mut cmd = Command::new(&baseline);
        cmd.arg(&page)
            .env("WAYLAND_DISPLAY", socket)
            .env("XDG_RUNTIME_DIR", runtime)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"));
        cmd
    };

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut base_cold = Vec::new();
    let mut base_warm = Vec::new();
    println!("bench web: {runs} rounds (host cold, host warm, baseline cold, baseline warm)");
    for round in 0..runs {
        let data = work.join(format!("data-{round}"));
        fresh_dir(&data)?;
        cold.push(
            launch(&mut host_cmd(&data), "first-frame", IDLE).context("cirrus-web-host, cold")?,
        );
        warm.push(
            launch(&mut host_cmd(&data), "first-frame", IDLE).context("cirrus-web-host, warm")?,
        );
        let home = work.join(format!("baseline-{round}"));
        fresh_dir(&home)?;
        base_cold
            .push(launch(&mut baseline_cmd(&home), "first-frame", IDLE).context("baseline, cold")?);
        base_warm
            .push(launch(&mut baseline_cmd(&home), "first-frame", IDLE).context("baseline, warm")?);
        print!(".");
        let _ = std::io::stdout().flush();
    }
    println!();
    compositor
        .process
        .stop()
        .context("stopping the compositor")?;

    let rows = [
        ("cirrus-web-host, cold", cold),
        ("cirrus-web-host, warm", warm),
        ("plain WebKitGTK, cold", base_cold),
        ("plain WebKitGTK, warm", base_warm),
    ];
    println!();
    println!(
        "{:<24} {:>11} {:>11} {:>6} {:>15} {:>15}",
        "spawn → first paint", "p50 (ms)", "p95 (ms)", "procs", "idle RSS (MiB)", "idle PSS (MiB)"
    );
    for (label, launches) in &rows {
        let times: Vec<Duration> = launches.iter().map(|l| l.time).collect();
        let mut rss: Vec<u64> = launches.iter().map(|l| l.rss_kib).collect();
        let mut pss: Vec<u64> = launches.iter().map(|l| l.pss_kib).collect();
        let mut procs: Vec<usize> = launches.iter().map(|l| l.processes).collect();
        rss.sort_unstable();
        pss.sort_unstable();
        procs.sort_unstable();
        println!(
            "{:<24} {:>11.1} {:>11.1} {:>6} {:>15.1} {:>15.1}",
            label,
            median(&times).as_secs_f64() * 1000.0,
            percentile(&times, 95).as_secs_f64() * 1000.0,
            procs[procs.len() / 2],
            rss[rss.len() / 2] as f64 / 1024.0,
            pss[pss.len() / 2] as f64 / 1024.0,
        );
    }
    println!(
        "\n{runs} launches each, release builds, headless cirrus-compositor at 720x1440, the same \
         page (the SDK's web template) from the signed package (app://) and from file://. First \
         paint: load finished + two animation frames rendered (appruntime/web-host/src/first_paint.rs). \
         Memory: medians of RSS/PSS summed over the UI process, WebKitWebProcess and \
         WebKitNetworkProcess after {} s idle on screen.",
        IDLE.as_secs()
    );
    Ok(())
}
