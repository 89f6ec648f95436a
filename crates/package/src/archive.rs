//! The package archive: reading a zip under strict limits, writing a deterministic zip, signing
//! (ed25519 over a list of every entry's name, size and SHA-256) and verifying.
//!
//! The signature lives in the entry `META-INF/cirrus.sig` (JSON: the signed entry list, the
//! publisher's public key, the signature). Verification recomputes every entry's digest and
//! compares with the signed list, so an error names the entry that was modified, added or removed.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::keys::{DeveloperKey, KeyError, PublisherKey};
use crate::manifest::{AppKind, Manifest, ManifestError, Version, valid_entry_path};

/// The entry holding the signature (not itself covered by it).
pub const SIGNATURE_ENTRY: &str = "META-INF/cirrus.sig";
/// The manifest's entry name.
pub const MANIFEST_ENTRY: &str = "manifest.webmanifest";
const SIGNATURE_FORMAT: &str = "cirrus-package-signature-v1";

/// Limits against malicious archives (zip bombs, entry floods, path tricks).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_package_bytes: u64,
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio for an entry larger than 1 MiB.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_package_bytes: 256 << 20,
            max_entries: 4096,
            max_entry_bytes: 128 << 20,
            max_total_bytes: 256 << 20,
            max_ratio: 200,
        }
    }
}

/// Why a package is refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("not a zip archive: {0}")]
    NotAZip(String),
    #[error("package refused: {0}")]
    Limit(String),
    #[error(
        "entry name `{0}` is not allowed (absolute path, `..`, backslash or control character)"
    )]
    BadEntryName(String),
    #[error("entry `{0}` appears twice")]
    DuplicateEntry(String),
    #[error("entry `{0}` is {1}; packages hold only regular files")]
    NotAFile(String, &'static str),
    #[error("entry `{0}` could not be read: {1}")]
    Entry(String, String),
    #[error("the package has no manifest.webmanifest")]
    MissingManifest,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("the manifest's {field} names `{path}`, which is not in the package")]
    MissingFile { field: &'static str, path: String },
    #[error("the package is unsigned (no {SIGNATURE_ENTRY}): sign it with `cirrus app sign`")]
    Unsigned,
    #[error("the signature entry is malformed: {0}")]
    MalformedSignature(String),
    #[error("the signature's public key is unusable: {0}")]
    Key(#[from] KeyError),
    #[error(
        "the signature does not match its entry list: the package was altered after signing or signed wrongly"
    )]
    BadSignature,
    #[error("entry `{0}` was modified after signing (its SHA-256 differs from the signed one)")]
    EntryModified(String),
    #[error("entry `{0}` was added after signing (the signature does not cover it)")]
    EntryAdded(String),
    #[error("entry `{0}` was removed after signing")]
    EntryRemoved(String),
    #[error("could not write the package: {0}")]
    Write(String),
}

/// Why an update of an installed app is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpdateError {
    #[error(
        "downgrade refused: {id} {installed} is installed and the package is {offered}; uninstall first to go back"
    )]
    Downgrade {
        id: String,
        installed: String,
        offered: String,
    },
    #[error(
        "update refused: {id} is installed signed by key {installed}, the package is signed by a different key {offered}; only the original publisher can update it (uninstall first to replace it)"
    )]
    SignerChanged {
        id: String,
        installed: String,
        offered: String,
    },
}

/// One signed entry: name, size, SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SignedEntry {
    name: String,
    size: u64,
    sha256: String,
}

/// The JSON in `META-INF/cirrus.sig`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    format: String,
    algorithm: String,
    public_key: String,
    entries: Vec<SignedEntry>,
    signature: String,
}

/// The bytes the signature covers: a header line, then one `sha256 size name` line per entry in
/// name order (names cannot hold newlines).
fn signed_statement(entries: &[SignedEntry]) -> Vec<u8> {
    let mut out = format!("{SIGNATURE_FORMAT}\n").into_bytes();
    for e in entries {
        out.extend_from_slice(format!("{} {} {}\n", e.sha256, e.size, e.name).as_bytes());
    }
    out
}

/// A package's entries (without the signature), name → content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageContents {
    entries: BTreeMap<String, Vec<u8>>,
}

impl PackageContents {
    pub fn new() -> PackageContents {
        PackageContents::default()
    }

