//! `cargo xtask bench init`: cirrus-init (`--user`, built as for the image: `pid1` profile) beside runit (`runsvdir`), s6
//! (`s6-svscan`) and busybox (`busybox init` as PID 1 of a user+pid namespace, `respawn` entries),
//! all unprivileged on this machine in the same run. Prints a table; asserts nothing.
//!
//! For each supervisor: 100 services in a dependency tree (service i needs service (i-1)/2), each a
//! `/bin/sh` that records its pid and a ready file, then `exec sleep`. Dependencies use each
//! supervisor's own mechanism: `requires` for cirrus-init, `sv start` for runit, `s6-svwait -U`…
//! `-u` for s6; busybox init has none, so its services wait for their parent's ready file.
//! Measured: time from launching the supervisor until all 100 ready files exist; steady-state RSS
//! of the supervisor process (and of the whole supervision tree: runsv / s6-supervise helpers);
//! restart latency, from SIGKILL of a service's process until its new process has written its pid
//! (median of 5 services, each killed once). Args: `[--services N]` (default 100).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::child::process_tree;
use super::procfs::{pss_kib, rss_kib, status_kib};
use crate::workspace::Workspace;

const DEADLINE: Duration = Duration::from_secs(60);

/// One supervisor under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Cirrus,
    Runit,
    S6,
    Busybox,
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::Cirrus => "cirrus-init --user",
            Peer::Runit => "runit runsvdir",
            Peer::S6 => "s6-svscan",
            Peer::Busybox => "busybox init (userns)",
        }
    }

    /// Names of the helper processes that belong to the supervision tree.
    fn helpers(self) -> &'static [&'static str] {
        match self {
            Peer::Cirrus => &[],
            Peer::Runit => &["runsv"],
            Peer::S6 => &["s6-supervise"],
            Peer::Busybox => &[],
        }
    }
}

struct Figures {
    peer: Peer,
    start_all: Duration,
    rss_kib: u64,
    anon_kib: u64,
    pss_kib: u64,
    tree_rss_kib: u64,
    restart: Option<Duration>,
}

fn parent_of(i: usize) -> Option<usize> {
    (i > 0).then(|| (i - 1) / 2)
}

/// The shell body every service runs: record pid + ready file, then sleep.
fn body(dir: &Path, i: usize) -> String {
    format!(
        "echo $$ > {d}/pids/s{i}.tmp && mv {d}/pids/s{i}.tmp {d}/pids/s{i}; touch {d}/ready/s{i}; exec sleep 100000",
        d = dir.display()
    )
}

