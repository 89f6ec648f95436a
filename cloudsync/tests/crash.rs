//! kill -9 of the real cirrus-syncd binary in the middle of a large multipart upload: after a
//! restart, parts the first run had completed (recorded in its state DB) are not sent again, and
//! the bucket and a second device end up with the exact file.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cirrus_sync_fixtures::{ACCESS_KEY, S3Fixture, SECRET_KEY};
use common::*;

fn write_config(path: &Path, root: &Path, state: &Path, endpoint: &str, bandwidth: Option<u64>) {
    let limit = bandwidth
        .map(|b| format!("bandwidth_limit = {b}\n"))
        .unwrap_or_default();
    std::fs::write(
        path,
        format!(
            "root = \"{}\"\nstate_dir = \"{}\"\nmultipart_threshold = 6291456\npart_size = 5242880\n{limit}\
             [backend]\nkind = \"s3\"\nendpoint = \"{endpoint}\"\nbucket = \"cirrus\"\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n",
            root.display(),
            state.display()
        ),
    )
    .unwrap();
}

fn recorded_parts(state: &Path) -> Vec<u32> {
    let db = rusqlite::Connection::open(state.join("state.sqlite")).unwrap();
    let mut stmt = db
        .prepare("SELECT number FROM upload_parts WHERE path='video/long.mp4' ORDER BY number")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_multipart_upload_resumes_without_resending_parts() {
    let sdir = tempfile::tempdir().unwrap();
    let s3 = S3Fixture::start(sdir.path(), "cirrus").await.unwrap();
    let dev = tempfile::tempdir().unwrap();
    let root = dev.path().join("user");
    let state = dev.path().join("state");
    let cfg = dev.path().join("sync.toml");
    std::fs::create_dir_all(root.join("video")).unwrap();
    let data = content(42, 40 << 20); // 8 parts of 5 MiB
    std::fs::write(root.join("video/long.mp4"), &data).unwrap();
    // Slow enough (8 MiB/s) that the upload is certainly in progress when we kill it.
    write_config(&cfg, &root, &state, &s3.endpoint, Some(8 << 20));
    let bin = env!("CARGO_BIN_EXE_cirrus-syncd");
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while recorded_parts_safe(&state).len() < 2 {
        assert!(Instant::now() < deadline, "the upload never got going");
        assert!(child.try_wait().unwrap().is_none(), "daemon exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = recorded_parts(&state);
    let sent_before = s3.stats.parts_of("video/long.mp4").len();
    assert!(
        done_before.len() >= 2 && done_before.len() < 8,
        "{done_before:?}"
    );

    write_config(&cfg, &root, &state, &s3.endpoint, None);
    let status = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .arg("--once")
        .status()
        .unwrap();
    assert!(status.success());
    let all = s3.stats.parts_of("video/long.mp4");
    let resent: Vec<u32> = all[sent_before..]
        .iter()
        .copied()
        .filter(|n| done_before.contains(n))
        .collect();
    assert!(
        resent.is_empty(),
        "completed parts {resent:?} were sent again"
    );
    assert!(all.len() - sent_before <= 8 - done_before.len(), "{all:?}");

    // A second device gets the exact file; bucket, both devices compared by sha256.
    let b = device_with(s3_store(&s3.endpoint, "cirrus"), |_| {});
    b.sync().await;
    assert_eq!(b.read("video/long.mp4").unwrap(), data);
    let a_hashes = tree_hashes(&root, &[]);
    let bucket = assert_converged(&[&b], &s3.bucket_dir);
    assert_eq!(a_hashes, bucket);
}

/// Parts recorded so far (the DB may not exist yet right after start).
fn recorded_parts_safe(state: &Path) -> Vec<u32> {
    if !state.join("state.sqlite").exists() {
        return Vec::new();
    }
    let Ok(db) = rusqlite::Connection::open(state.join("state.sqlite")) else {
        return Vec::new();
    };
    let Ok(mut stmt) = db.prepare("SELECT number FROM upload_parts WHERE path='video/long.mp4'")
    else {
        return Vec::new();
    };
    stmt.query_map([], |r| r.get(0))
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}
