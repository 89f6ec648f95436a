//! Shared-library closure of ELF programs inside a staging root (a directory that will become `/`).
//!
//! Resolves `PT_INTERP` and every `DT_NEEDED` the way ld.so would on the device: `DT_RPATH` (when
//! there is no `DT_RUNPATH`), `DT_RUNPATH` (with `$ORIGIN`), then the default directories.
//! Symbolic links are followed inside the root (an absolute target means the root's `/`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use object::read::elf::{Dyn as _, FileHeader as _, ProgramHeader as _};

/// Where ld.so looks after RPATH/RUNPATH on Debian x86_64 (multiarch directories first).
pub const DEFAULT_LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
    "/lib64",
    "/usr/lib64",
];

/// The dynamic-linking facts of one ELF file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfDeps {
    pub machine: u16,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// Symbol versions needed (`DT_VERNEED`): (soname, versions such as `GLIBC_2.34`).
    pub version_needs: Vec<(String, Vec<String>)>,
    /// Symbol versions defined (`DT_VERDEF`, without the base entry).
    pub version_defs: Vec<String>,
}

/// Whether `data` starts like an ELF file.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// Reads the interpreter and dynamic section of a 64-bit ELF file.
pub fn parse_deps(data: &[u8]) -> anyhow::Result<ElfDeps> {
    let header = object::elf::FileHeader64::<object::Endianness>::parse(data)
        .context("not a 64-bit ELF file")?;
    let endian = header.endian()?;
    let mut deps = ElfDeps {
        machine: header.e_machine(endian),
        ..Default::default()
    };
    for ph in header.program_headers(endian, data)? {
        if let Some(interp) = ph.interpreter(endian, data)? {
            let interp = interp.strip_suffix(b"\0").unwrap_or(interp);
            deps.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let sections = header.sections(endian, data)?;
    if let Some((dynamic, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        for d in dynamic {
            let Some(tag) = d.tag32(endian) else { continue };
            let value = || -> anyhow::Result<String> {
                Ok(String::from_utf8_lossy(d.string(endian, strings)?).into_owned())
            };
            match tag {
                object::elf::DT_NEEDED => deps.needed.push(value()?),
                object::elf::DT_RPATH => deps.rpath.extend(
                    value()?
                        .split(':')
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                ),
                object::elf::DT_RUNPATH => deps.runpath.extend(
                    value()?
                        .split(':')
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                ),
                _ => {}
            }
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        while let Some((need, mut aux)) = needs.next()? {
            let file = text(need.file(endian, strings)?);
            let mut versions = Vec::new();
            while let Some(a) = aux.next()? {
                versions.push(text(a.name(endian, strings)?));
            }
            deps.version_needs.push((file, versions));
        }
    }
    if let Some((mut defs, link)) = sections.gnu_verdef(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        while let Some((def, mut aux)) = defs.next()? {
            let is_base = def.vd_flags.get(endian) & object::elf::VER_FLG_BASE != 0;
            // The first auxiliary entry names the version; the others its parents.
            if let Some(a) = aux.next()?
                && !is_base
            {
                deps.version_defs.push(text(a.name(endian, strings)?));
            }
        }
    }
    Ok(deps)
}

/// A path inside a root, and the symbolic links crossed on the way to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The real location, relative to the root (`usr/lib/x86_64-linux-gnu/libc.so.6`).
    pub real: PathBuf,
    /// Each symlink crossed: (its path relative to the root, its target as written).
    pub links: Vec<(PathBuf, PathBuf)>,
}

/// Follows `path` (absolute or relative to the root's `/`) inside `root`. Returns `None` when it
/// does not exist there.
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<Resolved> {
    let mut todo = parts(path);
    let mut current = PathBuf::new();
    let mut links = Vec::new();
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            current.pop();
            continue;
        }
        let candidate = current.join(&part);
        let meta = std::fs::symlink_metadata(root.join(&candidate)).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(root.join(&candidate)).ok()?;
            links.push((candidate.clone(), target.clone()));
            if target.is_absolute() {
                current = PathBuf::new();
            }
            let mut rest = parts(&target);
            rest.extend(todo);
            todo = rest;
        } else {
            if !todo.is_empty() && !meta.is_dir() {
                return None;
            }
            current = candidate;
        }
    }
    Some(Resolved {
        real: current,
        links,
    })
}

/// The components of `path` that move: names and `..` (`/` and `.` do not).
fn parts(path: &Path) -> VecDeque<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// One shared object found for a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// Absolute path as the loader asked for it (`/lib/x86_64-linux-gnu/libc.so.6`).
    pub lookup: PathBuf,
    pub resolved: Resolved,
}

/// Why a program would not load on the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingLibrary {
    /// A library (or the interpreter) the root does not contain.
    #[error("{program} needs {library}{}", through(via))]
    Library {
        /// The program (file name) whose closure is incomplete.
        program: String,
        /// The missing soname or interpreter path.
        library: String,
        /// The chain of libraries between the program and the one needing `library`.
        via: Vec<String>,
    },
    /// A library is there but older than the one the program was linked against.
    #[error(
        "{program} needs symbol version {version} of {library}{}, but the {library} in the image does not define it \
         (the program was linked against a newer one: build it on the same Debian release as the image)",
        through(via)
    )]
    Version {
        program: String,
        library: String,
        version: String,
        via: Vec<String>,
    },
}

