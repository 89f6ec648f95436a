//! The real cirrus-syncd binary serving `org.cirrus.Sync1` on a private bus (Debian's dbus-daemon on
//! a temporary socket), driven through the shared proxy: status, progress signals, sync now, pause
//! that holds across a restart (persisted), resume, conflicts made against a second device, the
//! mass-delete guard's held deletes confirmed over the bus, and the charging-only policy. Ends with
//! the sha256 comparison of both devices and the bucket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cirrus_syncd::bus::{ReportCounts, Sync1ClientProxy};
use cirrus_syncd::store::{LocalStore, ObjectStore};
use common::*;
use futures_util::StreamExt;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's dbus-daemon on a socket in `dir`; returns it and its address.
fn private_bus(dir: &Path) -> (Killed, String) {
    let socket = dir.join("bus.sock");
    let address = format!("unix:path={}", socket.display());
    let child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address={address}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("dbus-daemon is needed ({e}): run `cargo xtask deps`"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "dbus-daemon did not create {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (Killed(child), address)
}

struct Daemon {
    _child: Killed,
}

fn start_daemon(config: &Path, bus: &str) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_cirrus-syncd"))
        .arg("--config")
        .arg(config)
        .arg("--bus-address")
        .arg(bus)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Daemon {
        _child: Killed(child),
    }
}

