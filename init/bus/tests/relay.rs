//! End to end over a real bus: Debian's dbus-daemon on a private socket, the real cirrus-init in
//! user mode, the real relay (`cirrus-init-bus`) and `cirrusctl`. Introspection with Debian's
//! `dbus-send`, calls and signals through cirrusctl, access control by the caller's uid, and the
//! fallback to init's control socket when the bus is gone.
//!
//! `harness = false`: this binary also plays cirrus-init and cirrusctl (`RELAY_TEST_ROLE`), so the
//! test runs their real code as separate processes without needing other packages' binaries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

const RELAY: &str = env!("CARGO_BIN_EXE_cirrus-init-bus");
const DEADLINE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    match std::env::var("RELAY_TEST_ROLE").as_deref() {
        Ok("init") => return cirrus_init::cli::main(),
        Ok("cirrusctl") => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            return cirrusctl::run(&args);
        }
        _ => {}
    }
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        // Not a skip: a test that passes without its bus would prove nothing.
        println!("relay: dbus-daemon is not installed: run `cargo xtask deps`");
        return ExitCode::FAILURE;
    }
    let tests: [(&str, fn()); 2] = [
        ("init1_over_a_real_bus", init1_over_a_real_bus),
        (
            "cirrusctl_falls_back_to_the_control_socket",
            cirrusctl_falls_back_to_the_control_socket,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Setup {
    root: tempfile::TempDir,
    init: Option<Running>,
    bus: Option<Running>,
    relay: Option<Running>,
    address: String,
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool, diagnostics: impl Fn() -> String) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", diagnostics());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Setup {
    fn start() -> Setup {
        let root = tempfile::tempdir().unwrap();
        // Readable by the unprivileged caller of the access test.
        std::fs::set_permissions(
            root.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let units = root.path().join("system/etc/init");
        std::fs::create_dir_all(&units).unwrap();
        std::fs::write(
            units.join("svc.toml"),
            "exec = \"/bin/sh\"\nargs = [\"-c\", \"exec sleep 1000\"]\n",
        )
        .unwrap();
        std::fs::write(
            units.join("later.toml"),
            "disabled = true\nexec = \"/bin/sh\"\nargs = [\"-c\", \"exec sleep 1000\"]\n",
        )
        .unwrap();
        let console = std::fs::File::create(root.path().join("console.log")).unwrap();
        let init = Command::new(std::env::current_exe().unwrap())
            .env("RELAY_TEST_ROLE", "init")
            .args(["--user", "--root"])
            .arg(root.path())
            .arg("--event-log")
            .arg(root.path().join("events"))
            .stdout(Stdio::null())
            .stderr(console)
            .spawn()
            .unwrap();
        let mut setup = Setup {
            root,
            init: Some(Running(init)),
            bus: None,
            relay: None,
            address: String::new(),
        };
        let events = setup.root.path().join("events");
        wait_until(
            "init's boot",
            || std::fs::read_to_string(&events).is_ok_and(|e| e.contains("boot-completed")),
            || setup.diagnostics(),
        );

        // The bus: Debian's dbus-daemon with the relay's own policy.
        let own_policy = if nix::unistd::Uid::effective().is_root() {
            cirrus_init_bus::BUS_POLICY.to_string()
        } else {
            // Unprivileged, the relay cannot be root: let this user own the name instead.
            cirrus_init_bus::BUS_POLICY.replace(
                "user=\"root\"",
                &format!("user=\"{}\"", nix::unistd::Uid::effective()),
            )
        };
        let config = format!(
            "<busconfig>\n  <type>custom</type>\n  <listen>unix:path={}</listen>\n  <auth>EXTERNAL</auth>\n  \
             <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow send_destination=\"org.freedesktop.DBus\"/>\n    \
             <allow receive_sender=\"*\"/>\n    \
             <allow send_type=\"signal\"/>\n    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n    \
             <allow send_requested_reply=\"true\" send_type=\"error\"/>\n  </policy>\n{own_policy}</busconfig>\n",
            setup.root.path().join("bus").display()
        );
        let config_path = setup.root.path().join("bus.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config_path.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        setup.address = address.trim().to_string();
        assert!(setup.address.starts_with("unix:"), "{address}");
        setup.bus = Some(Running(bus));

        let relay_log = std::fs::File::create(setup.root.path().join("relay.log")).unwrap();
        let relay = Command::new(RELAY)
            .args(["--address", &setup.address, "--control"])
            .arg(setup.root.path().join("run/cirrus/init.sock"))
            .env("CIRRUS_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(relay_log)
            .spawn()
            .unwrap();
        setup.relay = Some(Running(relay));
        wait_until(
            "org.cirrus.Init1 on the bus",
            || setup.introspect().status.success(),
            || setup.diagnostics(),
        );
        setup
    }

    fn diagnostics(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.root.path().join(f)).unwrap_or_default();
        format!(
            "events:\n{}\ninit console:\n{}\nrelay log:\n{}",
            read("events"),
            read("console.log"),
            read("relay.log")
        )
    }

    fn introspect(&self) -> Output {
        Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--dest=org.cirrus.Init1",
                "/org/cirrus/Init1",
                "org.freedesktop.DBus.Introspectable.Introspect",
            ])
            .output()
            .unwrap()
    }

    fn ctl_command(&self, args: &[&str]) -> Command {
        self.ctl_command_with(&std::env::current_exe().unwrap(), args)
    }

    /// cirrusctl run from `program` (this test binary or a copy of it).
    fn ctl_command_with(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("RELAY_TEST_ROLE", "cirrusctl")
            .env("CIRRUS_INIT_SOCKET", self.socket())
            .args(["--bus", &self.address])
            .args(args);
        cmd
    }

    fn ctl(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.ctl_command(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn socket(&self) -> PathBuf {
        self.root.path().join("run/cirrus/init.sock")
    }

    fn events(&self) -> String {
        std::fs::read_to_string(self.root.path().join("events")).unwrap_or_default()
    }

    fn root(&self) -> &Path {
        self.root.path()
    }
}

fn init1_over_a_real_bus() {
    let setup = Setup::start();
    let xml = String::from_utf8_lossy(&setup.introspect().stdout).into_owned();
    for needle in [
        "interface name=\"org.cirrus.Init1\"",
        "method name=\"ListUnits\"",
        "method name=\"SetProperty\"",
        "method name=\"RestartUnit\"",
        "method name=\"PowerOff\"",
        "signal name=\"PropertyChanged\"",
    ] {
        assert!(xml.contains(needle), "{needle} missing from\n{xml}");
    }

    let (ok, list, err) = setup.ctl(&["list"]);
    assert!(ok, "{err}\n{}", setup.diagnostics());
    assert!(list.contains("svc running "), "{list}");
    assert!(list.contains("later inactive -"), "{list}");
    let (ok, status, err) = setup.ctl(&["status", "svc"]);
    assert!(ok && status.contains("state: running"), "{status}{err}");

    // Watch through the bus: PropertyChanged signals.
    let mut watcher = setup
        .ctl_command(&["watch", "persist."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut changes = BufReader::new(watcher.stdout.take().unwrap());
    // The signal subscription is in place once a first change arrives; keep setting until then.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while changes.read_line(&mut line).is_ok_and(|n| n > 0) {
            if tx.send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    let got = loop {
        n += 1;
        let (ok, _, err) = setup.ctl(&["setprop", "persist.relay.test", &n.to_string()]);
        assert!(ok, "{err}");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no PropertyChanged signal\n{}",
            setup.diagnostics()
        );
    };
    assert!(got.starts_with("persist.relay.test="), "{got}");
    let _ = watcher.kill();
    let _ = watcher.wait();
    let (ok, value, err) = setup.ctl(&["getprop", "persist.relay.test"]);
    assert!(ok && value.trim() == n.to_string(), "{value}{err}");

    let (ok, _, err) = setup.ctl(&["start", "later"]);
    assert!(ok, "{err}");
    wait_until(
        "later to start",
        || setup.events().contains("start later"),
        || setup.diagnostics(),
    );
    let (ok, _, err) = setup.ctl(&["getprop", "no.such.property"]);
    assert!(
        !ok && err.contains("org.cirrus.Init1.Error.NotFound"),
        "{err}"
    );

    if nix::unistd::Uid::effective().is_root() {
        // The relay acts as the caller: uid 65534 may read but not change anything.
        // The target directory may sit under a private home: run a copy nobody can reach.
        let bin =
            cirrus_testsupport::ExecutableCopy::new(std::env::current_exe().unwrap()).unwrap();
        let as_nobody = |args: &[&str]| {
            let out = setup
                .ctl_command_with(bin.path(), args)
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (ok, value, err) = as_nobody(&["getprop", "persist.relay.test"]);
        assert!(
            ok && value.trim() == n.to_string(),
            "{value}{err}\n{}",
            setup.diagnostics()
        );
        for args in [
            &["setprop", "persist.relay.test", "0"][..],
            &["stop", "svc"],
            &["reboot"],
        ] {
            let (ok, _, err) = as_nobody(args);
            assert!(
                !ok && err.contains("org.cirrus.Init1.Error.AccessDenied"),
                "{args:?}: {err}"
            );
        }
        assert!(!setup.events().contains("stop svc"), "{}", setup.events());
    } else {
        println!("skipped the uid part: needs root to call as another user");
    }
    let _ = setup.root();
}

fn cirrusctl_falls_back_to_the_control_socket() {
    let mut setup = Setup::start();
    drop(setup.relay.take());
    drop(setup.bus.take());
    let (ok, list, err) = setup.ctl(&["list"]);
    assert!(ok, "{err}");
    assert!(err.contains("using init's control socket"), "{err}");
    assert!(list.contains("svc running "), "{list}");
    let (ok, _, err) = setup.ctl(&["setprop", "sys.fallback", "yes"]);
    assert!(ok, "{err}");
    let (ok, value, _) = setup.ctl(&["getprop", "sys.fallback"]);
    assert!(ok && value == "yes\n", "{value}");
    drop(setup.init.take());
    let (ok, _, err) = setup.ctl(&["list"]);
    assert!(!ok && err.contains("InitUnreachable"), "{err}");
}
