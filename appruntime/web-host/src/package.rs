//! The app's verified package, held in memory, and what `app://<id>/…` serves from it.
//!
//! At start the host reads the package file the app manager kept at install, verifies it again with
//! `cirrus-package` (signature, every entry's digest, the manifest) and checks it is the app it was
//! told to run, signed by the key the manager recorded: nothing on disk is trusted blindly. Every
//! request is then answered from the verified entries only: a URL names an entry by its
//! percent-decoded path, which must be a valid package path (no `..`, no absolute path, no
//! backslash) of this app's id; anything else is a 404. There is no file system behind the scheme.

use std::path::Path;

use cirrus_package::{
    MANIFEST_ENTRY, Manifest, PackageContents, PackageError, PublisherKey, valid_entry_path, verify,
};
use percent_encoding::percent_decode_str;

/// The scheme web apps are served from (`app://<id>/path`).
pub const SCHEME: &str = "app";

/// Why the package cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("reading the package {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the package {path} does not verify: {source}")]
    Verify { path: String, source: PackageError },
    #[error("the package is the app `{found}`, not `{expected}`: reinstall the app")]
    WrongApp { expected: String, found: String },
    #[error(
        "the package of {id} is signed by another key than the installed app's: reinstall the app"
    )]
    WrongSigner { id: String },
    #[error("the installed signer key of {id} is unreadable: {message}")]
    BadSigner { id: String, message: String },
    #[error("{id} is a `{kind}` app, not a web app")]
    NotWeb { id: String, kind: String },
    #[error("the manifest of {id} is not JSON: {message}")]
    RawManifest { id: String, message: String },
}

/// The verified package of one web app.
#[derive(Debug)]
pub struct AppPackage {
    pub manifest: Manifest,
    /// The manifest as JSON (extension members such as `content_security_policy`).
    pub raw_manifest: serde_json::Value,
    contents: PackageContents,
}

/// What one `app://` request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource<'a> {
    pub status: u16,
    pub mime: &'static str,
    pub body: &'a [u8],
}

const NOT_FOUND: &[u8] = b"Not found\n";

impl AppPackage {
    /// Reads and verifies the package at `path`: it must be app `id`, signed by `signer` (base64,
    /// as the app manager records it).
    pub fn open(path: &Path, id: &str, signer: &str) -> Result<AppPackage, OpenError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| OpenError::Read {
            path: shown.clone(),
            source,
        })?;
        let pkg = verify(&bytes).map_err(|source| OpenError::Verify {
            path: shown,
            source,
        })?;
        if pkg.manifest.cirrus.id != id {
            return Err(OpenError::WrongApp {
                expected: id.to_owned(),
                found: pkg.manifest.cirrus.id.clone(),
            });
        }
        let expected = PublisherKey::parse(signer).map_err(|e| OpenError::BadSigner {
            id: id.to_owned(),
            message: e.to_string(),
        })?;
        if pkg.signer != expected {
            return Err(OpenError::WrongSigner { id: id.to_owned() });
        }
        Self::from_verified(pkg.manifest, pkg.contents)
    }

    /// A package whose verification already happened (tests build them in memory).
    pub fn from_verified(
        manifest: Manifest,
        contents: PackageContents,
    ) -> Result<AppPackage, OpenError> {
        let id = manifest.cirrus.id.clone();
        if manifest.cirrus.kind != cirrus_package::AppKind::Web {
            return Err(OpenError::NotWeb {
                id,
                kind: manifest.cirrus.kind.as_str().to_owned(),
            });
        }
        let raw_manifest = serde_json::from_slice(contents.get(MANIFEST_ENTRY).unwrap_or_default())
            .map_err(|e| OpenError::RawManifest {
                id,
                message: e.to_string(),
            })?;
        Ok(AppPackage {
            manifest,
            raw_manifest,
            contents,
        })
    }

    pub fn id(&self) -> &str {
        &self.manifest.cirrus.id
    }

    /// The app's origin, `app://<id>`.
    pub fn origin(&self) -> String {
        format!("{SCHEME}://{}", self.id())
    }

    /// The URL the app opens at (the manifest's `start_url`, default `index.html`).
    pub fn start_url(&self) -> String {
        let start = self.manifest.start_url.as_deref().unwrap_or("index.html");
        format!("{}/{}", self.origin(), start.trim_start_matches('/'))
    }

    /// Answers a request for `uri`: the entry it names with its MIME type, or a 404.
    pub fn resolve(&self, uri: &str) -> Resource<'_> {
        match self.entry_name(uri) {
            Some(name) => match self.contents.get(&name) {
                Some(body) => Resource {
                    status: 200,
                    mime: mime_type(&name),
                    body,
                },
                None => not_found(),
            },
            None => not_found(),
        }
    }

    /// The package entry `uri` names, if it is a well-formed URL of this app.
    fn entry_name(&self, uri: &str) -> Option<String> {
        let rest = uri.strip_prefix(SCHEME)?.strip_prefix("://")?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        // Only this app's own origin (no user info, no port, no other app's id).
        if !host.eq_ignore_ascii_case(self.id()) {
            return None;
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        let decoded = percent_decode_str(path).decode_utf8().ok()?;
        let mut name = decoded.into_owned();
        if name.is_empty() || name.ends_with('/') {
            name.push_str("index.html");
        }
        valid_entry_path(&name).then_some(name)
    }
}