    /// Adds (or replaces) an entry; the name must be a safe relative path.
    pub fn insert(&mut self, name: &str, content: Vec<u8>) -> Result<(), PackageError> {
        if !valid_entry_path(name) || name == SIGNATURE_ENTRY {
            return Err(PackageError::BadEntryName(name.to_owned()));
        }
        self.entries.insert(name.to_owned(), content);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries.get(name).map(Vec::as_slice)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads a zip under `limits`. Returns the entries and the signature entry's bytes, if any.
    /// Directory entries are skipped when `skip_directories` (re-signing a hand-made zip) and
    /// refused otherwise (verification: everything in a package is covered by the signature).
    pub fn read_zip(
        bytes: &[u8],
        limits: &Limits,
        skip_directories: bool,
    ) -> Result<(PackageContents, Option<Vec<u8>>), PackageError> {
        if bytes.len() as u64 > limits.max_package_bytes {
            return Err(PackageError::Limit(format!(
                "the package is {} bytes; the limit is {}",
                bytes.len(),
                limits.max_package_bytes
            )));
        }
        let mut zip = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| PackageError::NotAZip(e.to_string()))?;
        if zip.len() > limits.max_entries {
            return Err(PackageError::Limit(format!(
                "{} entries; the limit is {}",
                zip.len(),
                limits.max_entries
            )));
        }
        let mut contents = PackageContents::new();
        let mut signature = None;
        let mut total: u64 = 0;
        for i in 0..zip.len() {
            let mut file = zip
                .by_index(i)
                .map_err(|e| PackageError::Entry(format!("#{i}"), e.to_string()))?;
            let name = file
                .name()
                .map_err(|e| PackageError::Entry(format!("#{i}"), e.to_string()))?
                .into_owned();
            if file.is_dir() {
                if skip_directories {
                    continue;
                }
                return Err(PackageError::NotAFile(name, "a directory"));
            }
            if file.is_symlink() {
                return Err(PackageError::NotAFile(name, "a symbolic link"));
            }
            if name != SIGNATURE_ENTRY && !valid_entry_path(&name) {
                return Err(PackageError::BadEntryName(name));
            }
            if contents.entries.contains_key(&name)
                || (name == SIGNATURE_ENTRY && signature.is_some())
            {
                return Err(PackageError::DuplicateEntry(name));
            }
            let declared = file.size();
            if declared > limits.max_entry_bytes {
                return Err(PackageError::Limit(format!(
                    "entry `{name}` is {declared} bytes; the limit is {}",
                    limits.max_entry_bytes
                )));
            }
            let compressed = file.compressed_size().max(1);
            if declared > (1 << 20) && declared / compressed > limits.max_ratio {
                return Err(PackageError::Limit(format!(
                    "entry `{name}` expands {}x (a zip bomb?); the limit is {}x",
                    declared / compressed,
                    limits.max_ratio
                )));
            }
            total = total.saturating_add(declared);
            if total > limits.max_total_bytes {
                return Err(PackageError::Limit(format!(
                    "the entries expand to more than {} bytes",
                    limits.max_total_bytes
                )));
            }
            // Never trust the declared size: read at most one byte more than it.
            let mut content = Vec::with_capacity(declared.min(1 << 20) as usize);
            (&mut file)
                .take(declared + 1)
                .read_to_end(&mut content)
                .map_err(|e| PackageError::Entry(name.clone(), e.to_string()))?;
            if content.len() as u64 != declared {
                return Err(PackageError::Entry(
                    name,
                    format!(
                        "holds {} bytes but its header says {declared}",
                        content.len()
                    ),
                ));
            }
            if name == SIGNATURE_ENTRY {
                signature = Some(content);
            } else {
                contents.entries.insert(name, content);
            }
        }
        Ok((contents, signature))
    }

    /// Parses the manifest and checks the files it names exist.
    pub fn manifest(&self) -> Result<Manifest, PackageError> {
        let bytes = self
            .get(MANIFEST_ENTRY)
            .ok_or(PackageError::MissingManifest)?;
        let manifest = Manifest::parse(bytes)?;
        for icon in &manifest.icons {
            if self.get(&icon.src).is_none() {
                return Err(PackageError::MissingFile {
                    field: "icons",
                    path: icon.src.clone(),
                });
            }
        }
        match manifest.cirrus.kind {
            AppKind::Wasm => {
                if self.get(manifest.component_path()).is_none() {
                    return Err(PackageError::MissingFile {
                        field: "cirrus.component",
                        path: manifest.component_path().to_owned(),
                    });
                }
            }
            AppKind::Web => {
                let start = manifest.start_url.as_deref().unwrap_or("index.html");
                let path = start.split(['?', '#']).next().unwrap_or("");
                if self.get(path).is_none() {
                    return Err(PackageError::MissingFile {
                        field: "start_url",
                        path: path.to_owned(),
                    });
                }
            }
        }
        Ok(manifest)
    }

    fn signed_entries(&self) -> Vec<SignedEntry> {
        self.entries
            .iter()
            .map(|(name, content)| SignedEntry {
                name: name.clone(),
                size: content.len() as u64,
                sha256: hex::encode(Sha256::digest(content)),
            })
            .collect()
    }

    /// Writes the signed package: a deterministic zip (entries in name order, fixed timestamps)
    /// with `META-INF/cirrus.sig` last. Checks the manifest first.
    pub fn sign(&self, key: &DeveloperKey) -> Result<Vec<u8>, PackageError> {
        self.manifest()?;
        let entries = self.signed_entries();
        let signature = key.signing_key().sign(&signed_statement(&entries));
        let file = SignatureFile {
            format: SIGNATURE_FORMAT.into(),
            algorithm: "ed25519".into(),
            public_key: key.public().to_base64(),
            entries,
            signature: BASE64.encode(signature.to_bytes()),
        };
        let sig_json =
            serde_json::to_vec_pretty(&file).map_err(|e| PackageError::Write(e.to_string()))?;
        let mut all: Vec<(&str, &[u8])> = self
            .entries
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        all.push((SIGNATURE_ENTRY, &sig_json));
        write_zip(&all)
    }

