//! End-to-end encryption through a real S3 server (s3s-fs on loopback): the bucket never holds
//! plaintext (contents, multipart parts, journals, metadata hashes), two devices sharing the
//! account key sync (edits, a rename done server-side, a large multipart file), and a device with
//! another key — or with encryption off — refuses clearly and changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use cirrus_sync_fixtures::S3Fixture;
use cirrus_syncd::crypto::ContentCipher;
use cirrus_syncd::engine::SyncError;
use common::*;

fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((
                    e.path().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_bucket_holds_no_plaintext_and_only_key_holders_sync() {
    let sdir = tempfile::tempdir().unwrap();
    let s3 = S3Fixture::start(sdir.path(), "cirrus").await.unwrap();
    let key = [42u8; 32];
    let with_key = |k: [u8; 32]| {
        move |cfg: &mut cirrus_syncd::engine::EngineConfig| {
            cfg.cipher = Some(Arc::new(ContentCipher::from_key(k)))
        }
    };
    let a = device_with(s3_store(&s3.endpoint, "cirrus"), with_key(key));
    let b = device_with(s3_store(&s3.endpoint, "cirrus"), with_key(key));

    let secret = b"PLAINTEXT-MARKER: the user's private diary entry".repeat(20);
    let big = content(3, 7 << 20); // multipart
    a.write("Documents/diary.txt", &secret);
    a.write("Photos/a/1.jpg", &content(1, 100_000));
    a.write("Photos/a/2.jpg", &content(2, 150_000));
    a.write("Videos/clip.mp4", &big);
    sync_all(&[&a, &b]).await;
    assert_eq!(b.read("Documents/diary.txt").unwrap(), secret);
    assert_eq!(b.read("Videos/clip.mp4").unwrap(), big);

    // Edits and a rename travel between the key holders; the rename is a server-side copy.
    b.write("Documents/diary.txt", b"PLAINTEXT-MARKER: edited on b");
    std::fs::rename(a.root().join("Photos/a"), a.root().join("Photos/renamed")).unwrap();
    let ra = a.sync().await;
    assert_eq!((ra.copied, ra.uploaded), (2, 0), "{ra:?}");
    sync_all(&[&b, &a]).await;
    assert_eq!(
        a.read("Documents/diary.txt").unwrap(),
        b"PLAINTEXT-MARKER: edited on b"
    );
    assert_eq!(b.read("Photos/renamed/2.jpg").unwrap(), content(2, 150_000));
    let ta = tree_hashes(&a.root(), &[]);
    assert_eq!(ta, tree_hashes(&b.root(), &[]));

    // The bucket: browsable names, no plaintext anywhere (objects, parts, journals, metadata).
    let objects = tree_hashes(&s3.bucket_dir, &[".cirrus-sync", ".cirrus-store"]);
    assert_eq!(
        objects.keys().collect::<Vec<_>>(),
        ta.keys().collect::<Vec<_>>()
    );
    let stored = all_files(sdir.path());
    assert!(
        stored
            .iter()
            .any(|(p, _)| p.contains(".cirrus-sync/journal/"))
    );
    for (path, bytes) in &stored {
        assert!(
            !contains(bytes, b"PLAINTEXT-MARKER"),
            "{path} holds plaintext"
        );
        assert!(
            !contains(bytes, &big[1 << 20..(1 << 20) + 64]),
            "{path} holds the video's plaintext"
        );
        assert!(
            !contains(bytes, &content(1, 100_000)[5000..5064]),
            "{path} holds a photo's plaintext"
        );
        for sha in ta.values() {
            assert!(
                !contains(bytes, sha.as_bytes()),
                "{path} holds a plaintext SHA-256"
            );
        }
        if path.contains(".cirrus-sync/journal/") {
            assert!(
                !contains(bytes, b"diary"),
                "{path}: journal readable without the key"
            );
        }
    }
    for rel in ta.keys() {
        let obj = std::fs::read(s3.bucket_dir.join(rel)).unwrap();
        assert_eq!(&obj[..4], b"CSE1", "{rel} is not sealed");
    }

    // Another key, or no key: refused before anything is read or written.
    let c = device_with(s3_store(&s3.endpoint, "cirrus"), with_key([7u8; 32]));
    c.write(
        "Documents/from-c.txt",
        b"PLAINTEXT-MARKER from a device with the wrong key",
    );
    let err = c.engine.sync_once().await.unwrap_err();
    assert!(matches!(err, SyncError::EncryptionMismatch(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("encrypted with key") && msg.contains("copy the account key"),
        "{msg}"
    );
    let d = device_with(s3_store(&s3.endpoint, "cirrus"), |_| {});
    let err = d.engine.sync_once().await.unwrap_err();
    assert!(err.to_string().contains("end-to-end encrypted"), "{err}");
    assert!(!s3.bucket_dir.join("Documents/from-c.txt").exists());
    assert_eq!(
        tree_hashes(&c.root(), &[]).len(),
        1,
        "the refusing device changed its files"
    );
    assert!(d.read("Documents/diary.txt").is_none());
    // The key holders are unaffected.
    sync_all(&[&a, &b]).await;
    assert_eq!(tree_hashes(&b.root(), &[]), ta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_cannot_be_switched_on_over_plaintext_data() {
    let sdir = tempfile::tempdir().unwrap();
    let s3 = S3Fixture::start(sdir.path(), "cirrus").await.unwrap();
    let plain = device_with(s3_store(&s3.endpoint, "cirrus"), |_| {});
    plain.write("notes.txt", b"plain");
    plain.sync().await;
    let enc = device_with(s3_store(&s3.endpoint, "cirrus"), |cfg| {
        cfg.cipher = Some(Arc::new(ContentCipher::from_key([1; 32])))
    });
    let err = enc.engine.sync_once().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("already holds unencrypted synced data"),
        "{err}"
    );
    assert!(enc.read("notes.txt").is_none());
}