fn not_found() -> Resource<'static> {
    Resource {
        status: 404,
        mime: "text/plain; charset=utf-8",
        body: NOT_FOUND,
    }
}

/// The MIME type of a package entry, from its extension (what browsers need: scripts and module
/// scripts are refused under `nosniff` without a JavaScript type, wasm needs its own for
/// `instantiateStreaming`).
pub fn mime_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cirrus_package::DeveloperKey;

    fn contents(id: &str) -> PackageContents {
        let manifest = serde_json::json!({
            "name": "Demo", "start_url": "index.html",
            "cirrus": {"id": id, "version": "1.0.0", "kind": "web"}
        });
        let mut c = PackageContents::new();
        c.insert(MANIFEST_ENTRY, serde_json::to_vec(&manifest).unwrap())
            .unwrap();
        c.insert("index.html", b"<p>hi</p>".to_vec()).unwrap();
        c.insert("js/app.mjs", b"export {}".to_vec()).unwrap();
        c.insert("a b.css", b"p{}".to_vec()).unwrap();
        c
    }

    fn package() -> AppPackage {
        let c = contents("org.test.demo");
        AppPackage::from_verified(c.manifest().unwrap(), c).unwrap()
    }

    #[test]
    fn serves_entries_with_their_types() {
        let p = package();
        let r = p.resolve("app://org.test.demo/index.html");
        assert_eq!(
            (r.status, r.mime, r.body),
            (200, "text/html; charset=utf-8", &b"<p>hi</p>"[..])
        );
        assert_eq!(p.resolve("app://org.test.demo/").body, b"<p>hi</p>");
        assert_eq!(p.resolve("app://org.test.demo").body, b"<p>hi</p>");
        assert_eq!(
            p.resolve("app://org.test.demo/index.html?x=1#y").status,
            200
        );
        let js = p.resolve("app://org.test.demo/js/app.mjs");
        assert_eq!(js.mime, "text/javascript; charset=utf-8");
        assert_eq!(p.resolve("app://org.test.demo/a%20b.css").status, 200);
        assert_eq!(p.start_url(), "app://org.test.demo/index.html");
    }

    #[test]
    fn nothing_outside_the_package_or_of_another_app() {
        let p = package();
        for uri in [
            "app://org.test.demo/..%2f..%2fetc%2fpasswd",
            "app://org.test.demo/%2e%2e/index.html",
            "app://org.test.demo/js/..%2findex.html",
            "app://org.test.demo/%2Fetc%2Fpasswd",
            "app://org.test.demo//etc/passwd",
            "app://org.test.demo/js%5c..%5cindex.html",
            "app://org.test.other/index.html",
            "app://user@org.test.demo/index.html",
            "app://org.test.demo:80/index.html",
            "file:///etc/passwd",
            "app://org.test.demo/missing.html",
            "app://org.test.demo/%ff.html",
        ] {
            assert_eq!(p.resolve(uri).status, 404, "{uri}");
        }
    }

    #[test]
    fn open_verifies_id_and_signer() {
        let dir = tempfile::tempdir().unwrap();
        let key = DeveloperKey::generate();
        let path = dir.path().join("app.cpkg");
        std::fs::write(&path, contents("org.test.demo").sign(&key).unwrap()).unwrap();
        let signer = key.public().to_base64();
        assert_eq!(
            AppPackage::open(&path, "org.test.demo", &signer)
                .unwrap()
                .id(),
            "org.test.demo"
        );
        let other = DeveloperKey::generate().public().to_base64();
        assert!(matches!(
            AppPackage::open(&path, "org.test.demo", &other),
            Err(OpenError::WrongSigner { .. })
        ));
        assert!(matches!(
            AppPackage::open(&path, "org.test.other", &signer),
            Err(OpenError::WrongApp { .. })
        ));
        // A modified entry: the signature no longer covers it.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(9)
            .position(|w| w == b"<p>hi</p>")
            .map_or(bytes.len() / 3, |at| at + 3);
        bytes[at] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(
            AppPackage::open(&path, "org.test.demo", &signer),
            Err(OpenError::Verify { .. })
        ));
    }
}
