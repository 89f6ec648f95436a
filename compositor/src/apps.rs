//! Apps the launcher shows, from freedesktop `.desktop` entries (until the app manager exists), and
//! launching them as Wayland clients of this compositor.
//!
//! Entries come from `<data dir>/applications/*.desktop` (Debian packages put theirs in
//! `/usr/share/applications`); icons from `<data dir>/icons/hicolor/<size>/apps/<name>.png` or
//! `<data dir>/pixmaps/<name>.png` (PNG only; an app without one gets a lettered tile).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cirrus_ui::tiny_skia::Pixmap;

/// Largest `.desktop` file read (real ones are a few KiB).
const MAX_ENTRY_BYTES: u64 = 256 * 1024;
/// Largest icon file read.
const MAX_ICON_BYTES: u64 = 4 * 1024 * 1024;
/// Icon sizes searched, best first.
const ICON_SIZES: &[&str] = &[
    "256x256", "192x192", "128x128", "96x96", "72x72", "64x64", "48x48", "32x32",
];

/// One launchable app.
#[derive(Debug, Clone)]
pub struct AppEntry {
    /// Desktop file id (file name without `.desktop`).
    pub id: String,
    pub name: String,
    /// Program and arguments, field codes removed.
    pub exec: Vec<String>,
    pub icon: Option<Pixmap>,
}

/// Why a `.desktop` file is not shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Not an error: the entry asks not to be shown (NoDisplay, Hidden, not an Application, terminal app).
    #[error("{path}: not shown ({reason})")]
    NotShown { path: String, reason: &'static str },
}

/// Parses the `[Desktop Entry]` group of a `.desktop` file.
pub fn parse_desktop_entry(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, String>, EntryError> {
    let shown = path.display().to_string();
    let mut in_main = false;
    let mut seen_main = false;
    let mut keys = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            if !line.ends_with(']') {
                return Err(EntryError::Syntax {
                    path: shown,
                    line: i + 1,
                    message: format!("unterminated group header `{line}`"),
                });
            }
            in_main = line == "[Desktop Entry]";
            seen_main |= in_main;
            continue;
        }
        if !in_main {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(EntryError::Syntax {
                path: shown,
                line: i + 1,
                message: format!("expected KEY=VALUE, found `{line}`"),
            });
        };
        keys.entry(key.trim().to_owned())
            .or_insert_with(|| value.trim().to_owned());
    }
    if !seen_main {
        return Err(EntryError::Invalid {
            path: shown,
            message: "no [Desktop Entry] group".into(),
        });
    }
    Ok(keys)
}

/// Splits an `Exec` value into arguments (quotes and backslash escapes as the spec says) and drops
/// field codes (`%f`, `%U`, …; `%%` is a literal `%`).
pub fn split_exec(exec: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    let mut chars = exec.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            '\\' if quoted => match chars.next() {
                Some(e) => current.push(e),
                None => return Err("Exec ends with a lone backslash".into()),
            },
            ' ' | '\t' if !quoted => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            '%' => match chars.next() {
                Some('%') => {
                    current.push('%');
                    in_arg = true;
                }
                Some(_) => {}
                None => return Err("Exec ends with a lone %".into()),
            },
            other => {
                current.push(other);
                in_arg = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote in Exec".into());
    }
    if in_arg {
        args.push(current);
    }
    args.retain(|a| !a.is_empty());
    if args.is_empty() {
        return Err("empty Exec".into());
    }
    Ok(args)
}

/// Reads one entry; `data_dir` is where its icons are looked up.
pub fn load_entry(path: &Path, data_dir: &Path) -> Result<AppEntry, EntryError> {
    let shown = path.display().to_string();
    let text = read_capped(path, MAX_ENTRY_BYTES).map_err(|message| EntryError::Invalid {
        path: shown.clone(),
        message,
    })?;
    let keys = parse_desktop_entry(path, &text)?;
    let flag = |k: &str| keys.get(k).is_some_and(|v| v == "true");
    if keys.get("Type").map(String::as_str) != Some("Application") {
        return Err(EntryError::NotShown {
            path: shown,
            reason: "not an Application",
        });
    }
    if flag("NoDisplay") || flag("Hidden") {
        return Err(EntryError::NotShown {
            path: shown,
            reason: "NoDisplay/Hidden",
        });
    }
    if flag("Terminal") {
        return Err(EntryError::NotShown {
            path: shown,
            reason: "needs a terminal",
        });
    }
    let name = keys
        .get("Name")
        .filter(|n| !n.is_empty())
        .cloned()
        .ok_or_else(|| EntryError::Invalid {
            path: shown.clone(),
            message: "no Name".into(),
        })?;
    let exec = keys.get("Exec").ok_or_else(|| EntryError::Invalid {
        path: shown.clone(),
        message: "no Exec".into(),
    })?;
    let exec = split_exec(exec).map_err(|message| EntryError::Invalid {
        path: shown.clone(),
        message,
    })?;
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let icon = keys.get("Icon").and_then(|name| find_icon(name, data_dir));
    Ok(AppEntry {
        id,
        name,
        exec,
        icon,
    })
}

