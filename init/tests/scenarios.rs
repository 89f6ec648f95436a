//! Integration tests in the style of dinit's: each scenario is a directory of unit files under
//! `tests/scenarios/<name>/` (optionally with an `expected-events` file); the real cirrus-init
//! binary supervises real `/bin/sh` services over a copy of it in `--user` mode, and the tests read
//! its event log and console output.
//!
//! Nothing here asserts timing: every wait is a poll with a generous deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_cirrus-init");
const DEADLINE: Duration = Duration::from_secs(20);

/// A running `cirrus-init --user` over a copy of one scenario.
struct Init {
    child: Option<Child>,
    root: tempfile::TempDir,
}

impl Init {
    fn start(scenario: &str) -> Init {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scenarios")
            .join(scenario);
        let root = tempfile::tempdir().unwrap();
        copy_dir(&src, root.path());
        let stderr = File::create(root.path().join("console.log")).unwrap();
        let child = Command::new(BIN)
            .arg("--user")
            .arg("--root")
            .arg(root.path())
            .arg("--event-log")
            .arg(root.path().join("events"))
            .env("CIRRUS_INIT_BIN", BIN)
            .env("TEST_ROOT", root.path())
            .env("CIRRUS_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Init {
            child: Some(child),
            root,
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap()
    }

    fn socket(&self) -> PathBuf {
        self.root().join("run/cirrus/init.sock")
    }

    /// Events with pids replaced by `*` and the scenario root by `$ROOT`.
    fn events(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.root().join("events")).unwrap_or_default();
        let root = self.root().display().to_string();
        text.lines()
            .map(|l| normalize(&l.replace(&root, "$ROOT")))
            .collect()
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.root().join("console.log")).unwrap_or_default()
    }

    fn diagnostics(&self) -> String {
        format!(
            "events:\n{}\n\nconsole:\n{}",
            self.events().join("\n"),
            self.console()
        )
    }

    /// Waits until `check` holds, panicking with the event log and console output otherwise.
    fn wait_until(&self, what: &str, mut check: impl FnMut(&Init) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !check(self) {
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_event(&self, event: &str) {
        self.wait_until(&format!("event `{event}`"), |init| {
            init.events().iter().any(|e| e == event)
        });
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for init to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(40);
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!("cirrus-init did not exit\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn client(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("CIRRUS_INIT_SOCKET", self.socket())
            .output()
            .unwrap()
    }

    fn assert_events_match_expected(&self, scenario: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scenarios")
            .join(scenario)
            .join("expected-events");
        let expected: Vec<String> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(self.events(), expected, "\n{}", self.diagnostics());
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        // Leave no services behind when a test fails: ask politely, then insist.
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `start a pid=123` → `start a pid=*`.
fn normalize(event: &str) -> String {
    event
        .split(' ')
        .map(|word| {
            if word.starts_with("pid=") {
                "pid=*"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn position(events: &[String], event: &str) -> usize {
    events
        .iter()
        .position(|e| e == event)
        .unwrap_or_else(|| panic!("no event `{event}` in {events:#?}"))
}

/// Children of `parent` that are zombies, from /proc.
fn zombie_children(parent: i32) -> Vec<i32> {
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if proc_state(pid) == Some(('Z', parent)) {
            zombies.push(pid);
        }
    }
    zombies
}

/// State letter and parent pid of `pid`, if it exists.
fn proc_state(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[test]
fn dependency_order_waits_for_notify_readiness() {
    let mut init = Init::start("dependency-order");
    init.wait_for_event("boot-completed");
    assert!(
        init.console().contains("a: status: warmed-up"),
        "{}",
        init.diagnostics()
    );
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
    // `b` starts only after `ready a`; at shutdown `b` stops before `a` (reverse order).
    init.assert_events_match_expected("dependency-order");
}

#[test]
fn oneshot_required_by_a_service() {
    let mut init = Init::start("oneshot");
    init.wait_for_event("boot-completed");
    let events = init.events();
    let setup_exit = position(&events, "exit setup status=0");
    let setup_ready = position(&events, "ready setup");
    let app_start = position(&events, "start app pid=*");
    assert!(
        setup_exit < setup_ready && setup_ready < app_start,
        "{events:#?}"
    );
    // A failed oneshot and a missing requirement keep their dependents from starting; a missing
    // `after` does not.
    position(&events, "exit broken status=1");
    position(&events, "start orders-after-missing pid=*");
    assert!(
        !events.iter().any(|e| e.starts_with("start needs-broken")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("start needs-missing")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("restart broken")),
        "{events:#?}"
    );
    let console = init.console();
    assert!(
        console.contains("needs-broken: not started: it requires `broken`, which failed"),
        "{console}"
    );
    assert!(
        console.contains(
            "needs-missing: not started: it requires `nonexistent`, which does not exist"
        ),
        "{console}"
    );
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn crashing_service_is_restarted_with_backoff() {
    let mut init = Init::start("restart-backoff");
    init.wait_until("three restarts", |init| {
        init.events()
            .iter()
            .filter(|e| e.starts_with("restart crash"))
            .count()
            >= 3
    });
    let events = init.events();
    let restarts: Vec<&str> = events
        .iter()
        .filter(|e| e.starts_with("restart crash"))
        .map(String::as_str)
        .take(3)
        .collect();
    assert_eq!(
        restarts,
        [
            "restart crash in=100ms",
            "restart crash in=200ms",
            "restart crash in=400ms"
        ],
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .filter(|e| *e == "exit crash status=3")
            .count()
            >= 3,
        "{events:#?}"
    );
    // Each restart is a new start.
    assert!(
        events
            .iter()
            .filter(|e| e.starts_with("start crash"))
            .count()
            >= 3,
        "{events:#?}"
    );
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn orphans_are_adopted_and_reaped() {
    let mut init = Init::start("orphan-reaping");
    let pid_file = init.root().join("orphan.pid");
    init.wait_until("the orphan's pid file", |_| pid_file.exists());
    let orphan: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let init_pid = init.pid();
    init.wait_until("the orphan to be adopted by cirrus-init", |_| {
        proc_state(orphan).is_some_and(|(_, ppid)| ppid == init_pid)
    });
    std::fs::write(init.root().join("release"), "").unwrap();
    // Reaped: the pid disappears. Unreaped it would stay a zombie child of init forever.
    init.wait_until("the orphan to be reaped", |_| {
        proc_state(orphan).is_none_or(|(_, ppid)| ppid != init_pid)
    });
    assert_eq!(
        zombie_children(init_pid),
        Vec::<i32>::new(),
        "{}",
        init.diagnostics()
    );
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn malformed_unit_is_reported_and_others_start() {
    let mut init = Init::start("malformed-unit");
    init.wait_for_event("boot-completed");
    let events = init.events();
    position(&events, "config-error $ROOT/system/etc/init/bad.toml:2");
    position(&events, "start good pid=*");
    let console = init.console();
    let bad = init.root().join("system/etc/init/bad.toml");
    assert!(
        console.contains(&format!(
            "{}:2:1: unknown key `exce`, expected one of",
            bad.display()
        )),
        "{console}"
    );
    // The cycle is reported and its members do not start; nothing hangs.
    assert!(
        console.contains("dependency cycle between units cycle-a, cycle-b"),
        "{console}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("start cycle-")),
        "{events:#?}"
    );
    init.wait_until("good's output", |init| {
        init.console().contains("good | good-started")
    });
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn vendor_unit_overrides_system_unit() {
    let mut init = Init::start("vendor-override");
    init.wait_until("both services' output", |init| {
        let console = init.console();
        console.contains("svc | from-vendor") && console.contains("other | other-started")
    });
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
    assert!(
        !init.console().contains("from-system"),
        "{}",
        init.diagnostics()
    );
    assert_eq!(
        init.events()
            .iter()
            .filter(|e| e.starts_with("start svc"))
            .count(),
        1
    );
}

#[test]
fn sigterm_stops_services_and_kills_stubborn_ones() {
    let mut init = Init::start("stop-timeout");
    init.wait_for_event("boot-completed");
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success(), "{}", init.diagnostics());
    init.assert_events_match_expected("stop-timeout");
    assert!(
        init.console()
            .contains("stubborn: still running 300 ms after SIGTERM; sending SIGKILL"),
        "{}",
        init.diagnostics()
    );
}

#[test]
fn poweroff_and_status_over_the_control_socket() {
    let mut init = Init::start("poweroff");
    init.wait_for_event("boot-completed");

    let status = init.client(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.status.success(), "{text}");
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{text}");
    assert_eq!(&fields[..2], ["svc", "running"], "{text}");
    assert!(fields[2].parse::<u32>().is_ok(), "{text}");

    // `poweroff` reached through argv[0], like the /system/bin/poweroff link on a device.
    let link = init.root().join("poweroff");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let out = Command::new(&link)
        .env("CIRRUS_INIT_SOCKET", init.socket())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok: powering off\n");
    assert!(init.wait_exit().success(), "{}", init.diagnostics());
    let events = init.events();
    assert_eq!(
        &events[events.len() - 3..],
        ["shutdown", "stop svc", "exit svc signal=SIGTERM"],
        "{events:#?}"
    );

    // Once init is gone the client says so and fails.
    let out = init.client(&["poweroff"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach cirrus-init"),
        "{out:?}"
    );
}

#[test]
fn service_output_is_forwarded_with_its_name() {
    let mut init = Init::start("output");
    init.wait_for_event("ready talker");
    init.wait_until("the partial last line", |init| {
        init.console().contains("talker | partial line")
    });
    let console = init.console();
    let lines: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("] talker | "))
        .collect();
    for line in &lines {
        assert!(
            line.starts_with('[') && line.as_bytes()[13] == b']',
            "not a boot-clock stamp: {line}"
        );
    }
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once("] talker | ").unwrap().1)
        .collect();
    assert!(texts.contains(&"hello from talker"), "{console}");
    assert!(texts.contains(&"to stderr"), "{console}");
    // 10000 bytes without newline come out as 4096 + 4096 + 1808.
    let long: Vec<usize> = texts
        .iter()
        .filter(|t| t.starts_with("xxx"))
        .map(|t| t.len())
        .collect();
    assert_eq!(long, [4096, 4096, 1808], "{console}");
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn notify_outside_a_service_fails_clearly() {
    let out = Command::new(BIN)
        .args(["notify", "READY=1"])
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NOTIFY_SOCKET is not set"),
        "{out:?}"
    );
    let out = Command::new(BIN).arg("--second-stage").output().unwrap();
    assert!(
        !out.status.success(),
        "--second-stage must refuse to run when not PID 1"
    );
}
