//! `cargo xtask bench compositor`: Cirrus's compositor beside weston, both headless with the pixman
//! renderer at 720x1440, in the same run. Prints a table; asserts nothing.
//!
//! The client is `cirrus-frame-bench` (compositor/bench-client): one xdg toplevel drawn through
//! wl_shm from 3 buffers, repainted completely on every frame callback, with presentation feedback
//! on every commit. Figures, per compositor:
//! - frames/s: frame callbacks the client received per second over the measured window;
//! - commit→present p50/p95: from the client's commit to the presentation time the compositor
//!   reports through wp_presentation (same clock);
//! - CPU per frame: the compositor process's utime+stime (`/proc/PID/stat`, all threads) over the
//!   measured window, divided by the frames;
//! - VmRSS and PSS (`/proc/PID/smaps_rollup`) of the compositor process with the window still shown.
//!
//! weston runs with its default desktop shell, whose panel and background are drawn by a separate
//! client process (weston-desktop-shell); Cirrus draws its shell in-process. So memory is shown
//! twice: of the compositor process alone, and summed (PSS) over its process group.
//! The weston window gets the same buffer size as the Cirrus one (weston leaves the size to the
//! client). Args: `[--seconds N] [--rounds N]` (defaults 8 and 2; rounds alternate the peers and
//! the table shows the median of the rounds).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::procfs::{pss_kib, rss_kib};
use crate::workspace::Workspace;

/// Screen size both compositors run at.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 1440;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Cirrus,
    Weston,
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::Cirrus => "cirrus-compositor",
            Peer::Weston => "weston 10 (pixman)",
        }
    }
}

/// One run of the client against one compositor.
#[derive(Clone, Debug, Default)]
struct Figures {
    fps: f64,
    p50_ms: f64,
    p95_ms: f64,
    cpu_ms_per_frame: f64,
    rss_kib: u64,
    pss_kib: u64,
    /// PSS of the compositor's whole process group (weston: with its desktop-shell client).
    group_pss_kib: u64,
    frames: u64,
    buffer: String,
}

/// A process we started in its own process group; the whole group is stopped on drop.
struct Group {
    child: Child,
    name: &'static str,
}

impl Group {
    fn spawn(mut cmd: Command, name: &'static str, log: &Path) -> Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err_file = log_file
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { child, name })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_running(&mut self, log: &Path) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            bail!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) on the process group we created for this child.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever of the group is left.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// utime + stime (clock ticks) from the text of a `/proc/PID/stat`.
fn stat_ticks(stat: &str) -> Option<u64> {
    // After the command name (which may hold spaces and parentheses): state is field 3, utime
    // and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// utime + stime of every thread of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = stat_ticks(&stat).with_context(|| format!("malformed /proc/{pid}/stat"))?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / hz)
}

/// The process group of a `/proc/PID/stat` text (field 5).
fn stat_pgrp(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Sum of the PSS of every process in process group `pgid`.
fn group_pss_kib(pgid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| stat_pgrp(&s))
                == Some(pgid)
        })
        .map(pss_kib)
        .sum()
}

/// Waits until something accepts connections on `socket`.
fn wait_for_socket(socket: &Path, server: &mut Group, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        server.check_running(log)?;
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not open {} within 30 s (see {})",
                server.name,
                socket.display(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `key=value` from one line of the client's output.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn num(line: &str, key: &str) -> Result<f64> {
    field(line, key)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("client result has no `{key}`: {line}"))
}

/// Runs the client against the compositor `server` (pid) listening on `socket`.
#[allow(clippy::too_many_arguments)]
fn run_client(
    client: &Path,
    socket: &Path,
    server: &mut Group,
    server_log: &Path,
    seconds: u32,
    size: Option<&str>,
    runtime_dir: &Path,
) -> Result<Figures> {
    let mut cmd = Command::new(client);
    cmd.arg("--socket")
        .arg(socket)
        .args(["--warmup", "2", "--seconds", &seconds.to_string(), "--hold"])
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(size) = size {
        cmd.args(["--size", size]);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", client.display()))?;
    let stdin: Option<ChildStdin> = child.stdin.take();
    let stdout = child.stdout.take().context("client has no stdout")?;
    let pid = server.pid();
    let mut cpu_start = None;
    let mut figures = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the client's output")?;
        if line.starts_with("measuring") {
            cpu_start = Some(cpu_seconds(pid)?);
        } else if line.starts_with("result") {
            let cpu_end = cpu_seconds(pid)?;
            let start = cpu_start.context("client reported a result before measuring")?;
            let frames = num(&line, "frames")? as u64;
            figures = Some(Figures {
                fps: num(&line, "fps")?,
                p50_ms: num(&line, "p50_us")? / 1000.0,
                p95_ms: num(&line, "p95_us")? / 1000.0,
                cpu_ms_per_frame: if frames > 0 {
                    (cpu_end - start) * 1000.0 / frames as f64
                } else {
                    f64::NAN
                },
                rss_kib: rss_kib(pid),
                pss_kib: pss_kib(pid),
                // The compositor leads its own process group (Group::spawn).
                group_pss_kib: group_pss_kib(pid),
                frames,
                buffer: field(&line, "buffer").unwrap_or("?").to_string(),
            });
            break;
        }
    }
    // Closing stdin lets the client close its window and exit.
    drop(stdin);
    let status = child.wait().context("waiting for the client")?;
    server.check_running(server_log)?;
    match figures {
        Some(f) if status.success() => Ok(f),
        Some(_) => bail!("the benchmark client failed ({status})"),
        None => bail!("the benchmark client ended without a result ({status})"),
    }
}

