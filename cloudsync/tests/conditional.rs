//! Conditional writes as an extra guard against lost updates (docs/sync.md "Conditional
//! writes"): which headers each loopback server honours (found by the engine's own probe), a
//! device whose id is used by another installation never overwriting that one's journal (S3
//! `If-None-Match: *` on s3s-fs, `x-oss-forbid-overwrite` on the OSS conformance server), and a
//! third device's write landing between the conflict winner's read and its re-upload being kept
//! (S3 `If-Match`). Each ends comparing the sha256 of every file on the devices and in the bucket.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cirrus_sync_fixtures::S3Fixture;
use cirrus_sync_fixtures::oss::OssServer;
use cirrus_syncd::engine::{Engine, SyncError};
use cirrus_syncd::sign::Dialect;
use cirrus_syncd::store::http::Addressing;
use cirrus_syncd::store::{ConditionalCaps, HttpStore, HttpStoreConfig, LocalStore, ObjectStore};
use common::*;

async fn server() -> (tempfile::TempDir, S3Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let s = S3Fixture::start(dir.path(), "cirrus").await.unwrap();
    (dir, s)
}

fn oss_store(s: &OssServer) -> ObjectStore {
    ObjectStore::Http(Arc::new(
        HttpStore::new(HttpStoreConfig {
            dialect: Dialect::Oss,
            endpoint: s.endpoint.clone(),
            bucket: s.bucket.clone(),
            region: s.region.clone(),
            addressing: Addressing::Path,
            access_key: s.access_key.clone(),
            secret_key: s.secret_key.clone(),
            session_token: None,
        })
        .unwrap(),
    ))
}