impl MissingLibrary {
    /// The soname (or interpreter path) at fault.
    pub fn library(&self) -> &str {
        match self {
            MissingLibrary::Library { library, .. } | MissingLibrary::Version { library, .. } => {
                library
            }
        }
    }
}

fn through(via: &[String]) -> String {
    if via.is_empty() {
        String::new()
    } else {
        format!(" (through {})", via.join(" → "))
    }
}

/// Everything a program loads, in the order found (interpreter first).
pub fn library_closure(
    root: &Path,
    program: &Path,
    expected_machine: u16,
) -> anyhow::Result<Result<Vec<Library>, MissingLibrary>> {
    let program_name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let program_rel = program.strip_prefix("/").unwrap_or(program);
    let Some(start) = resolve_in_root(root, program_rel) else {
        bail!("{} is not in {}", program.display(), root.display());
    };
    let mut found: Vec<Library> = Vec::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut sonames: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut parsed: Vec<(PathBuf, Vec<String>, ElfDeps)> = Vec::new();
    // (file relative to the root, chain of sonames that led here)
    let mut queue: VecDeque<(PathBuf, Vec<String>)> =
        VecDeque::from([(start.real.clone(), Vec::new())]);
    seen.insert(start.real);
    while let Some((file, chain)) = queue.pop_front() {
        let data = std::fs::read(root.join(&file))
            .with_context(|| format!("reading {}", root.join(&file).display()))?;
        if !is_elf(&data) {
            if chain.is_empty() {
                continue; // a script: nothing to check
            }
            bail!(
                "{} (needed by {program_name}) is not an ELF file",
                file.display()
            );
        }
        let deps =
            parse_deps(&data).with_context(|| format!("parsing {}", root.join(&file).display()))?;
        parsed.push((file.clone(), chain.clone(), deps.clone()));
        if deps.machine != expected_machine {
            bail!(
                "/{} is built for ELF machine {} but the device needs {expected_machine}; build it for the device's arch",
                file.display(),
                deps.machine
            );
        }
        if let Some(interp) = &deps.interpreter {
            let interp_path = PathBuf::from(interp);
            match resolve_in_root(root, &interp_path) {
                Some(resolved)
                    if std::fs::metadata(root.join(&resolved.real)).is_ok_and(|m| m.is_file()) =>
                {
                    if seen.insert(resolved.real.clone()) {
                        found.insert(
                            0,
                            Library {
                                lookup: interp_path,
                                resolved,
                            },
                        );
                    }
                }
                _ => {
                    return Ok(Err(MissingLibrary::Library {
                        program: program_name,
                        library: interp.clone(),
                        via: chain,
                    }));
                }
            }
        }
        let origin = Path::new("/").join(file.parent().unwrap_or(Path::new("")));
        let mut dirs: Vec<PathBuf> = Vec::new();
        let search = if deps.runpath.is_empty() {
            &deps.rpath
        } else {
            &deps.runpath
        };
        for dir in search {
            let dir = dir
                .replace("${ORIGIN}", &origin.to_string_lossy())
                .replace("$ORIGIN", &origin.to_string_lossy());
            dirs.push(PathBuf::from(dir));
        }
        dirs.extend(DEFAULT_LIBRARY_DIRS.iter().map(PathBuf::from));
        for soname in &deps.needed {
            if sonames.contains_key(soname) {
                continue;
            }
            let mut hit = None;
            for dir in &dirs {
                let lookup = if soname.contains('/') {
                    PathBuf::from(soname)
                } else {
                    dir.join(soname)
                };
                if let Some(resolved) = resolve_in_root(root, &lookup)
                    && std::fs::metadata(root.join(&resolved.real)).is_ok_and(|m| m.is_file())
                {
                    hit = Some(Library { lookup, resolved });
                    break;
                }
            }
            let Some(lib) = hit else {
                return Ok(Err(MissingLibrary::Library {
                    program: program_name,
                    library: soname.clone(),
                    via: chain,
                }));
            };
            sonames.insert(soname.clone(), lib.resolved.real.clone());
            if seen.insert(lib.resolved.real.clone()) {
                let mut next = chain.clone();
                next.push(soname.clone());
                queue.push_back((lib.resolved.real.clone(), next));
                found.push(lib);
            }
        }
    }
    // Symbol versions: each versioned need must be defined by the library that was found.
    for (_, chain, deps) in &parsed {
        for (soname, versions) in &deps.version_needs {
            let Some(real) = sonames.get(soname) else {
                continue;
            };
            let Some((_, _, lib)) = parsed.iter().find(|(f, _, _)| f == real) else {
                continue;
            };
            if let Some(version) = versions.iter().find(|v| !lib.version_defs.contains(v)) {
                return Ok(Err(MissingLibrary::Version {
                    program: program_name,
                    library: soname.clone(),
                    version: version.clone(),
                    via: chain.clone(),
                }));
            }
        }
    }
    Ok(Ok(found))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn parses_a_host_program() {
        let data = std::fs::read("/bin/true").unwrap();
        let deps = parse_deps(&data).unwrap();
        assert_eq!(deps.machine, object::elf::EM_X86_64);
        assert_eq!(
            deps.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert!(deps.needed.contains(&"libc.so.6".to_string()), "{deps:?}");
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(root.join("usr/lib/x86_64-linux-gnu/libx.so.1.2"), b"x").unwrap();
        symlink(
            "libx.so.1.2",
            root.join("usr/lib/x86_64-linux-gnu/libx.so.1"),
        )
        .unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib64")).unwrap();
        symlink(
            "/lib/x86_64-linux-gnu/libx.so.1",
            root.join("usr/lib64/abs"),
        )
        .unwrap();
        symlink("usr/lib64", root.join("lib64")).unwrap();

        let r = resolve_in_root(root, Path::new("/lib64/abs")).unwrap();
        assert_eq!(r.real, Path::new("usr/lib/x86_64-linux-gnu/libx.so.1.2"));
        let crossed: Vec<&Path> = r.links.iter().map(|(p, _)| p.as_path()).collect();
        assert_eq!(
            crossed,
            [
                Path::new("lib64"),
                Path::new("usr/lib64/abs"),
                Path::new("lib"),
                Path::new("usr/lib/x86_64-linux-gnu/libx.so.1")
            ]
        );
        assert!(resolve_in_root(root, Path::new("/lib/nothing")).is_none());
        // An absolute link never escapes the root, even with "..".
        symlink("../../../../etc/passwd", root.join("usr/escape")).unwrap();
        assert!(resolve_in_root(root, Path::new("/usr/escape")).is_none());
    }

    #[test]
    fn closure_reports_the_missing_libc() {
        // /bin/true copied into a root without libc: the error must name libc.so.6 or the loader.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("system/bin")).unwrap();
        std::fs::copy("/bin/true", root.join("system/bin/cirrus-true")).unwrap();
        // Give it the loader so the first thing missing is libc.
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::copy(
            "/lib64/ld-linux-x86-64.so.2",
            root.join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        let err = library_closure(
            root,
            Path::new("/system/bin/cirrus-true"),
            object::elf::EM_X86_64,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(err.library(), "libc.so.6");
        assert_eq!(err.to_string(), "cirrus-true needs libc.so.6");

        // Without the loader, the interpreter is what is missing.
        std::fs::remove_file(root.join("lib64/ld-linux-x86-64.so.2")).unwrap();
        let err = library_closure(
            root,
            Path::new("/system/bin/cirrus-true"),
            object::elf::EM_X86_64,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(err.library(), "/lib64/ld-linux-x86-64.so.2");
    }

    #[test]
    fn closure_complete_with_host_libraries_and_wrong_machine_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("system/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib64")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("usr/lib64", root.join("lib64")).unwrap();
        std::fs::copy("/bin/true", root.join("system/bin/t")).unwrap();
        for lib in ["libc.so.6", "ld-linux-x86-64.so.2"] {
            std::fs::copy(
                Path::new("/lib/x86_64-linux-gnu").join(lib),
                root.join("usr/lib/x86_64-linux-gnu").join(lib),
            )
            .unwrap();
        }
        symlink(
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            root.join("usr/lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        let libs = library_closure(root, Path::new("/system/bin/t"), object::elf::EM_X86_64)
            .unwrap()
            .unwrap();
        let reals: Vec<&Path> = libs.iter().map(|l| l.resolved.real.as_path()).collect();
        assert_eq!(
            reals,
            [
                Path::new("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
                Path::new("usr/lib/x86_64-linux-gnu/libc.so.6")
            ]
        );

        // The symbol versions /bin/true needs are defined by the host libc it was built with…
        let deps = parse_deps(&std::fs::read("/bin/true").unwrap()).unwrap();
        let (_, glibc) = deps
            .version_needs
            .iter()
            .find(|(f, _)| f == "libc.so.6")
            .unwrap();
        assert!(glibc.iter().any(|v| v.starts_with("GLIBC_2.")), "{glibc:?}");
        let libc = parse_deps(&std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap()).unwrap();
        assert!(libc.version_defs.contains(&"GLIBC_2.2.5".to_string()));
        assert!(
            !libc.version_defs.iter().any(|v| v == "libc.so.6"),
            "base entry skipped"
        );
        // …but not by a libc that lacks them: a library without version definitions stands in
        // for an older libc.
        std::fs::copy(
            "/lib/x86_64-linux-gnu/libgcc_s.so.1",
            root.join("usr/lib/x86_64-linux-gnu/libc.so.6"),
        )
        .unwrap();
        let err = library_closure(root, Path::new("/system/bin/t"), object::elf::EM_X86_64)
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, MissingLibrary::Version { library, version, .. } if library == "libc.so.6" && version.starts_with("GLIBC_2.")),
            "{err}"
        );

        let err =
            library_closure(root, Path::new("/system/bin/t"), object::elf::EM_AARCH64).unwrap_err();
        assert!(err.to_string().contains("ELF machine"), "{err}");
    }
}
