//! Optional end-to-end encryption of synced file contents, with the account key kept on the
//! devices (a 32-byte key file, never uploaded). File names stay readable so the bucket remains a
//! browsable mirror of the user's paths; contents and journals are sealed.
//!
//! Object format (`CSE1`): a 36-byte header — magic `CSE1`, a 24-byte nonce base, the plaintext
//! size (u64 LE) — then the plaintext in 64 KiB chunks, each sealed with XChaCha20-Poly1305 under
//! the nonce base with its chunk index XORed into the last 8 bytes, the header as associated data
//! (so chunks cannot be reordered, dropped or moved between objects). A whole-object upload draws
//! a random nonce base; a multipart upload derives it from the upload id (stable when a resumed
//! upload re-sends a part), and part boundaries fall on chunk boundaries, so every part is sealed
//! on its own.
//!
//! What the bucket still shows: paths, approximate sizes, times, and which objects have equal
//! content (the object metadata holds a keyed hash, HMAC-SHA256 of the plaintext SHA-256, rather
//! than the hash itself, so nobody without the key can test a guess of the content).
//!
//! The key's id (a keyed hash of the key) is recorded in `.cirrus-sync/encryption.json`; a device
//! whose key has another id refuses to sync rather than upload data others cannot read.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Plaintext bytes per sealed chunk.
pub const CHUNK: u64 = 64 * 1024;
const MAGIC: &[u8; 4] = b"CSE1";
const HEADER: usize = 4 + 24 + 8;
const TAG: usize = 16;
/// Name of the cipher in the bucket's encryption marker.
pub const CIPHER_NAME: &str = "xchacha20poly1305-chunked-64k";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("account key {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("account key {0} is not 64 hex digits (a 32-byte key)")]
    BadKey(String),
    #[error("{0}: not an encrypted object (or truncated)")]
    Format(String),
    #[error(
        "{0}: cannot be decrypted with this device's key (wrong key, or the object was tampered with)"
    )]
    Auth(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The account key and what is derived from it.
pub struct ContentCipher {
    aead: XChaCha20Poly1305,
    mac_key: [u8; 32],
    key_id: String,
}

impl std::fmt::Debug for ContentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentCipher")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

impl ContentCipher {
    pub fn from_key(key: [u8; 32]) -> Self {
        let enc = hmac(&key, &[b"cirrus-sync content key"]);
        let mac_key = hmac(&key, &[b"cirrus-sync tag key"]);
        let key_id = hex::encode(&hmac(&key, &[b"cirrus-sync key id"])[..8]);
        Self {
            aead: XChaCha20Poly1305::new(Key::from_slice(&enc)),
            mac_key,
            key_id,
        }
    }

    /// Reads the key file (64 hex digits), creating it with a fresh random key (mode 0600) if it
    /// does not exist. Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        let err = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim())
                    .map_err(|_| CryptoError::BadKey(path.display().to_string()))?;
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| CryptoError::BadKey(path.display().to_string()))?;
                Ok((Self::from_key(key), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(err)?;
                f.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                    .map_err(err)?;
                f.sync_all().map_err(err)?;
                Ok((Self::from_key(key), true))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Short public identifier of the key (a keyed hash: reveals nothing about the key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// What the object metadata records instead of the plaintext SHA-256.
    pub fn tag(&self, sha256_hex: &str) -> String {
        hex::encode(hmac(&self.mac_key, &[b"object", sha256_hex.as_bytes()]))
    }

    /// Size of the sealed object for `plain` plaintext bytes.
    pub fn sealed_len(plain: u64) -> u64 {
        HEADER as u64 + plain + TAG as u64 * plain.div_ceil(CHUNK).max(1)
    }

    fn header(base: &[u8; 24], size: u64) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(MAGIC);
        h[4..28].copy_from_slice(base);
        h[28..].copy_from_slice(&size.to_le_bytes());
        h
    }

    fn nonce(base: &[u8; 24], index: u64) -> XNonce {
        let mut n = *base;
        for (b, i) in n[16..].iter_mut().zip(index.to_le_bytes()) {
            *b ^= i;
        }
        *XNonce::from_slice(&n)
    }

    /// Seals the chunks of `plain`, which starts at chunk `first_chunk` of the object.
    fn seal_chunks(
        &self,
        header: &[u8; HEADER],
        first_chunk: u64,
        plain: &[u8],
        out: &mut Vec<u8>,
    ) {
        let base: [u8; 24] = header[4..28].try_into().unwrap_or([0; 24]);
        let mut chunks: Vec<&[u8]> = plain.chunks(CHUNK as usize).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (i, chunk) in chunks.into_iter().enumerate() {
            let start = out.len();
            out.extend_from_slice(chunk);
            let tag = self
                .aead
                .encrypt_in_place_detached(
                    &Self::nonce(&base, first_chunk + i as u64),
                    header,
                    &mut out[start..],
                )
                .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 seals any chunk of 64 KiB"));
            out.extend_from_slice(&tag);
        }
    }

    /// Seals a whole object (random nonce base).
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut base = [0u8; 24];
        rand::rng().fill_bytes(&mut base);
        let header = Self::header(&base, plain.len() as u64);
        let mut out = Vec::with_capacity(Self::sealed_len(plain.len() as u64) as usize);
        out.extend_from_slice(&header);
        self.seal_chunks(&header, 0, plain, &mut out);
        out
    }

    /// Seals one part of a multipart upload: `plain` starts at `offset` (a multiple of
    /// [`CHUNK`]) of a `total`-byte file; the first part carries the header.
    pub fn seal_part(&self, upload_id: &str, offset: u64, total: u64, plain: &[u8]) -> Vec<u8> {
        let mut base = [0u8; 24];
        base.copy_from_slice(
            &hmac(&self.mac_key, &[b"multipart nonce", upload_id.as_bytes()])[..24],
        );
        let header = Self::header(&base, total);
        let mut out =
            Vec::with_capacity(plain.len() + HEADER + TAG * (plain.len() / CHUNK as usize + 1));
        if offset == 0 {
            out.extend_from_slice(&header);
        }
        self.seal_chunks(&header, offset / CHUNK, plain, &mut out);
        out
    }

    /// Opens a whole sealed object held in memory.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        self.open_stream(name, &mut &sealed[..], &mut out)?;
        Ok(out)
    }

    /// Decrypts `src` into `dst` (created/truncated, fsynced); returns the plaintext SHA-256.
    pub fn open_file(&self, name: &str, src: &Path, dst: &Path) -> Result<String, CryptoError> {
        let io = |p: &Path| {
            let p: PathBuf = p.to_path_buf();
            move |source| CryptoError::Io {
                path: p.display().to_string(),
                source,
            }
        };
        let mut input = std::io::BufReader::with_capacity(
            256 * 1024,
            std::fs::File::open(src).map_err(io(src))?,
        );
        let file = std::fs::File::create(dst).map_err(io(dst))?;
        let mut output = std::io::BufWriter::with_capacity(256 * 1024, file);
        let sha = self.open_stream(name, &mut input, &mut output)?;
        let file = output.into_inner().map_err(|e| CryptoError::Io {
            path: dst.display().to_string(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(dst))?;
        Ok(sha)
    }

    fn open_stream(
        &self,
        name: &str,
        input: &mut impl Read,
        output: &mut impl Write,
    ) -> Result<String, CryptoError> {
        let format = || CryptoError::Format(name.to_owned());
        let out_err = |source| CryptoError::Io {
            path: name.to_owned(),
            source,
        };
        let mut header = [0u8; HEADER];
        input.read_exact(&mut header).map_err(|_| format())?;
        if &header[..4] != MAGIC {
            return Err(format());
        }
        let base: [u8; 24] = header[4..28].try_into().map_err(|_| format())?;
        let size = u64::from_le_bytes(header[28..].try_into().map_err(|_| format())?);
        let chunks = size.div_ceil(CHUNK).max(1);
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; CHUNK as usize + TAG];
        for i in 0..chunks {
            let len = (size - i * CHUNK).min(CHUNK) as usize;
            let chunk = &mut buf[..len + TAG];
            input.read_exact(chunk).map_err(|_| format())?;
            let (data, tag) = chunk.split_at_mut(len);
            let tag = *Tag::from_slice(tag);
            self.aead
                .decrypt_in_place_detached(&Self::nonce(&base, i), &header, data, &tag)
                .map_err(|_| CryptoError::Auth(name.to_owned()))?;
            sha.update(&*data);
            output.write_all(data).map_err(out_err)?;
        }
        let mut extra = [0u8; 1];
        if input.read(&mut extra).map_err(|_| format())? != 0 {
            return Err(format());
        }
        Ok(hex::encode(sha.finalize()))
    }
}

/// The bucket's record of which key encrypts it (`.cirrus-sync/encryption.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EncryptionMarker {
    pub format: u32,
    pub cipher: String,
    pub key_id: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn whole_objects_round_trip_and_hide_the_plaintext() {
        let c = ContentCipher::from_key([7; 32]);
        for len in [
            0,
            1,
            CHUNK as usize - 1,
            CHUNK as usize,
            CHUNK as usize + 1,
            3 * CHUNK as usize + 5,
        ] {
            let plain = data(len);
            let sealed = c.seal(&plain);
            assert_eq!(sealed.len() as u64, ContentCipher::sealed_len(len as u64));
            if len >= 16 {
                assert!(
                    !sealed.windows(16).any(|w| w == &plain[..16]),
                    "plaintext visible in the sealed object"
                );
            }
            assert_eq!(c.open("x", &sealed).unwrap(), plain);
            assert_ne!(c.seal(&plain), sealed, "nonce reused");
        }
    }

    #[test]
    fn multipart_parts_concatenate_to_one_object() {
        let c = ContentCipher::from_key([9; 32]);
        let part = 2 * CHUNK as usize;
        let plain = data(5 * CHUNK as usize + 100);
        let sealed: Vec<u8> = plain
            .chunks(part)
            .enumerate()
            .flat_map(|(i, p)| c.seal_part("upload-1", (i * part) as u64, plain.len() as u64, p))
            .collect();
        assert_eq!(
            sealed.len() as u64,
            ContentCipher::sealed_len(plain.len() as u64)
        );
        assert_eq!(c.open("x", &sealed).unwrap(), plain);
        // A resumed upload re-seals a part identically.
        assert_eq!(
            c.seal_part(
                "upload-1",
                part as u64,
                plain.len() as u64,
                &plain[part..2 * part]
            ),
            sealed[HEADER + part + 2 * TAG..HEADER + 2 * part + 4 * TAG]
        );
    }

    #[test]
    fn wrong_key_tampering_and_truncation_are_refused() {
        let c = ContentCipher::from_key([1; 32]);
        let other = ContentCipher::from_key([2; 32]);
        assert_ne!(c.key_id(), other.key_id());
        assert_ne!(c.tag("ab"), other.tag("ab"));
        let sealed = c.seal(&data(200_000));
        assert!(matches!(
            other.open("x", &sealed),
            Err(CryptoError::Auth(_))
        ));
        let mut flipped = sealed.clone();
        flipped[HEADER + 70_000] ^= 1;
        assert!(matches!(c.open("x", &flipped), Err(CryptoError::Auth(_))));
        assert!(matches!(
            c.open("x", &sealed[..sealed.len() - 1]),
            Err(CryptoError::Format(_))
        ));
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(c.open("x", &longer), Err(CryptoError::Format(_))));
        assert!(matches!(
            c.open("x", b"plain text"),
            Err(CryptoError::Format(_))
        ));
        // Changing the size in the header breaks every chunk's authentication.
        let mut resized = sealed;
        resized[28] ^= 1;
        assert!(c.open("x", &resized).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("keys/account.key");
        let (a, created) = ContentCipher::load_or_create(&p).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, created) = ContentCipher::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(a.key_id(), b.key_id());
        std::fs::write(&p, "not hex").unwrap();
        assert!(matches!(
            ContentCipher::load_or_create(&p),
            Err(CryptoError::BadKey(_))
        ));
    }
}
