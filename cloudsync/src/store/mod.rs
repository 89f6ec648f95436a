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
    /// A conditional write was refused: the object exists although the write required it absent
    /// (S3 `412 PreconditionFailed` to `If-None-Match: *`, OSS `409 FileAlreadyExists` to
    /// `x-oss-forbid-overwrite: true`), or its ETag is not the one `If-Match` named. Never
    /// retried: the caller decides (compare the bytes there, pick another name, re-plan).
    #[error("conditional write refused: {0}")]
    PreconditionFailed(String),
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

/// A precondition on a write: an extra guard against lost updates where the store honours it
/// (see [`ConditionalCaps`]); correctness never depends on it (docs/sync.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteCondition {
    /// Plain write (overwrites).
    #[default]
    None,
    /// Only if no object has the key: `If-None-Match: *` (S3), `x-oss-forbid-overwrite: true`
    /// (OSS), a no-replace link (embedded store).
    IfAbsent,
    /// Only if the object's ETag is this one (as the store sent it, quotes included):
    /// `If-Match` (S3 only; OSS answers 400 NotImplemented to it).
    IfMatch(String),
}

/// Which conditional writes a store was found to honour (probed once, see
/// `Engine::conditional_caps`). A store that ignores a header is written to without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ConditionalCaps {
    /// Create-only writes are refused when the key exists.
    pub if_absent: bool,
    /// `If-Match: <etag>` overwrites are refused when the ETag differs.
    pub if_match: bool,
}

/// What a download got: the SHA-256 of the bytes written, and the object's ETag if the store
/// sent one (the version a later `If-Match` overwrite may name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub sha256: String,
    pub etag: Option<String>,
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

/// A range of a local file sent as one multipart part without holding it in memory: its digests
/// are computed first ([`FilePart::read`]), then the bytes are read again as they are sent, in
/// [`FilePart::CHUNK`] blocks. If the file changes in between, the server's Content-MD5 check (and
/// our ETag / CRC-64 checks) reject the part.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub file: Arc<std::fs::File>,
    pub path: std::path::PathBuf,
    pub offset: u64,
    pub len: u64,
    pub md5: [u8; 16],
    pub crc64: u64,
}

impl FilePart {
    /// Bytes read (and sent) at a time.
    pub const CHUNK: usize = 256 * 1024;

    /// Opens `path` and digests `len` bytes at `offset` (blocking: call from a blocking task).
    pub fn read(path: &Path, offset: u64, len: u64) -> Result<Self, StoreError> {
        use md5::Digest;
        let file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
        let mut md5 = md5::Md5::new();
        let mut crc = crate::integrity::CRC64_XZ.digest();
        let mut buf = vec![0u8; Self::CHUNK];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(Self::CHUNK as u64) as usize;
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf[..n], offset + done)
                .map_err(|e| StoreError::io(path, e))?;
            md5.update(&buf[..n]);
            crc.update(&buf[..n]);
            done += n as u64;
        }
        Ok(Self {
            file: Arc::new(file),
            path: path.to_owned(),
            offset,
            len,
            md5: md5.finalize().into(),
            crc64: crc.finalize(),
        })
    }

    /// The part's bytes as a stream of [`FilePart::CHUNK`] blocks, read from the file as they are
    /// consumed.
    pub fn stream(
        &self,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let (file, end) = (self.file.clone(), self.offset + self.len);
        futures_util::stream::try_unfold(self.offset, move |at| {
            let file = file.clone();
            async move {
                if at >= end {
                    return Ok(None);
                }
                let n = (end - at).min(Self::CHUNK as u64) as usize;
                let chunk = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; n];
                    std::os::unix::fs::FileExt::read_exact_at(&*file, &mut buf, at)?;
                    Ok::<_, std::io::Error>(Bytes::from(buf))
                })
                .await
                .map_err(std::io::Error::other)??;
                Ok(Some((chunk, at + n as u64)))
            }
        })
    }

    pub fn content_md5(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.md5)
    }
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
        self.put_if(key, body, sha256, &WriteCondition::None)
            .await
            .map(drop)
    }
    /// [`Self::put`] under a precondition; returns the new object's ETag when the store sends one.
    pub async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        sha256: &str,
        cond: &WriteCondition,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.put_if(key, body, sha256, cond).await)
    }
    /// A name for this store in this bucket (the conditional-write probe is remembered per name).
    pub fn identity(&self) -> String {
        match self {
            ObjectStore::Local(s) => s.identity(),
            ObjectStore::Http(s) => s.identity(),
        }
    }
    /// Whether conditional writes can be expected at all (the embedded store implements
    /// create-only itself; HTTP stores must be probed, OSS never takes `If-Match`).
    pub fn conditional_dialect(&self) -> ConditionalCaps {
        match self {
            ObjectStore::Local(_) => ConditionalCaps {
                if_absent: true,
                if_match: false,
            },
            ObjectStore::Http(s) => s.conditional_dialect(),
        }
    }
    /// Downloads `key` into `dest` (created/truncated); returns the SHA-256 of what was written.
    pub async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        limiter: Option<&crate::policy::RateLimiter>,
    ) -> Result<String, StoreError> {
        self.get_to_file_tagged(key, dest, limiter)
            .await
            .map(|f| f.sha256)
    }
    /// [`Self::get_to_file`], with the object's ETag.
    pub async fn get_to_file_tagged(
        &self,
        key: &str,
        dest: &Path,
        limiter: Option<&crate::policy::RateLimiter>,
    ) -> Result<Fetched, StoreError> {
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
    /// Starts a multipart upload; `cond` is the precondition its completion will carry (OSS
    /// checks `x-oss-forbid-overwrite` at both ends).
    pub async fn create_multipart(
        &self,
        key: &str,
        sha256: &str,
        cond: &WriteCondition,
    ) -> Result<String, StoreError> {
        dispatch!(self, s => s.create_multipart(key, sha256, cond).await)
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
    /// Uploads one part read from a local file as it is sent (see [`FilePart`]); returns its ETag.
    pub async fn upload_part_file(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        part: &FilePart,
    ) -> Result<String, StoreError> {
        dispatch!(self, s => s.upload_part_file(key, upload_id, number, part).await)
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
        cond: &WriteCondition,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.complete_multipart(key, upload_id, parts, cond).await)
    }
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.abort_multipart(key, upload_id).await)
    }
}
