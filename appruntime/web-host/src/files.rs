//! `navigator.cirrus.files` (`files-api.js`): the user's files for web apps holding the
//! `user-files` permission. The host maps the permission to one directory (`--user-files DIR`,
//! `/data/user/0` on the device, which cloud sync mirrors) and lets the page list, read, write,
//! rename and remove text files below it, and nothing else:
//!
//! - Paths are relative, `/`-separated, at most [`MAX_PATH_BYTES`] bytes and [`MAX_DEPTH`]
//!   components; a component is 1–255 bytes, not `.`/`..`, does not start with `.` (hidden files
//!   such as sync state are not the app's), and has no control characters or backslashes.
//! - Every existing directory on the way must be a real directory (a symbolic link is refused, so
//!   nothing outside the tree is reachable through one), and files are opened with `O_NOFOLLOW`.
//! - Files are UTF-8 text of at most [`MAX_FILE_BYTES`]; writes go to a temporary file renamed
//!   over the old one (a reader or the sync engine never sees half a note). New files are 0660 and
//!   new directories 02770: on the device the tree belongs to the user-files group the manager
//!   gives the app (setgid directories keep new entries in it), so every app holding the
//!   permission can change them.
//!
//! Messages arrive through their own script message handler (`cirrusFiles`), registered only for
//! apps holding the permission; answers go back through `window.__cirrusFiles.reply`.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Serialize;

/// The script message handler's name (`window.webkit.messageHandlers.cirrusFiles`).
pub const HANDLER: &str = "cirrusFiles";
/// The permission that gives an app the API.
pub const PERMISSION: &str = "user-files";
/// Largest file read or written.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Largest message from a page (a write of the largest file, JSON-escaped).
pub const MAX_MESSAGE_BYTES: usize = 6 * MAX_FILE_BYTES + 4096;
pub const MAX_PATH_BYTES: usize = 1024;
pub const MAX_DEPTH: usize = 16;
/// Entries a listing returns at most.
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// Why a request failed; `name()` is the `Error.name` the page's promise rejects with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilesError {
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("not UTF-8 text: {0}")]
    NotText(String),
    #[error("{0}")]
    Io(String),
}

impl FilesError {
    pub fn name(&self) -> &'static str {
        match self {
            FilesError::InvalidPath(_) => "InvalidPathError",
            FilesError::NotFound(_) => "NotFoundError",
            FilesError::AlreadyExists(_) => "AlreadyExistsError",
            FilesError::TooLarge(_) => "TooLargeError",
            FilesError::NotText(_) => "EncodingError",
            FilesError::Io(_) => "IOError",
        }
    }
}

fn io_error(path: &str, e: &std::io::Error) -> FilesError {
    match e.kind() {
        std::io::ErrorKind::NotFound => FilesError::NotFound(path.to_owned()),
        std::io::ErrorKind::AlreadyExists => FilesError::AlreadyExists(path.to_owned()),
        _ if e.raw_os_error() == Some(libc::ELOOP) => {
            FilesError::InvalidPath(format!("{path} is a symbolic link"))
        }
        _ => FilesError::Io(format!("{path}: {e}")),
    }
}

/// Checks a page-supplied path and splits it into components. `""` is the root (only where
/// `allow_root`).
pub fn validate(path: &str, allow_root: bool) -> Result<Vec<&str>, FilesError> {
    let bad = |why: &str| FilesError::InvalidPath(format!("`{}`: {why}", shown(path)));
    if path.is_empty() {
        return if allow_root {
            Ok(Vec::new())
        } else {
            Err(bad("empty"))
        };
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(bad("longer than 1024 bytes"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(bad("more than 16 levels"));
    }
    for part in &parts {
        if part.is_empty() {
            return Err(bad("absolute, or an empty component"));
        }
        if *part == "." || *part == ".." {
            return Err(bad("`.` and `..` are not allowed"));
        }
        if part.starts_with('.') {
            return Err(bad("hidden names (starting with `.`) are not allowed"));
        }
        if part.len() > 255 {
            return Err(bad("a name longer than 255 bytes"));
        }
        if part.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("control characters and backslashes are not allowed"));
        }
    }
    Ok(parts)
}

