//! Integration tests in the style of dinit's: each scenario is a directory of unit files under
//! `tests/scenarios/<name>/` (optionally with an `expected-events` file); the real cirrus-init
//! binary supervises real `/bin/sh` services over a copy of it in `--user` mode, and the tests read
//! its event log and console output.
//!
//! Nothing here asserts timing: every wait is a poll with a generous deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
        copy_dir(&src, root.path(), root.path());
        Init::spawn(root)
    }

    /// Starts cirrus-init over `root` (again, after an earlier instance exited).
    fn spawn(root: tempfile::TempDir) -> Init {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.path().join("console.log"))
            .unwrap();
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

    /// Asks init to exit (SIGTERM), waits, and starts a new init over the same root.
    fn restart(mut self) -> Init {
        self.signal(Signal::SIGTERM);
        assert!(self.wait_exit().success(), "{}", self.diagnostics());
        let root = tempfile::TempDir::new().unwrap();
        let old = std::mem::replace(&mut self.root, root);
        Init::spawn(old)
    }

    /// Runs a client command and returns (success, stdout).
    fn ctl(&self, args: &[&str]) -> (bool, String) {
        let out = self.client(args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn count(&self, prefix: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
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

/// Copies a scenario, replacing `@ROOT@` in unit files by the scenario's root (for keys that need
/// absolute paths, like `read_only_paths`).
fn copy_dir(src: &Path, dst: &Path, root: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target, root);
        } else if target.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(&target, text.replace("@ROOT@", &root.display().to_string())).unwrap();
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
            "restart crash in=0ms",
            "restart crash in=100ms",
            "restart crash in=200ms"
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

#[test]
fn critical_service_crash_loop_triggers_its_action() {
    let mut init = Init::start("critical-crash-loop");
    init.wait_for_event("critical core action=reboot-recovery");
    // In user mode the action is only recorded: init stays up and the unit is failed, not restarted.
    let (ok, status) = init.ctl(&["status", "core"]);
    assert!(ok && status.contains("state: failed"), "{status}");
    assert!(
        init.console()
            .contains("core: critical service exited 3 times in 60 s: reboot-recovery"),
        "{}",
        init.diagnostics()
    );
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
    init.assert_events_match_expected("critical-crash-loop");
}

#[test]
fn readiness_through_a_file_descriptor() {
    let mut init = Init::start("readiness-fd");
    init.wait_for_event("ready b");
    let events = init.events();
    assert!(
        position(&events, "ready a") < position(&events, "start b pid=*"),
        "{events:#?}"
    );
    init.wait_until("silent's closed fd to be noticed", |init| {
        init.console()
            .contains("silent: closed its readiness fd without reporting ready")
    });
    let events = init.events();
    assert!(!events.iter().any(|e| e == "ready silent"), "{events:#?}");
    assert!(
        !events.iter().any(|e| e.starts_with("start never")),
        "{events:#?}"
    );
    assert!(!events.iter().any(|e| e == "boot-completed"), "{events:#?}");
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
    let events = init.events();
    // Reverse order at shutdown: b (which requires a) is stopped before a.
    assert!(
        position(&events, "exit b signal=SIGTERM") < position(&events, "stop a"),
        "{events:#?}"
    );
}

#[test]
fn wants_pulls_in_disabled_units_and_tolerates_failures() {
    let mut init = Init::start("wants-and-disabled");
    init.wait_for_event("boot-completed");
    let events = init.events();
    assert!(
        position(&events, "ready helper") < position(&events, "start app pid=*"),
        "{events:#?}"
    );
    position(&events, "exit flaky status=1");
    position(&events, "start tolerant pid=*");
    assert!(
        !events.iter().any(|e| e.starts_with("start idle")),
        "{events:#?}"
    );
    let (_, status) = init.ctl(&["status"]);
    assert!(status.contains("idle inactive -"), "{status}");
    // A disabled unit starts on request.
    let (ok, reply) = init.ctl(&["start", "idle"]);
    assert!(ok, "{reply}");
    init.wait_for_event("ready idle");
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn property_triggers_start_and_stop_units() {
    let mut init = Init::start("property-trigger");
    // ro.debuggable=1 from the build properties fires boot-hook's trigger at boot.
    init.wait_for_event("trigger boot-hook start on ro.debuggable=1");
    init.wait_for_event("exit boot-hook status=0");
    init.wait_for_event("boot-completed");
    assert_eq!(init.count("start adbd"), 0);
    let (ok, reply) = init.ctl(&["setprop", "sys.usb.config", "adb"]);
    assert!(ok, "{reply}");
    init.wait_for_event("trigger adbd start on sys.usb.config=adb");
    init.wait_for_event("ready adbd");
    let (ok, state) = init.ctl(&["getprop", "init.svc.adbd"]);
    assert!(ok && state.trim() == "init.svc.adbd=running", "{state}");
    // Another value matching no trigger does nothing; "none" stops it.
    init.ctl(&["setprop", "sys.usb.config", "mtp"]);
    init.ctl(&["setprop", "sys.usb.config", "none"]);
    init.wait_for_event("trigger adbd stop on sys.usb.config=none");
    init.wait_for_event("exit adbd signal=SIGTERM");
    let events = init.events();
    assert!(
        !events.iter().any(|e| e.contains("sys.usb.config=mtp")),
        "{events:#?}"
    );
    assert_eq!(init.count("start adbd"), 1, "{events:#?}");
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn persistent_properties_survive_a_restart_and_read_only_ones_stay() {
    let init = Init::start("persist-properties");
    init.wait_for_event("boot-completed");
    let (ok, model) = init.ctl(&["getprop", "ro.product.model"]);
    assert!(
        ok && model.trim() == "ro.product.model=vendor-phone",
        "{model}"
    );
    let (ok, reply) = init.ctl(&["setprop", "ro.product.model", "hacked"]);
    assert!(!ok && reply.contains("read-only"), "{reply}");
    for (name, value) in [
        ("persist.sys.locale", "fr-FR"),
        ("sys.volatile", "gone-after-restart"),
    ] {
        let (ok, reply) = init.ctl(&["setprop", name, value]);
        assert!(ok, "{reply}");
    }
    let (ok, reply) = init.ctl(&["setprop", "bad..name", "x"]);
    assert!(!ok && reply.contains("empty part"), "{reply}");
    let saved =
        std::fs::read_to_string(init.root().join("data/system/properties/persist.toml")).unwrap();
    assert!(
        saved.contains("\"persist.sys.locale\" = \"fr-FR\""),
        "{saved}"
    );

    let init = init.restart();
    init.wait_until("the second boot", |init| init.count("boot-completed") == 2);
    let (ok, locale) = init.ctl(&["getprop", "persist.sys.locale"]);
    assert!(
        ok && locale.trim() == "persist.sys.locale=fr-FR",
        "{locale}"
    );
    let (ok, gone) = init.ctl(&["getprop", "sys.volatile"]);
    assert!(!ok && gone.contains("is not set"), "{gone}");
    let (ok, list) = init.ctl(&["props", "ro."]);
    assert!(ok, "{list}");
    assert_eq!(list, "ro.build.id=test-1\nro.product.model=vendor-phone\n");
}

#[test]
fn unprivileged_clients_follow_the_property_access_rules() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run a client as another uid (SO_PEERCRED check)");
        return;
    }
    let init = Init::start("persist-properties");
    init.wait_for_event("boot-completed");
    // The target directory may sit under a private home: run a copy nobody can reach.
    let bin = cirrus_testsupport::ExecutableCopy::new(BIN).unwrap();
    let as_nobody = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        let out = Command::new(bin.path())
            .args(args)
            .env("CIRRUS_INIT_SOCKET", init.socket())
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, model) = as_nobody(&["getprop", "ro.build.id"]);
    assert!(ok && model.trim() == "ro.build.id=test-1", "{model}");
    for args in [
        &["setprop", "persist.x", "1"][..],
        &["stop", "svc"],
        &["poweroff"],
    ] {
        let (ok, reply) = as_nobody(args);
        assert!(
            !ok && reply.contains("permission denied"),
            "{args:?}: {reply}"
        );
    }
    // The access rules (system file, plus the vendor's): nobody may set what they name for it,
    // by user name or through its primary group, and cannot read what is kept from it.
    let (ok, reply) = as_nobody(&["setprop", "persist.nobody.flag", "1"]);
    assert!(ok, "{reply}");
    let (ok, reply) = as_nobody(&["setprop", "vendor.nogroup.x", "2"]);
    assert!(ok, "{reply}");
    let (ok, reply) = init.ctl(&["getprop", "persist.nobody.flag"]);
    assert!(ok && reply.trim() == "persist.nobody.flag=1", "{reply}");
    let (ok, reply) = init.ctl(&["setprop", "secret.key", "hunter2"]);
    assert!(ok, "{reply}");
    let (ok, reply) = as_nobody(&["getprop", "secret.key"]);
    assert!(
        !ok && reply.contains("may not read `secret.key`"),
        "{reply}"
    );
    let (ok, listed) = as_nobody(&["props"]);
    assert!(
        ok && listed.contains("persist.nobody.flag=1") && !listed.contains("hunter2"),
        "{listed}"
    );
    let (ok, reply) = as_nobody(&["setprop", "secret.key", "x"]);
    assert!(!ok && reply.contains("may not set `secret.key`"), "{reply}");
    // A relay may not act for another uid unless it is privileged itself.
    let (ok, reply) = as_nobody(&["status"]);
    assert!(ok && reply.contains("svc running"), "{reply}");
    let relayed = {
        let mut stream = std::os::unix::net::UnixStream::connect(init.socket()).unwrap();
        use std::io::{Read, Write};
        stream
            .write_all(b"as 65534 setprop-is-not-a-request\n")
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    assert!(relayed.starts_with("error: unknown request"), "{relayed}");
    let out = Command::new(BIN)
        .args(["set", "persist.y", "2"])
        .env("CIRRUS_INIT_SOCKET", init.socket())
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut stream = std::os::unix::net::UnixStream::connect(init.socket()).unwrap();
    {
        use std::io::{Read, Write};
        stream.write_all(b"as 65534 set persist.y 3\n").unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.contains("permission denied"), "{reply}");
    }
}

#[test]
fn watch_streams_property_changes() {
    let init = Init::start("persist-properties");
    init.wait_for_event("boot-completed");
    let mut watcher = Command::new(BIN)
        .args(["watch", "persist."])
        .env("CIRRUS_INIT_SOCKET", init.socket())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(watcher.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ok: watching\n");
    init.ctl(&["setprop", "sys.ignored", "1"]);
    init.ctl(&["setprop", "persist.a", "1"]);
    init.ctl(&["setprop", "persist.a", "2"]);
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line);
    }
    assert_eq!(lines, ["persist.a=1\n", "persist.a=2\n"]);
    let _ = watcher.kill();
    let _ = watcher.wait();
}

