//! The OSS dialect against the loopback conformance server, which verifies every
//! `OSS4-HMAC-SHA256` signature, the STS token, Content-MD5, and answers with CRC-64/XZ headers.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cirrus_sync_fixtures::oss::OssServer;
use cirrus_syncd::sign::Dialect;
use cirrus_syncd::store::http::Addressing;
use cirrus_syncd::store::{HttpStore, HttpStoreConfig, ObjectStore, StoreError};
use common::*;

fn oss_store(s: &OssServer, addressing: Addressing, secret: &str) -> ObjectStore {
    ObjectStore::Http(Arc::new(
        HttpStore::new(HttpStoreConfig {
            dialect: Dialect::Oss,
            endpoint: s.endpoint.clone(),
            bucket: s.bucket.clone(),
            region: s.region.clone(),
            addressing,
            access_key: s.access_key.clone(),
            secret_key: secret.to_owned(),
            session_token: s.security_token.clone(),
        })
        .unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_sync_through_oss_v4_with_sts_and_custom_domain() {
    let oss = OssServer::start("photos", "cn-hangzhou", Some("sts-token-123"))
        .await
        .unwrap();
    let a = device_with(
        oss_store(&oss, Addressing::CustomDomain, &oss.secret_key),
        |_| {},
    );
    let b = device_with(oss_store(&oss, Addressing::Path, &oss.secret_key), |_| {});
    a.write("Pictures/一张照片.jpg", &content(5, 100_000));
    a.write("Documents/a b+c.txt", b"spaces and plus");
    a.write("big.bin", &content(6, 7 << 20));
    sync_all(&[&a, &b]).await;
    b.write("Documents/a b+c.txt", b"edited");
    sync_all(&[&a, &b]).await;
    assert_eq!(oss.stats.signature_failures.load(Ordering::SeqCst), 0);
    assert!(oss.stats.requests.load(Ordering::SeqCst) > 10);
    // Compare every file on both devices with the bucket's objects.
    let mut bucket = std::collections::BTreeMap::new();
    for k in oss
        .keys()
        .into_iter()
        .filter(|k| !k.starts_with(".cirrus-sync/"))
    {
        bucket.insert(
            k.clone(),
            cirrus_syncd::integrity::sha256_hex(&oss.object(&k).unwrap()),
        );
    }
    assert_eq!(bucket.len(), 3);
    assert_eq!(tree_hashes(&a.root(), &[]), bucket);
    assert_eq!(tree_hashes(&b.root(), &[]), bucket);
    assert_eq!(&oss.object("Documents/a b+c.txt").unwrap()[..], b"edited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused_by_signature_check() {
    let oss = OssServer::start("photos", "cn-hangzhou", None)
        .await
        .unwrap();
    let bad = oss_store(&oss, Addressing::Path, "not-the-secret");
    let err = bad
        .put("x", Bytes::from_static(b"1"), "00")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Permanent(ref m) if m.contains("403")),
        "{err}"
    );
    assert_eq!(oss.stats.signature_failures.load(Ordering::SeqCst), 1);
    // Wrong region is refused too.
    let mut cfg_region = HttpStoreConfig {
        dialect: Dialect::Oss,
        endpoint: oss.endpoint.clone(),
        bucket: "photos".into(),
        region: "cn-beijing".into(),
        addressing: Addressing::Path,
        access_key: oss.access_key.clone(),
        secret_key: oss.secret_key.clone(),
        session_token: None,
    };
    let wrong_region = HttpStore::new(cfg_region.clone()).unwrap();
    assert!(wrong_region.head("x").await.is_err());
    cfg_region.region = "cn-hangzhou".into();
    let good = HttpStore::new(cfg_region).unwrap();
    good.put("x", Bytes::from_static(b"1"), "00").await.unwrap();
    assert_eq!(
        good.head("x").await.unwrap().unwrap().sha256.as_deref(),
        Some("00")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc64_mismatch_is_detected_and_retried() {
    let oss = OssServer::start("photos", "cn-hangzhou", None)
        .await
        .unwrap();
    let store = oss_store(&oss, Addressing::Path, &oss.secret_key);
    oss.stats.corrupt_crc.store(1, Ordering::SeqCst);
    let err = store
        .put("k", Bytes::from_static(b"payload"), "00")
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("CRC-64"),
        "{err}"
    );
    // The device retries such failures: a full sync through a server that corrupts two answers.
    let a = device_with(oss_store(&oss, Addressing::Path, &oss.secret_key), |_| {});
    a.write("doc.txt", b"content");
    oss.stats.corrupt_crc.store(2, Ordering::SeqCst);
    sync_all(&[&a]).await;
    assert_eq!(oss.stats.corrupt_crc.load(Ordering::SeqCst), 0);
    assert_eq!(&oss.object("doc.txt").unwrap()[..], b"content");
}
