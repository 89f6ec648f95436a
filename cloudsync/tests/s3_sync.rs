//! Two or more devices syncing through a real S3 server (s3s-fs) on loopback, including the fault
//! scenarios of the issue. Every test ends with a sha256 comparison of every file on every device
//! and in the bucket.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use cirrus_sync_fixtures::{FaultConfig, FaultProxy, S3Fixture};
use common::*;

async fn server() -> (tempfile::TempDir, S3Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let s = S3Fixture::start(dir.path(), "cirrus").await.unwrap();
    (dir, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_mirror_edits_deletes_and_keep_paths_in_the_bucket() {
    let (_d, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    a.write("Documents/notes.txt", b"hello");
    a.write("Pictures/2025/cat.jpg", &content(1, 200_000));
    a.write("Contacts/export.vcf", b"BEGIN:VCARD\nEND:VCARD\n");
    a.write("big/video.bin", &content(2, 7 << 20)); // multipart
    sync_all(&[&a, &b]).await;
    assert_eq!(
        b.read("Pictures/2025/cat.jpg").unwrap(),
        content(1, 200_000)
    );
    // The bucket is a browsable mirror: objects at the user's paths.
    assert_eq!(
        std::fs::read(s3.bucket_dir.join("Documents/notes.txt")).unwrap(),
        b"hello"
    );
    assert_eq!(
        std::fs::read(s3.bucket_dir.join("big/video.bin")).unwrap(),
        content(2, 7 << 20)
    );

    b.write("Documents/notes.txt", b"hello from b");
    std::fs::remove_file(b.root().join("Contacts/export.vcf")).unwrap();
    sync_all(&[&b, &a]).await;
    assert_eq!(a.read("Documents/notes.txt").unwrap(), b"hello from b");
    assert!(
        a.read("Contacts/export.vcf").is_none(),
        "the delete travelled as a tombstone"
    );
    let files = assert_converged(&[&a, &b], &s3.bucket_dir);
    assert_eq!(files.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_of_the_same_file_keep_both_versions() {
    let (_d, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    a.write("Documents/plan.txt", b"v1");
    sync_all(&[&a, &b]).await;
    // Both edit while offline, then come back one after the other.
    a.write("Documents/plan.txt", b"edited on a");
    b.write("Documents/plan.txt", b"edited on b");
    a.sync().await;
    let rb = b.sync().await;
    assert_eq!(rb.conflicts, 1);
    sync_all(&[&a, &b]).await;
    let files = assert_converged(&[&a, &b], &s3.bucket_dir);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(a.read("Documents/plan.txt").unwrap(), b"edited on a");
    let copy = files
        .keys()
        .find(|k| k.contains(".sync-conflict-"))
        .unwrap()
        .clone();
    assert!(
        copy.starts_with(&format!(
            "Documents/plan.sync-conflict-{}-",
            b.engine.device_id()
        )),
        "{copy}"
    );
    assert!(copy.ends_with(".txt"));
    assert_eq!(a.read(&copy).unwrap(), b"edited on b");
    let conflicts = b.engine.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].copy, copy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_beats_a_concurrent_delete() {
    let (_d, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    a.write("x.txt", b"1");
    sync_all(&[&a, &b]).await;
    std::fs::remove_file(a.root().join("x.txt")).unwrap();
    b.write("x.txt", b"2");
    a.sync().await;
    b.sync().await;
    sync_all(&[&a, &b]).await;
    assert_eq!(a.read("x.txt").unwrap(), b"2");
    assert_converged(&[&a, &b], &s3.bucket_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_1000_files_is_held_until_confirmed() {
    let (_d, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    for i in 0..1000 {
        a.write(
            &format!("Pictures/{i:04}.jpg"),
            format!("photo {i}").as_bytes(),
        );
    }
    a.write("keep.txt", b"keep");
    sync_all(&[&a, &b]).await;
    std::fs::remove_dir_all(a.root().join("Pictures")).unwrap();
    let r = a.sync().await;
    assert_eq!(r.held_deletes, 1000);
    assert_eq!(r.deleted_remote, 0);
    assert_eq!(a.engine.status().held_deletes, 1000);
    assert_eq!(
        tree_hashes(&s3.bucket_dir, &[".cirrus-sync"]).len(),
        1001,
        "nothing deleted in the bucket"
    );
    b.sync().await;
    assert_eq!(
        tree_hashes(&b.root(), &[]).len(),
        1001,
        "nothing deleted on the other device"
    );

    a.engine.confirm_deletes();
    let r = a.sync().await;
    assert_eq!(r.deleted_remote, 1000);
    // The confirmation travels with the tombstones: the other device deletes without asking.
    let r = b.sync().await;
    assert_eq!((r.deleted_local, r.held_deletes), (1000, 0), "{r:?}");
    sync_all(&[&a, &b]).await;
    let files = assert_converged(&[&a, &b], &s3.bucket_dir);
    assert_eq!(files.len(), 1);

    // A device whose own guard is off (share 100 %) deletes 1,000 files: the tombstones arrive
    // unconfirmed, and each receiving device holds them until its user confirms.
    let c = device_with(s3_store(&s3.endpoint, &s3.bucket), |cfg| {
        cfg.mass_delete_share = 1.0
    });
    for i in 0..1000 {
        c.write(&format!("Music/{i:04}.ogg"), format!("song {i}").as_bytes());
    }
    sync_all(&[&a, &b, &c]).await;
    std::fs::remove_dir_all(c.root().join("Music")).unwrap();
    let r = c.sync().await;
    assert_eq!((r.deleted_remote, r.held_deletes), (1000, 0), "{r:?}");
    for d in [&a, &b] {
        let r = d.sync().await;
        assert_eq!((r.deleted_local, r.held_deletes), (0, 1000), "{r:?}");
        assert_eq!(tree_hashes(&d.root(), &[]).len(), 1001);
        d.engine.confirm_deletes();
        let r = d.sync().await;
        assert_eq!((r.deleted_local, r.held_deletes), (1000, 0), "{r:?}");
    }
    sync_all(&[&a, &b, &c]).await;
    let files = assert_converged(&[&a, &b, &c], &s3.bucket_dir);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["keep.txt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_a_1000_file_directory_copies_server_side() {
    let (_d, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    for i in 0..1000 {
        a.write(&format!("Music/{i:04}.ogg"), &content(i, 2000));
    }
    sync_all(&[&a, &b]).await;
    std::fs::rename(a.root().join("Music"), a.root().join("Audio")).unwrap();
    let up_before = a.engine.store().counters().bytes_up.load(Ordering::Relaxed);
    let r = a.sync().await;
    assert_eq!(
        (r.copied, r.uploaded, r.deleted_remote, r.held_deletes),
        (1000, 0, 1000, 0),
        "{r:?}"
    );
    let sent = a.engine.store().counters().bytes_up.load(Ordering::Relaxed) - up_before;
    assert!(
        sent < 1000 * 2000 / 2,
        "file contents were re-uploaded ({sent} bytes sent)"
    );
    let down_before = b
        .engine
        .store()
        .counters()
        .bytes_down
        .load(Ordering::Relaxed);
    let r = b.sync().await;
    assert_eq!(
        (r.downloaded, r.deleted_local, r.held_deletes),
        (1000, 1000, 0),
        "{r:?}"
    );
    let fetched = b
        .engine
        .store()
        .counters()
        .bytes_down
        .load(Ordering::Relaxed)
        - down_before;
    assert!(
        fetched < 1000 * 2000 / 2,
        "the other device downloaded the contents again ({fetched} bytes)"
    );
    sync_all(&[&a, &b]).await;
    let files = assert_converged(&[&a, &b], &s3.bucket_dir);
    assert_eq!(files.len(), 1000);
    assert!(files.keys().all(|k| k.starts_with("Audio/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_returning_500s_for_a_while_loses_nothing() {
    let (_d, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    for i in 0..60 {
        a.write(&format!("docs/{i}.txt"), &content(i, 5000));
    }
    s3.stats.fail_500.store(true, Ordering::SeqCst);
    let stats = s3.stats.clone();
    let healer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stats.fail_500.store(false, Ordering::SeqCst);
    });
    // Cycles during the outage may fail; none may lose or corrupt anything.
    for _ in 0..20 {
        if a.engine.sync_once().await.is_ok() {
            break;
        }
    }
    healer.await.unwrap();
    assert!(
        s3.stats.failed.load(Ordering::SeqCst) > 0,
        "the outage was never seen"
    );
    sync_all(&[&a, &b]).await;
    assert_eq!(assert_converged(&[&a, &b], &s3.bucket_dir).len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_and_delays_through_the_fault_proxy() {
    let (_d, s3) = server().await;
    let upstream = s3.endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(
        upstream,
        FaultConfig {
            delay: Duration::from_millis(2),
            bytes_per_sec: Some(40 << 20),
            reset_after_bytes: Some(300_000),
            resets_remaining: 6,
        },
    )
    .await
    .unwrap();
    let a = device_with(s3_store(&proxy.endpoint(), &s3.bucket), |_| {});
    let b = device_with(s3_store(&proxy.endpoint(), &s3.bucket), |_| {});
    a.write("movie.mkv", &content(7, 11 << 20));
    for i in 0..40 {
        a.write(&format!("small/{i}"), &content(100 + i, 30_000));
    }
    sync_all(&[&a, &b]).await;
    assert!(
        proxy.resets_done.load(Ordering::SeqCst) > 0,
        "no connection was reset"
    );
    assert_eq!(assert_converged(&[&a, &b], &s3.bucket_dir).len(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_backend_syncs_two_devices() {
    let cloud = tempfile::tempdir().unwrap();
    let store = || {
        cirrus_syncd::store::ObjectStore::Local(std::sync::Arc::new(
            cirrus_syncd::store::LocalStore::new(cloud.path()).unwrap(),
        ))
    };
    let a = device_with(store(), |_| {});
    let b = device_with(store(), |_| {});
    a.write("a/b/c.txt", b"embedded");
    a.write("big.bin", &content(3, 7 << 20));
    sync_all(&[&a, &b]).await;
    b.write("a/b/c.txt", b"changed");
    sync_all(&[&a, &b]).await;
    assert_eq!(a.read("a/b/c.txt").unwrap(), b"changed");
    assert_eq!(assert_converged(&[&a, &b], cloud.path()).len(), 2);
}

/// Two devices upload at the same moment — their cycles run concurrently against one bucket,
/// neither having seen the other's changes: edits of the same files (small and multipart), edits of
/// different files, new files on both. Nothing may be lost: every path where both changed keeps
/// one version and the other as a conflict copy, and every written content is somewhere in the
/// bucket and on both devices. The simultaneous writes of one key may leave the server (s3s-fs
/// writes an object's bytes and its metadata separately) with one device's bytes under the
/// other's metadata; the devices must settle anyway, judging objects by their bytes (issue 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_uploads_from_two_devices_lose_nothing() {
    let (_d, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    for i in 0..120u64 {
        a.write(&format!("shared/{i:03}.txt"), &content(i, 3000));
    }
    a.write("shared/video.bin", &content(999, 7 << 20));
    sync_all(&[&a, &b]).await;

    let mut written: Vec<Vec<u8>> = Vec::new();
    for round in 0..3u64 {
        // What this round writes (earlier rounds' edits are legitimately replaced by later ones).
        written.clear();
        let tag = |dev: &str, i: u64| format!("round {round} {dev} {i}").into_bytes();
        // a edits 0..60, b edits 40..100: 40..60 are changed on both.
        for i in 0..60 {
            a.write(&format!("shared/{i:03}.txt"), &tag("a", i));
            written.push(tag("a", i));
        }
        for i in 40..100 {
            b.write(&format!("shared/{i:03}.txt"), &tag("b", i));
            written.push(tag("b", i));
        }
        for i in 0..20 {
            a.write(&format!("from-a/{round}/{i}.txt"), &tag("new a", i));
            b.write(&format!("from-b/{round}/{i}.txt"), &tag("new b", i));
            written.push(tag("new a", i));
            written.push(tag("new b", i));
        }
        // The same multipart file, different content on each device.
        let (va, vb) = (
            content(1000 + round * 2, 7 << 20),
            content(1001 + round * 2, 7 << 20),
        );
        a.write("shared/video.bin", &va);
        b.write("shared/video.bin", &vb);
        written.push(va.clone());
        written.push(vb.clone());

        let (ra, rb) = tokio::join!(a.engine.sync_once(), b.engine.sync_once());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra.uploaded >= 80 && rb.uploaded >= 80, "{ra:?} {rb:?}");
        // Settled = a round of cycles on both devices without error or change; the loser of a
        // path may wait a cycle for the winner to put its version back in the bucket.
        settle(&[&a, &b], 12).await;

        let files = assert_converged(&[&a, &b], &s3.bucket_dir);
        let mut both_changed: Vec<(String, String, Vec<u8>, Vec<u8>)> = (40..60)
            .map(|i| {
                (
                    format!("shared/{i:03}.txt"),
                    format!("shared/{i:03}.sync-conflict-"),
                    tag("a", i),
                    tag("b", i),
                )
            })
            .collect();
        both_changed.push((
            "shared/video.bin".into(),
            "shared/video.sync-conflict-".into(),
            va,
            vb,
        ));
        for (path, stem, from_a, from_b) in &both_changed {
            let copies: Vec<Vec<u8>> = files
                .keys()
                .filter(|k| k.starts_with(stem.as_str()))
                .map(|k| a.read(k).unwrap())
                .collect();
            let mut versions = copies.clone();
            versions.push(a.read(path).unwrap());
            assert!(
                versions.contains(from_a) && versions.contains(from_b),
                "round {round}: a version of {path} was lost ({} conflict copies)",
                copies.len()
            );
        }
        // Every content either device wrote this round is there, on both devices and in the bucket.
        let present: std::collections::HashSet<&String> = files.values().collect();
        for data in &written {
            assert!(
                present.contains(&cirrus_syncd::integrity::sha256_hex(data)),
                "round {round}: a written version ({} bytes) was lost",
                data.len()
            );
        }
    }
    let b_conflicts = b.engine.conflicts().unwrap().len();
    let a_conflicts = a.engine.conflicts().unwrap().len();
    assert!(
        a_conflicts + b_conflicts >= 3 * 21,
        "{a_conflicts} + {b_conflicts}"
    );
}

/// Which half of a torn object the server is left with (see [`concurrent_edit_on_a_torn_object`]).
#[derive(Debug, Clone, Copy)]
enum Torn {
    /// The loser's bytes under the winner's metadata.
    LoserBytes,
    /// The winner's bytes under the loser's metadata.
    WinnerBytes,
}

/// Two devices edit `doc.bin` without seeing each other (a's registry is hidden from b's cycle),
/// b's later record wins, and the object is left torn: one device's bytes under the other's
/// metadata — what two simultaneous writes leave on a server that writes an object's bytes and
/// metadata separately (s3s-fs does), and what a HEAD followed by a copy can see on any store when
/// another writer gets in between. The engine must judge by bytes: the winner puts its version
/// back, the loser's bytes are kept as its conflict copy, and no conflict copy holds bytes other
/// than its journal record says. With the old HEAD + server-side copy, `LoserBytes` never settled
/// (the winner trusted the metadata) and `WinnerBytes` overwrote the loser's conflict copy in the
/// bucket with the winner's bytes.
///
/// `LoserBytes` settles with the winner first: its copy of the loser's version is then already in
/// the journal when the loser renames its file to the same name (the old plan then also tried to
/// download that copy onto the file just renamed there, and the cycle failed). Every cycle must
/// succeed.
async fn concurrent_edit_on_a_torn_object(torn: Torn, size: usize) {
    let (root, s3) = server().await;
    let a = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let b = device_with(s3_store(&s3.endpoint, &s3.bucket), |_| {});
    let (va, vb) = (content(41, size), content(42, size));
    a.write("doc.bin", &va);
    a.sync().await;
    // s3s-fs keeps each object's metadata in a sidecar file beside the bucket directory.
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let sidecar = root.path().join(format!(
        ".bucket-{}.object-{}.metadata.json",
        b64(&s3.bucket),
        b64("doc.bin")
    ));
    let a_metadata = std::fs::read(&sidecar).unwrap();

    let registry = s3.bucket_dir.join(format!(
        ".cirrus-sync/devices/{}.json",
        a.engine.device_id()
    ));
    let hidden = root.path().join("hidden-registry.json");
    std::fs::rename(&registry, &hidden).unwrap();
    b.write("doc.bin", &vb);
    b.sync().await;
    std::fs::rename(&hidden, &registry).unwrap();
    assert_eq!(std::fs::read(s3.bucket_dir.join("doc.bin")).unwrap(), vb);

    match torn {
        Torn::LoserBytes => std::fs::write(s3.bucket_dir.join("doc.bin"), &va).unwrap(),
        Torn::WinnerBytes => std::fs::write(&sidecar, &a_metadata).unwrap(),
    }
    match torn {
        Torn::LoserBytes => sync_all(&[&b, &a]).await,
        Torn::WinnerBytes => sync_all(&[&a, &b]).await,
    }

    let files = assert_converged(&[&a, &b], &s3.bucket_dir);
    assert_eq!(files.len(), 2, "{torn:?}: {files:?}");
    assert_eq!(
        a.read("doc.bin").unwrap(),
        vb,
        "{torn:?}: the later edit keeps the path"
    );
    let copy = files.keys().find(|k| *k != "doc.bin").unwrap();
    assert!(
        copy.starts_with(&format!("doc.sync-conflict-{}-", a.engine.device_id())),
        "{torn:?}: {copy}"
    );
    assert_eq!(b.read(copy).unwrap(), va, "{torn:?}: the loser's version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loser_bytes_under_winner_metadata_are_kept_and_replaced() {
    // Multipart-sized: the winner must re-send its version although the metadata names it.
    concurrent_edit_on_a_torn_object(Torn::LoserBytes, 7 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn winner_bytes_under_loser_metadata_never_become_the_conflict_copy() {
    concurrent_edit_on_a_torn_object(Torn::WinnerBytes, 3000).await;
}
