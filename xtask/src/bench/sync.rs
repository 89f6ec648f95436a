//! `cargo xtask bench sync`: cirrus-syncd beside Debian's rclone (`--transfers 8`), against the same
//! kind of loopback S3 server (cirrus-sync-testserver: s3s-fs, one fresh server per tool) in the
//! same run.
//!
//! Measured for each: the first upload of 10,000 small files (1–15 KiB) + 3×100 MiB (`rclone copy`
//! vs `cirrus-syncd --once`), a no-change rescan (`rclone sync` vs `cirrus-syncd --once`), peak RSS
//! of those processes (their `VmHWM`), requests the server saw in each phase (`GET /__stats`), and
//! the latency from a one-file change to its new content being visible in the bucket (cirrus: the
//! running daemon's inotify path; rclone has no watcher, so its figure is a `rclone copy` started
//! right after the change — its best case). Median of `--changes N` (default 5). Prints a table;
//! asserts nothing. Args: `[--small N] [--big N] [--changes N]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::procfs::{build_release, median, status_kib};
use crate::workspace::Workspace;

const BUCKET: &str = "bench";
const ACCESS_KEY: &str = "cirrus-test-ak";
const SECRET_KEY: &str = "cirrus-test-secret";

/// A process's outcome: wall time and peak RSS.
struct Run {
    wall: Duration,
    max_rss_kib: u64,
}

