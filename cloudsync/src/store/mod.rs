//! Object stores cirrus-syncd mirrors to: an embedded local directory (the default "cloud" of a
//! first run and of the emulator), any S3-compatible service, and Alibaba OSS (native V4 dialect).
//!
//! Every store offers the same small set of operations the sync engine needs: whole-object
//! put/get/head/delete, server-side copy, paginated listing, and multipart uploads that can be
//! resumed (their completed parts listed). Objects carry their content SHA-256 as user metadata
//! (`cirrus-sha256`), so a reader can check what it got against the journals.

pub mod http;
pub mod local;
pub mod xml;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

pub use http::{HttpStore, HttpStoreConfig};
pub use local::LocalStore;

/// Name of the user-metadata entry carrying an object's content SHA-256 (hex).
pub const SHA256_META: &str = "cirrus-sha256";

/// What went wrong talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(String),
    /// Worth retrying: connection refused/reset, timeouts, 5xx, throttling.
    #[error("transient store error: {0}")]
    Transient(String),
    /// Retrying will not help: denied, bad request, integrity check failed after a good transfer.
    #[error("store error: {0}")]
    Permanent(String),
    #[error("local file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Content SHA-256 recorded at upload, if the object was written by cirrus-syncd.
    pub sha256: Option<String>,
}

/// One listed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// One completed part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub number: u32,
    pub size: u64,
    pub etag: String,
}

/// Request counters (for the status interface and the benchmark).
#[derive(Debug, Default)]
pub struct RequestCounters {
    pub requests: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
}

impl RequestCounters {
    pub fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// A configured object store.
#[derive(Debug, Clone)]
pub enum ObjectStore {
    Local(Arc<LocalStore>),
    Http(Arc<HttpStore>),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            ObjectStore::Local($s) => $e,
            ObjectStore::Http($s) => $e,
        }
    };
}

impl ObjectStore {
    pub fn counters(&self) -> &RequestCounters {
        dispatch!(self, s => &s.counters)
    }
    /// Stores `body` under `key` (overwriting), recording its SHA-256.
    pub async fn put(&self, key: &str, body: Bytes, sha256: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.put(key, body, sha256).await)
    }
    /// Downloads `key` into `dest` (created/truncated); returns the SHA-256 of what was written.
    pub async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        limiter: Option<&crate::policy::RateLimiter>,
    ) -> Result<String, StoreError> {
        dispatch!(self, s => s.get_to_file(key, dest, limiter).await)
    }
    /// Reads a whole (small) object into memory.
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, StoreError> {
        dispatch!(self, s => s.get_bytes(key).await)
    }
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        dispatch!(self, s => s.head(key).await)
    }
    /// Deletes `key`; deleting a missing key succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.delete(key).await)
    }
    /// Server-side copy (metadata kept).
    pub async fn copy(&self, src: &str, dst: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.copy(src, dst).await)
    }
    /// Every key under `prefix` greater than `start_after`, in key order.
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ListedObject>, StoreError> {
        dispatch!(self, s => s.list(prefix, start_after).await)
    }
    pub async fn create_multipart(&self, key: &str, sha256: &str) -> Result<String, StoreError> {
        dispatch!(self, s => s.create_multipart(key, sha256).await)
    }
    /// Uploads one part; returns its ETag (MD5 checked by the server through Content-MD5).
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        dispatch!(self, s => s.upload_part(key, upload_id, number, body).await)
    }
    /// Parts already stored for an upload; `None` when the upload no longer exists.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<UploadedPart>>, StoreError> {
        dispatch!(self, s => s.list_parts(key, upload_id).await)
    }
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.complete_multipart(key, upload_id, parts).await)
    }
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.abort_multipart(key, upload_id).await)
    }
}
