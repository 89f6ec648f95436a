//! The processes a benchmark starts: our programs and their peers, their status lines, their
//! process trees, the headless compositor the graphical suites run against, and the one way a
//! launch is measured (time to a status line, then memory summed over the process tree).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::procfs::{pss_kib, rss_kib};

/// How long a status line or a socket may take.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A started program (stdin kept open until [`Running::stop`], stdout read as status lines,
/// stderr discarded), killed when dropped.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    pub fn spawn(cmd: &mut Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the program has exited.
    pub fn exited(&mut self) -> Result<bool> {
        Ok(self.child.try_wait()?.is_some())
    }

    /// Waits for the status line `want`; an exit or [`DEADLINE`] is an error.
    pub fn wait_for(&self, want: &str) -> Result<()> {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim() == want => return Ok(()),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => bail!("no `{want}` within {DEADLINE:?}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the process exited before `{want}`")
                }
            }
        }
    }

    /// SIGTERM (our hosts save and exit; WebKit's helpers end with their UI process) and stdin
    /// closed, then wait; an error if it is still there after 10 s (the drop kills it).
    pub fn stop(mut self) -> Result<()> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        drop(self.child.stdin.take());
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!("pid {pid} did not exit within 10 s of SIGTERM")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The suite's only argument, `[--runs N]` (at least 1), or `default`.
pub fn runs_arg(args: &[String], default: usize, suite: &str) -> Result<usize> {
    let mut runs = default;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .context("--runs needs a number")?
                    .max(1)
            }
            other => bail!("unknown argument `{other}` (bench {suite} takes [--runs N])"),
        }
    }
    Ok(runs)
}

/// Runs `cmd` to completion; its stdout, or an error with everything it printed.
pub fn run_checked(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The parent pid of `pid`, from /proc (the command name may hold spaces: the fields after the
/// last `)` are counted).
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `root` and every process below it.
pub fn process_tree(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| Some((p, parent_of(p)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

/// A headless cirrus-compositor at 720x1440 with an empty launcher and no notification server,
/// its socket in a private runtime directory under `work`.
pub struct HeadlessCompositor {
    pub process: Running,
    pub socket: PathBuf,
    pub runtime_dir: PathBuf,
}

impl HeadlessCompositor {
    pub fn start(binary: &Path, work: &Path) -> Result<Self> {
        let runtime_dir = work.join("run");
        std::fs::create_dir_all(&runtime_dir)?;
        std::fs::set_permissions(
            &runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let socket = runtime_dir.join("wayland-bench");
        let mut process = Running::spawn(
            Command::new(binary)
                .args(["--backend", "headless", "--size", "720x1440"])
                .arg("--socket")
                .arg(&socket)
                .args(["--notification-bus", "none", "--app-dir"])
                .arg(work.join("no-apps"))
                .env("XDG_RUNTIME_DIR", &runtime_dir)
                .env("CIRRUS_LOG", "warn"),
        )?;
        let until = Instant::now() + DEADLINE;
        while !socket.exists() {
            if process.exited()? {
                bail!(
                    "cirrus-compositor exited before creating {}",
                    socket.display()
                );
            }
            if Instant::now() > until {
                bail!("cirrus-compositor made no socket at {}", socket.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            process,
            socket,
            runtime_dir,
        })
    }
}

/// One measured launch: time to the ready line; memory summed over the process tree after idling.
pub struct Launch {
    pub time: Duration,
    pub processes: usize,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

/// Starts `cmd`, times it to the status line `ready`, lets it sit `idle`, reads the memory of its
/// process tree, and stops it.
pub fn launch(cmd: &mut Command, ready: &str, idle: Duration) -> Result<Launch> {
    let started = Instant::now();
    let run = Running::spawn(cmd)?;
    run.wait_for(ready)?;
    let time = started.elapsed();
    std::thread::sleep(idle);
    let tree = process_tree(run.pid());
    let launch = Launch {
        time,
        processes: tree.len(),
        rss_kib: tree.iter().map(|p| rss_kib(*p)).sum(),
        pss_kib: tree.iter().map(|p| pss_kib(*p)).sum(),
    };
    run.stop()?;
    Ok(launch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_is_timed_to_its_status_line_and_measured_over_its_tree() {
        // A parent printing its status line with one child below it.
        let launch = launch(
            Command::new("sh").args(["-c", "sleep 5 & echo ready; wait"]),
            "ready",
            Duration::from_millis(50),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(launch.processes, 2);
        assert!(launch.rss_kib > 0 && launch.pss_kib > 0);
        let err = match launch_err() {
            Ok(_) => panic!("a program exiting before its status line must be an error"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("exited before `ready`"), "{err}");
    }

    fn launch_err() -> Result<Launch> {
        launch(
            Command::new("sh").args(["-c", "echo other"]),
            "ready",
            Duration::ZERO,
        )
    }
}
