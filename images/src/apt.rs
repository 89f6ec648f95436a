//! Debian packages through the host's apt: which packages (dependency closure), which versions,
//! and the `.deb` files themselves, kept in `<cache>/debs/`.
//!
//! Only the ordinary clients are used (`apt-cache`, `apt-get download`, `apt-get update`); the
//! package index is refreshed once, and only when apt does not know a package or a download is
//! gone from the mirror.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, bail};
use tracing::{info, warn};

/// One package version and its `.deb` in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebFile {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Size of the `.deb` according to the index.
    pub size: u64,
    /// `<cache>/debs/<name>_<version>_<arch>.deb` (`:` in the version written `%3a`, as apt does).
    pub path: PathBuf,
}

/// apt, as the builder uses it.
pub struct Apt {
    debs_dir: PathBuf,
    updated: bool,
}

/// apt failed in a way an `apt-get update` may fix.
fn looks_stale(output: &Output) -> bool {
    let text = String::from_utf8_lossy(&output.stderr);
    [
        "Unable to locate package",
        "No packages found",
        "404",
        "Failed to fetch",
        "Can't select",
    ]
    .iter()
    .any(|s| text.contains(s))
}

fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output()
        .with_context(|| format!("cannot run {program}; install it with `cargo xtask deps`"))
}

