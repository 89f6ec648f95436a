//! AssemblyScript for Cirrus apps: where the compiler is, how `cirrus app build` runs it, and the
//! canonical export names AssemblyScript cannot spell.
//!
//! The compiler (`asc`, pinned at [`ASC_VERSION`]) is found as `$CIRRUS_ASC`, else the project's own
//! `node_modules/.bin/asc` (after `npm install` in a project made by `cirrus app new --template
//! assemblyscript`), else the copy `cargo xtask deps` installs under
//! `$XDG_CACHE_HOME/cirrus/assemblyscript-<version>` (`~/.cache/…`).
//!
//! A core module may export the world's functions as `cirrus_app_<interface>_<function>` (e.g.
//! `cirrus_app_events_frame`); [`canonical_export_names`] renames them to the names componentizing
//! expects (`cirrus:app/events@0.1.0#frame`; `_` in the function becomes `-`).
//!
//! Used by `cirrus app build` and by the wasm host's tests, which build their AssemblyScript example
//! with exactly this code.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why an AssemblyScript build failed.
#[derive(Debug, thiserror::Error)]
pub enum AscError {
    #[error(
        "no AssemblyScript compiler: run `npm install` in {} (its package.json pins assemblyscript {ASC_VERSION}), or set CIRRUS_ASC",
        .project.display()
    )]
    NoCompiler { project: PathBuf },
    #[error("running {} (needs Node.js: `cargo xtask deps`): {source}", .asc.display())]
    Spawn {
        asc: PathBuf,
        source: std::io::Error,
    },
    #[error("asc failed on {}:\n{output}", .entry.display())]
    Failed { entry: PathBuf, output: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("renaming exports: {0}")]
    Module(&'static str),
}

/// The AssemblyScript release apps are built with (npm package `assemblyscript`).
pub const ASC_VERSION: &str = "0.28.20";

/// The shared copy of the compiler `cargo xtask deps` installs.
pub fn cached_asc() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(
        cache
            .join("cirrus")
            .join(format!("assemblyscript-{ASC_VERSION}"))
            .join("node_modules/.bin/asc"),
    )
}

/// The compiler for the project in `project`.
pub fn find_asc(project: &Path) -> Result<PathBuf, AscError> {
    if let Some(p) = std::env::var_os("CIRRUS_ASC").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let local = project.join("node_modules/.bin/asc");
    if local.exists() {
        return Ok(local);
    }
    match cached_asc() {
        Some(p) if p.exists() => Ok(p),
        _ => Err(AscError::NoCompiler {
            project: project.to_owned(),
        }),
    }
}

/// Compiles `entry` (a project's `assembly/index.ts`, beside its `cirrus.ts`) to a core wasm module
/// with canonical export names, ready to componentize. `work` receives the compiler's output.
pub fn compile(project: &Path, entry: &Path, work: &Path) -> Result<Vec<u8>, AscError> {
    let asc = find_asc(project)?;
    // asc runs in the entry's directory: the output path must not be relative.
    let work = std::fs::canonicalize(work).map_err(|source| AscError::Io {
        path: work.to_owned(),
        source,
    })?;
    let out = work.join("app.core.wasm");
    let output = Command::new(&asc)
        // Relative to its directory: asc names the `--use abort=` function by internal path.
        .arg(entry.file_name().unwrap_or(entry.as_os_str()))
        .arg("-o")
        .arg(&out)
        // The incremental GC; `abort` (failed assertions, bounds checks) logs and traps instead of
        // importing `env.abort`, which no Cirrus host provides.
        .args([
            "-O3",
            "--runtime",
            "incremental",
            "--use",
            "abort=cirrus/cirrusAbort",
        ])
        .current_dir(entry.parent().unwrap_or(project))
        .output()
        .map_err(|source| AscError::Spawn {
            asc: asc.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(AscError::Failed {
            entry: entry.to_owned(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    let module = std::fs::read(&out).map_err(|source| AscError::Io { path: out, source })?;
    canonical_export_names(&module)
}

/// The world's exported interfaces.
const INTERFACES: &[&str] = &["events", "lifecycle"];
const PREFIX: &str = "cirrus_app_";
const EXPORT_SECTION: u8 = 7;

fn read_u32(bytes: &[u8], pos: &mut usize) -> Result<u32, AscError> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or(AscError::Module("truncated LEB128 number"))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(value).map_err(|_| AscError::Module("LEB128 number too large"));
        }
    }
    Err(AscError::Module("LEB128 number too long"))
}

fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The canonical name for `name`, if it is a `cirrus_app_<interface>_<function>` export.
pub fn canonical_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix(PREFIX)?;
    INTERFACES.iter().find_map(|iface| {
        let function = rest.strip_prefix(iface)?.strip_prefix('_')?;
        (!function.is_empty())
            .then(|| format!("cirrus:app/{iface}@0.1.0#{}", function.replace('_', "-")))
    })
}

/// Rewrites the module's export section with canonical names; other sections are copied as they
/// are. Returns the module unchanged when nothing needs renaming.
pub fn canonical_export_names(module: &[u8]) -> Result<Vec<u8>, AscError> {
    if module.len() < 8 || &module[0..4] != b"\0asm" {
        return Err(AscError::Module("not a WebAssembly module"));
    }
    let mut out = module[0..8].to_vec();
    let mut pos = 8;
    while pos < module.len() {
        let id = module[pos];
        pos += 1;
        let size = read_u32(module, &mut pos)? as usize;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= module.len())
            .ok_or(AscError::Module(
                "a section runs past the end of the module",
            ))?;
        let payload = &module[pos..end];
        if id == EXPORT_SECTION {
            let section = rename_exports(payload)?;
            out.push(id);
            write_u32(&mut out, section.len() as u32);
            out.extend_from_slice(&section);
        } else {
            out.push(id);
            write_u32(&mut out, size as u32);
            out.extend_from_slice(payload);
        }
        pos = end;
    }
    Ok(out)
}