/// A path as shown in an error: printable, at most 80 characters.
fn shown(path: &str) -> String {
    path.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    /// `file` or `directory`.
    pub kind: &'static str,
    pub size: u64,
    /// Last modification, milliseconds since the epoch.
    pub modified: u64,
}

/// The user's files as one app may see them.
#[derive(Debug, Clone)]
pub struct UserFiles {
    root: PathBuf,
}

impl UserFiles {
    pub fn new(root: impl Into<PathBuf>) -> UserFiles {
        UserFiles { root: root.into() }
    }

    /// The path of `parts`, after checking every existing directory on the way (the root
    /// included) is a directory and not a symbolic link. `parents_only`: the last component is
    /// not checked (it is what is opened, listed or created).
    fn resolve(
        &self,
        shown: &str,
        parts: &[&str],
        parents_only: bool,
    ) -> Result<PathBuf, FilesError> {
        let mut path = self.root.clone();
        check_dir(&path, shown)?;
        let upto = if parents_only {
            parts.len().saturating_sub(1)
        } else {
            parts.len()
        };
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            if i < upto {
                check_dir(&path, shown)?;
            }
        }
        Ok(path)
    }

    /// The entries of directory `dir` (`""`: the root), sorted by name; hidden entries and
    /// anything that is not a file or directory are left out. A directory that does not exist
    /// lists as empty.
    pub fn list(&self, dir: &str) -> Result<Vec<Entry>, FilesError> {
        let parts = validate(dir, true)?;
        let path = match self.resolve(dir, &parts, false) {
            Ok(p) => p,
            Err(FilesError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(dir, &e)),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || validate(&name, false).is_err() {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let kind = if meta.file_type().is_file() {
                "file"
            } else if meta.file_type().is_dir() {
                "directory"
            } else {
                continue;
            };
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            out.push(Entry {
                name,
                kind,
                size: meta.len(),
                modified,
            });
            if out.len() >= MAX_LIST_ENTRIES {
                break;
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The text of file `path`.
    pub fn read(&self, path: &str) -> Result<String, FilesError> {
        let parts = validate(path, false)?;
        let full = self.resolve(path, &parts, true)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&full)
            .map_err(|e| io_error(path, &e))?;
        let meta = file.metadata().map_err(|e| io_error(path, &e))?;
        if !meta.is_file() {
            return Err(FilesError::InvalidPath(format!(
                "`{}` is not a file",
                shown(path)
            )));
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(path, &e))?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(FilesError::TooLarge(format!(
                "{} is larger than 1 MiB",
                shown(path)
            )));
        }
        String::from_utf8(bytes).map_err(|_| FilesError::NotText(shown(path)))
    }

    /// Writes `text` to `path` (replacing it), creating missing parent directories.
    pub fn write(&self, path: &str, text: &str) -> Result<(), FilesError> {
        let parts = validate(path, false)?;
        if text.len() > MAX_FILE_BYTES {
            return Err(FilesError::TooLarge(format!(
                "{} bytes (limit 1 MiB)",
                text.len()
            )));
        }
        let full = self.make_parents(path, &parts)?;
        if let Ok(meta) = std::fs::symlink_metadata(&full)
            && !meta.is_file()
        {
            return Err(FilesError::InvalidPath(format!(
                "`{}` is not a file",
                shown(path)
            )));
        }
        let parent = full
            .parent()
            .ok_or_else(|| FilesError::InvalidPath(shown(path)))?;
        let tmp = parent.join(format!(".cirrus-write-{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o660)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o660))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &full)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(path, &e));
        }
        Ok(())
    }

    /// Renames file or directory `from` to `to` (which must not exist), creating `to`'s parents.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FilesError> {
        let from_parts = validate(from, false)?;
        let to_parts = validate(to, false)?;
        let src = self.resolve(from, &from_parts, true)?;
        let meta = std::fs::symlink_metadata(&src).map_err(|e| io_error(from, &e))?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(FilesError::InvalidPath(format!(
                "`{}` is not a file",
                shown(from)
            )));
        }
        let dst = self.make_parents(to, &to_parts)?;
        // RENAME_NOREPLACE: never overwrite what is there, even if it appeared just now.
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok();
        let (Some(a), Some(b)) = (c(&src), c(&dst)) else {
            return Err(FilesError::InvalidPath(shown(to)));
        };
        // SAFETY: two NUL-terminated paths that live across the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                FilesError::AlreadyExists(shown(to))
            } else {
                io_error(from, &e)
            });
        }
        Ok(())
    }

    /// Removes file `path`, or directory `path` if it is empty.
    pub fn remove(&self, path: &str) -> Result<(), FilesError> {
        let parts = validate(path, false)?;
        let full = self.resolve(path, &parts, true)?;
        let meta = std::fs::symlink_metadata(&full).map_err(|e| io_error(path, &e))?;
        let result = if meta.is_dir() {
            std::fs::remove_dir(&full)
        } else if meta.is_file() {
            std::fs::remove_file(&full)
        } else {
            return Err(FilesError::InvalidPath(format!(
                "`{}` is not a file",
                shown(path)
            )));
        };
        result.map_err(|e| io_error(path, &e))
    }

    /// Creates the missing parent directories of `parts` (02770) and returns the full path.
    fn make_parents(&self, shown_path: &str, parts: &[&str]) -> Result<PathBuf, FilesError> {
        let mut path = self.root.clone();
        check_dir(&path, shown_path)?;
        for part in &parts[..parts.len().saturating_sub(1)] {
            path.push(part);
            match std::fs::DirBuilder::new().mode(0o770).create(&path) {
                Ok(()) => {
                    // Group-writable and setgid: entries stay in the user-files group (the
                    // setgid bit only holds where this process is in the directory's group).
                    let _ =
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o2770));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(shown_path, &e)),
            }
            check_dir(&path, shown_path)?;
        }
        if let Some(last) = parts.last() {
            path.push(last);
        }
        Ok(path)
    }
}