fn measure(
    peer: Peer,
    work: &Path,
    compositor: &Path,
    client: &Path,
    seconds: u32,
    size: Option<&str>,
) -> Result<Figures> {
    let runtime_dir = work.join(format!("runtime-{peer:?}").to_lowercase());
    let _ = std::fs::remove_dir_all(&runtime_dir);
    std::fs::create_dir_all(&runtime_dir)
        .with_context(|| format!("creating {}", runtime_dir.display()))?;
    std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod {}", runtime_dir.display()))?;
    let log = work.join(format!("{peer:?}.log").to_lowercase());
    let (cmd, socket) = match peer {
        Peer::Cirrus => {
            let socket = runtime_dir.join("cirrus-bench");
            let apps = work.join("no-apps");
            std::fs::create_dir_all(&apps)
                .with_context(|| format!("creating {}", apps.display()))?;
            let mut cmd = Command::new(compositor);
            cmd.args([
                "--backend",
                "headless",
                "--size",
                &format!("{WIDTH}x{HEIGHT}"),
            ])
            .arg("--socket")
            .arg(&socket)
            .arg("--app-dir")
            .arg(&apps)
            .args(["--notification-bus", "none"])
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("RUST_LOG", "warn");
            (cmd, socket)
        }
        Peer::Weston => {
            let mut cmd = Command::new("weston");
            cmd.args([
                "--backend=headless-backend.so",
                "--use-pixman",
                &format!("--width={WIDTH}"),
                &format!("--height={HEIGHT}"),
                "--socket=weston-bench",
                "--idle-time=0",
            ])
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY");
            (cmd, runtime_dir.join("weston-bench"))
        }
    };
    let mut server = Group::spawn(cmd, peer.label(), &log)?;
    wait_for_socket(&socket, &mut server, &log)?;
    // Let the compositor finish starting (weston launches its shell client).
    std::thread::sleep(Duration::from_millis(500));
    run_client(
        client,
        &socket,
        &mut server,
        &log,
        seconds,
        size,
        &runtime_dir,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn summarise(runs: &[Figures]) -> Figures {
    let pick = |f: fn(&Figures) -> f64| median(runs.iter().map(f).collect());
    Figures {
        fps: pick(|f| f.fps),
        p50_ms: pick(|f| f.p50_ms),
        p95_ms: pick(|f| f.p95_ms),
        cpu_ms_per_frame: pick(|f| f.cpu_ms_per_frame),
        rss_kib: pick(|f| f.rss_kib as f64) as u64,
        pss_kib: pick(|f| f.pss_kib as f64) as u64,
        group_pss_kib: pick(|f| f.group_pss_kib as f64) as u64,
        frames: runs.iter().map(|f| f.frames).sum(),
        buffer: runs.first().map(|f| f.buffer.clone()).unwrap_or_default(),
    }
}

fn weston_available() -> bool {
    Command::new("weston")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn run(ws: &Workspace, args: &[String]) -> Result<()> {
    let mut seconds = 8u32;
    let mut rounds = 2usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it.next().context("--seconds needs a number")?.parse()?;
            }
            "--rounds" => rounds = it.next().context("--rounds needs a number")?.parse()?,
            other => {
                bail!(
                    "unknown argument `{other}` (bench compositor takes [--seconds N] [--rounds N])"
                )
            }
        }
    }
    let rounds = rounds.max(1);
    let built = crate::binaries::build_with(
        ws,
        &[
            "cirrus-compositor".to_string(),
            "cirrus-frame-bench".to_string(),
        ],
        Some("release"),
    )?;
    let compositor: PathBuf = built
        .get("cirrus-compositor")
        .cloned()
        .context("cargo built no cirrus-compositor")?;
    let client: PathBuf = built
        .get("cirrus-frame-bench")
        .cloned()
        .context("cargo built no cirrus-frame-bench")?;
    let with_weston = weston_available();
    if !with_weston {
        println!("bench compositor: weston is not installed (cargo xtask deps): Cirrus only");
    }
    let work = ws.root.join("target/cirrus/bench-compositor");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let mut cirrus_runs = Vec::new();
    let mut weston_runs = Vec::new();
    for round in 0..rounds {
        // Alternate who goes first, so a slow moment of the machine does not always hit the same one.
        let order = if round % 2 == 0 {
            [Peer::Cirrus, Peer::Weston]
        } else {
            [Peer::Weston, Peer::Cirrus]
        };
        for peer in order {
            if peer == Peer::Weston && !with_weston {
                continue;
            }
            // weston draws the window at the size the Cirrus client used (it leaves the size to
            // the client); before the first Cirrus run, at the size of the Cirrus app area.
            let size = cirrus_runs
                .first()
                .map(|f: &Figures| f.buffer.clone())
                .filter(|b| b != "?");
            print!(
                "bench compositor: round {}/{rounds}: {} ({seconds} s) … ",
                round + 1,
                peer.label()
            );
            std::io::stdout().flush().ok();
            let figures = measure(peer, &work, &compositor, &client, seconds, size.as_deref())
                .with_context(|| format!("benchmarking {}", peer.label()))?;
            println!("{:.1} frames/s, buffer {}", figures.fps, figures.buffer);
            match peer {
                Peer::Cirrus => cirrus_runs.push(figures),
                Peer::Weston => weston_runs.push(figures),
            }
        }
    }

    println!();
    println!(
        "{:<20} {:>9} {:>13} {:>13} {:>13} {:>11} {:>11}",
        "compositor",
        "frames/s",
        "c→p p50 (ms)",
        "c→p p95 (ms)",
        "CPU/frame ms",
        "VmRSS MiB",
        "PSS MiB"
    );
    for (peer, runs) in [(Peer::Cirrus, &cirrus_runs), (Peer::Weston, &weston_runs)] {
        if runs.is_empty() {
            continue;
        }
        let f = summarise(runs);
        println!(
            "{:<20} {:>9.1} {:>13.2} {:>13.2} {:>13.3} {:>11.1} {:>11.1} {:>15.1}",
            peer.label(),
            f.fps,
            f.p50_ms,
            f.p95_ms,
            f.cpu_ms_per_frame,
            f.rss_kib as f64 / 1024.0,
            f.pss_kib as f64 / 1024.0,
            f.group_pss_kib as f64 / 1024.0,
        );
    }
    println!(
        "\n{WIDTH}x{HEIGHT} headless, pixman; client cirrus-frame-bench (3 wl_shm buffers, whole window \
         repainted every frame, buffer {}); median of {rounds} round(s) of {seconds} s after 2 s warm-up. \
         c→p: commit → presentation time (wp_presentation). CPU/frame: compositor utime+stime / frames. \
         Memory sampled with the window shown, of the compositor process; +shell PSS: with the \
         processes of its group (weston's desktop-shell client draws its panel and background; \
         Cirrus draws its shell in-process).",
        cirrus_runs
            .first()
            .map(|f| f.buffer.as_str())
            .unwrap_or("?"),
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_from_proc_stat() {
        let stat =
            "4242 (weston (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 37 12 0 0 20 0 3 0 100 0";
        assert_eq!(stat_ticks(stat), Some(49));
        assert_eq!(stat_ticks("garbage"), None);
        assert_eq!(stat_pgrp(stat), Some(4242));
    }

    #[test]
    fn reads_client_results() {
        let line = "result frames=480 seconds=8.001 fps=59.99 presented=478 discarded=0 p50_us=15123 p95_us=16001 buffer=720x1384";
        assert_eq!(num(line, "frames").unwrap(), 480.0);
        assert_eq!(field(line, "buffer"), Some("720x1384"));
        assert!(num(line, "missing").is_err());
        let figures = summarise(&[
            Figures {
                fps: 50.0,
                ..Default::default()
            },
            Figures {
                fps: 60.0,
                ..Default::default()
            },
            Figures {
                fps: f64::NAN,
                ..Default::default()
            },
        ]);
        assert_eq!(figures.fps, 60.0);
    }
}