#[test]
fn cgroup_kill_takes_daemons_that_left_the_process_group() {
    let mut init = Init::start("cgroup-kill");
    init.wait_for_event("boot-completed");
    let console = init.console();
    if let Some(line) = console
        .lines()
        .find(|l| l.contains("services run without cgroups"))
    {
        eprintln!("skipped: {line}");
        return;
    }
    let pid_file = init.root().join("daemon.pid");
    init.wait_until("the daemon's pid file", |_| {
        std::fs::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n'))
    });
    let daemon: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (ok, status) = init.ctl(&["status", "forker"]);
    assert!(ok && status.contains("cgroup: "), "{status}");
    let main_pid: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("pid: "))
        .unwrap()
        .parse()
        .unwrap();
    // The daemon really left the service's session: signalling the process group misses it.
    assert_ne!(
        nix::unistd::getsid(Some(Pid::from_raw(daemon))).unwrap(),
        Pid::from_raw(main_pid),
        "{}",
        init.diagnostics()
    );
    let (ok, reply) = init.ctl(&["stop", "forker"]);
    assert!(ok, "{reply}");
    init.wait_for_event("cgroup-kill forker");
    init.wait_until("the daemon to be gone", |_| {
        proc_state(daemon).is_none_or(|(state, _)| state == 'Z')
    });
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn sandbox_limits_private_tmp_and_read_only_paths() {
    let mut init = Init::start("sandbox");
    init.wait_for_event("boot-completed");
    init.wait_until("both oneshots' output", |init| {
        init.console().contains("limits | nofile")
            && (init.console().contains("private-tmp | tmp-writable")
                || init.console().contains("private-tmp: failed"))
            && (init.console().contains("read-only | ro-")
                || init.console().contains("read-only: failed"))
    });
    let console = init.console();
    assert!(
        console.contains("limits | nofile=100:200 core=0 pwd=/ MODE=sandboxed"),
        "{console}"
    );
    if console.contains("private-tmp: failed") || console.contains("read-only: failed") {
        eprintln!("mount namespaces are not available here:\n{console}");
    } else {
        assert!(console.contains("private-tmp | tmp-entries=0"), "{console}");
        assert!(console.contains("private-tmp | tmp-writable"), "{console}");
        assert!(console.contains("read-only | ro-refused"), "{console}");
        assert!(!Path::new("/tmp/cirrus-private-tmp-probe").exists());
        assert_eq!(
            std::fs::read_to_string(init.root().join("ro/file")).unwrap(),
            "kept\n"
        );
    }
    if nix::unistd::Uid::effective().is_root() {
        let (ok, reply) = init.ctl(&["start", "identity"]);
        assert!(ok, "{reply}");
        init.wait_for_event("exit identity status=0");
        init.wait_until("identity's output", |init| {
            init.console().contains("identity | CapEff")
        });
        let console = init.console();
        assert!(
            console.contains("identity | uid=65534 gid=65534 groups=65534 1"),
            "{console}"
        );
        // Bounding set: CAP_KILL (5) and CAP_NET_BIND_SERVICE (10); ambient and effective: 10 only.
        assert!(
            console.contains("identity | CapBnd:\t0000000000000420"),
            "{console}"
        );
        assert!(
            console.contains("identity | CapAmb:\t0000000000000400"),
            "{console}"
        );
        assert!(
            console.contains("identity | CapEff:\t0000000000000400"),
            "{console}"
        );
    } else {
        eprintln!("skipped the user/capability part: needs root");
    }
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}