const BOTH: ConditionalCaps = ConditionalCaps {
    if_absent: true,
    if_match: true,
};
const CREATE_ONLY: ConditionalCaps = ConditionalCaps {
    if_absent: true,
    if_match: false,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_finds_which_conditional_writes_each_server_honours() {
    let (_root, s3) = server().await;
    let d = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    assert_eq!(d.engine.conditional_caps().await.unwrap(), BOTH, "s3s-fs");
    assert!(s3.stats.preconditions_failed.load(Ordering::SeqCst) >= 2);
    // The answer is remembered: a restarted engine does not probe again.
    let before = s3.stats.requests.load(Ordering::SeqCst);
    let state = d.engine.config().clone();
    drop(d.engine);
    let again = Engine::open(state, s3_store(&s3.endpoint, &s3.bucket)).unwrap();
    assert_eq!(again.conditional_caps().await.unwrap(), BOTH);
    assert_eq!(s3.stats.requests.load(Ordering::SeqCst), before);

    let oss = OssServer::start("photos", "cn-hangzhou", None)
        .await
        .unwrap();
    let o = device_with(oss_store(&oss), |_| {});
    assert_eq!(
        o.engine.conditional_caps().await.unwrap(),
        CREATE_ONLY,
        "OSS"
    );
    assert_eq!(oss.stats.overwrites_refused.load(Ordering::SeqCst), 1);
    // If-Match / If-None-Match are never sent to OSS (it answers 400 NotImplemented).
    assert_eq!(oss.stats.conditional_refused.load(Ordering::SeqCst), 0);
    assert!(oss.keys().is_empty(), "probe object left: {:?}", oss.keys());

    // A versioned OSS bucket ignores x-oss-forbid-overwrite: the probe sees it.
    let versioned = OssServer::start("photos", "cn-hangzhou", None)
        .await
        .unwrap();
    versioned.stats.versioning.store(true, Ordering::SeqCst);
    let v = device_with(oss_store(&versioned), |_| {});
    assert_eq!(
        v.engine.conditional_caps().await.unwrap(),
        ConditionalCaps::default(),
        "versioned OSS"
    );

    let dir = tempfile::tempdir().unwrap();
    let local = ObjectStore::Local(Arc::new(LocalStore::new(dir.path()).unwrap()));
    let l = device_with(local, |_| {});
    assert_eq!(l.engine.conditional_caps().await.unwrap(), CREATE_ONLY);

    // Turned off: nothing probed, nothing conditional sent.
    let (_root2, s3b) = server().await;
    let off = device_with(s3_store(&s3b.endpoint, &s3b.bucket), |c| {
        c.conditional_writes = false
    });
    off.write("a.txt", b"a");
    off.sync().await;
    assert_eq!(
        off.engine.conditional_caps().await.unwrap(),
        ConditionalCaps::default()
    );
    assert_eq!(s3b.stats.preconditions_failed.load(Ordering::SeqCst), 0);
    assert!(!s3b.bucket_dir.join(".cirrus-sync/probe").exists());
}

/// A device `a` and an exact copy `c` of it (its tree and state directory, as a restored backup
/// or a cloned image would be) both sync a change after each other: the copy finds its next
/// journal segment already written and stops with a loud error before writing anything, every
/// cycle; the bucket keeps `a`'s segment and objects. A third device `b` and `a` converge with
/// the bucket; `c` loses nothing on its disk.
async fn cloned_device(store: impl Fn() -> ObjectStore, object: impl Fn(&str) -> Option<Vec<u8>>) {
    let a = device_with(store(), |_| {});
    let b = device_with(store(), |_| {});
    a.write("Documents/x.txt", b"first");
    sync_all(&[&a, &b]).await;

    let c = clone_of(&a, store());
    assert_eq!(c.engine.device_id(), a.engine.device_id());

    a.write("Documents/x.txt", b"edited on a");
    a.sync().await;
    let seg_keys: Vec<String> = (1..20)
        .map(|n| format!(".cirrus-sync/journal/{}/{n:020}.json", a.engine.device_id()))
        .filter(|k| object(k).is_some())
        .collect();
    let last = seg_keys.last().unwrap().clone();
    let a_segment = object(&last).unwrap();

    c.write("Documents/y.txt", b"written on the copy");
    c.write("Documents/x.txt", b"edited on the copy");
    for _ in 0..2 {
        match c.engine.sync_once().await {
            Err(SyncError::NameTaken { key, .. }) => assert_eq!(key, last),
            other => panic!("the copy's segment was not refused: {other:?}"),
        }
    }
    assert_eq!(
        object(&last).unwrap(),
        a_segment,
        "a's segment was replaced"
    );
    assert!(!c.engine.status().errors.is_empty());

    sync_all(&[&a, &b]).await;
    assert_eq!(b.read("Documents/x.txt").unwrap(), b"edited on a");
    let on_a = tree_hashes(&a.root(), &[]);
    assert_eq!(on_a, tree_hashes(&b.root(), &[]));
    for (path, sha) in &on_a {
        let got = object(path).unwrap();
        assert_eq!(&cirrus_syncd::integrity::sha256_hex(&got), sha, "{path}");
    }
    // The copy's own files are still on its disk.
    assert_eq!(c.read("Documents/y.txt").unwrap(), b"written on the copy");
    assert_eq!(c.read("Documents/x.txt").unwrap(), b"edited on the copy");
}

fn clone_of(a: &Device, store: ObjectStore) -> Device {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(a.dir.path(), dir.path());
    let cfg = test_config(dir.path());
    Device {
        engine: Engine::open(cfg, store).unwrap(),
        dir,
    }
}

/// The same, but simultaneous: both pass the check before either has written its segment; the
/// server parks `a`'s segment write until `c`'s is stored. `a`'s create-only write is then
/// refused, the bytes there are not its segment, and it stops with a loud error instead of
/// replacing `c`'s segment (`with_guard = false` shows what happens without the header: the
/// segment stored first is replaced).
async fn simultaneous_clones(with_guard: bool) -> bool {
    let (_root, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |c| {
        c.conditional_writes = with_guard
    });
    a.write("Documents/x.txt", b"first");
    a.sync().await;
    let c = clone_of(&a, s3_store(&s3.endpoint, &s3.bucket));
    a.write("Documents/a.txt", b"new on a");
    c.write("Documents/c.txt", b"new on the copy");
    let seg = format!(
        ".cirrus-sync/journal/{}/{:020}.json",
        a.engine.device_id(),
        2
    );
    let seg_path = s3.bucket_dir.join(&seg);
    let (reached, release) = s3.stats.hold_next_write(&seg, false);
    let a_cycle = a.engine.sync_once();
    let script = async {
        reached.await.unwrap();
        let r = c.engine.sync_once().await;
        let c_segment = std::fs::read(&seg_path).unwrap();
        release.send(()).unwrap();
        (r, c_segment)
    };
    let (a_result, (c_result, c_segment)) = tokio::join!(a_cycle, script);
    c_result.unwrap();
    let kept = std::fs::read(&seg_path).unwrap() == c_segment;
    if with_guard {
        match a_result {
            Err(SyncError::NameTaken { key, .. }) => assert_eq!(key, seg),
            other => panic!("a's segment write was not refused: {other:?}"),
        }
    }
    // Nothing is lost on either disk.
    assert_eq!(a.read("Documents/a.txt").unwrap(), b"new on a");
    assert_eq!(c.read("Documents/c.txt").unwrap(), b"new on the copy");
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_clones_never_replace_each_others_journal_segment() {
    assert!(
        simultaneous_clones(true).await,
        "the first segment was replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_conditional_writes_the_first_segment_is_replaced() {
    // What the guard adds: the same race without it loses the first segment in the bucket.
    assert!(!simultaneous_clones(false).await);
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloned_device_id_never_replaces_a_journal_segment_on_s3() {
    let (_root, s3) = server().await;
    let bucket = s3.bucket_dir.clone();
    cloned_device(
        || s3_store(&s3.endpoint, &s3.bucket),
        |k| std::fs::read(bucket.join(k)).ok(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloned_device_id_never_replaces_a_journal_segment_on_oss() {
    let oss = OssServer::start("photos", "cn-hangzhou", None)
        .await
        .unwrap();
    cloned_device(|| oss_store(&oss), |k| oss.object(k).map(|b| b.to_vec())).await;
    assert_eq!(oss.stats.conditional_refused.load(Ordering::SeqCst), 0);
    assert_eq!(oss.stats.signature_failures.load(Ordering::SeqCst), 0);
}

/// `a` and `b` edit `doc.bin` concurrently (b's later edit wins; the bucket is left holding a's
/// bytes, as simultaneous writes can leave it), so `b` must repair: keep a's bytes as a conflict
/// copy, then put its own version back. Meanwhile `c`, whose cycle read the journals before b's
/// edit existed, uploads its own edit of `doc.bin`; the server parks c's write until b has read
/// the object, and b's re-upload until c's write is in. b's re-upload carries `If-Match` with the
/// ETag it read, is refused, and b leaves the path for the next cycle instead of destroying c's
/// version. All three versions survive and the devices converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_the_winners_read_and_its_reupload_is_never_replaced() {
    let (root, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let c = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let (va, vb, vc) = (content(71, 3000), content(72, 3000), content(73, 3000));
    a.write("doc.bin", &va);
    a.sync().await;
    c.sync().await;
    assert_eq!(c.read("doc.bin").unwrap(), va);
    c.write("doc.bin", &vc);

    // c's cycle reads the journals now; its upload of doc.bin is parked at the server.
    let (c_reached, c_release) = s3.stats.hold_next_write("doc.bin", false);
    let c_cycle = c.engine.sync_once();
    let script = async {
        c_reached.await.unwrap();
        // b edits without seeing a (a's registry hidden from b's cycle): concurrent versions.
        let registry = s3.bucket_dir.join(format!(
            ".cirrus-sync/devices/{}.json",
            a.engine.device_id()
        ));
        let hidden = root.path().join("hidden-registry.json");
        std::fs::rename(&registry, &hidden).unwrap();
        b.write("doc.bin", &vb);
        b.sync().await;
        std::fs::rename(&hidden, &registry).unwrap();
        // The bucket holds the loser's bytes: b must repair.
        std::fs::write(s3.bucket_dir.join("doc.bin"), &va).unwrap();

        let (b_reached, b_release) = s3.stats.hold_next_write("doc.bin", true);
        let mut b_cycle = std::pin::pin!(b.engine.sync_once());
        tokio::select! {
            r = &mut b_cycle => panic!("b's re-upload carried no condition, it was never parked: {r:?}"),
            reached = b_reached => reached.unwrap(),
        }
        c_release.send(()).unwrap();
        // c's write is answered (and its cycle commits its journal segment, written after the
        // answer): waiting on the bucket's state, not on time.
        let c_segment = s3.bucket_dir.join(format!(
            ".cirrus-sync/journal/{}/{:020}.json",
            c.engine.device_id(),
            1
        ));
        while !c_segment.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        b_release.send(()).unwrap();
        b_cycle.await
    };
    let (c_result, b_result) = tokio::join!(c_cycle, script);
    c_result.unwrap();
    let b_report = b_result.unwrap();
    assert_eq!(b_report.skipped, 1, "{b_report:?}");
    assert!(s3.stats.preconditions_failed.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        std::fs::read(s3.bucket_dir.join("doc.bin")).unwrap(),
        vc,
        "c's version was replaced by b's re-upload"
    );

    settle(&[&a, &b, &c], 12).await;
    let files = assert_converged(&[&a, &b, &c], &s3.bucket_dir);
    let versions: Vec<String> = [&va, &vb, &vc]
        .iter()
        .map(|v| cirrus_syncd::integrity::sha256_hex(v))
        .collect();
    for v in &versions {
        assert!(
            files.values().any(|f| f == v),
            "a version was lost: {files:?}"
        );
    }
    assert_eq!(files.len(), 3, "{files:?}");
}
