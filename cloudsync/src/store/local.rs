//! The embedded store: a local directory acting as the bucket. Objects are plain files at their
//! key (so the directory is a browsable mirror, like a bucket), written to a temporary name, synced
//! and renamed into place. Content SHA-256 metadata and unfinished multipart uploads live under the
//! store's own hidden `.cirrus-store/` directory; each metadata file names the inode of the bytes it
//! describes, so simultaneous writers of one key (two devices sharing the directory) can never make
//! one write's bytes pass for another's (see [`LocalStore::head`]).

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use rand::Rng;
use tokio::io::AsyncWriteExt;

use super::{
    Fetched, ListedObject, ObjectMeta, RequestCounters, StoreError, UploadedPart, WriteCondition,
};

/// Directory (under the store root) holding metadata and multipart uploads; never listed.
const STORE_DIR: &str = ".cirrus-store";

#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    pub counters: RequestCounters,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io(path, e)
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(root.join(STORE_DIR)).map_err(|e| StoreError::io(&root, e))?;
        Ok(Self {
            root,
            counters: RequestCounters::default(),
        })
    }

    pub fn identity(&self) -> String {
        format!("local:{}", self.root.display())
    }

    /// Whether `cond` asks for a create-only write (the only condition this store has: it keeps
    /// no ETags, so `If-Match` is refused rather than ignored).
    fn no_replace(key: &str, cond: &WriteCondition) -> Result<bool, StoreError> {
        match cond {
            WriteCondition::None => Ok(false),
            WriteCondition::IfAbsent => Ok(true),
            WriteCondition::IfMatch(_) => Err(StoreError::Permanent(format!(
                "{key}: the embedded store has no conditional overwrite (If-Match)"
            ))),
        }
    }

    fn object_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let rel = Path::new(key);
        let valid = !key.is_empty()
            && rel.components().all(|c| matches!(c, Component::Normal(_)))
            && !key.starts_with(STORE_DIR);
        if !valid {
            return Err(StoreError::Permanent(format!("invalid object key {key:?}")));
        }
        Ok(self.root.join(rel))
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root
            .join(STORE_DIR)
            .join("meta")
            .join(format!("{key}.sha256"))
    }

    fn upload_dir(&self, upload_id: &str) -> Result<PathBuf, StoreError> {
        if upload_id.is_empty() || !upload_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::Permanent(format!(
                "invalid upload id {upload_id:?}"
            )));
        }
        Ok(self.root.join(STORE_DIR).join("uploads").join(upload_id))
    }

    async fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
        let parent = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_err(parent))?;
        let tmp = parent.join(format!(
            ".cirrus-store-tmp-{:016x}",
            rand::rng().random::<u64>()
        ));
        let mut f = tokio::fs::File::create(&tmp).await.map_err(io_err(&tmp))?;
        f.write_all(data).await.map_err(io_err(&tmp))?;
        f.sync_all().await.map_err(io_err(&tmp))?;
        drop(f);
        tokio::fs::rename(&tmp, path).await.map_err(io_err(path))
    }

    /// Writes an object's bytes and its content metadata: the bytes go to a temporary file first,
    /// the metadata (`<sha256>\n<inode>`) names that file's inode, then the bytes are renamed into
    /// place. Simultaneous writes of one key may leave one's metadata beside the other's bytes;
    /// the inodes then differ and [`Self::head`] reports the content as unknown.
    ///
    /// `no_replace`: the bytes are hard-linked into place (atomically failing if the key exists,
    /// answered as [`StoreError::PreconditionFailed`]) before the metadata is written, so a
    /// refused write never touches the existing object's metadata.
    async fn write_object(
        &self,
        key: &str,
        data: &[u8],
        sha256: Option<&str>,
        no_replace: bool,
    ) -> Result<(), StoreError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.object_path(key)?;
        let parent = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_err(parent))?;
        let tmp = parent.join(format!(
            ".cirrus-store-tmp-{:016x}",
            rand::rng().random::<u64>()
        ));
        let written = async {
            let mut f = tokio::fs::File::create(&tmp).await.map_err(io_err(&tmp))?;
            f.write_all(data).await.map_err(io_err(&tmp))?;
            f.sync_all().await.map_err(io_err(&tmp))?;
            let ino = f.metadata().await.map_err(io_err(&tmp))?.ino();
            let meta = self.meta_path(key);
            if no_replace {
                match tokio::fs::hard_link(&tmp, &path).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(StoreError::PreconditionFailed(format!("{key} exists")));
                    }
                    Err(e) => return Err(StoreError::io(&path, e)),
                }
                if let Some(sha) = sha256 {
                    Self::write_atomic(&meta, format!("{sha}\n{ino}").as_bytes()).await?;
                }
                return tokio::fs::remove_file(&tmp).await.map_err(io_err(&tmp));
            }
            match sha256 {
                Some(sha) => Self::write_atomic(&meta, format!("{sha}\n{ino}").as_bytes()).await?,
                None => match tokio::fs::remove_file(&meta).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(&meta, e)),
                },
            }
            tokio::fs::rename(&tmp, &path).await.map_err(io_err(&path))
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }

    /// The SHA-256 the metadata of `key` records for the bytes with inode `ino`, if it describes
    /// those bytes (metadata written before inodes were recorded is taken as it is).
    async fn recorded_sha256(&self, key: &str, ino: u64) -> Option<String> {
        let meta = tokio::fs::read_to_string(self.meta_path(key)).await.ok()?;
        let mut lines = meta.lines();
        let sha = lines.next()?.to_owned();
        match lines.next().map(str::parse::<u64>) {
            None => Some(sha),
            Some(Ok(recorded)) if recorded == ino => Some(sha),
            Some(_) => None,
        }
    }

    pub async fn put(&self, key: &str, body: Bytes, sha256: &str) -> Result<(), StoreError> {
        self.put_if(key, body, sha256, &WriteCondition::None)
            .await
            .map(drop)
    }

    /// Writes an object (create-only with [`WriteCondition::IfAbsent`]); the embedded store has
    /// no ETags, so none is returned.
    pub async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        sha256: &str,
        cond: &WriteCondition,
    ) -> Result<Option<String>, StoreError> {
        self.counters.count();
        let no_replace = Self::no_replace(key, cond)?;
        self.write_object(key, &body, Some(sha256), no_replace)
            .await?;
        self.counters
            .bytes_up
            .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(None)
    }

    pub async fn get_to_file(
        &self,
        key: &str,
        dest: &Path,
        limiter: Option<&crate::policy::RateLimiter>,
    ) -> Result<Fetched, StoreError> {
        self.counters.count();
        let path = self.object_path(key)?;
        let data = match tokio::fs::read(&path).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.into()));
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        if let Some(l) = limiter {
            l.take(data.len() as u64).await;
        }
        let mut f = tokio::fs::File::create(dest).await.map_err(io_err(dest))?;
        f.write_all(&data).await.map_err(io_err(dest))?;
        f.sync_all().await.map_err(io_err(dest))?;
        self.counters
            .bytes_down
            .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(Fetched {
            sha256: crate::integrity::sha256_hex(&data),
            etag: None,
        })
    }

    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, StoreError> {
        self.counters.count();
        let path = self.object_path(key)?;
        match tokio::fs::read(&path).await {
            Ok(d) => Ok(Bytes::from(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.into()))
            }
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.counters.count();
        let path = self.object_path(key)?;
        let md = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let sha256 = self
            .recorded_sha256(key, std::os::unix::fs::MetadataExt::ino(&md))
            .await;
        Ok(Some(ObjectMeta {
            size: md.len(),
            sha256,
        }))
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.counters.count();
        let path = self.object_path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
        let _ = tokio::fs::remove_file(self.meta_path(key)).await;
        // Like a bucket, the directory tree has no empty "folders": prune emptied parents.
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || tokio::fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    pub async fn copy(&self, src: &str, dst: &str) -> Result<(), StoreError> {
        self.counters.count();
        use tokio::io::AsyncReadExt;
        let from = self.object_path(src)?;
        let mut f = match tokio::fs::File::open(&from).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(src.into()));
            }
            Err(e) => return Err(StoreError::io(&from, e)),
        };
        // The bytes read and the inode checked are those of one open file.
        let ino = std::os::unix::fs::MetadataExt::ino(&f.metadata().await.map_err(io_err(&from))?);
        let mut data = Vec::new();
        f.read_to_end(&mut data).await.map_err(io_err(&from))?;
        let sha = self.recorded_sha256(src, ino).await;
        self.write_object(dst, &data, sha.as_deref(), false).await
    }

    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ListedObject>, StoreError> {
        self.counters.count();
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        let listed =
            tokio::task::spawn_blocking(move || -> Result<Vec<ListedObject>, StoreError> {
                let mut out = Vec::new();
                // Walk only the deepest directory the prefix names.
                let base_dir = match prefix.rfind('/') {
                    Some(i) => root.join(&prefix[..i]),
                    None => root.clone(),
                };
                let mut stack = vec![base_dir];
                while let Some(dir) = stack.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(StoreError::io(&dir, e)),
                    };
                    for entry in entries {
                        let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
                        let path = entry.path();
                        let Ok(rel) = path.strip_prefix(&root) else {
                            continue;
                        };
                        let Some(key) = rel.to_str() else { continue };
                        if key.starts_with(STORE_DIR)
                            || entry
                                .file_name()
                                .to_string_lossy()
                                .starts_with(".cirrus-store-tmp-")
                        {
                            continue;
                        }
                        let ft = entry.file_type().map_err(|e| StoreError::io(&path, e))?;
                        if ft.is_dir() {
                            if prefix.starts_with(&format!("{key}/"))
                                || key.starts_with(&prefix)
                                || prefix.is_empty()
                            {
                                stack.push(path);
                            }
                        } else if ft.is_file() && key.starts_with(&prefix) {
                            if start_after.as_deref().is_some_and(|s| key <= s) {
                                continue;
                            }
                            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                            out.push(ListedObject {
                                key: key.to_owned(),
                                size,
                            });
                        }
                    }
                }
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            })
            .await
            .map_err(|e| StoreError::Permanent(format!("listing task failed: {e}")))??;
        Ok(listed)
    }

    pub async fn create_multipart(
        &self,
        key: &str,
        sha256: &str,
        cond: &WriteCondition,
    ) -> Result<String, StoreError> {
        self.counters.count();
        self.object_path(key)?;
        Self::no_replace(key, cond)?;
        let id = format!("{:032x}", rand::rng().random::<u128>());
        let dir = self.upload_dir(&id)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_err(&dir))?;
        Self::write_atomic(&dir.join("target"), format!("{key}\n{sha256}").as_bytes()).await?;
        Ok(id)
    }

    pub async fn upload_part(
        &self,
        _key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<String, StoreError> {
        self.counters.count();
        let dir = self.upload_dir(upload_id)?;
        if !dir.exists() {
            return Err(StoreError::NotFound(format!("upload {upload_id}")));
        }
        Self::write_atomic(&dir.join(format!("{number:05}")), &body).await?;
        self.counters
            .bytes_up
            .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(crate::integrity::md5_hex(&body))
    }

    pub async fn upload_part_file(
        &self,
        _key: &str,
        upload_id: &str,
        number: u32,
        part: &super::FilePart,
    ) -> Result<String, StoreError> {
        self.counters.count();
        let dir = self.upload_dir(upload_id)?;
        if !dir.exists() {
            return Err(StoreError::NotFound(format!("upload {upload_id}")));
        }
        let dest = dir.join(format!("{number:05}"));
        let tmp = dir.join(format!(
            ".cirrus-store-tmp-{:016x}",
            rand::rng().random::<u64>()
        ));
        let len = part.len;
        let part = part.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<String, StoreError> {
            use md5::Digest;
            use std::io::Write;
            let mut out = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
            let mut md5 = md5::Md5::new();
            let mut buf = vec![0u8; super::FilePart::CHUNK];
            let mut done = 0u64;
            while done < part.len {
                let n = (part.len - done).min(buf.len() as u64) as usize;
                std::os::unix::fs::FileExt::read_exact_at(
                    &*part.file,
                    &mut buf[..n],
                    part.offset + done,
                )
                .map_err(io_err(&part.path))?;
                md5.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io_err(&tmp))?;
                done += n as u64;
            }
            let got: [u8; 16] = md5.finalize().into();
            if got != part.md5 {
                let _ = std::fs::remove_file(&tmp);
                return Err(StoreError::Transient(format!(
                    "{}: changed while its part was sent (Content-MD5 mismatch)",
                    part.path.display()
                )));
            }
            out.sync_all().map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
            Ok(hex::encode(got))
        })
        .await
        .map_err(|e| StoreError::Transient(e.to_string()))??;
        self.counters
            .bytes_up
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        Ok(written)
    }

    pub async fn list_parts(
        &self,
        _key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<UploadedPart>>, StoreError> {
        self.counters.count();
        let dir = self.upload_dir(upload_id)?;
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut parts = Vec::new();
        while let Some(entry) = rd.next_entry().await.map_err(io_err(&dir))? {
            let name = entry.file_name();
            let Some(number) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let data = tokio::fs::read(entry.path()).await.map_err(io_err(&dir))?;
            parts.push(UploadedPart {
                number,
                size: data.len() as u64,
                etag: crate::integrity::md5_hex(&data),
            });
        }
        parts.sort_by_key(|p| p.number);
        Ok(Some(parts))
    }

    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
        cond: &WriteCondition,
    ) -> Result<(), StoreError> {
        self.counters.count();
        let no_replace = Self::no_replace(key, cond)?;
        let dir = self.upload_dir(upload_id)?;
        let target = tokio::fs::read_to_string(dir.join("target"))
            .await
            .map_err(|_| StoreError::NotFound(format!("upload {upload_id}")))?;
        let sha256 = target.lines().nth(1).unwrap_or("").to_owned();
        let mut data = Vec::new();
        for p in parts {
            let part = tokio::fs::read(dir.join(format!("{:05}", p.number)))
                .await
                .map_err(io_err(&dir))?;
            if crate::integrity::md5_hex(&part) != p.etag {
                return Err(StoreError::Permanent(format!(
                    "part {} of upload {upload_id}: ETag mismatch",
                    p.number
                )));
            }
            data.extend_from_slice(&part);
        }
        self.write_object(key, &data, Some(&sha256), no_replace)
            .await?;
        tokio::fs::remove_dir_all(&dir).await.map_err(io_err(&dir))
    }

    pub async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.counters.count();
        let dir = self.upload_dir(upload_id)?;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&dir, e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metadata_of_other_bytes_is_never_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        store
            .put("k.txt", Bytes::from_static(b"one"), "sha-one")
            .await
            .unwrap();
        let head = store.head("k.txt").await.unwrap().unwrap();
        assert_eq!(head.sha256.as_deref(), Some("sha-one"));
        let first_meta = std::fs::read(store.meta_path("k.txt")).unwrap();
        store
            .put("k.txt", Bytes::from_static(b"two"), "sha-two")
            .await
            .unwrap();
        assert_eq!(
            store
                .head("k.txt")
                .await
                .unwrap()
                .unwrap()
                .sha256
                .as_deref(),
            Some("sha-two")
        );
        // Two simultaneous writers: the first one's metadata lands after the second one's bytes.
        std::fs::write(store.meta_path("k.txt"), &first_meta).unwrap();
        assert_eq!(store.head("k.txt").await.unwrap().unwrap().sha256, None);
        // A copy of such an object does not carry the wrong hash along either.
        store.copy("k.txt", "c.txt").await.unwrap();
        assert_eq!(store.head("c.txt").await.unwrap().unwrap().sha256, None);
        assert_eq!(&store.get_bytes("c.txt").await.unwrap()[..], b"two");
        // A consistent object copies with its hash.
        store
            .put("k.txt", Bytes::from_static(b"three"), "sha-three")
            .await
            .unwrap();
        store.copy("k.txt", "c.txt").await.unwrap();
        assert_eq!(
            store
                .head("c.txt")
                .await
                .unwrap()
                .unwrap()
                .sha256
                .as_deref(),
            Some("sha-three")
        );
        // Metadata written before inodes were recorded is still read.
        std::fs::write(store.meta_path("k.txt"), b"sha-legacy").unwrap();
        assert_eq!(
            store
                .head("k.txt")
                .await
                .unwrap()
                .unwrap()
                .sha256
                .as_deref(),
            Some("sha-legacy")
        );
    }
}
