//! `cirrus sync` end to end: the real `cirrus` binary talking to the real cirrus-syncd binary over a
//! private bus (Debian's dbus-daemon on a temporary socket), with the embedded (local directory)
//! backend and a second device in-process making a conflict.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cirrus_syncd::engine::{Engine, EngineConfig};
use cirrus_syncd::store::{LocalStore, ObjectStore};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// cirrus-syncd is another package's binary: cargo builds it beside `cirrus` in a workspace test
/// run (`cargo xtask test`) or with `cargo test -p cirrus-cli -p cirrus-syncd`.
fn daemon_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_cirrus")).with_file_name("cirrus-syncd");
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build -p cirrus-syncd` (cargo xtask test builds it)",
        bin.display()
    );
    bin
}

fn cirrus(bus: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cirrus"))
        .arg("sync")
        .arg("--bus-address")
        .arg(bus)
        .args(args)
        .output()
        .unwrap()
}

fn ok(bus: &str, args: &[&str]) -> String {
    let out = cirrus(bus, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "cirrus sync {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn wait_for(bus: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cirrus(bus, &["status"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains(what) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {what:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_now_pause_resume_conflicts_through_the_cli() {
    let t = tempfile::tempdir().unwrap();
    let socket = t.path().join("bus.sock");
    let bus = format!("unix:path={}", socket.display());
    let _dbus = Killed(
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={bus}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("dbus-daemon is needed ({e}): run `cargo xtask deps`")),
    );
    let root = t.path().join("user");
    let cloud = t.path().join("cloud");
    std::fs::create_dir_all(root.join("Documents")).unwrap();
    std::fs::write(root.join("Documents/plan.txt"), b"v1").unwrap();
    let config = t.path().join("sync.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{}\"\nstate_dir = \"{}\"\ninterval_secs = 3600\ndebounce_ms = 100\n[backend]\nkind = \"embedded\"\npath = \"{}\"\n",
            root.display(),
            t.path().join("state").display(),
            cloud.display()
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "dbus-daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _daemon = Killed(
        Command::new(daemon_binary())
            .arg("--config")
            .arg(&config)
            .arg("--bus-address")
            .arg(&bus)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let text = wait_for(&bus, "last cycle:");
    assert!(text.contains("state:        idle"), "{text}");
    let now = ok(&bus, &["now"]);
    assert!(now.contains("sync done"), "{now}");
    assert_eq!(
        std::fs::read(cloud.join("Documents/plan.txt")).unwrap(),
        b"v1"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&bus, &["status", "--json"])).unwrap();
    assert_eq!(json["state"], "idle");
    assert_eq!(json["paused"], false);

    // Pause: `now` is refused with a reason; the local edit stays local.
    assert!(ok(&bus, &["pause"]).contains("paused"));
    wait_for(&bus, "state:        paused");
    std::fs::write(root.join("Documents/plan.txt"), b"edited here").unwrap();
    let refused = cirrus(&bus, &["now"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("paused"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Another device edits the same file meanwhile.
    let other = t.path().join("other");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b = Engine::open(
        EngineConfig::new(other.join("user"), other.join("state")),
        ObjectStore::Local(Arc::new(LocalStore::new(&cloud).unwrap())),
    )
    .unwrap();
    rt.block_on(b.sync_once()).unwrap();
    std::fs::write(other.join("user/Documents/plan.txt"), b"edited there").unwrap();
    rt.block_on(b.sync_once()).unwrap();

    assert!(ok(&bus, &["resume"]).contains("resumed"));
    let now = ok(&bus, &["now"]);
    assert!(now.contains("sync done"), "{now}");
    let conflicts = ok(&bus, &["conflicts"]);
    assert!(
        conflicts.contains(
            "Documents/plan.txt\n    other version kept as Documents/plan.sync-conflict-"
        ),
        "{conflicts}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(&bus, &["conflicts", "--json"])).unwrap();
    let copy = list[0]["copy"].as_str().unwrap().to_owned();
    assert_eq!(std::fs::read(root.join(&copy)).unwrap(), b"edited here");
    assert_eq!(
        std::fs::read(root.join("Documents/plan.txt")).unwrap(),
        b"edited there"
    );
    assert_eq!(std::fs::read(cloud.join(&copy)).unwrap(), b"edited here");
}

#[test]
fn a_missing_daemon_is_reported_clearly() {
    let t = tempfile::tempdir().unwrap();
    let out = cirrus(
        &format!("unix:path={}", t.path().join("nothing").display()),
        &["status"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("cirrus sync: connecting to unix:path="),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