fn prepare(dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    for sub in ["pids", "ready"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn setup(peer: Peer, dir: &Path, n: usize, cirrus: &Path) -> Result<Command> {
    prepare(dir)?;
    Ok(match peer {
        Peer::Cirrus => {
            let units = dir.join("root/system/etc/init");
            std::fs::create_dir_all(&units)?;
            for i in 0..n {
                let requires = parent_of(i)
                    .map(|p| format!("requires = [\"s{p}\"]\n"))
                    .unwrap_or_default();
                std::fs::write(
                    units.join(format!("s{i}.toml")),
                    format!(
                        "exec = \"/bin/sh\"\nargs = [\"-c\", \"{}\"]\n{requires}",
                        body(dir, i)
                    ),
                )?;
            }
            let mut cmd = Command::new(cirrus);
            cmd.arg("--user")
                .arg("--root")
                .arg(dir.join("root"))
                .env("CIRRUS_LOG", "warn");
            cmd
        }
        Peer::Runit => {
            let sv = dir.join("sv");
            for i in 0..n {
                let d = sv.join(format!("s{i}"));
                std::fs::create_dir_all(&d)?;
                let wait = parent_of(i)
                    .map(|p| {
                        format!(
                            "sv -w 30 start {}/s{p} >/dev/null || exit 1\n",
                            sv.display()
                        )
                    })
                    .unwrap_or_default();
                write_executable(
                    &d.join("run"),
                    &format!("#!/bin/sh\n{wait}{}\n", body(dir, i)),
                )?;
            }
            let mut cmd = Command::new("runsvdir");
            cmd.arg("-P").arg(&sv);
            cmd
        }
        Peer::S6 => {
            let scan = dir.join("scan");
            for i in 0..n {
                let d = scan.join(format!("s{i}"));
                std::fs::create_dir_all(&d)?;
                let wait = parent_of(i)
                    .map(|p| format!("s6-svwait -u {}/s{p} || exit 1\n", scan.display()))
                    .unwrap_or_default();
                write_executable(
                    &d.join("run"),
                    &format!("#!/bin/sh\n{wait}{}\n", body(dir, i)),
                )?;
            }
            let mut cmd = Command::new("s6-svscan");
            cmd.arg(&scan);
            cmd
        }
        Peer::Busybox => {
            let mut inittab = String::new();
            for i in 0..n {
                let wait = parent_of(i)
                    .map(|p| {
                        format!(
                            "while [ ! -e {}/ready/s{p} ]; do sleep 0.01; done; ",
                            dir.display()
                        )
                    })
                    .unwrap_or_default();
                inittab.push_str(&format!("::respawn:/bin/sh -c '{wait}{}'\n", body(dir, i)));
            }
            let tab = dir.join("inittab");
            std::fs::write(&tab, inittab)?;
            // busybox init only runs as PID 1 and reads /etc/inittab: give it both in namespaces of
            // its own, unprivileged (user namespace mapping our uid to root; a private /etc).
            let mut cmd = Command::new("unshare");
            cmd.args([
                "--user",
                "--map-root-user",
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "/bin/sh",
                "-c",
            ])
            .arg(format!(
                "mount -t tmpfs tmpfs /etc && cp {} /etc/inittab && exec busybox init",
                tab.display()
            ));
            cmd
        }
    })
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The supervisor process itself: for busybox, the `init` inside the namespaces.
fn supervisor_pid(peer: Peer, child: u32) -> u32 {
    if peer == Peer::Busybox {
        process_tree(child)
            .into_iter()
            .find(|p| comm(*p) == "init")
            .unwrap_or(child)
    } else {
        child
    }
}

/// The host pid of the process below `root` whose innermost namespace pid is `ns_pid`.
fn host_pid(root: u32, ns_pid: i32) -> Option<i32> {
    process_tree(root).into_iter().find_map(|p| {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
        let inner: i32 = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))?
            .split_whitespace()
            .last()?
            .parse()
            .ok()?;
        (inner == ns_pid).then(|| i32::try_from(p).ok()).flatten()
    })
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn measure(peer: Peer, dir: &Path, n: usize, cirrus: &Path) -> Result<Figures> {
    let mut cmd = setup(peer, dir, n, cirrus)?;
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} (run `cargo xtask deps`)", peer.label()))?;
    let mut guard = Stopper(child, peer);
    let ready = dir.join("ready");
    while count(&ready) < n {
        if start.elapsed() > DEADLINE {
            bail!(
                "{}: only {} of {n} services became ready",
                peer.label(),
                count(&ready)
            );
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let start_all = start.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let sup = supervisor_pid(peer, guard.0.id());
    let rss = rss_kib(sup);
    let anon = status_kib(sup, "RssAnon");
    let pss = pss_kib(sup);
    let tree: u64 = process_tree(sup)
        .into_iter()
        .filter(|p| *p == sup || peer.helpers().contains(&comm(*p).as_str()))
        .map(rss_kib)
        .sum();

    let mut restarts = Vec::new();
    for i in [10, 20, 30, 40, 50].into_iter().filter(|i| *i < n) {
        let file = dir.join(format!("pids/s{i}"));
        let Some(old) = read_pid(&file) else { continue };
        // busybox's services live in a pid namespace: their pid files hold namespace pids.
        let target = if peer == Peer::Busybox {
            host_pid(guard.0.id(), old)
        } else {
            Some(old)
        };
        let Some(target) = target else { continue };
        let t0 = Instant::now();
        // SAFETY: kill(2) on a pid we read from the service's own pid file.
        unsafe { libc::kill(target, libc::SIGKILL) };
        loop {
            if read_pid(&file).is_some_and(|p| p != old) {
                restarts.push(t0.elapsed());
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    restarts.sort();
    let restart = restarts.get(restarts.len() / 2).copied();
    guard.stop();
    Ok(Figures {
        peer,
        start_all,
        rss_kib: rss,
        anon_kib: anon,
        pss_kib: pss,
        tree_rss_kib: tree,
        restart,
    })
}

/// Stops the supervisor and everything below it.
struct Stopper(Child, Peer);

impl Stopper {
    fn stop(&mut self) {
        let pids = process_tree(self.0.id());
        let sig = match self.1 {
            // runsvdir takes SIGHUP to stop its runsv's; the rest stop on SIGTERM.
            Peer::Runit => libc::SIGHUP,
            _ => libc::SIGTERM,
        };
        // SAFETY: kill(2) on our child.
        unsafe { libc::kill(self.0.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        for p in pids {
            // SAFETY: the processes of the benchmark's own tree.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

fn available(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn run(ws: &Workspace, args: &[String]) -> Result<()> {
    let mut n = 100;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--services" => n = it.next().context("--services needs a number")?.parse()?,
            other => bail!("unknown argument `{other}` (bench init takes [--services N])"),
        }
    }
    // The same build of PID 1 as the image's (`pid1` profile: optimised for size).
    let built = crate::binaries::build_with(
        ws,
        &["cirrus-init".to_string()],
        crate::binaries::profile_of("cirrus-init"),
    )?;
    let cirrus: PathBuf = built
        .get("cirrus-init")
        .cloned()
        .context("cargo built no cirrus-init")?;
    let base = ws.root.join("target/cirrus/bench-init");

    let mut rows = Vec::new();
    for peer in [Peer::Cirrus, Peer::Runit, Peer::S6, Peer::Busybox] {
        let needs = match peer {
            Peer::Cirrus => None,
            Peer::Runit => Some("runsvdir"),
            Peer::S6 => Some("s6-svscan"),
            Peer::Busybox => Some("busybox"),
        };
        if let Some(program) = needs
            && !available(program)
        {
            println!(
                "bench init: {} skipped: `{program}` is not installed (cargo xtask deps)",
                peer.label()
            );
            continue;
        }
        println!("bench init: {} with {n} services …", peer.label());
        match measure(
            peer,
            &base.join(format!("{peer:?}").to_lowercase()),
            n,
            &cirrus,
        ) {
            Ok(f) => rows.push(f),
            Err(e) => println!("bench init: {} failed: {e:#}", peer.label()),
        }
    }
    println!();
    println!(
        "{:<24} {:>16} {:>10} {:>11} {:>10} {:>15} {:>13}",
        "supervisor",
        format!("start {n} (ms)"),
        "RSS (KiB)",
        "anon (KiB)",
        "PSS (KiB)",
        "tree RSS (KiB)",
        "restart (ms)"
    );
    for f in &rows {
        println!(
            "{:<24} {:>16.1} {:>10} {:>11} {:>10} {:>15} {:>13}",
            f.peer.label(),
            f.start_all.as_secs_f64() * 1000.0,
            f.rss_kib,
            f.anon_kib,
            f.pss_kib,
            f.tree_rss_kib,
            f.restart.map_or("-".to_string(), |d| format!(
                "{:.2}",
                d.as_secs_f64() * 1000.0
            ))
        );
    }
    println!(
        "\nstart: launch → all {n} ready files (tree of dependencies); RSS: the supervisor process at \
         steady state (anon: its private memory, the rest is shared file pages of the program and libc; PSS: \
         shared pages divided among the processes using them); tree RSS: with its per-service helpers (runsv, s6-supervise); restart: median \
         SIGKILL → new process running, 5 services killed once each."
    );
    Ok(())
}