async fn proxy(bus: &str) -> Sync1ClientProxy<'static> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The bus may still be starting, the daemon not yet on it.
        if let Ok(conn) = zbus::connection::Builder::address(bus).build().await {
            let p = Sync1ClientProxy::new(&conn).await.unwrap();
            if p.status().await.is_ok() {
                return p;
            }
        }
        assert!(
            Instant::now() < deadline,
            "cirrus-syncd never answered on the bus"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks for a cycle and waits for its `CycleFinished`; returns (ok, counts, error).
async fn sync_now(p: &Sync1ClientProxy<'static>) -> (bool, ReportCounts, String) {
    let mut finished = p.receive_cycle_finished().await.unwrap();
    let want = p.sync_now().await.unwrap();
    loop {
        let sig = tokio::time::timeout(Duration::from_secs(120), finished.next())
            .await
            .expect("no CycleFinished")
            .unwrap();
        let a = sig.args().unwrap();
        if a.cycle >= want {
            return (a.ok, a.report, a.error);
        }
    }
}

async fn wait_for_state(
    p: &Sync1ClientProxy<'static>,
    state: &str,
) -> cirrus_syncd::bus::SyncStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = p.status().await.unwrap();
        if s.state == state {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "state never became {state}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write_config(
    path: &Path,
    root: &Path,
    state: &Path,
    cloud: &Path,
    props: &Path,
    charging_only: bool,
) {
    std::fs::write(
        path,
        format!(
            "root = \"{}\"\nstate_dir = \"{}\"\ninterval_secs = 3600\ndebounce_ms = 100\n\
             [backend]\nkind = \"embedded\"\npath = \"{}\"\n\
             [conditions]\ncharging_only = {charging_only}\nproperties_file = \"{}\"\n",
            root.display(),
            state.display(),
            cloud.display(),
            props.display()
        ),
    )
    .unwrap();
}

fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync1_status_pause_resume_conflicts_and_held_deletes() {
    let t = tempfile::tempdir().unwrap();
    let (_bus, address) = private_bus(t.path());
    let cloud = t.path().join("cloud");
    let root: PathBuf = t.path().join("user");
    let state = t.path().join("state");
    let props = t.path().join("props");
    let config = t.path().join("sync.toml");
    std::fs::write(&props, "power.charging=1\n").unwrap();
    write_config(&config, &root, &state, &cloud, &props, false);
    std::fs::create_dir_all(&root).unwrap();

    let daemon = start_daemon(&config, &address);
    let p = proxy(&address).await;
    // The first cycle runs at start; then a new file is picked up by inotify, with progress signals.
    while p.status().await.unwrap().cycles_finished < 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut progress = p.receive_progress().await.unwrap();
    let mut finished = p.receive_cycle_finished().await.unwrap();
    put(&root, "Documents/a.txt", b"first");
    loop {
        let sig = tokio::time::timeout(Duration::from_secs(120), finished.next())
            .await
            .expect("no cycle after a change")
            .unwrap();
        let a = sig.args().unwrap();
        assert!(a.ok, "{}", a.error);
        if a.report.uploaded == 1 {
            break;
        }
    }
    assert_eq!(
        std::fs::read(cloud.join("Documents/a.txt")).unwrap(),
        b"first"
    );
    let mut done = false;
    while let Ok(Some(sig)) =
        tokio::time::timeout(Duration::from_millis(500), progress.next()).await
    {
        let a = sig.args().unwrap();
        done |= a.files_total >= 1 && a.files_done == a.files_total && a.bytes_done == 5;
    }
    assert!(done, "no Progress signal showed the upload done");
    // Sync now with nothing to do.
    let (ok, report, error) = sync_now(&p).await;
    assert!(ok, "{error}");
    assert_eq!(report, ReportCounts::default());
    let s = p.status().await.unwrap();
    assert_eq!(s.state, "idle");
    assert!(
        s.last_sync_ms > 0 && s.errors.is_empty() && !s.paused,
        "{s:?}"
    );

    // Pause: a local change is not uploaded, SyncNow is refused, and the pause survives a restart.
    p.pause().await.unwrap();
    assert!(p.status().await.unwrap().paused);
    put(&root, "Documents/a.txt", b"edited while paused");
    let refused = p.sync_now().await.unwrap_err();
    assert!(refused.to_string().contains("paused"), "{refused}");
    drop(daemon);
    let daemon = start_daemon(&config, &address);
    let p = proxy(&address).await;
    let s = wait_for_state(&p, "paused").await;
    assert!(s.paused);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        p.status().await.unwrap().cycles_finished,
        0,
        "a cycle ran while paused"
    );
    assert_eq!(
        std::fs::read(cloud.join("Documents/a.txt")).unwrap(),
        b"first",
        "uploaded while paused"
    );

    // Meanwhile a second device edits the same file: after resume, both versions are kept.
    let store = ObjectStore::Local(Arc::new(LocalStore::new(&cloud).unwrap()));
    let b = device_with(store, |_| {});
    b.sync().await;
    b.write("Documents/a.txt", b"edited on b");
    b.sync().await;
    let mut finished = p.receive_cycle_finished().await.unwrap();
    p.resume().await.unwrap();
    let sig = tokio::time::timeout(Duration::from_secs(120), finished.next())
        .await
        .unwrap()
        .unwrap();
    let a = sig.args().unwrap();
    assert!(a.ok, "{}", a.error);
    assert_eq!(a.report.conflicts, 1);
    let conflicts = p.conflicts().await.unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].path, "Documents/a.txt");
    assert!(
        conflicts[0].copy.starts_with("Documents/a.sync-conflict-"),
        "{conflicts:?}"
    );
    assert_eq!(
        std::fs::read(root.join(&conflicts[0].copy)).unwrap(),
        b"edited while paused"
    );
    assert_eq!(
        std::fs::read(root.join("Documents/a.txt")).unwrap(),
        b"edited on b"
    );

    // Mass delete: held, shown in status, confirmed over the bus.
    for i in 0..80 {
        put(&root, &format!("Pictures/{i:03}.jpg"), &content(i, 100));
    }
    let (ok, _, error) = sync_now(&p).await;
    assert!(ok, "{error}");
    assert_eq!(
        std::fs::read_dir(cloud.join("Pictures")).unwrap().count(),
        80
    );
    // Deleted while paused, so that one cycle sees all 80 deletions.
    p.pause().await.unwrap();
    std::fs::remove_dir_all(root.join("Pictures")).unwrap();
    let mut finished = p.receive_cycle_finished().await.unwrap();
    p.resume().await.unwrap();
    let sig = tokio::time::timeout(Duration::from_secs(120), finished.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sig.args().unwrap().report.held_deletes, 80);
    assert_eq!(p.status().await.unwrap().held_deletes, 80);
    assert!(
        cloud.join("Pictures/000.jpg").exists(),
        "the guard let deletions through"
    );
    let mut finished = p.receive_cycle_finished().await.unwrap();
    assert_eq!(p.confirm_deletes().await.unwrap(), 80);
    // A cycle already under way may still hold them; the one the confirmation starts deletes.
    loop {
        let sig = tokio::time::timeout(Duration::from_secs(120), finished.next())
            .await
            .unwrap()
            .unwrap();
        let a = sig.args().unwrap();
        if a.report.deleted_remote > 0 {
            assert_eq!(a.report.deleted_remote, 80, "{:?}", a.report);
            break;
        }
        assert_eq!(a.report.held_deletes, 80, "{:?}", a.report);
    }
    assert_eq!(p.status().await.unwrap().held_deletes, 0);
    drop(daemon);

    sync_all(&[&b]).await;
    let bucket = tree_hashes(&cloud, &[".cirrus-sync", ".cirrus-store"]);
    assert_eq!(tree_hashes(&root, &[]), bucket);
    assert_eq!(tree_hashes(&b.root(), &[]), bucket);
    assert_eq!(bucket.len(), 2, "{bucket:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charging_only_waits_and_sync_now_overrides_it() {
    let t = tempfile::tempdir().unwrap();
    let (_bus, address) = private_bus(t.path());
    let cloud = t.path().join("cloud");
    let root = t.path().join("user");
    let props = t.path().join("props");
    let config = t.path().join("sync.toml");
    std::fs::write(&props, "power.charging=0\n").unwrap();
    write_config(
        &config,
        &root,
        &t.path().join("state"),
        &cloud,
        &props,
        true,
    );
    put(&root, "notes.txt", b"on battery");
    let _daemon = start_daemon(&config, &address);
    let p = proxy(&address).await;
    let s = wait_for_state(&p, "waiting").await;
    assert!(s.detail.contains("charger"), "{s:?}");
    assert!(!cloud.join("notes.txt").exists());
    // The user asked: the condition is bypassed for this cycle.
    let (ok, report, error) = sync_now(&p).await;
    assert!(ok, "{error}");
    assert_eq!(report.uploaded, 1);
    assert_eq!(
        std::fs::read(cloud.join("notes.txt")).unwrap(),
        b"on battery"
    );
    let s = wait_for_state(&p, "waiting").await;
    assert_eq!(s.last_report.uploaded, 1);
}