fn describe(cmd: &Command, output: &Output) -> String {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut shown = args.join(" ");
    if shown.len() > 200 {
        shown.truncate(200);
        shown.push('…');
    }
    format!(
        "`{} {shown}` failed ({}): {}",
        cmd.get_program().to_string_lossy(),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

impl Apt {
    /// Uses `<cache_dir>/debs` for downloads.
    pub fn new(cache_dir: &Path) -> anyhow::Result<Apt> {
        let debs_dir = cache_dir.join("debs");
        std::fs::create_dir_all(&debs_dir)
            .with_context(|| format!("creating {}", debs_dir.display()))?;
        Ok(Apt {
            debs_dir,
            updated: false,
        })
    }

    /// Runs `apt-get update` (once per build).
    fn update(&mut self) -> anyhow::Result<()> {
        if self.updated {
            bail!("already ran apt-get update");
        }
        self.updated = true;
        info!("apt does not know a package or a file moved on the mirror: running apt-get update");
        let mut cmd = Command::new("apt-get");
        cmd.args(["update", "-q"]);
        let output = run(&mut cmd)?;
        if !output.status.success() {
            bail!(
                "{}\n(apt-get update needs root: run `sudo apt-get update` and build again)",
                describe(&cmd, &output)
            );
        }
        Ok(())
    }

    /// Runs an apt query; if apt does not know a package, updates the index once and retries.
    fn query(&mut self, args: &[&str], names: &[String]) -> anyhow::Result<String> {
        loop {
            let mut cmd = Command::new("apt-cache");
            cmd.args(args).args(names);
            let output = run(&mut cmd)?;
            if output.status.success() {
                return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
            }
            if looks_stale(&output) && !self.updated {
                self.update()?;
                continue;
            }
            bail!(
                "{}\nIs every package name in the device definition a Debian 12 package?",
                describe(&cmd, &output)
            );
        }
    }

    /// The concrete package behind a metapackage such as `linux-image-amd64`
    /// (`linux-image-6.1.0-56-amd64`); a concrete kernel package is returned as is.
    pub fn resolve_kernel_package(&mut self, package: &str) -> anyhow::Result<String> {
        let text = self.query(&["depends"], &[package.to_string()])?;
        let deps = parse_depends(&text);
        let groups = deps.get(package).map(Vec::as_slice).unwrap_or_default();
        let abi = groups.iter().flatten().find(|alt| {
            !alt.is_virtual
                && alt.name.starts_with("linux-image-")
                && alt.name[12..].starts_with(|c: char| c.is_ascii_digit())
        });
        match abi {
            Some(alt) => Ok(alt.name.clone()),
            None if package.starts_with("linux-image-")
                && package[12..].starts_with(|c: char| c.is_ascii_digit()) =>
            {
                Ok(package.to_string())
            }
            None => bail!(
                "`{package}` is neither a kernel package (linux-image-<version>-<flavour>) nor a metapackage depending on one"
            ),
        }
    }

    /// `include` and what it depends on (Depends and Pre-Depends), without `exclude`. Sorted.
    pub fn closure(
        &mut self,
        include: &[String],
        exclude: &[String],
    ) -> anyhow::Result<Vec<String>> {
        if include.is_empty() {
            return Ok(Vec::new());
        }
        loop {
            let text = self.query(
                &[
                    "depends",
                    "--recurse",
                    "--no-recommends",
                    "--no-suggests",
                    "--no-conflicts",
                    "--no-breaks",
                    "--no-replaces",
                    "--no-enhances",
                ],
                include,
            )?;
            let graph = parse_depends(&text);
            // apt-cache skips unknown names silently when others are known.
            let unknown: Vec<&str> = include
                .iter()
                .filter(|p| !graph.contains_key(*p))
                .map(String::as_str)
                .collect();
            if unknown.is_empty() {
                return Ok(closure_of(&graph, include, exclude));
            }
            if !self.updated {
                self.update()?;
                continue;
            }
            bail!(
                "apt knows no (real) package named {}; check the spelling in [packages] include \
                 (`apt-cache search NAME`; a virtual package must be replaced by one that provides it)",
                unknown.join(", ")
            );
        }
    }

    /// The candidate version of each package, and where its `.deb` is (or will be) cached.
    pub fn candidates(&mut self, names: &[String]) -> anyhow::Result<Vec<DebFile>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        loop {
            let text = self.query(&["show", "--no-all-versions"], names)?;
            let mut by_name: BTreeMap<String, DebFile> = BTreeMap::new();
            for stanza in text.split("\n\n") {
                let field = |key: &str| {
                    stanza.lines().find_map(|l| {
                        l.strip_prefix(key)
                            .and_then(|r| r.strip_prefix(": "))
                            .map(str::trim)
                    })
                };
                let (Some(name), Some(version), Some(arch)) =
                    (field("Package"), field("Version"), field("Architecture"))
                else {
                    continue;
                };
                let size = field("Size").and_then(|s| s.parse().ok()).unwrap_or(0);
                let file = format!("{name}_{}_{arch}.deb", version.replace(':', "%3a"));
                by_name.entry(name.to_string()).or_insert(DebFile {
                    name: name.to_string(),
                    version: version.to_string(),
                    arch: arch.to_string(),
                    size,
                    path: self.debs_dir.join(file),
                });
            }
            let unknown: Vec<&str> = names
                .iter()
                .filter(|n| !by_name.contains_key(*n))
                .map(String::as_str)
                .collect();
            if unknown.is_empty() {
                return Ok(names.iter().filter_map(|n| by_name.remove(n)).collect());
            }
            if !self.updated {
                self.update()?;
                continue;
            }
            bail!("apt has no installable version of {}", unknown.join(", "));
        }
    }

    /// Makes sure every package's `.deb` is in the cache, downloading what is missing. Returns
    /// the files (their versions may have moved if the index had to be refreshed).
    pub fn fetch(&mut self, names: &[String]) -> anyhow::Result<Vec<DebFile>> {
        loop {
            let debs = self.candidates(names)?;
            let missing: Vec<&DebFile> = debs.iter().filter(|d| !is_cached(d)).collect();
            if missing.is_empty() {
                info!(
                    "{} packages, all in the cache ({})",
                    debs.len(),
                    self.debs_dir.display()
                );
                return Ok(debs);
            }
            let bytes: u64 = missing.iter().map(|d| d.size).sum();
            info!(
                "downloading {} of {} packages ({:.1} MB) into {}: {}",
                missing.len(),
                debs.len(),
                bytes as f64 / 1e6,
                self.debs_dir.display(),
                missing
                    .iter()
                    .map(|d| format!("{}={}", d.name, d.version))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            match self.download(&missing) {
                Ok(()) => return Ok(debs),
                Err((stale, err)) if stale && !self.updated => {
                    warn!("{err:#}");
                    self.update()?;
                }
                Err((_, err)) => return Err(err),
            }
        }
    }

    /// Downloads into a private directory, then moves the files into the cache (so concurrent
    /// builds never see a half-written `.deb`). Err((looks stale, error)).
    fn download(&self, debs: &[&DebFile]) -> Result<(), (bool, anyhow::Error)> {
        let tmp = self
            .debs_dir
            .join(format!(".download-{}", crate::unique_suffix()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| {
            (
                false,
                anyhow::Error::new(e).context(format!("creating {}", tmp.display())),
            )
        })?;
        let mut cmd = Command::new("apt-get");
        // Downloading as root: keep apt from switching to the `_apt` user (which could not write
        // into a cache directory under someone's home).
        cmd.current_dir(&tmp)
            .args(["download", "-q", "-o", "APT::Sandbox::User=root"]);
        for d in debs {
            cmd.arg(format!("{}={}", d.name, d.version));
        }
        let result = (|| {
            let output = run(&mut cmd).map_err(|e| (false, e))?;
            if !output.status.success() {
                return Err((
                    looks_stale(&output),
                    anyhow::anyhow!(describe(&cmd, &output)),
                ));
            }
            for d in debs {
                let file = d.path.file_name().unwrap_or_default();
                let from = tmp.join(file);
                if !from.is_file() {
                    return Err((
                        false,
                        anyhow::anyhow!("apt-get download did not write {}", from.display()),
                    ));
                }
                std::fs::rename(&from, &d.path).map_err(|e| {
                    (
                        false,
                        anyhow::Error::new(e)
                            .context(format!("moving {} to the cache", from.display())),
                    )
                })?;
            }
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result
    }
}

fn is_cached(deb: &DebFile) -> bool {
    std::fs::metadata(&deb.path)
        .is_ok_and(|m| m.is_file() && (deb.size == 0 || m.len() == deb.size))
}

/// One alternative of a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub name: String,
    /// Written `<name>` by apt-cache: no package has this name; `providers` do.
    pub is_virtual: bool,
    pub providers: Vec<String>,
}

/// Package → its dependency groups (each group: alternatives, first preferred).
pub type DependencyGraph = BTreeMap<String, Vec<Vec<Alternative>>>;

/// Parses `apt-cache depends [--recurse]` output.
pub fn parse_depends(text: &str) -> DependencyGraph {
    let mut graph = DependencyGraph::new();
    let mut current: Option<String> = None;
    let mut continues = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            continues = false;
            current = if line.starts_with('<') {
                None
            } else {
                Some(strip_arch(line.trim()).to_string())
            };
            if let Some(name) = &current {
                graph.entry(name.clone()).or_default();
            }
            continue;
        }
        let Some(pkg) = &current else { continue };
        if line.starts_with("    ") {
            // A provider of the virtual package on the previous line.
            if let Some(alt) = graph
                .get_mut(pkg)
                .and_then(|g| g.last_mut())
                .and_then(|g| g.last_mut())
            {
                alt.providers.push(strip_arch(line.trim()).to_string());
            }
            continue;
        }
        let is_or = line.as_bytes().get(1) == Some(&b'|');
        let Some((kind, target)) = line.trim_start_matches([' ', '|']).split_once(": ") else {
            continue;
        };
        if kind != "Depends" && kind != "PreDepends" {
            continues = is_or;
            continue;
        }
        let target = target.trim();
        let (name, is_virtual) = match target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            Some(inner) => (inner, true),
            None => (target, false),
        };
        let alt = Alternative {
            name: strip_arch(name).to_string(),
            is_virtual,
            providers: Vec::new(),
        };
        let groups = graph.entry(pkg.clone()).or_default();
        match groups.last_mut() {
            Some(group) if continues => group.push(alt),
            _ => groups.push(vec![alt]),
        }
        continues = is_or;
    }
    graph
}

fn strip_arch(name: &str) -> &str {
    name.split_once(':').map_or(name, |(n, _)| n)
}

/// Walks the graph from `include`: for each dependency, the first real alternative not excluded
/// (else the first non-excluded provider of a virtual one); a dependency whose every choice is
/// excluded is dropped (that is what `exclude` is for).
pub fn closure_of(graph: &DependencyGraph, include: &[String], exclude: &[String]) -> Vec<String> {
    let excluded: BTreeSet<&str> = exclude.iter().map(String::as_str).collect();
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = include
        .iter()
        .filter(|p| !excluded.contains(p.as_str()))
        .cloned()
        .collect();
    while let Some(pkg) = queue.pop_front() {
        if !chosen.insert(pkg.clone()) {
            continue;
        }
        for group in graph.get(&pkg).map(Vec::as_slice).unwrap_or_default() {
            let real = group
                .iter()
                .find(|a| !a.is_virtual && !excluded.contains(a.name.as_str()))
                .map(|a| a.name.clone());
            let choice = real.or_else(|| {
                group
                    .iter()
                    .filter(|a| a.is_virtual)
                    .flat_map(|a| &a.providers)
                    .find(|p| !excluded.contains(p.as_str()))
                    .cloned()
            });
            if let Some(choice) = choice
                && !chosen.contains(&choice)
            {
                queue.push_back(choice);
            }
        }
    }
    chosen.into_iter().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
libseat1
 |Depends: seatd
  Depends: <logind>
    libpam-elogind
    libpam-systemd
  Depends: libc6
  Recommends: foo
libc6
  Depends: libgcc-s1
libgcc-s1
  Depends: gcc-12-base
  PreDepends: libc6
seatd
  Depends: libc6
 |Depends: debconf
  Depends: <debconf-2.0>
    cdebconf
gcc-12-base
<logind>
<debconf-2.0>
cdebconf
  Depends: libc6
debconf
  PreDepends: perl-base
perl-base
";

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_alternatives_virtuals_and_providers() {
        let g = parse_depends(SAMPLE);
        let seat = &g["libseat1"];
        assert_eq!(seat.len(), 2, "{seat:?}");
        assert_eq!(seat[0].len(), 2);
        assert_eq!(seat[0][0].name, "seatd");
        assert!(seat[0][1].is_virtual);
        assert_eq!(seat[0][1].providers, ["libpam-elogind", "libpam-systemd"]);
        assert_eq!(seat[1][0].name, "libc6");
        assert_eq!(g["libgcc-s1"].len(), 2, "PreDepends count");
        assert!(!g.contains_key("<logind>") && !g.contains_key("logind"));
    }

    #[test]
    fn closure_takes_first_alternative_and_honours_exclude() {
        let g = parse_depends(SAMPLE);
        let c = closure_of(&g, &strings(&["libseat1"]), &[]);
        assert_eq!(
            c,
            [
                "debconf",
                "gcc-12-base",
                "libc6",
                "libgcc-s1",
                "libseat1",
                "perl-base",
                "seatd"
            ]
        );
        // Excluding debconf takes the provider of debconf-2.0 instead; excluding that too drops it.
        let c = closure_of(&g, &strings(&["libseat1"]), &strings(&["debconf"]));
        assert_eq!(
            c,
            [
                "cdebconf",
                "gcc-12-base",
                "libc6",
                "libgcc-s1",
                "libseat1",
                "seatd"
            ]
        );
        let c = closure_of(
            &g,
            &strings(&["libseat1"]),
            &strings(&["debconf", "cdebconf", "seatd"]),
        );
        assert_eq!(
            c,
            [
                "gcc-12-base",
                "libc6",
                "libgcc-s1",
                "libpam-elogind",
                "libseat1"
            ]
        );
    }
}