fn rename_exports(payload: &[u8]) -> Result<Vec<u8>, AscError> {
    let mut pos = 0;
    let count = read_u32(payload, &mut pos)?;
    let mut out = Vec::with_capacity(payload.len() + 64);
    write_u32(&mut out, count);
    for _ in 0..count {
        let len = read_u32(payload, &mut pos)? as usize;
        let name_end = pos
            .checked_add(len)
            .filter(|e| *e <= payload.len())
            .ok_or(AscError::Module("an export name runs past its section"))?;
        let name = std::str::from_utf8(&payload[pos..name_end])
            .map_err(|_| AscError::Module("an export name is not UTF-8"))?;
        pos = name_end;
        let name = canonical_name(name).unwrap_or_else(|| name.to_owned());
        write_u32(&mut out, name.len() as u32);
        out.extend_from_slice(name.as_bytes());
        let kind = *payload
            .get(pos)
            .ok_or(AscError::Module("truncated export"))?;
        pos += 1;
        let index = read_u32(payload, &mut pos)?;
        out.push(kind);
        write_u32(&mut out, index);
    }
    if pos != payload.len() {
        return Err(AscError::Module("the export section has trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn module_with_exports(names: &[&str]) -> Vec<u8> {
        let mut section = Vec::new();
        write_u32(&mut section, names.len() as u32);
        for (i, n) in names.iter().enumerate() {
            write_u32(&mut section, n.len() as u32);
            section.extend_from_slice(n.as_bytes());
            section.push(0);
            write_u32(&mut section, i as u32 + 200);
        }
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // A custom section before, copied as it is.
        m.extend_from_slice(&[0, 3, 1, b'x', 9]);
        m.push(EXPORT_SECTION);
        write_u32(&mut m, section.len() as u32);
        m.extend_from_slice(&section);
        m
    }

    #[test]
    fn the_pinned_compiler_is_the_one_xtask_deps_installs() {
        let deps = include_str!("../../../xtask/src/deps.rs");
        assert!(
            deps.contains(&format!("\"assemblyscript\",\n    \"{ASC_VERSION}\"")),
            "xtask/src/deps.rs NPM_TOOLS must pin assemblyscript {ASC_VERSION}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(
            canonical_name("cirrus_app_events_frame").as_deref(),
            Some("cirrus:app/events@0.1.0#frame")
        );
        assert_eq!(
            canonical_name("cirrus_app_lifecycle_create").as_deref(),
            Some("cirrus:app/lifecycle@0.1.0#create")
        );
        assert_eq!(canonical_name("cirrus_app_events_"), None);
        assert_eq!(canonical_name("cirrus_app_surface_width"), None);
        assert_eq!(canonical_name("memory"), None);
    }

    #[test]
    fn renames_only_world_exports_and_keeps_the_rest() {
        let m = module_with_exports(&["cirrus_app_events_pointer", "memory"]);
        let out = canonical_export_names(&m).unwrap();
        assert_eq!(
            out,
            module_with_exports(&["cirrus:app/events@0.1.0#pointer", "memory"])
        );
        assert_eq!(canonical_export_names(&out).unwrap(), out);
    }

    #[test]
    fn refuses_broken_modules() {
        assert!(canonical_export_names(b"nope").is_err());
        let mut m = module_with_exports(&["memory"]);
        m.truncate(m.len() - 2);
        assert!(canonical_export_names(&m).is_err());
    }
}