/// Runs a command to completion, measuring wall time and peak RSS. The peak is the process's own
/// `VmHWM`, sampled until it exits: `wait4`'s `ru_maxrss` would also count the parent's memory the
/// child shared before its exec.
fn measure(cmd: &mut Command) -> Result<Run> {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut stderr = String::new();
    let mut err_pipe = child.stderr;
    let reader = std::thread::spawn(move || {
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut stderr);
        }
        stderr
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(status_kib(pid as u32, "VmHWM"));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped (Child::wait was never called).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let max_rss_kib = sampler.join().unwrap_or(0);
    let stderr = reader.join().unwrap_or_default();
    if r != pid {
        bail!("wait4 on {cmd:?}: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let tail: String = stderr
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        bail!("{cmd:?} failed (wait status {status}):\n{tail}");
    }
    Ok(Run { wall, max_rss_kib })
}

/// A cirrus-sync-testserver process serving one bucket.
struct TestServer {
    child: Child,
    endpoint: String,
    bucket_dir: PathBuf,
    /// `GET /__stats` requests made so far (the server counts them too).
    stats_calls: std::cell::Cell<u64>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestServer {
    fn start(bin: &Path, root: &Path) -> Result<Self> {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root)?;
        let mut child = Command::new(bin)
            .arg(root)
            .arg(BUCKET)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("test server stdout")?).read_line(&mut line)?;
        let endpoint = line.trim().to_owned();
        if !endpoint.starts_with("http://") {
            let _ = child.kill();
            bail!("cirrus-sync-testserver printed {line:?} instead of its endpoint");
        }
        Ok(Self {
            child,
            endpoint,
            bucket_dir: root.join(BUCKET),
            stats_calls: std::cell::Cell::new(0),
        })
    }

    /// Requests the server has answered so far (not counting ours to `/__stats`).
    fn requests(&self) -> Result<u64> {
        self.stats_calls.set(self.stats_calls.get() + 1);
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        write!(
            s,
            "GET /__stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let body = text
            .split("\r\n\r\n")
            .nth(1)
            .context("no body in /__stats answer")?;
        // Chunked or not, the JSON object is in there.
        let json = &body[body.find('{').context("no JSON in /__stats")?
            ..=body.rfind('}').context("no JSON in /__stats")?];
        let v: serde_json::Value = serde_json::from_str(json).context("parsing /__stats")?;
        Ok(v["requests"]
            .as_u64()
            .context("no request count")?
            .saturating_sub(self.stats_calls.get()))
    }
}

/// Deterministic incompressible bytes.
fn fill(seed: u64, buf: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// The data set: `small` files of 1–15 KiB in 100 directories, `big` files of 100 MiB.
fn make_data(dir: &Path, small: usize, big: usize) -> Result<(u64, usize)> {
    let _ = std::fs::remove_dir_all(dir);
    let mut bytes = 0;
    for i in 0..small {
        let d = dir.join(format!("Documents/d{:03}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&d)?;
        }
        let mut buf = vec![0u8; 1024 + (i * 7919) % (14 * 1024)];
        fill(i as u64, &mut buf);
        std::fs::write(d.join(format!("f{i:05}.bin")), &buf)?;
        bytes += buf.len() as u64;
    }
    std::fs::create_dir_all(dir.join("Videos"))?;
    let mut buf = vec![0u8; 100 << 20];
    for i in 0..big {
        fill(1_000_000 + i as u64, &mut buf);
        std::fs::write(dir.join(format!("Videos/v{i}.mp4")), &buf)?;
        bytes += buf.len() as u64;
    }
    Ok((bytes, small + big))
}

fn rclone(server: &TestServer, config_dir: &Path) -> Command {
    let mut c = Command::new("rclone");
    // The AWS SDK inside rclone would pick these up from the caller (e.g. a CA bundle it then
    // fails to load): the loopback server needs none of them.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("RCLONE_CONFIG", config_dir.join("rclone.conf"))
        .env("RCLONE_CONFIG_BENCH_TYPE", "s3")
        .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
        .env("RCLONE_CONFIG_BENCH_ENDPOINT", &server.endpoint)
        .env("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", ACCESS_KEY)
        .env("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("RCLONE_CONFIG_BENCH_REGION", "us-east-1")
        .env("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true");
    c
}

fn rclone_copy(server: &TestServer, work: &Path, data: &Path, verb: &str) -> Command {
    let mut c = rclone(server, work);
    c.args([verb, "--transfers", "8", "--checkers", "8"])
        .arg(data)
        .arg(format!("bench:{BUCKET}"));
    c
}

fn write_syncd_config(path: &Path, data: &Path, state: &Path, server: &TestServer) -> Result<()> {
    std::fs::write(
        path,
        format!(
            "root = \"{}\"\nstate_dir = \"{}\"\ninterval_secs = 3600\ndebounce_ms = 50\n\
             [backend]\nkind = \"s3\"\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n",
            data.display(),
            state.display(),
            server.endpoint
        ),
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Waits until `path` holds exactly `want`; returns how long that took from `since`.
fn wait_visible(path: &Path, want: &[u8], since: Instant, limit: Duration) -> Result<Duration> {
    loop {
        if std::fs::read(path).is_ok_and(|got| got == want) {
            return Ok(since.elapsed());
        }
        if since.elapsed() > limit {
            bail!(
                "{} did not get the new content within {limit:?}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until the server has seen no request for `quiet`.
fn wait_quiet(server: &TestServer, quiet: Duration) -> Result<()> {
    let mut last = server.requests()?;
    let mut since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    while since.elapsed() < quiet {
        std::thread::sleep(Duration::from_millis(100));
        let now = server.requests()?;
        if now != last {
            last = now;
            since = Instant::now();
        }
        if Instant::now() > deadline {
            bail!("the server never went quiet");
        }
    }
    Ok(())
}

struct Figures {
    first: Run,
    first_requests: u64,
    rescan: Run,
    rescan_requests: u64,
    change: Duration,
    change_requests: f64,
    /// Peak RSS of the long-running process during the change tests (daemon only).
    daemon_rss_kib: Option<u64>,
}

fn changed_content(round: usize) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    fill(7_000_000 + round as u64, &mut buf);
    buf
}

const CHANGED: &str = "Documents/d007/f00007.bin";

fn bench_cirrus(
    bin: &Path,
    server: &TestServer,
    data: &Path,
    work: &Path,
    changes: usize,
) -> Result<Figures> {
    let state = work.join("cirrus-state");
    let _ = std::fs::remove_dir_all(&state);
    let config = work.join("sync.toml");
    write_syncd_config(&config, data, &state, server)?;
    let once = || {
        let mut c = Command::new(bin);
        c.arg("--config")
            .arg(&config)
            .arg("--once")
            .arg("--no-bus")
            .env("RUST_LOG", "warn");
        c
    };
    let r0 = server.requests()?;
    let first = measure(&mut once())?;
    let r1 = server.requests()?;
    let rescan = measure(&mut once())?;
    let r2 = server.requests()?;

    let mut daemon = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("--no-bus")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting cirrus-syncd")?;
    let result = (|| {
        wait_quiet(server, Duration::from_secs(1))?;
        let before = server.requests()?;
        let mut times = Vec::new();
        for round in 0..changes {
            let content = changed_content(round);
            let start = Instant::now();
            std::fs::write(data.join(CHANGED), &content)?;
            times.push(wait_visible(
                &server.bucket_dir.join(CHANGED),
                &content,
                start,
                Duration::from_secs(60),
            )?);
            wait_quiet(server, Duration::from_millis(500))?;
        }
        let per_change = (server.requests()? - before) as f64 / changes as f64;
        Ok::<_, anyhow::Error>((
            median(&times),
            per_change,
            Some(status_kib(daemon.id(), "VmHWM")).filter(|k| *k > 0),
        ))
    })();
    let _ = daemon.kill();
    let _ = daemon.wait();
    let (change, change_requests, daemon_rss_kib) = result?;
    Ok(Figures {
        first,
        first_requests: r1 - r0,
        rescan,
        rescan_requests: r2 - r1,
        change,
        change_requests,
        daemon_rss_kib,
    })
}

fn bench_rclone(server: &TestServer, data: &Path, work: &Path, changes: usize) -> Result<Figures> {
    let r0 = server.requests()?;
    let first = measure(&mut rclone_copy(server, work, data, "copy"))?;
    let r1 = server.requests()?;
    let rescan = measure(&mut rclone_copy(server, work, data, "sync"))?;
    let r2 = server.requests()?;
    let mut times = Vec::new();
    for round in 0..changes {
        let content = changed_content(round);
        let start = Instant::now();
        std::fs::write(data.join(CHANGED), &content)?;
        measure(&mut rclone_copy(server, work, data, "copy"))?;
        times.push(wait_visible(
            &server.bucket_dir.join(CHANGED),
            &content,
            start,
            Duration::from_secs(60),
        )?);
    }
    let per_change = (server.requests()? - r2) as f64 / changes as f64;
    Ok(Figures {
        first,
        first_requests: r1 - r0,
        rescan,
        rescan_requests: r2 - r1,
        change: median(&times),
        change_requests: per_change,
        daemon_rss_kib: None,
    })
}

pub fn run_suite(ws: &Workspace, args: &[String]) -> Result<()> {
    let (mut small, mut big, mut changes) = (10_000usize, 3usize, 5usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--small" => small = num("--small")?,
            "--big" => big = num("--big")?,
            "--changes" => changes = num("--changes")?.max(1),
            other => {
                bail!("unknown argument `{other}` (accepted: --small N, --big N, --changes N)")
            }
        }
    }
    if Command::new("rclone")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        bail!("rclone is not installed: run `cargo xtask deps`");
    }
    let release = build_release(ws, &["cirrus-syncd", "cirrus-sync-fixtures"])?;
    let syncd = release.join("cirrus-syncd");
    let testserver = release.join("cirrus-sync-testserver");
    let work = ws.root.join("target/cirrus/bench-sync");
    std::fs::create_dir_all(&work)?;
    let data_c = work.join("data-cirrus");
    let data_r = work.join("data-rclone");
    println!("bench sync: writing {small} small files + {big}×100 MiB (twice: one tree per tool)");
    let (bytes, files) = make_data(&data_c, small, big)?;
    make_data(&data_r, small, big)?;

    println!("bench sync: rclone");
    let rclone_fig = {
        let server = TestServer::start(&testserver, &work.join("server-rclone"))?;
        bench_rclone(&server, &data_r, &work, changes)?
    };
    println!("bench sync: cirrus-syncd");
    let cirrus_fig = {
        let server = TestServer::start(&testserver, &work.join("server-cirrus"))?;
        bench_cirrus(&syncd, &server, &data_c, &work, changes)?
    };

    let mb = bytes as f64 / 1e6;
    println!(
        "\n{files} files, {mb:.0} MB, loopback s3s-fs (cirrus-sync-testserver), one server per tool; rclone --transfers 8\n"
    );
    println!(
        "{:<44} {:>22} {:>22}",
        "", "cirrus-syncd", "rclone 8 transfers"
    );
    let row = |label: &str, c: String, r: String| println!("{label:<44} {c:>22} {r:>22}");
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let tput = |d: Duration| format!("{:.1} MB/s", mb / d.as_secs_f64());
    let rss = |k: u64| format!("{:.1} MB", k as f64 / 1024.0);
    row(
        "first upload: wall time",
        secs(cirrus_fig.first.wall),
        secs(rclone_fig.first.wall),
    );
    row(
        "first upload: throughput",
        tput(cirrus_fig.first.wall),
        tput(rclone_fig.first.wall),
    );
    row(
        "first upload: requests",
        cirrus_fig.first_requests.to_string(),
        rclone_fig.first_requests.to_string(),
    );
    row(
        "first upload: peak RSS",
        rss(cirrus_fig.first.max_rss_kib),
        rss(rclone_fig.first.max_rss_kib),
    );
    row(
        "no-change rescan: wall time",
        secs(cirrus_fig.rescan.wall),
        secs(rclone_fig.rescan.wall),
    );
    row(
        "no-change rescan: requests",
        cirrus_fig.rescan_requests.to_string(),
        rclone_fig.rescan_requests.to_string(),
    );
    row(
        "no-change rescan: peak RSS",
        rss(cirrus_fig.rescan.max_rss_kib),
        rss(rclone_fig.rescan.max_rss_kib),
    );
    row(
        &format!("one-file change → in bucket (median of {changes})"),
        format!("{:.0} ms", cirrus_fig.change.as_secs_f64() * 1e3),
        format!(
            "{:.0} ms (run by hand)",
            rclone_fig.change.as_secs_f64() * 1e3
        ),
    );
    row(
        "one-file change: requests",
        format!("{:.1}", cirrus_fig.change_requests),
        format!("{:.1}", rclone_fig.change_requests),
    );
    if let Some(k) = cirrus_fig.daemon_rss_kib {
        row("daemon peak RSS (watching 10k files)", rss(k), "-".into());
    }
    Ok(())
}