/// `path` must be a directory, not a symbolic link.
fn check_dir(path: &Path, shown_path: &str) -> Result<(), FilesError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_error(shown_path, &e))?;
    if meta.file_type().is_symlink() {
        return Err(FilesError::InvalidPath(format!(
            "`{}` goes through a symbolic link",
            shown(shown_path)
        )));
    }
    if !meta.is_dir() {
        return Err(FilesError::InvalidPath(format!(
            "`{}` goes through a file",
            shown(shown_path)
        )));
    }
    Ok(())
}

/// A valid request from a page: `(request id, operation)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    List { dir: String },
    Read { path: String },
    Write { path: String, text: String },
    Rename { from: String, to: String },
    Remove { path: String },
}

/// Parses one message posted to the `cirrusFiles` handler.
pub fn parse_request(text: &str) -> Result<(u32, Request), String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(format!("the message is {} bytes", text.len()));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let id = object
        .get("id")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or("field `id` is missing or not a number")?;
    let field = |name: &str| -> Result<String, String> {
        object
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("field `{name}` is missing or not a string"))
    };
    let op = object.get("op").and_then(|v| v.as_str()).unwrap_or("");
    let request = match op {
        "list" => Request::List {
            dir: field("path")?,
        },
        "read" => Request::Read {
            path: field("path")?,
        },
        "write" => Request::Write {
            path: field("path")?,
            text: field("text")?,
        },
        "rename" => Request::Rename {
            from: field("path")?,
            to: field("to")?,
        },
        "remove" => Request::Remove {
            path: field("path")?,
        },
        other => return Err(format!("unknown operation `{}`", shown(other))),
    };
    Ok((id, request))
}

/// Carries out a request: the JSON value to resolve with, or the error to reject with.
pub fn handle(files: &UserFiles, request: &Request) -> Result<serde_json::Value, FilesError> {
    match request {
        Request::List { dir } => {
            let entries = files.list(dir)?;
            serde_json::to_value(entries).map_err(|e| FilesError::Io(e.to_string()))
        }
        Request::Read { path } => files.read(path).map(serde_json::Value::from),
        Request::Write { path, text } => files.write(path, text).map(|()| serde_json::Value::Null),
        Request::Rename { from, to } => files.rename(from, to).map(|()| serde_json::Value::Null),
        Request::Remove { path } => files.remove(path).map(|()| serde_json::Value::Null),
    }
}