fn read_capped(path: &Path, cap: u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > cap {
        return Err(format!("{} bytes, more than the {cap} allowed", meta.len()));
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// Looks for a PNG icon by name (or absolute path).
pub fn find_icon(name: &str, data_dir: &Path) -> Option<Pixmap> {
    let candidates: Vec<PathBuf> = if name.starts_with('/') {
        vec![PathBuf::from(name)]
    } else if name.contains('/') || name.contains("..") {
        return None;
    } else {
        let mut c: Vec<PathBuf> = ICON_SIZES
            .iter()
            .map(|size| {
                data_dir
                    .join("icons/hicolor")
                    .join(size)
                    .join("apps")
                    .join(format!("{name}.png"))
            })
            .collect();
        c.push(data_dir.join("pixmaps").join(format!("{name}.png")));
        c
    };
    candidates.into_iter().find_map(|path| {
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > MAX_ICON_BYTES || path.extension().is_some_and(|e| e != "png") {
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        match Pixmap::decode_png(&bytes) {
            Ok(p) if p.width() <= 1024 && p.height() <= 1024 => Some(p),
            Ok(_) => None,
            Err(err) => {
                tracing::debug!(path = %path.display(), %err, "icon not readable");
                None
            }
        }
    })
}

/// Every shown app under `<data_dir>/applications`, sorted by name. Bad entries are logged.
pub fn discover(data_dirs: &[PathBuf]) -> Vec<AppEntry> {
    let mut apps: BTreeMap<String, AppEntry> = BTreeMap::new();
    for data_dir in data_dirs {
        let dir = data_dir.join("applications");
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = read
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "desktop"))
            .collect();
        paths.sort();
        for path in paths {
            match load_entry(&path, data_dir) {
                Ok(app) => {
                    apps.entry(app.id.clone()).or_insert(app);
                }
                Err(EntryError::NotShown { .. }) => {}
                Err(err) => tracing::warn!("launcher skips {err}"),
            }
        }
    }
    let mut list: Vec<AppEntry> = apps.into_values().collect();
    list.sort_by_key(|a| a.name.to_lowercase());
    list
}

/// What the launcher draws for `apps`.
pub fn launcher_items(apps: &[AppEntry]) -> Vec<cirrus_ui::launcher::LauncherItem> {
    apps.iter()
        .map(|a| cirrus_ui::launcher::LauncherItem {
            label: a.name.clone(),
            icon: a.icon.clone(),
        })
        .collect()
}

/// Starts `app` as a client of the compositor at `socket`. Its output goes to ours (the console on
/// a device), so crashes are visible in the log.
pub fn launch(app: &AppEntry, socket: &Path) -> std::io::Result<Child> {
    let (program, args) = app
        .exec
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty Exec"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("WAYLAND_DISPLAY", socket)
        .env_remove("DISPLAY")
        .stdin(Stdio::null());
    if let Some(dir) = socket.parent() {
        cmd.env("XDG_RUNTIME_DIR", dir);
    }
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_field_codes_and_quotes() {
        assert_eq!(split_exec("foot %U").unwrap_or_default(), ["foot"]);
        assert_eq!(
            split_exec(r#"sh -c "echo \"hi\" 100%%""#).unwrap_or_default(),
            ["sh", "-c", r#"echo "hi" 100%"#]
        );
        assert!(split_exec("\"open").is_err());
        assert!(split_exec("%f").is_err());
    }

    #[test]
    fn parses_and_filters_entries() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let apps = dir.path().join("applications");
        std::fs::create_dir_all(&apps).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(apps.join("term.desktop"), "[Desktop Entry]\nType=Application\nName=Terminal\nName[fr]=Terminal FR\nExec=foot %U\nIcon=term\n[Desktop Action new]\nName=Ignored\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            apps.join("hidden.desktop"),
            "[Desktop Entry]\nType=Application\nName=Hidden\nExec=x\nNoDisplay=true\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            apps.join("broken.desktop"),
            "[Desktop Entry]\nType=Application\nName=Broken\nthis line is wrong\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            apps.join("cli.desktop"),
            "[Desktop Entry]\nType=Application\nName=Top\nExec=top\nTerminal=true\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let found = discover(&[dir.path().to_path_buf()]);
        let names: Vec<&str> = found.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Terminal"]);
        assert_eq!(found[0].exec, ["foot"]);
        assert!(found[0].icon.is_none());
        match load_entry(&apps.join("broken.desktop"), dir.path()) {
            Err(EntryError::Syntax { line, .. }) => assert_eq!(line, 4),
            other => panic!("expected a syntax error on line 4, got {other:?}"),
        }
    }

    #[test]
    fn icon_names_cannot_escape_the_icon_dirs() {
        assert!(find_icon("../../etc/passwd", Path::new("/usr/share")).is_none());
    }
}