    /// Writes the entries as an unsigned zip (for tests and for `cirrus app pack --unsigned`).
    pub fn to_unsigned_zip(&self) -> Result<Vec<u8>, PackageError> {
        let all: Vec<(&str, &[u8])> = self
            .entries
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect();
        write_zip(&all)
    }
}

/// Writes `entries` (in the given order) as a zip with fixed timestamps.
pub fn write_zip(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, PackageError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        // Already-compressed formats are stored; the rest deflated.
        let stored = [".png", ".jpg", ".jpeg", ".webp", ".gz", ".zip"]
            .iter()
            .any(|ext| name.to_ascii_lowercase().ends_with(ext));
        let options = SimpleFileOptions::default()
            .compression_method(if stored {
                CompressionMethod::Stored
            } else {
                CompressionMethod::Deflated
            })
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        zip.start_file(*name, options)
            .map_err(|e| PackageError::Write(e.to_string()))?;
        zip.write_all(content)
            .map_err(|e| PackageError::Write(e.to_string()))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| PackageError::Write(e.to_string()))?;
    Ok(cursor.into_inner())
}

/// A package whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedPackage {
    pub manifest: Manifest,
    pub signer: PublisherKey,
    pub contents: PackageContents,
}

/// Reads and verifies a signed package: limits, signature, every entry's digest, the manifest.
pub fn verify(bytes: &[u8]) -> Result<VerifiedPackage, PackageError> {
    verify_with(bytes, &Limits::default())
}

/// [`verify`] with explicit limits.
pub fn verify_with(bytes: &[u8], limits: &Limits) -> Result<VerifiedPackage, PackageError> {
    let (contents, signature) = PackageContents::read_zip(bytes, limits, false)?;
    let signature = signature.ok_or(PackageError::Unsigned)?;
    let file: SignatureFile = serde_json::from_slice(&signature)
        .map_err(|e| PackageError::MalformedSignature(e.to_string()))?;
    if file.format != SIGNATURE_FORMAT || file.algorithm != "ed25519" {
        return Err(PackageError::MalformedSignature(format!(
            "unknown format `{}`/algorithm `{}`",
            file.format, file.algorithm
        )));
    }
    let signer = PublisherKey::parse(&file.public_key)?;
    let sig_bytes = BASE64
        .decode(&file.signature)
        .map_err(|e| PackageError::MalformedSignature(format!("signature base64: {e}")))?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| {
        PackageError::MalformedSignature(format!(
            "signature has {} bytes; ed25519 has 64",
            sig_bytes.len()
        ))
    })?;
    // The list must be in strict name order (no duplicates) so the statement is canonical.
    if file.entries.windows(2).any(|w| w[0].name >= w[1].name) {
        return Err(PackageError::MalformedSignature(
            "the entry list is not sorted by name or repeats a name".into(),
        ));
    }
    signer
        .0
        .verify_strict(&signed_statement(&file.entries), &sig)
        .map_err(|_| PackageError::BadSignature)?;
    // The signed list is authentic: compare it with what the archive holds.
    let signed: BTreeMap<&str, &SignedEntry> =
        file.entries.iter().map(|e| (e.name.as_str(), e)).collect();
    for (name, content) in &contents.entries {
        let Some(expected) = signed.get(name.as_str()) else {
            return Err(PackageError::EntryAdded(name.clone()));
        };
        if expected.size != content.len() as u64
            || expected.sha256 != hex::encode(Sha256::digest(content))
        {
            return Err(PackageError::EntryModified(name.clone()));
        }
    }
    if let Some(missing) = file
        .entries
        .iter()
        .find(|e| !contents.entries.contains_key(&e.name))
    {
        return Err(PackageError::EntryRemoved(missing.name.clone()));
    }
    let manifest = contents.manifest()?;
    Ok(VerifiedPackage {
        manifest,
        signer,
        contents,
    })
}

/// Checks that `package` may replace an installed app of the same id at `installed_version` signed
/// by `installed_signer`: never a lower version, never a different key.
pub fn check_update(
    installed_version: &Version,
    installed_signer: &PublisherKey,
    package: &VerifiedPackage,
) -> Result<(), UpdateError> {
    let id = package.manifest.cirrus.id.clone();
    if package.signer != *installed_signer {
        return Err(UpdateError::SignerChanged {
            id,
            installed: installed_signer.fingerprint(),
            offered: package.signer.fingerprint(),
        });
    }
    if package.manifest.cirrus.version < *installed_version {
        return Err(UpdateError::Downgrade {
            id,
            installed: installed_version.to_string(),
            offered: package.manifest.cirrus.version.to_string(),
        });
    }
    Ok(())
}