/// The host → page answer to request `id`.
pub fn reply_call(id: u32, result: &Result<serde_json::Value, FilesError>) -> String {
    let (ok, value) = match result {
        Ok(v) => (true, v.clone()),
        Err(e) => (
            false,
            serde_json::json!({"name": e.name(), "message": e.to_string()}),
        ),
    };
    format!("window.__cirrusFiles && window.__cirrusFiles.reply({id}, {ok}, {value});")
}

/// The page script adding `navigator.cirrus.files` (injected after the Cirrus API).
pub fn user_script() -> &'static str {
    include_str!("files-api.js")
}

/// Gives the pages of `origin` in `view` the API over `root`: the page script, and the
/// `cirrusFiles` handler answering only the app's own pages. Call before the first load.
pub fn attach(
    content: &webkit2gtk::UserContentManager,
    view: &webkit2gtk::WebView,
    root: &Path,
    origin: &str,
    app_id: &str,
) {
    use gtk::gio;
    use javascriptcore::ValueExt;
    use webkit2gtk::{
        UserContentInjectedFrames, UserContentManagerExt, UserScript, UserScriptInjectionTime,
        WebViewExt,
    };
    let own_pages = format!("{origin}/*");
    content.add_script(&UserScript::new(
        user_script(),
        UserContentInjectedFrames::TopFrame,
        UserScriptInjectionTime::Start,
        &[own_pages.as_str()],
        &[],
    ));
    content.register_script_message_handler(HANDLER);
    let files = UserFiles::new(root);
    let view = view.clone();
    let origin = origin.to_owned();
    let id = app_id.to_owned();
    content.connect_script_message_received(Some(HANDLER), move |_, result| {
        let page = view.uri().map(|u| u.to_string()).unwrap_or_default();
        if !page.starts_with(&format!("{origin}/")) {
            tracing::warn!(app = %id, %page, "files request from a page outside the app dropped");
            return;
        }
        let text = result
            .js_value()
            .map(|v| v.to_str().to_string())
            .unwrap_or_default();
        let (request, op) = match parse_request(&text) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(app = %id, "files request dropped: {e}");
                return;
            }
        };
        let answer = handle(&files, &op);
        if let Err(e) = &answer {
            tracing::info!(app = %id, "files: {e}");
        }
        view.evaluate_javascript(
            &reply_call(request, &answer),
            None,
            None,
            None::<&gio::Cancellable>,
            |_| {},
        );
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths_pass() {
        assert_eq!(validate("", true).unwrap(), Vec::<&str>::new());
        assert_eq!(
            validate("Documents/Notes/Shopping list.md", false).unwrap(),
            ["Documents", "Notes", "Shopping list.md"]
        );
        assert_eq!(validate("é ü 日本.md", false).unwrap(), ["é ü 日本.md"]);
    }

    #[test]
    fn escaping_and_odd_paths_are_refused() {
        let long_name = "a".repeat(256);
        let deep = vec!["d"; 17].join("/");
        let long_path = vec!["abcdefghij"; 100].join("/");
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "Documents/../../etc",
            "Documents/./x",
            "a//b",
            "a/",
            ".hidden",
            "Documents/.cirrus-sync",
            "a\\..\\b",
            "a\nb",
            "a\0b",
            long_name.as_str(),
            deep.as_str(),
            long_path.as_str(),
        ] {
            assert!(
                matches!(validate(bad, false), Err(FilesError::InvalidPath(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(validate("/", true).is_err());
    }

    #[test]
    fn write_read_list_rename_remove() {
        let dir = tempfile::tempdir().unwrap();
        let files = UserFiles::new(dir.path());
        assert_eq!(files.list("Documents/Notes").unwrap(), vec![]);
        files.write("Documents/Notes/a.md", "# A\nbody").unwrap();
        assert_eq!(files.read("Documents/Notes/a.md").unwrap(), "# A\nbody");
        files.write("Documents/Notes/a.md", "# A\nnew").unwrap();
        assert_eq!(files.read("Documents/Notes/a.md").unwrap(), "# A\nnew");
        let listed = files.list("Documents/Notes").unwrap();
        assert_eq!(listed.len(), 1, "{listed:?} (no temporary file left)");
        assert_eq!((listed[0].name.as_str(), listed[0].kind), ("a.md", "file"));
        assert_eq!(files.list("Documents").unwrap()[0].kind, "directory");
        let mode = std::fs::metadata(dir.path().join("Documents/Notes/a.md"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o660);

        files.write("Documents/Notes/b.md", "b").unwrap();
        assert_eq!(
            files.rename("Documents/Notes/a.md", "Documents/Notes/b.md"),
            Err(FilesError::AlreadyExists("Documents/Notes/b.md".into()))
        );
        files
            .rename("Documents/Notes/a.md", "Documents/Notes/c.md")
            .unwrap();
        assert!(matches!(
            files.read("Documents/Notes/a.md"),
            Err(FilesError::NotFound(_))
        ));
        files.remove("Documents/Notes/c.md").unwrap();
        files.remove("Documents/Notes/b.md").unwrap();
        files.remove("Documents/Notes").unwrap();
        assert!(matches!(
            files.remove("Documents/Notes"),
            Err(FilesError::NotFound(_))
        ));
    }

    #[test]
    fn limits_and_non_text() {
        let dir = tempfile::tempdir().unwrap();
        let files = UserFiles::new(dir.path());
        let big = "x".repeat(MAX_FILE_BYTES + 1);
        assert!(matches!(
            files.write("big.txt", &big),
            Err(FilesError::TooLarge(_))
        ));
        std::fs::write(dir.path().join("big.txt"), big.as_bytes()).unwrap();
        assert!(matches!(
            files.read("big.txt"),
            Err(FilesError::TooLarge(_))
        ));
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(files.read("bin"), Err(FilesError::NotText(_))));
        // A directory is not read as a file, and a file is not a directory on the way.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert!(files.read("d").is_err());
        assert!(matches!(
            files.write("bin/x.md", "x"),
            Err(FilesError::InvalidPath(_))
        ));
    }

    #[test]
    fn symbolic_links_lead_nowhere() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "outside").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("file-link"))
            .unwrap();
        let files = UserFiles::new(dir.path());
        assert!(matches!(
            files.read("link/secret"),
            Err(FilesError::InvalidPath(_))
        ));
        assert!(matches!(
            files.list("link"),
            Err(FilesError::InvalidPath(_))
        ));
        assert!(matches!(
            files.write("link/new.md", "x"),
            Err(FilesError::InvalidPath(_))
        ));
        assert!(files.read("file-link").is_err());
        assert!(files.write("file-link", "overwritten").is_err());
        assert!(files.rename("link", "moved").is_err());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "outside"
        );
        assert!(!outside.path().join("new.md").exists());
        // Listings leave links out.
        assert_eq!(files.list("").unwrap(), vec![]);
    }

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(
            parse_request(r#"{"id":3,"op":"write","path":"a.md","text":"hi"}"#).unwrap(),
            (
                3,
                Request::Write {
                    path: "a.md".into(),
                    text: "hi".into()
                }
            )
        );
        assert_eq!(
            parse_request(r#"{"id":1,"op":"rename","path":"a","to":"b"}"#).unwrap(),
            (
                1,
                Request::Rename {
                    from: "a".into(),
                    to: "b".into()
                }
            )
        );
        for bad in [
            "",
            "[]",
            r#"{"op":"list","path":""}"#,
            r#"{"id":-1,"op":"list","path":""}"#,
            r#"{"id":1,"op":"chmod","path":"a"}"#,
            r#"{"id":1,"op":"read"}"#,
            r#"{"id":1,"op":"write","path":"a"}"#,
            r#"{"id":1,"op":"read","path":5}"#,
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
        let reply = reply_call(4, &Err(FilesError::NotFound("x".into())));
        assert!(
            reply.contains("reply(4, false,") && reply.contains("NotFoundError"),
            "{reply}"
        );
    }
}