#[test]
fn start_stop_restart_requests_follow_dependencies() {
    let mut init = Init::start("start-stop-restart");
    init.wait_for_event("boot-completed");
    // Stopping base stops top first, which requires it.
    let (ok, reply) = init.ctl(&["stop", "base"]);
    assert!(ok && reply.contains("stopping base"), "{reply}");
    init.wait_for_event("exit base signal=SIGTERM");
    let events = init.events();
    assert!(
        position(&events, "stop top") < position(&events, "stop base"),
        "{events:#?}"
    );
    let (_, status) = init.ctl(&["status"]);
    assert!(
        status.contains("base stopped -") && status.contains("top stopped -"),
        "{status}"
    );
    // Starting top pulls base in again, and top waits for it.
    let (ok, reply) = init.ctl(&["start", "top"]);
    assert!(ok, "{reply}");
    init.wait_until("top to run again", |init| init.count("start top") == 2);
    let events = init.events();
    let second_base = events.iter().rposition(|e| e == "ready base").unwrap();
    let second_top = events
        .iter()
        .rposition(|e| e.starts_with("start top"))
        .unwrap();
    assert!(second_base < second_top, "{events:#?}");
    // Restart: stop, then start again (no backoff: it was asked for).
    let (ok, reply) = init.ctl(&["restart", "top"]);
    assert!(ok, "{reply}");
    init.wait_until("top's third start", |init| init.count("start top") == 3);
    let (ok, reply) = init.ctl(&["start", "missing"]);
    assert!(!ok && reply.contains("no unit `missing`"), "{reply}");
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
    assert_eq!(init.count("restart top"), 0);
}

#[test]
fn on_failure_and_never_restart_policies() {
    let mut init = Init::start("restart-policies");
    init.wait_for_event("exit fails-once status=0");
    init.wait_for_event("exit never status=1");
    let events = init.events();
    assert_eq!(init.count("restart fails-once"), 1, "{events:#?}");
    assert_eq!(init.count("start fails-once"), 2, "{events:#?}");
    assert_eq!(init.count("restart never"), 0, "{events:#?}");
    let (_, status) = init.ctl(&["status"]);
    assert!(status.contains("fails-once exited -"), "{status}");
    // It had been ready (started), so it is "exited", not "failed".
    assert!(status.contains("never exited -"), "{status}");
    init.signal(Signal::SIGTERM);
    assert!(init.wait_exit().success());
}
